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

import numpy as np

from placer.ir import shape_layout_rules as _layout
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
from placer.ir.symbolic import Sym, dim_add, dim_div, dim_mul, dim_sub

Rule = Callable[[RuleContext, Node, Sequence["Info | None"]], list[Info]]
__all__ = ["SHAPE_RULES", "Info", "Rule", "RuleContext", "ShapeError", "shape_error"]


# ---------------------------------------------------------------------------------------------
# elementwise


def _binary_fn(kind: OpKind, dtype: DType) -> Callable[[object, object], object]:
    integer = dtype.is_integer

    def div(a: object, b: object) -> object:
        if isinstance(a, Sym) or isinstance(b, Sym):
            q = dim_div(a, b)  # type: ignore[arg-type]
            if q is None:
                raise ArithmeticError
            return q
        if integer:
            if b == 0:
                raise ArithmeticError
            return int(a / b)  # type: ignore[operator]
        return a / b  # type: ignore[operator]

    def numeric(f: Callable[[object, object], object]) -> Callable[[object, object], object]:
        def g(a: object, b: object) -> object:
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

    table: dict[OpKind, Callable[[object, object], object]] = {
        OpKind.ADD: lambda a, b: dim_add(a, b) if isinstance(a, Sym) or isinstance(b, Sym)
        else a + b,  # type: ignore[operator]
        OpKind.SUB: lambda a, b: dim_sub(a, b) if isinstance(a, Sym) or isinstance(b, Sym)
        else a - b,  # type: ignore[operator]
        OpKind.MUL: lambda a, b: dim_mul(a, b) if isinstance(a, Sym) or isinstance(b, Sym)
        else a * b,  # type: ignore[operator]
        OpKind.DIV: div,
        OpKind.POW: numeric(lambda a, b: a ** b),  # type: ignore[operator]
        OpKind.MAX: numeric(max),  # type: ignore[arg-type]
        OpKind.MIN: numeric(min),  # type: ignore[arg-type]
        OpKind.EQUAL: numeric(lambda a, b: a == b),
        OpKind.LESS: numeric(lambda a, b: a < b),  # type: ignore[operator]
        OpKind.LESS_OR_EQUAL: numeric(lambda a, b: a <= b),  # type: ignore[operator]
        OpKind.GREATER: numeric(lambda a, b: a > b),  # type: ignore[operator]
        OpKind.GREATER_OR_EQUAL: numeric(lambda a, b: a >= b),  # type: ignore[operator]
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
        return lambda v: v if isinstance(v, Sym) else int(v)  # type: ignore[call-overload]
    return lambda v: v if isinstance(v, Sym) else float(v)  # type: ignore[arg-type]


def _unary_value(node: Node, x: Info) -> np.ndarray | None:
    if x.value is None:
        return None
    if node.op is OpKind.CAST:
        return _apply(_cast_fn(node.attrs.to), x.value)  # type: ignore[attr-defined]
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
        dtype = node.attrs.to  # type: ignore[attr-defined]
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
    va = [1] + sa if len(sa) == 1 else sa
    vb = sb + [1] if len(sb) == 1 else sb
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
    at = node.attrs
    if a.type.rank != 2 or b.type.rank != 2:
        raise ShapeMismatch(f"Gemm needs 2-D operands, got {a.type} and {b.type}")
    m, k1 = a.type.shape[::-1] if at.trans_a else a.type.shape  # type: ignore[attr-defined]
    k2, n = b.type.shape[::-1] if at.trans_b else b.type.shape  # type: ignore[attr-defined]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeMismatch(f"inner dims differ: {a.type} and {b.type} ({k1} != {k2})")
    if len(ins) > 2 and ins[2] is not None:
        broadcast_shapes((m, n), ins[2].type.shape)
    return [make_info(a.type.dtype, (m, n))]


def _rule_layer_norm(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, scale = require_inputs(ins, 2)
    rank = x.type.rank
    axis = normalize_axis(node.attrs.axis, rank)  # type: ignore[attr-defined]
    broadcast_shapes(x.type.shape[axis:], scale.type.shape)
    stat = tuple(x.type.shape[:axis]) + (1,) * (rank - axis)
    outs = [Info(x.type), make_info(DType.FLOAT32, stat), make_info(DType.FLOAT32, stat)]
    return outs[:len(node.outputs)]


def _rule_rotary(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    return [Info(x.type)]


def _rule_attention(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    q, k, v = require_inputs(ins, 3)
    at = node.attrs
    past_k = ins[4] if len(ins) > 4 else None
    past_v = ins[5] if len(ins) > 5 else None
    if q.type.rank == 4:
        batch, q_heads, q_seq, _ = q.type.shape
        kv_heads, kv_seq, head = k.type.shape[1], k.type.shape[2], k.type.shape[3]
        v_head = v.type.shape[3]
        y = (batch, q_heads, q_seq, v_head)
    elif q.type.rank == 3:
        qh, kvh = at.q_num_heads, at.kv_num_heads  # type: ignore[attr-defined]
        if not qh or not kvh:
            raise ShapeMismatch("3-D Attention needs q_num_heads and kv_num_heads")
        batch, q_seq, _ = q.type.shape
        q_heads, kv_heads, kv_seq = qh, kvh, k.type.shape[1]
        head = dim_div(k.type.shape[2], kvh)
        v_head = dim_div(v.type.shape[2], kvh)
        if head is None or v_head is None:
            raise ShapeMismatch(f"K/V hidden size is not divisible by kv_num_heads={kvh}")
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
    axes = node.attrs.axes  # type: ignore[attr-defined]
    if len(ins) > 1 and ins[1] is not None:
        vals = known_ints(ins[1])
        if vals is None or not all(isinstance(v, int) for v in vals):
            return None
        axes = tuple(vals)  # type: ignore[arg-type]
    if not axes:
        return [] if node.attrs.noop_with_empty_axes else list(range(rank))  # type: ignore[attr-defined]
    return sorted(normalize_axis(a, rank) for a in axes)  # type: ignore[arg-type]


def _rule_reduce(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    rank = x.type.rank
    axes = _reduce_axes(node, ins, rank)
    keep = node.attrs.keepdims  # type: ignore[attr-defined]
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
    axis = normalize_axis(node.attrs.axis, x.type.rank)  # type: ignore[attr-defined]
    keep = node.attrs.keepdims  # type: ignore[attr-defined]
    shape = [(1 if i == axis else d) for i, d in enumerate(x.type.shape) if keep or i != axis]
    return [make_info(DType.INT64, shape)]


def _rule_top_k(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    x, k = require_inputs(ins, 2)
    axis = normalize_axis(node.attrs.axis, x.type.rank)  # type: ignore[attr-defined]
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
