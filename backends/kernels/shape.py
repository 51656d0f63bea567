"""Shape, ConstantOfShape and Range: index arithmetic rather than activations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from placer.ir.attrs import ConstantOfShapeAttrs, ShapeAttrs
from placer.ir.graph import Node
from placer.ir.ops import OpKind


def shape(node: Node, x: np.ndarray) -> np.ndarray:
    dims = np.array(x.shape, dtype=np.int64)
    at = node.attrs_as(ShapeAttrs)
    return dims[at.start:at.end] if at.end is not None else dims[at.start:]


def constant_of_shape(node: Node, dims: np.ndarray) -> np.ndarray:
    at = node.attrs_as(ConstantOfShapeAttrs)
    return np.full(tuple(int(d) for d in dims.reshape(-1)), at.value, dtype=at.dtype.to_numpy())


def range_(node: Node, start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    s, l, d = start.item(), limit.item(), delta.item()
    n = max(int(np.ceil((l - s) / d)), 0)
    return (s + d * np.arange(n)).astype(np.asarray(start).dtype)


KERNELS: dict[OpKind, Callable[..., Any]] = {
    OpKind.SHAPE: shape, OpKind.CONSTANT_OF_SHAPE: constant_of_shape, OpKind.RANGE: range_,
}
