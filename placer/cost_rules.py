"""Cost rule per op kind: what one node costs at concrete shapes.

``COST_RULES[kind](call)`` returns a ``placer.costs.NodeCost``: FLOPs (a multiply-add is 2),
parameter bytes read, activation bytes read and written, and the grid-wide collectives the op
needs on a whole-wafer layout (the layout of the mesh emulator, ``placer.backends.mesh``):

* a contraction over K > 1 elements (MatMul, Gemm: weight GEMVs, attention's QK^T and P @ V
  over the KV cache) is one GEMV collective: the input broadcast along a grid row, the
  partial sums reduced along a grid column; a K = 1 product (an outer product) needs none;
* an all-reduce along a grid row (``row_collectives``) per statistic: softmax 2 (max, sum),
  LayerNorm 2 (mean, variance), RMSNorm 1 (mean square), a reduction (ReduceSum/Mean/Max,
  ArgMax, TopK) 1;
* a fused ONNX Attention: QK^T, softmax max, softmax sum, P @ V: four, two of them row
  all-reduces.

Parameter reads: a node reading a parameter reads all of it, except gathers (Gather,
GatherND) of a stored table, which read only the gathered rows. An operand that is a layout
view of a parameter (``stored_bytes`` set by ``placer.cost_model`` through Transpose, Reshape,
Cast... chains, e.g. a tied LM head reading the embedding table transposed) counts as the
parameter. Every ``OpKind`` has a rule; a test checks it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from placer.costs import NodeCost
from placer.ir.attrs import AttentionAttrs, GemmAttrs
from placer.ir.dtypes import DType
from placer.ir.graph import Node
from placer.ir.ops import OpKind


@dataclass(frozen=True)
class Operand:
    """A concrete input or output: its shape and dtype; ``stored_bytes`` for a parameter (its
    bytes under the workload's dtype policy); ``constant`` for a stored non-parameter."""

    shape: tuple[int, ...]
    dtype: DType
    stored_bytes: int | None = None
    constant: bool = False

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
    """One node with concrete operands (None where a type is unknown or an input is absent)."""

    node: Node
    inputs: tuple[Operand | None, ...]
    outputs: tuple[Operand | None, ...]

    def input(self, i: int) -> Operand | None:
        return self.inputs[i] if i < len(self.inputs) else None

    @property
    def out(self) -> Operand | None:
        return self.outputs[0] if self.outputs else None


CostRule = Callable[[OpCall], NodeCost]


def _numel(x: Operand | None) -> int:
    return x.numel if x is not None else 0


def _activation_bytes(call: OpCall) -> int:
    """Bytes of activations read (inputs that are not stored tensors) and written."""
    read = sum(x.nbytes for x in call.inputs if x is not None and not x.is_parameter and not x.constant)
    return read + sum(x.nbytes for x in call.outputs if x is not None)


def _parameter_bytes(call: OpCall) -> int:
    return sum(x.stored_bytes for x in call.inputs if x is not None and x.stored_bytes is not None)


def _elementwise(flops_per_element: int) -> CostRule:
    def rule(call: OpCall) -> NodeCost:
        return NodeCost(flops_per_element * _numel(call.out), _parameter_bytes(call),
                        _activation_bytes(call), 0)
    return rule


def _normalization(flops_per_element: int, all_reduces: int) -> CostRule:
    """Norms and softmax: ``all_reduces`` row all-reduces of per-row statistics."""
    def rule(call: OpCall) -> NodeCost:
        return NodeCost(flops_per_element * _numel(call.out), _parameter_bytes(call),
                        _activation_bytes(call), all_reduces, all_reduces)
    return rule


def _reduction(call: OpCall) -> NodeCost:
    return NodeCost(_numel(call.input(0)), _parameter_bytes(call), _activation_bytes(call), 1, 1)


def _contraction_collectives(k: int) -> int:
    """One GEMV collective when partial sums over ``k`` > 1 elements must be reduced."""
    return 1 if k > 1 else 0


def _matmul(call: OpCall) -> NodeCost:
    a = call.input(0)
    k = a.shape[-1] if a is not None and a.shape else 1
    return NodeCost(2 * _numel(call.out) * k, _parameter_bytes(call), _activation_bytes(call),
                    _contraction_collectives(k))


def _gemm(call: OpCall) -> NodeCost:
    a, c = call.input(0), call.input(2)
    attrs = call.node.attrs
    assert isinstance(attrs, GemmAttrs)
    k = 1
    if a is not None and len(a.shape) == 2:
        k = a.shape[0] if attrs.trans_a else a.shape[1]
    flops = 2 * _numel(call.out) * k + (_numel(call.out) if c is not None else 0)
    return NodeCost(flops, _parameter_bytes(call), _activation_bytes(call), _contraction_collectives(k))


# QK^T and P @ V (GEMV collectives over the KV cache), softmax max and sum (row all-reduces).
_ATTENTION_COLLECTIVES, _ATTENTION_ROW_COLLECTIVES = 4, 2


def _attention(call: OpCall) -> NodeCost:
    """ONNX Attention: QK^T, softmax and PV over the keys (past ones included)."""
    q, k = call.input(0), call.input(1)
    if q is None or k is None or call.out is None:
        return NodeCost(activation_bytes=_activation_bytes(call), collectives=_ATTENTION_COLLECTIVES,
                        row_collectives=_ATTENTION_ROW_COLLECTIVES)
    attrs = call.node.attrs
    assert isinstance(attrs, AttentionAttrs)
    if len(q.shape) == 4:
        head_dim, rows = q.shape[-1], q.numel // q.shape[-1]
    else:  # [batch, seq, heads * head_dim]
        heads = attrs.q_num_heads or 1
        head_dim, rows = q.shape[-1] // heads, q.numel // (q.shape[-1] // heads)
    keys = k.shape[-2] if len(k.shape) == 4 else k.shape[1]
    past = call.input(4)
    if past is not None and len(past.shape) == 4:
        keys += past.shape[-2]
    value_dim = call.out.numel // rows if rows else 0
    flops = 2 * rows * keys * head_dim + 5 * rows * keys + 2 * rows * keys * value_dim
    return NodeCost(flops, _parameter_bytes(call), _activation_bytes(call), _ATTENTION_COLLECTIVES,
                    _ATTENTION_ROW_COLLECTIVES)


def _moves_data(call: OpCall) -> NodeCost:
    """Transpose, concat, slice, expand, gathers: activations moved, no arithmetic."""
    return NodeCost(0, 0, _activation_bytes(call), 0)


def _view(call: OpCall) -> NodeCost:
    """Reshape and friends reinterpret a buffer: free."""
    return NodeCost()


def _gather(call: OpCall) -> NodeCost:
    """An embedding lookup (Gather) or expert selection (GatherND) of a stored parameter
    table reads only the gathered rows of the table."""
    table, out = call.input(0), call.out
    if table is not None and table.is_parameter and out is not None and table.numel:
        rows = table.stored_bytes * out.numel // table.numel  # type: ignore[operator]
        idx = call.input(1)
        return NodeCost(0, rows, out.nbytes + (idx.nbytes if idx is not None else 0), 0)
    return _moves_data(call)


def _writes_output(call: OpCall) -> NodeCost:
    """Ops that fill a new tensor from a shape or indices (ConstantOfShape, Range, OneHot)."""
    return NodeCost(0, 0, sum(x.nbytes for x in call.outputs if x is not None), 0)


def _free(call: OpCall) -> NodeCost:
    return NodeCost()


COST_RULES: dict[OpKind, CostRule] = {
    OpKind.MATMUL: _matmul,
    OpKind.GEMM: _gemm,
    # elementwise: one FLOP per output element; transcendental ones count the same, because
    # on the target they are a handful of cycles and never the bottleneck of a decoder.
    **{k: _elementwise(1) for k in (
        OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.DIV, OpKind.POW, OpKind.MAX, OpKind.MIN,
        OpKind.EQUAL, OpKind.LESS, OpKind.LESS_OR_EQUAL, OpKind.GREATER, OpKind.GREATER_OR_EQUAL,
        OpKind.AND, OpKind.OR, OpKind.WHERE, OpKind.NEG, OpKind.ABS, OpKind.SQRT,
        OpKind.RECIPROCAL, OpKind.EXP, OpKind.LOG, OpKind.TANH, OpKind.SIGMOID, OpKind.ERF,
        OpKind.RELU, OpKind.COS, OpKind.SIN, OpKind.NOT, OpKind.IS_NAN, OpKind.IS_INF,
        OpKind.CAST, OpKind.CLIP)},
    OpKind.GELU: _elementwise(8),   # erf/tanh form: a polynomial and a few multiplies
    OpKind.SILU: _elementwise(4),   # x * sigmoid(x)
    OpKind.IDENTITY: _view,
    OpKind.SOFTMAX: _normalization(5, 2),      # max, subtract, exp, sum, divide
    OpKind.LAYER_NORM: _normalization(8, 2),   # mean, centre, square, mean, rsqrt, scale, shift
    OpKind.RMS_NORM: _normalization(5, 1),     # square, mean, rsqrt, scale, weight
    OpKind.ROTARY_EMBEDDING: _elementwise(3),
    OpKind.ATTENTION: _attention,
    OpKind.REDUCE_MEAN: _reduction,
    OpKind.REDUCE_SUM: _reduction,
    OpKind.REDUCE_MAX: _reduction,
    OpKind.ARG_MAX: _reduction,
    OpKind.TOP_K: _reduction,
    OpKind.RESHAPE: _view,
    OpKind.SQUEEZE: _view,
    OpKind.UNSQUEEZE: _view,
    OpKind.FLATTEN: _view,
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
    OpKind.CUM_SUM: _elementwise(1),  # a running sum: one add per element
}


def cost_of(call: OpCall) -> NodeCost:
    """The cost of ``call`` by its op kind's rule."""
    return COST_RULES[call.node.op](call)
