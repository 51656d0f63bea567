"""Elementwise kernels: binary ops with numpy broadcasting, unary ops, Where, Cast, Clip."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from placer.ir.attrs import CastAttrs, GeluAttrs, IsInfAttrs
from placer.ir.dtypes import DType
from placer.ir.graph import Node
from placer.ir.ops import OpKind

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _same(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.asarray(x).astype(like.dtype, copy=False)


def divide(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        # ONNX integer division truncates toward zero.
        return np.trunc(a.astype(np.float64) / b).astype(a.dtype)
    return _same(a / b, a)


def power(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return np.power(a, b.astype(a.dtype))
    return _same(np.power(a.astype(np.float64), b.astype(np.float64)), a)


def _binary(fn):  # noqa: ANN001, ANN202
    def kernel(node: Node, *args: np.ndarray) -> np.ndarray:
        out = args[0]
        for a in args[1:]:
            out = fn(out, a)
        return np.asarray(out)
    return kernel


def _unary(fn):  # noqa: ANN001, ANN202
    def kernel(node: Node, x: np.ndarray) -> np.ndarray:
        return _same(fn(x), x)
    return kernel


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def gelu(node: Node, x: np.ndarray) -> np.ndarray:
    if node.attrs_as(GeluAttrs).approximate == "tanh":
        y = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x.astype(np.float64) ** 3)))
    else:
        y = 0.5 * x * (1 + _erf(x.astype(np.float64) / np.sqrt(2)))
    return _same(y, x)


def where(node: Node, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(cond, a, b)


def clip(node: Node, x: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    out = x
    if lo is not None:
        out = np.maximum(out, lo.astype(x.dtype))
    if hi is not None:
        out = np.minimum(out, hi.astype(x.dtype))
    return _same(out, x)


_STORAGE = {
    DType.BFLOAT16: ml_dtypes.bfloat16, DType.FP8_E4M3: ml_dtypes.float8_e4m3fn,
    DType.FP8_E5M2: ml_dtypes.float8_e5m2, DType.FP4_E2M1: ml_dtypes.float4_e2m1fn,
    DType.INT4: ml_dtypes.int4, DType.UINT4: ml_dtypes.uint4,
}
# Float types held in float32 for computation and rounded to their own precision.
ROUNDED = frozenset({DType.BFLOAT16, DType.FP8_E4M3, DType.FP8_E5M2, DType.FP4_E2M1})
_SATURATING = (DType.FP8_E4M3, DType.FP8_E5M2)


def round_to(x: np.ndarray, dtype: DType, saturate: bool = True) -> np.ndarray:
    """``x`` converted to ``dtype`` and held in its compute type (bf16/fp8 values in fp32).

    8-bit floats saturate by default (ONNX Cast: out-of-range values and infinities become
    the largest finite value of that sign, NaN stays NaN); without ``saturate`` they
    overflow to inf (E5M2) or NaN (E4M3FN). 4-bit integers wrap around, as ONNX specifies.
    """
    if dtype in _SATURATING and saturate and x.dtype.kind == "f":
        top = float(ml_dtypes.finfo(_STORAGE[dtype]).max)
        x = np.clip(x, -top, top)
    if dtype in _STORAGE:
        return x.astype(_STORAGE[dtype]).astype(dtype.to_numpy())
    if dtype is DType.BOOL:
        return x.astype(bool)
    if dtype.is_integer and np.issubdtype(x.dtype, np.floating):
        return np.trunc(np.nan_to_num(x)).astype(dtype.to_numpy())
    return x.astype(dtype.to_numpy())


def cast(node: Node, x: np.ndarray) -> np.ndarray:
    return round_to(np.asarray(x), node.attrs_as(CastAttrs).to, node.attrs_as(CastAttrs).saturate)


def is_inf(node: Node, x: np.ndarray) -> np.ndarray:
    at = node.attrs_as(IsInfAttrs)
    if at.detect_positive and at.detect_negative:
        return np.isinf(x)
    if at.detect_positive:
        return np.isposinf(x)
    if at.detect_negative:
        return np.isneginf(x)
    return np.zeros(np.shape(x), dtype=bool)


KERNELS: dict[OpKind, Callable[..., Any]] = {
    OpKind.ADD: _binary(np.add), OpKind.SUB: _binary(np.subtract), OpKind.MUL: _binary(np.multiply),
    OpKind.DIV: divide, OpKind.POW: power, OpKind.MAX: _binary(np.maximum),
    OpKind.MIN: _binary(np.minimum), OpKind.EQUAL: _binary(np.equal), OpKind.LESS: _binary(np.less),
    OpKind.LESS_OR_EQUAL: _binary(np.less_equal), OpKind.GREATER: _binary(np.greater),
    OpKind.GREATER_OR_EQUAL: _binary(np.greater_equal), OpKind.AND: _binary(np.logical_and),
    OpKind.OR: _binary(np.logical_or), OpKind.WHERE: where,
    OpKind.NEG: _unary(np.negative), OpKind.ABS: _unary(np.abs), OpKind.SQRT: _unary(np.sqrt),
    OpKind.RECIPROCAL: _unary(np.reciprocal), OpKind.EXP: _unary(np.exp), OpKind.LOG: _unary(np.log),
    OpKind.TANH: _unary(np.tanh), OpKind.SIGMOID: _unary(sigmoid), OpKind.ERF: _unary(_erf),
    OpKind.GELU: gelu, OpKind.RELU: _unary(lambda x: np.maximum(x, 0)),
    OpKind.SILU: _unary(lambda x: x * sigmoid(x)), OpKind.COS: _unary(np.cos), OpKind.SIN: _unary(np.sin),
    OpKind.NOT: lambda node, x: np.logical_not(x), OpKind.IS_NAN: lambda node, x: np.isnan(x),
    OpKind.IS_INF: is_inf, OpKind.CAST: cast, OpKind.IDENTITY: lambda node, x: x, OpKind.CLIP: clip,
}
