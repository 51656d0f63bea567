"""Layout kernels: ops that move or reinterpret data without arithmetic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from placer.ir.attrs import AxisAttrs, ReshapeAttrs, SplitAttrs, SqueezeAttrs, TransposeAttrs
from placer.ir.graph import Node
from placer.ir.ops import OpKind


def _ints(a: np.ndarray | None) -> list[int]:
    return [] if a is None else [int(v) for v in np.asarray(a).reshape(-1)]


def reshape(node: Node, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    dims = _ints(target)
    if not node.attrs_as(ReshapeAttrs).allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def transpose(node: Node, x: np.ndarray) -> np.ndarray:
    perm = node.attrs_as(TransposeAttrs).perm
    return np.transpose(x, perm if perm is not None else tuple(reversed(range(x.ndim))))


def concat(node: Node, *xs: np.ndarray) -> np.ndarray:
    parts = [x for x in xs if x is not None]
    return np.concatenate(parts, axis=node.attrs_as(AxisAttrs).axis % parts[0].ndim)


def split(node: Node, x: np.ndarray, sizes: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    axis = node.attrs_as(SplitAttrs).axis % x.ndim
    count = node.attrs_as(SplitAttrs).num_outputs or len(node.outputs)
    if sizes is not None:
        bounds = np.cumsum(_ints(sizes))[:-1]
    else:
        # Equal chunks; the last one smaller when the axis does not divide (ONNX opset 18).
        chunk = -(-x.shape[axis] // count)
        bounds = np.asarray([chunk * i for i in range(1, count)], dtype=np.int64)
    return tuple(np.split(x, bounds, axis=axis))


def slice_(node: Node, x: np.ndarray, starts: np.ndarray, ends: np.ndarray,
           axes: np.ndarray | None = None, steps: np.ndarray | None = None) -> np.ndarray:
    st, en = _ints(starts), _ints(ends)
    ax = _ints(axes) or list(range(len(st)))
    sp = _ints(steps) or [1] * len(st)
    index = [slice(None)] * x.ndim
    for s, e, a, p in zip(st, en, ax, sp):
        dim = x.shape[a % x.ndim]
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if p > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        index[a % x.ndim] = slice(s, None if e < 0 else e, p)
    return x[tuple(index)]


def _axes(node: Node, axes: np.ndarray | None) -> list[int]:
    return _ints(axes) if axes is not None else list(node.attrs_as(SqueezeAttrs).axes or ())


def squeeze(node: Node, x: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
    ax = _axes(node, axes)
    if not ax:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(a % x.ndim for a in ax))


def unsqueeze(node: Node, x: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
    ax = _axes(node, axes)
    rank = x.ndim + len(ax)
    out = x
    for a in sorted(a % rank for a in ax):
        out = np.expand_dims(out, a)
    return out


def expand(node: Node, x: np.ndarray, dims: np.ndarray) -> np.ndarray:
    shape = np.broadcast_shapes(x.shape, tuple(_ints(dims)))
    return np.broadcast_to(x, shape).copy()


def flatten(node: Node, x: np.ndarray) -> np.ndarray:
    axis = node.attrs_as(AxisAttrs).axis
    axis = axis + x.ndim if axis < 0 else axis
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return x.reshape(lead, -1) if x.size else x.reshape(lead, int(np.prod(x.shape[axis:])))


def tile(node: Node, x: np.ndarray, repeats: np.ndarray) -> np.ndarray:
    return np.tile(x, _ints(repeats))


KERNELS: dict[OpKind, Callable[..., Any]] = {
    OpKind.RESHAPE: reshape, OpKind.TRANSPOSE: transpose, OpKind.CONCAT: concat,
    OpKind.SPLIT: split, OpKind.SLICE: slice_, OpKind.SQUEEZE: squeeze,
    OpKind.UNSQUEEZE: unsqueeze, OpKind.EXPAND: expand, OpKind.FLATTEN: flatten, OpKind.TILE: tile,
}
