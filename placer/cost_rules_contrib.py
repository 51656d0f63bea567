"""Cost rules of onnxruntime's contrib ops, merged into ``placer.cost_rules.COST_RULES``.

Each rule is stated through the rule of the default-domain op it generalizes, so that there
is one formula per kind of work:

* MatMulNBits: the MatMul rule over the logical ``[K, N]`` weight (its operand's stored bytes
  are the packed bits, the block scales and the zero points read in full), plus the
  dequantization ``(q - zero_point) * scale``: 2 FLOPs per weight element;
* GatherBlockQuantized: only the gathered rows of the packed table, of its scales and of its
  zero points are read, plus 2 FLOPs per dequantized element;
* GroupQueryAttention and MultiHeadAttention: the ONNX Attention rule on the same Q/K/V
  (packed QKV split first; past keys included), plus the rotary (3 FLOPs per rotated element
  of Q and K) or the Q/K/V bias add (1 FLOP per element);
* RotaryEmbedding and the GELU forms: elementwise (3; FastGelu 8, +1 with a bias; QuickGelu 4;
  BiasGelu 9).
"""

from __future__ import annotations

from dataclasses import replace

from placer.cost_rules import COST_RULES, CostRule, OpCall, Operand, _activation_bytes
from placer.costs import NodeCost
from placer.ir.attrs import (
    AttentionAttrs,
    GroupQueryAttentionAttrs,
    MatMulNBitsAttrs,
    MultiHeadAttentionAttrs,
)
from placer.ir.ops import OpKind


def _elementwise(flops_per_element: int, with_bias: int = 0) -> CostRule:
    def rule(call: OpCall) -> NodeCost:
        extra = with_bias if call.input(1) is not None else 0
        return replace(COST_RULES[OpKind.ADD](call), flops=(flops_per_element + extra) * (
            call.out.numel if call.out is not None else 0))
    return rule


def _matmul_nbits(call: OpCall) -> NodeCost:
    attrs = call.node.attrs_as(MatMulNBitsAttrs)
    dequant = 2 * attrs.k * attrs.n
    return COST_RULES[OpKind.MATMUL](call) + NodeCost(flops=dequant)


def _gather_block_quantized(call: OpCall) -> NodeCost:
    table, idx, out = call.input(0), call.input(1), call.out
    if table is None or out is None or not table.numel:
        return NodeCost(activation_bytes=_activation_bytes(call))
    share = out.numel / table.numel  # the fraction of the table gathered
    read = sum(round(x.stored_bytes * share) for x in (table, call.input(2), call.input(3))
               if x is not None and x.stored_bytes is not None)
    return NodeCost(2 * out.numel, read, out.nbytes + (idx.nbytes if idx is not None else 0))


def _split(x: Operand, sizes: tuple[int, ...]) -> tuple[Operand, ...]:
    return tuple(Operand(x.shape[:-1] + (s,), x.dtype) for s in sizes)


def _group_query_attention(call: OpCall) -> NodeCost:
    attrs = call.node.attrs_as(GroupQueryAttentionAttrs)
    heads, kvh = attrs.num_heads, attrs.kv_num_heads
    q, k, v = call.input(0), call.input(1), call.input(2)
    if q is None:
        return NodeCost()
    rotated = 0
    if k is None:  # packed QKV
        head = q.shape[-1] // (heads + 2 * kvh)
        q, k, v = _split(q, (heads * head, kvh * head, kvh * head))
    if attrs.do_rotary:
        rotated = q.numel + k.numel
    window = max(attrs.local_window_size, 0)
    sink = call.input(11) or (Operand((heads,), q.dtype) if attrs.smooth_softmax else None)
    proxy = replace(call, node=replace(call.node, op=OpKind.ATTENTION,
                                       attrs=AttentionAttrs(True, kvh, heads, window=window)),
                    inputs=(q, k, v, None, call.input(3), call.input(4), None, sink))
    core = COST_RULES[OpKind.ATTENTION](proxy)
    # The packed input is read once (not as three slices): activation bytes of the real call.
    return replace(core, activation_bytes=core.activation_bytes - _activation_bytes(proxy)
                   + _activation_bytes(call)) + NodeCost(flops=3 * rotated)


def _multi_head_attention(call: OpCall) -> NodeCost:
    heads = call.node.attrs_as(MultiHeadAttentionAttrs).num_heads
    q, k, v = call.input(0), call.input(1), call.input(2)
    causal = call.node.attrs_as(MultiHeadAttentionAttrs).unidirectional
    proxy = replace(call, node=replace(call.node, op=OpKind.ATTENTION,
                                       attrs=AttentionAttrs(causal, heads, heads)),
                    inputs=(q, k, v, call.input(5), call.input(6), call.input(7)))
    core = COST_RULES[OpKind.ATTENTION](proxy)
    bias = sum(x.numel for x in (q, k, v) if x is not None) if call.input(3) is not None else 0
    return replace(core, activation_bytes=core.activation_bytes - _activation_bytes(proxy)
                   + _activation_bytes(call)) + NodeCost(flops=bias)


CONTRIB_COST_RULES: dict[OpKind, CostRule] = {
    OpKind.MATMUL_NBITS: _matmul_nbits,
    OpKind.GATHER_BLOCK_QUANTIZED: _gather_block_quantized,
    OpKind.GROUP_QUERY_ATTENTION: _group_query_attention,
    OpKind.MULTI_HEAD_ATTENTION: _multi_head_attention,
    OpKind.MS_ROTARY_EMBEDDING: _elementwise(3),
    OpKind.FAST_GELU: _elementwise(8, 1),
    OpKind.QUICK_GELU: _elementwise(4),
    OpKind.BIAS_GELU: _elementwise(9),
}
