"""Cost rule per op kind: what one node costs at concrete shapes.

``COST_RULES[kind](call)`` returns a ``placer.costs.NodeCost``: FLOPs (a multiply-add is 2),
parameter bytes read, activation bytes read and written, and the grid-wide collectives the op
needs on a whole-wafer layout (the layout of the mesh emulator, ``placer.backends.mesh``),
each a ``placer.costs.Collective`` sized per token (``OpCall.tokens``):

* a contraction over K > 1 elements (MatMul, Gemm: weight GEMVs, attention's QK^T and P @ V
  over the KV cache) is one GEMV: the activation operand broadcast along a grid row (its
  ``input_key`` is that operand's value name), the partial sums reduced along a grid column;
  a K = 1 product (an outer product) needs none;
* a row all-reduce per statistic: softmax 2 (max, sum), LayerNorm 2 (mean, variance),
  RMSNorm 1 (mean square), a reduction (ReduceSum/Mean/Max, ArgMax, TopK) 1;
* a fused ONNX Attention: QK^T, softmax max, P @ V with the softmax's sums beside it, per KV
  head group (``Collective.attention``; ``attended_keys`` counts the (query, key) pairs: causal
  masks and sliding windows cap them).

Parameter reads: a node reading a parameter reads all of it, except gathers (Gather,
GatherND) of a stored table, which read only the gathered rows. An operand that is a layout
view of a parameter (``stored_bytes`` set by ``placer.cost_model`` through Transpose, Reshape,
Cast... chains, e.g. a tied LM head reading the embedding table transposed) counts as the
parameter. KV cache values (``Operand.kv``) are not activation traffic: the cost model charges
each unit's KV cache read once per decode step (``NodeCost.kv_read_bytes``).

Every ``OpKind`` has a rule; a test checks it. Rules for further ops register into
``COST_RULES`` (``placer.cost_rules_contrib``: ``COST_RULES.update(...)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from placer.costs import Collective, NodeCost
from placer.ir.attrs import AttentionAttrs, GemmAttrs
from placer.ir.dtypes import DType
from placer.ir.graph import Node
from placer.ir.op_semantics import FLOPS_PER_ELEMENT, FREE_VIEWS, REDUCTIONS, RELAYOUTS, ROW_STATISTICS
from placer.ir.ops import OpKind


@dataclass(frozen=True)
class Operand:
    """A concrete input or output: its shape and dtype; ``stored_bytes`` for a parameter (its
    bytes under the workload's dtype policy); ``constant`` for a stored non-parameter."""

    shape: tuple[int, ...]
    dtype: DType
    stored_bytes: int | None = None
    constant: bool = False
    kv: bool = False  # a KV cache value (past KV input, its concatenation): read per unit
    selected: bool = False  # resident expert matrices a gather selected (``placer.ir.expert_selection``)

    @property
    def stored(self) -> bool:
        """Held on the wafer rather than computed per token: a parameter, a constant or
        selected expert matrices."""
        return self.is_parameter or self.constant or self.selected

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.dtype.storage_bytes(self.numel)

    @property
    def is_parameter(self) -> bool:
        return self.stored_bytes is not None


@dataclass(frozen=True)
class OpCall:
    """One node with concrete operands (None where a type is unknown or an input is absent).

    ``tokens``: how many token positions of one sequence the shapes cover (the ``seq``
    binding: 1 for a decode step with a KV cache, the prompt length for prefill), so that
    collectives can be sized per token.
    """

    node: Node
    inputs: tuple[Operand | None, ...]
    outputs: tuple[Operand | None, ...]
    tokens: int = 1

    def input(self, i: int) -> Operand | None:
        return self.inputs[i] if i < len(self.inputs) else None

    @property
    def out(self) -> Operand | None:
        return self.outputs[0] if self.outputs else None

    def per_token(self, numel: int) -> int:
        """``numel`` elements of the call's shapes, per token (rounded up)."""
        return -(-numel // max(self.tokens, 1))


CostRule = Callable[[OpCall], NodeCost]


def _numel(x: Operand | None) -> int:
    return x.numel if x is not None else 0


def _element_bytes(x: Operand | None) -> int:
    return max(1, -(-x.dtype.bits // 8)) if x is not None else 4


def _activation_bytes(call: OpCall) -> int:
    """Bytes of activations read (inputs that are not stored tensors) and written, KV cache
    values (``Operand.kv``: charged once per unit as ``kv_read_bytes``) left out."""
    read = sum(x.nbytes for x in call.inputs if x is not None and not x.stored and not x.kv)
    return read + sum(x.nbytes for x in call.outputs if x is not None and not x.kv)


def _parameter_bytes(call: OpCall) -> int:
    return sum(x.stored_bytes for x in call.inputs if x is not None and x.stored_bytes is not None)


def _elementwise(flops_per_element: int) -> CostRule:
    def rule(call: OpCall) -> NodeCost:
        return NodeCost(flops_per_element * _numel(call.out), _parameter_bytes(call),
                        _activation_bytes(call))
    return rule


def _statistics(call: OpCall, axis: int, count: int) -> tuple[Collective, ...]:
    """``count`` row all-reduces of one statistic per row normalised over ``axis..``."""
    out = call.out
    if out is None or not out.shape:
        return (Collective.row_allreduce(1, 4),) * count
    reduced = math.prod(out.shape[axis % len(out.shape):]) or 1
    return (Collective.row_allreduce(call.per_token(out.numel // reduced), _element_bytes(out)),) * count


def _normalization(flops_per_element: int, all_reduces: int, *, softmax: bool = False) -> CostRule:
    """Norms (over ``axis..``) and softmax (over ``axis``): ``all_reduces`` row all-reduces
    of per-row statistics."""
    def rule(call: OpCall) -> NodeCost:
        axis = getattr(call.node.attrs, "axis", -1)
        out = call.out
        if softmax and out is not None and out.shape:  # one axis only: rows are the other dims
            axis %= len(out.shape)
            rows = out.numel // (out.shape[axis] or 1)
            stats = (Collective.row_allreduce(call.per_token(rows), _element_bytes(out)),) * all_reduces
        else:
            stats = _statistics(call, axis, all_reduces)
        return NodeCost(flops_per_element * _numel(out), _parameter_bytes(call), _activation_bytes(call),
                        stats)
    return rule


def _reduction(call: OpCall) -> NodeCost:
    """ReduceSum/Mean/Max, ArgMax, TopK: per input element, one statistic per output element."""
    out = call.out
    stats = Collective.row_allreduce(call.per_token(max(_numel(out), 1)),
                                     _element_bytes(out or call.input(0)))
    op = call.node.op
    return NodeCost(FLOPS_PER_ELEMENT[op] * _numel(call.input(0)), _parameter_bytes(call),
                    _activation_bytes(call), (stats,) * ROW_STATISTICS[op])


def _gemv(call: OpCall, k: int) -> tuple[Collective, ...]:
    """One GEMV collective when partial sums over ``k`` > 1 elements must be reduced: the
    activation operand (input 0, or input 1 when input 0 is stored) is broadcast."""
    if k <= 1:
        return ()
    i = 1 if (a := call.input(0)) is not None and a.stored else 0
    x = call.input(i)
    key = call.node.inputs[i] if i < len(call.node.inputs) else ""
    # the emulator's test for a prefill GEMM: activations times one 2-D matrix
    b = call.input(1)
    matrix = i == 0 and b is not None and len(b.shape) == 2
    return (Collective.gemv(call.per_token(_numel(x)), call.per_token(_numel(call.out)), _element_bytes(x),
                            key, matrix),)


def _matmul(call: OpCall) -> NodeCost:
    a = call.input(0)
    k = a.shape[-1] if a is not None and a.shape else 1
    return NodeCost(2 * _numel(call.out) * k, _parameter_bytes(call), _activation_bytes(call), _gemv(call, k))


def _gemm(call: OpCall) -> NodeCost:
    a, c = call.input(0), call.input(2)
    attrs = call.node.attrs_as(GemmAttrs)
    assert isinstance(attrs, GemmAttrs)
    k = 1
    if a is not None and len(a.shape) == 2:
        k = a.shape[0] if attrs.trans_a else a.shape[1]
    flops = 2 * _numel(call.out) * k + (_numel(call.out) if c is not None else 0)
    return NodeCost(flops, _parameter_bytes(call), _activation_bytes(call), _gemv(call, k))


def _sum_clipped(first: int, last: int, offset: int, cap: int) -> int:
    """Sum over p in [first, last] of min(p + offset, cap)."""
    if last < first:
        return 0
    knee = min(last, cap - offset)  # p + offset <= cap up to here
    below = 0
    if knee >= first:
        below = (first + knee) * (knee - first + 1) // 2 + offset * (knee - first + 1)
    return below + cap * (last - max(knee, first - 1))


def attended_keys(queries: int, keys: int, *, causal: bool, window: int = 0, right_window: int = -1) -> int:
    """(query, key) pairs an attention computes: ``queries`` queries at the last positions
    of ``keys`` keys (past keys first), causal or not, a query at p seeing keys j with
    p - j < ``window`` (0 = unlimited) and j <= p + ``right_window`` (-1 = unlimited)."""
    if queries <= 0 or keys <= 0:
        return 0
    first, last = max(keys - queries, 0), keys - 1
    if causal:
        hi = _sum_clipped(first, last, 0, keys - 1)
    elif right_window >= 0:
        hi = _sum_clipped(first, last, right_window, keys - 1)
    else:
        hi = (keys - 1) * (last - first + 1)
    # lo(p) = max(p - window + 1, 0) = p - window + 1 - min(p - window + 1, 0)
    lo = 0
    if window:
        n = last - first + 1
        lo = (first + last) * n // 2 + (1 - window) * n - _sum_clipped(first, last, 1 - window, 0)
    return hi - lo + (last - first + 1)


# Softmax FLOPs per score, as the Softmax rule counts them (``placer.ir.op_semantics``).
SOFTMAX_FLOPS_PER_SCORE = FLOPS_PER_ELEMENT[OpKind.SOFTMAX]


def _attention(call: OpCall) -> NodeCost:
    """ONNX Attention: QK^T, softmax and P @ V over the keys each query attends (causal,
    sliding window and past keys included): ``2 x heads x (d_qk + d_v)`` FLOPs per (query,
    key) pair plus the softmax's per score. Collectives per token: QK^T and P @ V (GEMVs over
    the keys the last query attends, per KV head group: ``Collective.attention``), the softmax's
    max (a row all-reduce) and its sum, carried beside P @ V's reduction (a row all-reduce
    when it cannot be: no P @ V, or the probabilities are an output)."""
    q, k, out = call.input(0), call.input(1), call.out
    attrs = call.node.attrs_as(AttentionAttrs)
    assert isinstance(attrs, AttentionAttrs)
    if q is None or k is None or out is None:
        return NodeCost(activation_bytes=_activation_bytes(call))
    heads = q.shape[1] if len(q.shape) == 4 else (attrs.q_num_heads or 1)
    d_qk = q.shape[-1] if len(q.shape) == 4 else q.shape[-1] // heads
    queries = q.shape[-2] if len(q.shape) == 4 else q.shape[1]
    batch = q.numel // (heads * d_qk * queries) if heads * d_qk * queries else 0
    keys = k.shape[-2] if len(k.shape) == 4 else k.shape[1]
    past = call.input(4)
    if past is not None and len(past.shape) == 4:
        keys += past.shape[-2]
    rows = batch * heads * queries
    d_v = out.numel // rows if rows else 0
    causal = attrs.is_causal
    pairs = batch * attended_keys(queries, keys, causal=causal, window=attrs.window,
                                  right_window=attrs.right_window)
    sink = rows if call.input(7) is not None else 0  # one extra softmax column per row
    flops = 2 * heads * (d_qk + d_v) * pairs + SOFTMAX_FLOPS_PER_SCORE * (heads * pairs + sink)
    last = attended_keys(1, keys, causal=causal, window=attrs.window, right_window=attrs.right_window)
    nbytes = _element_bytes(q)
    groups = attrs.kv_num_heads or (k.shape[1] if len(k.shape) == 4 else heads)
    qk = Collective.attention(heads, groups, d_qk, last, nbytes, call.node.inputs[0])
    stats = Collective.row_allreduce(heads, nbytes)
    # The softmax's sum rides beside P @ V (mesh_physics: "Softmax sum after P @ V"), unless
    # there is no P @ V reduction or the probabilities are an output.
    fused = last > 1 and attrs.qk_matmul_output_mode != 3
    pv = (Collective.attention(heads, groups, last, d_v, nbytes, sums=fused),) if last > 1 else ()
    collectives = (qk, stats, *(() if fused else (stats,)), *pv)
    return NodeCost(flops, _parameter_bytes(call), _activation_bytes(call), collectives)


def _relayout(call: OpCall) -> tuple[Collective, ...]:
    """The relayout collective of a ``RELAYOUTS`` op that moves activations (any float input;
    on integers and booleans only it is shape arithmetic, free at run time, as the emulator
    runs it)."""
    if call.node.op not in RELAYOUTS or not any(x is not None and x.dtype.is_float for x in call.inputs):
        return ()
    outs = [x for x in call.outputs if x is not None]
    if not outs:
        return ()
    return (Collective.relayout(call.per_token(sum(x.numel for x in outs)), _element_bytes(outs[0])),)


def _moves_data(call: OpCall) -> NodeCost:
    """Transpose, concat, slice, expand, gathers: activations moved, no arithmetic."""
    return NodeCost(0, 0, _activation_bytes(call), _relayout(call))


def _view(call: OpCall) -> NodeCost:
    """Reshape and friends reinterpret a buffer: free."""
    return NodeCost()


def _gather(call: OpCall) -> NodeCost:
    """An embedding lookup (Gather) or expert selection (GatherND) of a stored parameter
    table reads only the gathered rows of the table."""
    table, out = call.input(0), call.out
    if table is not None and table.is_parameter and out is not None and table.numel:
        # The ignore below: a parameter (is_parameter) always has stored_bytes.
        rows = table.stored_bytes * out.numel // table.numel  # type: ignore[operator]
        idx = call.input(1)
        written = 0 if out.selected else out.nbytes  # selected experts stay where they are
        return NodeCost(0, rows, written + (idx.nbytes if idx is not None else 0), _route(call))
    return NodeCost(0, 0, _activation_bytes(call), _relayout(call) + _route(call))


def _route(call: OpCall) -> tuple[Collective, ...]:
    """A Gather from a stored table (an embedding, a position table): its rows travel to the
    PEs that need them (selected expert matrices do not move: ``placer.ir.expert_selection``)."""
    table, idx, out = call.input(0), call.input(1), call.out
    if call.node.op is not OpKind.GATHER or table is None or not table.stored or out is None or out.selected:
        return ()
    rows = max(1, idx.numel if idx is not None else 1)
    return (Collective.route(out.numel // rows, _element_bytes(out)),)


def _writes_output(call: OpCall) -> NodeCost:
    """Ops that fill a new tensor from a shape or indices (ConstantOfShape, Range, OneHot)."""
    return NodeCost(0, 0, sum(x.nbytes for x in call.outputs if x is not None), _relayout(call))


def _free(call: OpCall) -> NodeCost:
    return NodeCost()


def _semantic_rule(op: OpKind) -> CostRule:
    """The rule of an op the semantics table (``placer.ir.op_semantics``) describes."""
    if op in REDUCTIONS:
        return _reduction
    if op in ROW_STATISTICS:
        return _normalization(FLOPS_PER_ELEMENT[op], ROW_STATISTICS[op], softmax=op is OpKind.SOFTMAX)
    return _elementwise(FLOPS_PER_ELEMENT[op])


COST_RULES: dict[OpKind, CostRule] = {
    # FLOPs per element and statistics per norm from the table the mesh kernels use too:
    # elementwise ops, transcendental ones (8), SiLU, GELU, rotary, softmax, norms, reductions.
    **{op: _semantic_rule(op) for op in FLOPS_PER_ELEMENT},
    **{op: _view for op in FREE_VIEWS},  # reinterpret a buffer: free
    OpKind.MATMUL: _matmul,
    OpKind.GEMM: _gemm,
    OpKind.ATTENTION: _attention,
    OpKind.TRANSPOSE: _moves_data,
    OpKind.CONCAT: _moves_data,
    OpKind.SPLIT: _moves_data,
    OpKind.SLICE: _moves_data,
    OpKind.EXPAND: _moves_data,
    OpKind.TILE: _moves_data,
    OpKind.GATHER: _gather,
    OpKind.GATHER_ND: _gather,
    OpKind.GATHER_ELEMENTS: _moves_data,
    OpKind.SCATTER_ND: _moves_data,
    OpKind.TRILU: _moves_data,
    OpKind.ONE_HOT: _writes_output,
    OpKind.SHAPE: _free,
    OpKind.CONSTANT_OF_SHAPE: _writes_output,
    OpKind.RANGE: _writes_output,
}


def cost_of(call: OpCall) -> NodeCost:
    """The cost of ``call`` by its op kind's rule."""
    return COST_RULES[call.node.op](call)


# onnxruntime's contrib ops (their rules build on the ones above).
from placer.cost_rules_contrib import CONTRIB_COST_RULES  # noqa: E402

COST_RULES.update(CONTRIB_COST_RULES)
