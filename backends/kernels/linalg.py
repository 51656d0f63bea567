"""MatMul and Gemm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from placer.ir.attrs import GemmAttrs
from placer.ir.graph import Node
from placer.ir.ops import OpKind


def matmul(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a, b)


def gemm(node: Node, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    at = node.attrs_as(GemmAttrs)
    a = a.T if at.trans_a else a
    b = b.T if at.trans_b else b
    y = at.alpha * (a @ b) if at.alpha != 1.0 else a @ b
    if c is not None:
        y = y + (at.beta * c if at.beta != 1.0 else c)
    return np.asarray(y).astype(a.dtype, copy=False)


KERNELS: dict[OpKind, Callable[..., Any]] = {OpKind.MATMUL: matmul, OpKind.GEMM: gemm}
