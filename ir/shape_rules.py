"""Symbolic shape rules, one per op kind, in the table ``SHAPE_RULES``.

A rule maps the node's input ``Info``s (type, and the known contents of small tensors) to its
output ``Info``s. Contents are numpy object arrays of dims (ints or ``Sym`` polynomials), so a
shape computation such as ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` keeps
``[batch, seq, 32, 128]`` and ``Reshape(x, [-1, 4096])`` gives ``batch*seq`` rows by exact
polynomial division, where ONNX's own inference invents fresh unknown symbols.

Symbolic dims are assumed large enough for slices and broadcasting: ``x[:, -1:]`` of a
``seq`` axis has length 1, ``x[:, :n]`` of a ``seq`` axis has length ``n``, and a symbol
broadcast against a concrete dim other than 1 takes that dim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from placer.ir import shape_layout_rules as _layout
from placer.ir.attrs import (
    ArgMaxAttrs,
    AttentionAttrs,
    CastAttrs,
    GemmAttrs,
    NormAttrs,
    ReduceAttrs,
    TopKAttrs,
)
from placer.ir.dtypes import DType
from placer.ir.graph import Node
from placer.ir.ops import COMPARISON, ELEMENTWISE_BINARY, ELEMENTWISE_UNARY, OpKind
from placer.ir.shape_rules_contrib import CONTRIB_SHAPE_RULES
from placer.ir.shape_values import (
    Info,
    RuleContext,
    ShapeError,
    ShapeMismatch,
    broadcast_shapes,
    known_ints,
    known_scalar,
    make_info,
    normalize_axis,
    require_inputs,
    shape_error,
)
from placer.ir.symbolic import Dim, Sym, dim_add, dim_div, dim_mul, dim_sub

Rule = Callable[[RuleContext, Node, Sequence["Info | None"]], list[Info]]
__all__ = ["SHAPE_RULES", "Info", "Rule", "RuleContext", "ShapeError", "shape_error"]


# ---------------------------------------------------------------------------------------------
# elementwise

# An element of a known value's object array: a Python int, float or bool, or a Sym. ``Any``
# because the rules below apply Python's own operators to whichever of these they meet.
Scalar = Any


def _binary_fn(kind: OpKind, dtype: DType) -> Callable[[Scalar, Scalar], Scalar]:
    integer = dtype.is_integer

    def div(a: Scalar, b: Scalar) -> Scalar:
        if isinstance(a, Sym) or isinstance(b, Sym):
            q = dim_div(a, b)
            if q is None:
                raise ArithmeticError
            return q
        if integer:
            if b == 0:
                raise ArithmeticError
            return int(a / b)
        return a / b

    def numeric(f: Callable[[Scalar, Scalar], Scalar]) -> Callable[[Scalar, Scalar], Scalar]:
        def g(a: Scalar, b: Scalar) -> Scalar:
            if isinstance(a, Sym) or isinstance(b, Sym):
                if kind is OpKind.EQUAL and a == b:
                    return True
                if kind is OpKind.EQUAL and (isinstance(a, int) and a <= 0 or
                                             isinstance(b, int) and b <= 0):
                    return False  # dims are positive: Where(Equal(shape, -1), ...) patterns
                if kind in (OpKind.MAX, OpKind.MIN) and a == b:
                    return a
                raise ArithmeticError
            return f(a, b)
        return g

    table: dict[OpKind, Callable[[Scalar, Scalar], Scalar]] = {
        OpKind.ADD: lambda a, b: dim_add(a, b) if isinstance(a, Sym) or isinstance(b, Sym)
        else a + b,
        OpKind.SUB: lambda a, b: dim_sub(a, b) if isinstance(a, Sym) or isinstance(b, Sym)
        else a - b,
        OpKind.MUL: lambda a, b: dim_mul(a, b) if isinstance(a, Sym) or isinstance(b, Sym)
        else a * b,
        OpKind.DIV: div,
        OpKind.POW: numeric(lambda a, b: a ** b),
        OpKind.MAX: numeric(max),
        OpKind.MIN: numeric(min),
        OpKind.EQUAL: numeric(lambda a, b: a == b),
        OpKind.LESS: numeric(lambda a, b: a < b),
        OpKind.LESS_OR_EQUAL: numeric(lambda a, b: a <= b),
        OpKind.GREATER: numeric(lambda a, b: a > b),
        OpKind.GREATER_OR_EQUAL: numeric(lambda a, b: a >= b),
        OpKind.AND: numeric(lambda a, b: bool(a) and bool(b)),
        OpKind.OR: numeric(lambda a, b: bool(a) or bool(b)),
    }
    return table[kind]


def _apply(fn: Callable[..., object], *values: np.ndarray) -> np.ndarray | None:
    try:
        out = np.frompyfunc(fn, len(values), 1)(*values)
    except (ArithmeticError, TypeError, ValueError, OverflowError):
        return None
    return np.asarray(out, dtype=object)


def _rule_binary(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    a, b = require_inputs(ins, 2)
    shape = broadcast_shapes(a.type.shape, b.type.shape)
    dtype = DType.BOOL if node.op in COMPARISON else a.type.dtype
    value = None
    if a.value is not None and b.value is not None:
        value = _apply(_binary_fn(node.op, a.type.dtype), a.value, b.value)
    return [make_info(dtype, shape, value)]


def _cast_fn(dtype: DType) -> Callable[[object], object]:
    if dtype is DType.BOOL:
        return lambda v: v if isinstance(v, Sym) else bool(v)
    if dtype.is_integer:
        # The ignores below: v is an int, float or bool element of a known value (an object array).
        return lambda v: v if isinstance(v, Sym) else int(v)  # type: ignore[call-overload]
    return lambda v: v if isinstance(v, Sym) else float(v)  # type: ignore[arg-type]


def _unary_value(node: Node, x: Info) -> np.ndarray | None:
    if x.value is None:
        return None
    if node.op is OpKind.CAST:
        return _apply(_cast_fn(node.attrs_as(CastAttrs).to), x.value)
    if node.op is OpKind.IDENTITY:
        return x.value
    if node.op is OpKind.NEG:
        return _apply(lambda v: dim_mul(v, -1) if isinstance(v, Sym) else -v, x.value)
    if node.op is OpKind.NOT:
        return _apply(lambda v: not v if not isinstance(v, Sym) else _raise(), x.value)
    return None


def _raise() -> object:
    raise ArithmeticError


def _rule_unary(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    if node.op is OpKind.CAST:
        dtype = node.attrs_as(CastAttrs).to
    elif node.op in COMPARISON:
        dtype = DType.BOOL
    else:
        dtype = x.type.dtype
    return [make_info(dtype, x.type.shape, _unary_value(node, x))]


def _rule_where(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    c, a, b = require_inputs(ins, 3)
    shape = broadcast_shapes(c.type.shape, a.type.shape, b.type.shape)
    value = None
    if c.value is not None and a.value is not None and b.value is not None:
        value = _apply(lambda k, x, y: x if k else y, c.value, a.value, b.value)
    return [make_info(a.type.dtype, shape, value)]


def _rule_same(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    return [Info(x.type)]


# ---------------------------------------------------------------------------------------------
# linear algebra, normalization, attention


def _rule_matmul(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    a, b = require_inputs(ins, 2)
    sa, sb = list(a.type.shape), list(b.type.shape)
    if not sa or not sb:
        raise ShapeMismatch("MatMul operands must have rank >= 1")
    va = [1, *sa] if len(sa) == 1 else sa
    vb = [*sb, 1] if len(sb) == 1 else sb
    k1, k2 = va[-1], vb[-2]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeMismatch(f"inner dims differ: {a.type} @ {b.type} ({k1} != {k2})")
    batch = broadcast_shapes(va[:-2], vb[:-2])
    out = list(batch) + [va[-2], vb[-1]]
    if len(sa) == 1:
        out.pop(-2)
    if len(sb) == 1:
        out.pop(-1)
    return [make_info(a.type.dtype, out)]


def _rule_gemm(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    a, b = require_inputs(ins, 2)
    at = node.attrs_as(GemmAttrs)
    if a.type.rank != 2 or b.type.rank != 2:
        raise ShapeMismatch(f"Gemm needs 2-D operands, got {a.type} and {b.type}")
    m, k1 = a.type.shape[::-1] if at.trans_a else a.type.shape
    k2, n = b.type.shape[::-1] if at.trans_b else b.type.shape
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeMismatch(f"inner dims differ: {a.type} and {b.type} ({k1} != {k2})")
    if len(ins) > 2 and ins[2] is not None:
        broadcast_shapes((m, n), ins[2].type.shape)
    return [make_info(a.type.dtype, (m, n))]


def _rule_layer_norm(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, scale = require_inputs(ins, 2)
    rank = x.type.rank
    axis = normalize_axis(node.attrs_as(NormAttrs).axis, rank)
    broadcast_shapes(x.type.shape[axis:], scale.type.shape)
    stat = tuple(x.type.shape[:axis]) + (1,) * (rank - axis)
    outs = [Info(x.type), make_info(DType.FLOAT32, stat), make_info(DType.FLOAT32, stat)]
    return outs[:len(node.outputs)]


def _rule_rotary(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    return [Info(x.type)]


def _rule_attention(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    q, k, v = require_inputs(ins, 3)
    at = node.attrs_as(AttentionAttrs)
    past_k = ins[4] if len(ins) > 4 else None
    past_v = ins[5] if len(ins) > 5 else None
    if q.type.rank == 4:
        batch, q_heads, q_seq, _ = q.type.shape
        kv_heads, kv_seq, head = k.type.shape[1], k.type.shape[2], k.type.shape[3]
        v_head = v.type.shape[3]
        y: tuple[Dim, ...] = (batch, q_heads, q_seq, v_head)
    elif q.type.rank == 3:
        qh, kvh = at.q_num_heads, at.kv_num_heads
        if not qh or not kvh:
            raise ShapeMismatch("3-D Attention needs q_num_heads and kv_num_heads")
        batch, q_seq, _ = q.type.shape
        q_heads, kv_heads, kv_seq = qh, kvh, k.type.shape[1]
        head_or_none = dim_div(k.type.shape[2], kvh)
        v_head_or_none = dim_div(v.type.shape[2], kvh)
        if head_or_none is None or v_head_or_none is None:
            raise ShapeMismatch(f"K/V hidden size is not divisible by kv_num_heads={kvh}")
        head, v_head = head_or_none, v_head_or_none
        y = (batch, q_seq, dim_mul(q_heads, v_head))
    else:
        raise ShapeMismatch(f"Attention needs 3-D or 4-D Q, got {q.type}")
    total = dim_add(past_k.type.shape[2], kv_seq) if past_k is not None else kv_seq
    outs = [make_info(q.type.dtype, y),
            make_info(k.type.dtype, (batch, kv_heads, total, head)),
            make_info(v.type.dtype, (batch, kv_heads,
                                 dim_add(past_v.type.shape[2], kv_seq) if past_v else kv_seq,
                                 v_head)),
            make_info(q.type.dtype, (batch, q_heads, q_seq, total))]
    return outs[:len(node.outputs)]


# ---------------------------------------------------------------------------------------------
# reductions


def _reduce_axes(node: Node, ins: Sequence[Info | None], rank: int) -> list[int] | None:
    axes = node.attrs_as(ReduceAttrs).axes
    if len(ins) > 1 and ins[1] is not None:
        vals = known_ints(ins[1])
        if vals is None or not all(isinstance(v, int) for v in vals):
            return None
        # The ignore below: vals are ints (the all(...) above); mypy does not narrow through all().
        axes = tuple(vals)  # type: ignore[arg-type]
    if not axes:
        return [] if node.attrs_as(ReduceAttrs).noop_with_empty_axes else list(range(rank))
    return sorted(normalize_axis(a, rank) for a in axes)


def _rule_reduce(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    rank = x.type.rank
    axes = _reduce_axes(node, ins, rank)
    keep = node.attrs_as(ReduceAttrs).keepdims
    if axes is None:
        n = ins[1].type.shape[0] if ins[1] is not None and ins[1].type.rank == 1 else None
        if keep:
            return [make_info(x.type.dtype, tuple(ctx.fresh() for _ in range(rank)))]
        if not isinstance(n, int):
            raise ShapeMismatch("reduction axes are not known")
        return [make_info(x.type.dtype, tuple(ctx.fresh() for _ in range(rank - n)))]
    shape = [(1 if i in axes else d) for i, d in enumerate(x.type.shape) if keep or i not in axes]
    return [make_info(x.type.dtype, shape)]


def _rule_arg_max(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    axis = normalize_axis(node.attrs_as(ArgMaxAttrs).axis, x.type.rank)
    keep = node.attrs_as(ArgMaxAttrs).keepdims
    shape = [(1 if i == axis else d) for i, d in enumerate(x.type.shape) if keep or i != axis]
    return [make_info(DType.INT64, shape)]


def _rule_top_k(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, k = require_inputs(ins, 2)
    axis = normalize_axis(node.attrs_as(TopKAttrs).axis, x.type.rank)
    kk = known_scalar(k)
    shape = list(x.type.shape)
    shape[axis] = kk if kk is not None else ctx.fresh()
    return [make_info(x.type.dtype, shape), make_info(DType.INT64, shape)][:len(node.outputs)]


def _rule_cum_sum(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    return [Info(x.type)]


SHAPE_RULES: dict[OpKind, Rule] = {
    **{k: _rule_binary for k in ELEMENTWISE_BINARY},
    **{k: _rule_unary for k in ELEMENTWISE_UNARY},
    OpKind.WHERE: _rule_where,
    OpKind.MATMUL: _rule_matmul,
    OpKind.GEMM: _rule_gemm,
    OpKind.SOFTMAX: _rule_same,
    OpKind.LAYER_NORM: _rule_layer_norm,
    OpKind.RMS_NORM: _rule_layer_norm,
    OpKind.ROTARY_EMBEDDING: _rule_rotary,
    OpKind.ATTENTION: _rule_attention,
    OpKind.REDUCE_MEAN: _rule_reduce,
    OpKind.REDUCE_SUM: _rule_reduce,
    OpKind.REDUCE_MAX: _rule_reduce,
    OpKind.ARG_MAX: _rule_arg_max,
    OpKind.TOP_K: _rule_top_k,
    OpKind.CUM_SUM: _rule_cum_sum,
    **_layout.LAYOUT_RULES,
    **CONTRIB_SHAPE_RULES,
}
