"""Shape rules of layout, indexing and shape-computation ops (part of ``SHAPE_RULES``).

These ops carry the contents of shape tensors, so each also computes the output's contents
when its inputs' contents are known (see ``placer.ir.shape_values.Info``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from placer.ir.attrs import (
    AxisAttrs,
    ConstantOfShapeAttrs,
    GatherNDAttrs,
    ReshapeAttrs,
    ShapeAttrs,
    SplitAttrs,
    SqueezeAttrs,
    TransposeAttrs,
)
from placer.ir.dtypes import DType
from placer.ir.graph import Node
from placer.ir.ops import OpKind
from placer.ir.shape_values import (
    Info,
    RuleContext,
    ShapeMismatch,
    as_value,
    broadcast_shapes,
    known_ints,
    known_scalar,
    make_info,
    normalize_axis,
    require_inputs,
    static_dims,
)
from placer.ir.symbolic import Dim, Sym, dim_add, dim_div, dim_mul, dim_prod, dim_sub

_END = 2**31 - 1  # slice ends at or beyond this (INT_MAX, INT64_MAX) mean "to the end"


def _shape_arg(ctx: RuleContext, info: Info) -> list[Dim]:
    """Contents of a 1-D shape input; unknown entries become fresh symbols."""
    vals = known_ints(info)
    if vals is not None:
        return vals
    n = info.type.shape[0] if info.type.rank == 1 else None
    if not isinstance(n, int):
        raise ShapeMismatch(f"the rank of the target shape {info.type} is not known")
    return [ctx.fresh() for _ in range(n)]


def _rule_reshape(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, s = require_inputs(ins, 2)
    target = _shape_arg(ctx, s)
    allowzero = node.attrs_as(ReshapeAttrs).allowzero
    out: list[Dim | None] = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= x.type.rank:
                raise ShapeMismatch(f"shape entry {i} copies a dim the input {x.type} lacks")
            out.append(x.type.shape[i])
        elif d == -1:
            out.append(None)
        else:
            out.append(d)
    total = x.type.numel
    if out.count(None) > 1:
        raise ShapeMismatch("shape has more than one -1")
    known = dim_prod([d for d in out if d is not None])
    if None in out:
        rest = dim_div(total, known)
        out[out.index(None)] = rest if rest is not None else ctx.fresh()
    elif isinstance(total, int) and isinstance(known, int) and total != known:
        raise ShapeMismatch(f"cannot reshape {x.type} ({total} elements) to "
                            f"[{', '.join(str(d) for d in out)}] ({known} elements)")
    shape = [d for d in out if d is not None]  # the -1 entry was filled in above
    dims = static_dims(shape)
    value = x.value.reshape(dims) if x.value is not None and dims is not None else None
    return [make_info(x.type.dtype, shape, value)]


def _rule_transpose(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    perm = node.attrs_as(TransposeAttrs).perm or tuple(reversed(range(x.type.rank)))
    if sorted(perm) != list(range(x.type.rank)):
        raise ShapeMismatch(f"perm {perm} does not fit {x.type}")
    value = np.transpose(x.value, perm) if x.value is not None else None
    return [make_info(x.type.dtype, [x.type.shape[p] for p in perm], value)]


def _rule_concat(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    parts = [i for i in ins if i is not None]
    if not parts:
        raise ShapeMismatch("Concat needs inputs")
    rank = parts[0].type.rank
    axis = normalize_axis(node.attrs_as(AxisAttrs).axis, rank)
    shape = list(parts[0].type.shape)
    total: Dim = 0
    for p in parts:
        if p.type.rank != rank:
            raise ShapeMismatch(f"Concat inputs differ in rank: {parts[0].type} and {p.type}")
        for i, (a, b) in enumerate(zip(shape, p.type.shape)):
            if i != axis and isinstance(a, int) and isinstance(b, int) and a != b:
                raise ShapeMismatch(f"Concat inputs differ off axis {axis}: "
                                    f"{parts[0].type} and {p.type}")
            if i != axis and isinstance(a, Sym) and isinstance(b, int):
                shape[i] = b
        total = dim_add(total, p.type.shape[axis])
    shape[axis] = total
    value = None
    if all(p.value is not None for p in parts):
        value = np.concatenate([p.value for p in parts], axis=axis)
    return [make_info(parts[0].type.dtype, shape, value)]


def _rule_split(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    axis = normalize_axis(node.attrs_as(SplitAttrs).axis, x.type.rank)
    dim = x.type.shape[axis]
    n = len(node.outputs)
    sizes: list[Dim]
    if len(ins) > 1 and ins[1] is not None:
        sizes = known_ints(ins[1]) or [ctx.fresh() for _ in range(n)]
    else:
        chunks = node.attrs_as(SplitAttrs).num_outputs or n
        each = dim_div(dim, chunks)
        if each is not None:
            sizes = [each] * chunks
        elif isinstance(dim, int):
            each = -(-dim // chunks)  # ONNX: all but the last chunk have ceil(dim / n)
            sizes = [*([each] * (chunks - 1)), dim - each * (chunks - 1)]
        else:
            sizes = [ctx.fresh() for _ in range(chunks)]
    static_sizes = static_dims(sizes)
    if isinstance(dim, int) and static_sizes is not None and sum(static_sizes) != dim:
        raise ShapeMismatch(f"split sizes {sizes} do not add up to dim {dim} of {x.type}")
    outs = []
    for s in sizes[:n]:
        shape = list(x.type.shape)
        shape[axis] = s
        outs.append(make_info(x.type.dtype, shape))
    return outs


def _slice_len(d: Dim, start: Dim, end: Dim, step: int) -> Dim | None:
    """Length of ``range(d)[start:end:step]``; symbols are assumed large enough."""
    if isinstance(d, int) and isinstance(start, int) and isinstance(end, int):
        return len(range(d)[slice(start, end, step)])
    if step != 1:
        return None
    if isinstance(start, int) and start < 0:
        start = dim_add(d, start)
    if isinstance(end, int):
        if end >= _END:
            end = d
        elif end < 0:
            end = dim_add(d, end)
        elif isinstance(d, Sym):
            return dim_sub(end, start) if isinstance(start, int) else None
    if isinstance(start, int) and start == 0 and end == d:
        return d
    length = dim_sub(end, start)
    if isinstance(length, int) and length < 0:
        return 0
    return length


def _rule_slice(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, starts_i, ends_i = require_inputs(ins, 3)
    rank = x.type.rank
    starts, ends = known_ints(starts_i), known_ints(ends_i)
    axes_i = ins[3] if len(ins) > 3 else None
    steps_i = ins[4] if len(ins) > 4 else None
    axes = known_ints(axes_i) if axes_i is not None else None
    steps = known_ints(steps_i) if steps_i is not None else None
    if starts is None or ends is None or (axes_i is not None and axes is None) or (
            steps_i is not None and steps is None):
        # Unknown bounds: the sliced axes get fresh lengths (all axes when axes are unknown).
        if axes is not None:
            static_axes = static_dims(axes)
            if static_axes is None:
                raise ShapeMismatch(f"Slice axes {axes} are not integers")
            sliced = {normalize_axis(a, rank) for a in static_axes}
        else:
            n = starts_i.type.shape[0] if starts_i.type.rank == 1 else None
            sliced = set(range(n)) if isinstance(n, int) and axes_i is None else set(range(rank))
        shape = [ctx.fresh() if i in sliced else d for i, d in enumerate(x.type.shape)]
        return [make_info(x.type.dtype, shape)]
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    shape = list(x.type.shape)
    index: list[slice] = [slice(None)] * rank
    for a, s, e, st in zip(axes, starts, ends, steps):
        if not isinstance(a, int) or not isinstance(st, int) or st == 0:
            raise ShapeMismatch("slice axes and steps must be nonzero integers")
        ax = normalize_axis(a, rank)
        length = _slice_len(shape[ax], s, e, st)
        shape[ax] = length if length is not None else ctx.fresh()
        if all(isinstance(v, int) for v in (s, e)):
            index[ax] = slice(s, e, st)
    value = x.value[tuple(index)] if x.value is not None else None
    return [make_info(x.type.dtype, shape, value)]


def _axes_arg(node: Node, ins: Sequence[Info | None]) -> list[int] | None:
    if len(ins) > 1 and ins[1] is not None:
        known = known_ints(ins[1])
        vals = static_dims(known) if known is not None else None
        if vals is None:
            raise ShapeMismatch("squeeze/unsqueeze axes are not known constants")
        return vals
    axes = node.attrs_as(SqueezeAttrs).axes
    return list(axes) if axes is not None else None


def _rule_squeeze(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    axes = _axes_arg(node, ins)
    rank = x.type.rank
    if axes is None:
        drop = {i for i, d in enumerate(x.type.shape) if d == 1}
    else:
        drop = {normalize_axis(a, rank) for a in axes}
        for a in drop:
            if isinstance(x.type.shape[a], int) and x.type.shape[a] != 1:
                raise ShapeMismatch(f"cannot squeeze axis {a} of {x.type}")
    shape = [d for i, d in enumerate(x.type.shape) if i not in drop]
    dims = static_dims(shape)
    value = x.value.reshape(dims) if x.value is not None and dims is not None else None
    return [make_info(x.type.dtype, shape, value)]


def _rule_unsqueeze(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    axes = _axes_arg(node, ins) or []
    rank = x.type.rank + len(axes)
    put = {normalize_axis(a, rank) for a in axes}
    it = iter(x.type.shape)
    shape = [1 if i in put else next(it) for i in range(rank)]
    dims = static_dims(shape)
    value = x.value.reshape(dims) if x.value is not None and dims is not None else None
    return [make_info(x.type.dtype, shape, value)]


def _rule_expand(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, s = require_inputs(ins, 2)
    target = _shape_arg(ctx, s)
    shape = broadcast_shapes(x.type.shape, target)
    value = None
    dims = static_dims(shape)
    if x.value is not None and dims is not None:
        value = np.broadcast_to(x.value, dims).copy()
    return [make_info(x.type.dtype, shape, value)]


def _rule_flatten(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    axis = node.attrs_as(AxisAttrs).axis
    axis = axis + x.type.rank if axis < 0 else axis
    if not 0 <= axis <= x.type.rank:
        raise ShapeMismatch(f"axis {node.attrs_as(AxisAttrs).axis} is out of range for {x.type}")
    return [make_info(x.type.dtype, (dim_prod(x.type.shape[:axis]), dim_prod(x.type.shape[axis:])))]


def _rule_tile(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, r = require_inputs(ins, 2)
    reps = _shape_arg(ctx, r)
    if len(reps) != x.type.rank:
        raise ShapeMismatch(f"Tile repeats {reps} do not match the rank of {x.type}")
    return [make_info(x.type.dtype, [dim_mul(d, k) for d, k in zip(x.type.shape, reps)])]


def _take(value: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray | None:
    size = value.shape[axis]
    flat = []
    for v in idx.reshape(-1):
        if not isinstance(v, int) or not -size <= v < size:
            return None
        flat.append(v % size)
    return np.take(value, np.asarray(flat, dtype=np.int64).reshape(idx.shape), axis=axis)


def _rule_gather(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, idx = require_inputs(ins, 2)
    axis = normalize_axis(node.attrs_as(AxisAttrs).axis, x.type.rank)
    shape = x.type.shape[:axis] + idx.type.shape + x.type.shape[axis + 1:]
    value = None
    if x.value is not None and idx.value is not None:
        value = _take(x.value, idx.value, axis)
    return [make_info(x.type.dtype, shape, value)]


def _rule_gather_nd(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, idx = require_inputs(ins, 2)
    b = node.attrs_as(GatherNDAttrs).batch_dims
    last = idx.type.shape[-1] if idx.type.rank else None
    if not isinstance(last, int):
        raise ShapeMismatch(f"GatherND needs a concrete last dim of the indices, got {idx.type}")
    if b + last > x.type.rank:
        raise ShapeMismatch(f"GatherND indices {idx.type} index past the rank of {x.type}")
    return [make_info(x.type.dtype, idx.type.shape[:-1] + x.type.shape[b + last:])]


def _rule_gather_elements(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, idx = require_inputs(ins, 2)
    if x.type.rank != idx.type.rank:
        raise ShapeMismatch(f"GatherElements ranks differ: {x.type} and {idx.type}")
    return [make_info(x.type.dtype, idx.type.shape)]


def _rule_like_first(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    return [Info(x.type)]


def _rule_one_hot(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    idx, depth, values = require_inputs(ins, 3)
    d = known_scalar(depth)
    rank = idx.type.rank + 1
    axis = normalize_axis(node.attrs_as(AxisAttrs).axis, rank)
    shape = list(idx.type.shape)
    shape.insert(axis, d if d is not None else ctx.fresh())
    return [make_info(values.type.dtype, shape)]


def _rule_shape(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    dims = list(x.type.shape)
    start, end = node.attrs_as(ShapeAttrs).start, node.attrs_as(ShapeAttrs).end
    dims = dims[slice(start, end)]
    value = np.empty(len(dims), dtype=object)
    for i, d in enumerate(dims):
        value[i] = d
    return [make_info(DType.INT64, (len(dims),), value)]


def _rule_constant_of_shape(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (s,) = require_inputs(ins, 1)
    shape = _shape_arg(ctx, s)
    fill = node.attrs_as(ConstantOfShapeAttrs).value
    value = None
    dims = static_dims(shape)
    if dims is not None:
        value = as_value(np.full(dims, fill)) if math.prod(dims) <= 64 else None
    return [make_info(node.attrs_as(ConstantOfShapeAttrs).dtype, shape, value)]


def _rule_range(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    start, limit, delta = require_inputs(ins, 3)
    a, b, d = known_scalar(start), known_scalar(limit), known_scalar(delta)
    n: Dim | None = None
    value = None
    if a is not None and b is not None and d is not None:
        if isinstance(a, int) and isinstance(b, int) and isinstance(d, int) and d != 0:
            seq = range(int(a), int(b), int(d))
            n = len(seq)
            if n <= 64:
                value = as_value(np.asarray(list(seq), dtype=np.int64))
        elif d == 1:
            n = dim_sub(b, a)
        elif d == -1:
            n = dim_sub(a, b)
    if n is None and start.value is not None and limit.value is not None and delta.value is not None:
        try:  # float ranges with concrete bounds
            n = len(np.arange(float(start.value.reshape(-1)[0]), float(limit.value.reshape(-1)[0]),
                              float(delta.value.reshape(-1)[0])))
        except (TypeError, ValueError, ZeroDivisionError):
            n = None
    return [make_info(start.type.dtype, (n if n is not None else ctx.fresh(),), value)]


LAYOUT_RULES = {
    OpKind.RESHAPE: _rule_reshape,
    OpKind.TRANSPOSE: _rule_transpose,
    OpKind.CONCAT: _rule_concat,
    OpKind.SPLIT: _rule_split,
    OpKind.SLICE: _rule_slice,
    OpKind.SQUEEZE: _rule_squeeze,
    OpKind.UNSQUEEZE: _rule_unsqueeze,
    OpKind.EXPAND: _rule_expand,
    OpKind.FLATTEN: _rule_flatten,
    OpKind.TILE: _rule_tile,
    OpKind.GATHER: _rule_gather,
    OpKind.GATHER_ND: _rule_gather_nd,
    OpKind.GATHER_ELEMENTS: _rule_gather_elements,
    OpKind.SCATTER_ND: _rule_like_first,
    OpKind.ONE_HOT: _rule_one_hot,
    OpKind.TRILU: _rule_like_first,
    OpKind.SHAPE: _rule_shape,
    OpKind.CONSTANT_OF_SHAPE: _rule_constant_of_shape,
    OpKind.RANGE: _rule_range,
}
