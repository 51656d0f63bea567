"""Reductions: ReduceMean/Sum/Max, ArgMax, TopK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from placer.ir.attrs import ArgMaxAttrs, CumSumAttrs, ReduceAttrs, TopKAttrs
from placer.ir.graph import Node
from placer.ir.ops import OpKind


def reduce_axes(node: Node, x: np.ndarray, axes: np.ndarray | None) -> tuple[int, ...] | None:
    """Axes to reduce (None = all); ``()`` means nothing to reduce (noop_with_empty_axes)."""
    chosen = tuple(int(a) for a in axes.reshape(-1)) if axes is not None else node.attrs_as(ReduceAttrs).axes
    if not chosen:
        return () if node.attrs_as(ReduceAttrs).noop_with_empty_axes else None
    return tuple(sorted(a % max(x.ndim, 1) for a in chosen))


def _reduction(fn):  # noqa: ANN001, ANN202
    def kernel(node: Node, x: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
        ax = reduce_axes(node, x, axes)
        if ax == ():
            return x
        if x.size == 0 and fn is np.max:
            # The empty maximum is the dtype's lowest value (ONNX), -inf for floats.
            low = False if x.dtype == np.bool_ else (
                -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min)
            shape = [1 if (ax is None or i in ax) else d for i, d in enumerate(x.shape)]
            out = np.full(shape, low, dtype=x.dtype)
            return out if node.attrs_as(ReduceAttrs).keepdims else out.reshape(
                [d for i, d in enumerate(x.shape) if not (ax is None or i in ax)])
        out = fn(x, axis=ax, keepdims=node.attrs_as(ReduceAttrs).keepdims)
        return np.asarray(out).astype(x.dtype, copy=False)
    return kernel


def arg_max(node: Node, x: np.ndarray) -> np.ndarray:
    at = node.attrs_as(ArgMaxAttrs)
    axis = at.axis % x.ndim
    if at.select_last_index:
        flipped = np.flip(x, axis)
        idx = x.shape[axis] - 1 - np.argmax(flipped, axis=axis)
    else:
        idx = np.argmax(x, axis=axis)
    if at.keepdims:
        idx = np.expand_dims(idx, axis)
    return idx.astype(np.int64)


def top_k(node: Node, x: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    at = node.attrs_as(TopKAttrs)
    axis = at.axis % x.ndim
    kk = int(np.asarray(k).reshape(-1)[0])
    # Ties keep the lower index first (ONNX); a stable sort of the negated keys does that.
    keys = -x.astype(np.float64) if at.largest else x.astype(np.float64)
    order = np.argsort(keys, axis=axis, kind="stable")
    idx = np.take(order, np.arange(kk), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)


def cum_sum(node: Node, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
    ax = int(np.asarray(axis).reshape(-1)[0]) % x.ndim
    at = node.attrs_as(CumSumAttrs)
    y = np.flip(x, ax) if at.reverse else x
    out = np.cumsum(y, axis=ax, dtype=x.dtype)
    if at.exclusive:
        out = np.concatenate([np.zeros_like(np.take(out, [0], axis=ax)),
                              np.take(out, np.arange(out.shape[ax] - 1), axis=ax)], axis=ax)
    return np.flip(out, ax) if at.reverse else out


KERNELS: dict[OpKind, Callable[..., Any]] = {
    OpKind.CUM_SUM: cum_sum,
    OpKind.REDUCE_MEAN: _reduction(np.mean), OpKind.REDUCE_SUM: _reduction(np.sum),
    OpKind.REDUCE_MAX: _reduction(np.max), OpKind.ARG_MAX: arg_max, OpKind.TOP_K: top_k,
}
