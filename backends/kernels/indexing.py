"""Indexing kernels: Gather, GatherND, GatherElements, ScatterND, OneHot, Trilu."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from placer.ir.attrs import AxisAttrs, GatherNDAttrs, ScatterNDAttrs, TriluAttrs
from placer.ir.graph import Node
from placer.ir.ops import OpKind


def _wrap(idx: np.ndarray, dim: int) -> np.ndarray:
    idx = np.asarray(idx).astype(np.int64)
    return np.where(idx < 0, idx + dim, idx)


def gather(node: Node, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    axis = node.attrs_as(AxisAttrs).axis % data.ndim
    return np.take(data, _wrap(indices, data.shape[axis]), axis=axis)


def gather_elements(node: Node, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    axis = node.attrs_as(AxisAttrs).axis % data.ndim
    return np.take_along_axis(data, _wrap(indices, data.shape[axis]), axis=axis)


def gather_nd(node: Node, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    b = node.attrs_as(GatherNDAttrs).batch_dims
    indices = np.asarray(indices).astype(np.int64)
    batch_shape = data.shape[:b]
    nb = int(np.prod(batch_shape, dtype=np.int64))
    d = data.reshape((nb,) + data.shape[b:])
    ix = indices.reshape((nb,) + indices.shape[b:])
    depth = ix.shape[-1]
    outs = []
    for i in range(nb):  # batch_dims is 0 or small in practice
        idx = ix[i]
        dims = d[i].shape[:depth]
        idx = np.where(idx < 0, idx + np.array(dims), idx)
        outs.append(d[i][tuple(np.moveaxis(idx, -1, 0))])
    out = np.stack(outs)
    return out.reshape(batch_shape + indices.shape[b:-1] + data.shape[b + depth:])


def scatter_nd(node: Node, data: np.ndarray, indices: np.ndarray, updates: np.ndarray) -> np.ndarray:
    out = data.copy()
    idx = np.asarray(indices).astype(np.int64)
    flat_idx = idx.reshape(-1, idx.shape[-1])
    flat_upd = updates.reshape((flat_idx.shape[0],) + data.shape[idx.shape[-1]:])
    reduction = node.attrs_as(ScatterNDAttrs).reduction
    for i, u in zip(flat_idx, flat_upd):  # ONNX applies updates in order
        key = tuple(i)
        if reduction == "add":
            out[key] += u
        elif reduction == "mul":
            out[key] *= u
        elif reduction == "max":
            out[key] = np.maximum(out[key], u)
        elif reduction == "min":
            out[key] = np.minimum(out[key], u)
        else:
            out[key] = u
    return out


def one_hot(node: Node, indices: np.ndarray, depth: np.ndarray, values: np.ndarray) -> np.ndarray:
    d = int(np.asarray(depth).reshape(-1)[0])
    idx = np.asarray(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + d, idx)
    hot = idx[..., None] == np.arange(d)
    out = np.where(hot, values[1], values[0]).astype(values.dtype)
    axis = node.attrs_as(AxisAttrs).axis
    return np.moveaxis(out, -1, axis % out.ndim) if axis != -1 else out


def trilu(node: Node, x: np.ndarray, k: np.ndarray | None = None) -> np.ndarray:
    kk = int(np.asarray(k).reshape(-1)[0]) if k is not None else 0
    return np.triu(x, kk) if node.attrs_as(TriluAttrs).upper else np.tril(x, kk)


KERNELS: dict[OpKind, Callable[..., Any]] = {
    OpKind.GATHER: gather, OpKind.GATHER_ND: gather_nd, OpKind.GATHER_ELEMENTS: gather_elements,
    OpKind.SCATTER_ND: scatter_nd, OpKind.ONE_HOT: one_hot, OpKind.TRILU: trilu,
}
