"""Shape rules of the onnxruntime contrib ops (``com.microsoft``), merged into ``SHAPE_RULES``.

Semantics follow onnxruntime's ``docs/ContribOperators.md``:

* MatMulNBits: ``A [..., K]`` times the block-quantized ``[K, N]`` weight -> ``[..., N]``;
* GatherBlockQuantized: the table's logical shape with the gathered axis replaced by the
  indices' shape;
* GroupQueryAttention: ``[batch, seq, num_heads * head]`` and present K/V
  ``[batch, kv_heads, past + seq, head]`` (Q/K/V separate, or packed in Q with K/V absent);
* MultiHeadAttention: ``[batch, seq, v_hidden]`` and present K/V ``[batch, heads, past + kv_seq,
  head]``;
* RotaryEmbedding and the GELU variants: the shape and type of their first input.
"""

from __future__ import annotations

from collections.abc import Sequence

from placer.ir.attrs import (
    GatherBlockQuantizedAttrs,
    GroupQueryAttentionAttrs,
    MatMulNBitsAttrs,
    MultiHeadAttentionAttrs,
)
from placer.ir.dtypes import DType
from placer.ir.graph import Node
from placer.ir.ops import CONTRIB_ACTIVATIONS, OpKind
from placer.ir.shape_values import (
    Info,
    RuleContext,
    ShapeMismatch,
    broadcast_shapes,
    make_info,
    normalize_axis,
    require_inputs,
)
from placer.ir.symbolic import dim_add, dim_div, dim_mul


def _present(ins: Sequence[Info | None], i: int) -> Info | None:
    return ins[i] if i < len(ins) else None


def _rule_matmul_nbits(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (a,) = require_inputs(ins, 1)
    at = node.attrs_as(MatMulNBitsAttrs)
    k = a.type.shape[-1] if a.type.rank else None
    if isinstance(k, int) and k != at.k:
        raise ShapeMismatch(f"MatMulNBits input has K = {k}, attribute K = {at.k}")
    return [make_info(a.type.dtype, tuple(a.type.shape[:-1]) + (at.n,))]


def _rule_gather_block_quantized(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    data, idx, scales = require_inputs(ins, 3)
    axis = normalize_axis(node.attrs_as(GatherBlockQuantizedAttrs).gather_axis, data.type.rank)
    shape = tuple(data.type.shape[:axis]) + tuple(idx.type.shape) + tuple(data.type.shape[axis + 1:])
    return [make_info(scales.type.dtype, shape)]


def _rule_group_query_attention(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (q,) = require_inputs(ins, 1)
    at = node.attrs_as(GroupQueryAttentionAttrs)
    heads, kv_heads = at.num_heads, at.kv_num_heads
    if q.type.rank != 3 or not heads or not kv_heads:
        raise ShapeMismatch(f"GroupQueryAttention needs 3-D query and num_heads, kv_num_heads; got {q.type}")
    batch, seq, hidden = q.type.shape
    k = _present(ins, 1)
    if k is None:  # packed QKV: [batch, seq, (heads + 2 * kv_heads) * head]
        head = dim_div(hidden, heads + 2 * kv_heads)
    else:
        head = dim_div(hidden, heads)
    if head is None:
        raise ShapeMismatch(f"GroupQueryAttention hidden size {hidden} is not divisible by the heads")
    past = _present(ins, 3)
    total = dim_add(past.type.shape[2], seq) if past is not None and past.type.rank == 4 else seq
    kv = (batch, kv_heads, total, head)
    outs = [make_info(q.type.dtype, (batch, seq, dim_mul(heads, head))),
            make_info(q.type.dtype, kv), make_info(q.type.dtype, kv),
            make_info(q.type.dtype, (batch, heads, seq, total))]
    return outs[:len(node.outputs)]


def _rule_multi_head_attention(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    q, k, v = require_inputs(ins, 3)
    heads = node.attrs_as(MultiHeadAttentionAttrs).num_heads
    if q.type.rank != 3 or k.type.rank != 3 or v.type.rank != 3 or not heads:
        raise ShapeMismatch("MultiHeadAttention: placer supports 3-D query, key and value "
                            f"with num_heads; got {q.type}, {k.type}, {v.type}")
    batch, seq, _ = q.type.shape
    kv_seq = k.type.shape[1]
    head, v_head = dim_div(k.type.shape[2], heads), dim_div(v.type.shape[2], heads)
    if head is None or v_head is None:
        raise ShapeMismatch(f"MultiHeadAttention hidden size is not divisible by num_heads={heads}")
    past = _present(ins, 6)
    total = dim_add(past.type.shape[2], kv_seq) if past is not None and past.type.rank == 4 else kv_seq
    outs = [make_info(q.type.dtype, (batch, seq, v.type.shape[2])),
            make_info(k.type.dtype, (batch, heads, total, head)),
            make_info(v.type.dtype, (batch, heads, total, v_head)),
            make_info(q.type.dtype, (batch, heads, seq, total))]
    return outs[:len(node.outputs)]


def _rule_first(ctx: RuleContext, node: Node, ins: Sequence[Info | None]) -> list[Info]:
    (x,) = require_inputs(ins, 1)
    bias = _present(ins, 1)
    shape = broadcast_shapes(x.type.shape, bias.type.shape) if bias is not None else x.type.shape
    return [make_info(x.type.dtype if x.type.dtype.is_float else DType.FLOAT32, shape)]


CONTRIB_SHAPE_RULES = {
    OpKind.MATMUL_NBITS: _rule_matmul_nbits,
    OpKind.GATHER_BLOCK_QUANTIZED: _rule_gather_block_quantized,
    OpKind.GROUP_QUERY_ATTENTION: _rule_group_query_attention,
    OpKind.MULTI_HEAD_ATTENTION: _rule_multi_head_attention,
    OpKind.MS_ROTARY_EMBEDDING: _rule_first,
    **{k: _rule_first for k in CONTRIB_ACTIVATIONS},
}
