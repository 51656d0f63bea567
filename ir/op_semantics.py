"""Op semantics shared by the cost rules (``placer.cost_rules``) and the mesh kernels
(``placer.backends.mesh``): arithmetic per element, statistics (row all-reduces) per norm,
softmax or reduction, and which ops are free views. One table, imported by both sides, so
that the performance model and the emulator count the same FLOPs and collectives.

FLOPs per element (a multiply-add is 2, as everywhere in placer):

* plain arithmetic, comparisons, logic, casts, selects, clips: 1;
* transcendental functions (exp, log, tanh, sigmoid, erf, sin, cos, sqrt, reciprocal, and
  div and pow, which need a reciprocal or an exp/log): 8. A WSE PE has an FMAC datapath and
  no special-function unit, so these run as a range reduction plus a short polynomial
  (about 8 FMAC-issue slots). The cost rules used to count 1 and the mesh kernels 8; 8 is the
  hardware figure, and it matters only where elementwise work is not negligible (it never
  is for a decoder: GEMVs and collectives dominate);
* composites by their parts: SiLU ``x * sigmoid(x)`` = 8 + 1; GELU ``0.5 x (1 + erf(x/sqrt 2))``
  = 8 + 4; a rotary embedding ``x cos - y sin`` per rotated element = 3;
* norms and softmax per element of the normalised tensor, the per-row scalar work (one
  reciprocal or rsqrt per row) left out: softmax = max 1 + subtract 1 + exp 8 + sum 1 +
  scale 1 = 12; RMSNorm = square 1 + sum 1 + scale 1 + weight 1 = 4; LayerNorm = sum 1 +
  centre 1 + square 1 + sum 1 + scale 1 + weight 1 + bias 1 = 7;
* reductions (ReduceSum/Mean/Max, ArgMax, TopK): 1 per input element; a running sum
  (CumSum): 1 per element.

Statistics (``ROW_STATISTICS``): the row all-reduces an op needs when its reduced axis is
spread over a grid row: softmax 2 (max, sum), LayerNorm 2 (mean, variance), RMSNorm 1 (mean
square), a reduction 1 (a reduce to the row's root; the cost model counts it as a row
collective like the others).

Free views (``FREE_VIEWS``): ops that reinterpret a tile layout without moving data or
computing: Reshape, Squeeze, Unsqueeze, Flatten, Identity. Relayouts (``RELAYOUTS``): ops
that move activations to new home PEs (Transpose, Concat, Slice, Expand, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from placer.ir.ops import OpKind

# A range reduction plus a short polynomial on the FMAC (no special-function unit on a PE).
TRANSCENDENTAL_FLOPS = 8

TRANSCENDENTAL = frozenset({
    OpKind.EXP, OpKind.LOG, OpKind.TANH, OpKind.SIGMOID, OpKind.ERF, OpKind.COS, OpKind.SIN,
    OpKind.SQRT, OpKind.RECIPROCAL, OpKind.DIV, OpKind.POW,
})
_ONE_FLOP = frozenset({
    OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.MAX, OpKind.MIN, OpKind.EQUAL, OpKind.LESS,
    OpKind.LESS_OR_EQUAL, OpKind.GREATER, OpKind.GREATER_OR_EQUAL, OpKind.AND, OpKind.OR,
    OpKind.WHERE, OpKind.NEG, OpKind.ABS, OpKind.RELU, OpKind.NOT, OpKind.IS_NAN, OpKind.IS_INF,
    OpKind.CAST, OpKind.CLIP, OpKind.CUM_SUM,
})
REDUCTIONS = frozenset({OpKind.REDUCE_MEAN, OpKind.REDUCE_SUM, OpKind.REDUCE_MAX, OpKind.ARG_MAX,
                        OpKind.TOP_K})

FLOPS_PER_ELEMENT: Mapping[OpKind, int] = MappingProxyType({
    **{k: 1 for k in _ONE_FLOP},
    **{k: TRANSCENDENTAL_FLOPS for k in TRANSCENDENTAL},
    OpKind.SILU: TRANSCENDENTAL_FLOPS + 1,      # x * sigmoid(x)
    OpKind.GELU: TRANSCENDENTAL_FLOPS + 4,      # scale, erf, add 1, multiply by x, by 0.5
    OpKind.ROTARY_EMBEDDING: 3,                 # x cos - y sin per rotated element
    OpKind.SOFTMAX: 1 + 1 + TRANSCENDENTAL_FLOPS + 1 + 1,   # max, subtract, exp, sum, scale
    OpKind.RMS_NORM: 4,                         # square, sum, scale, weight
    OpKind.LAYER_NORM: 7,                       # sum, centre, square, sum, scale, weight, bias
    **{k: 1 for k in REDUCTIONS},               # per input element
})
"""FLOPs per output element (per input element for reductions); see the module docstring."""

ROW_STATISTICS: Mapping[OpKind, int] = MappingProxyType({
    OpKind.SOFTMAX: 2, OpKind.LAYER_NORM: 2, OpKind.RMS_NORM: 1,
    **{k: 1 for k in REDUCTIONS},
})
"""Row all-reduces (one per statistic) an op needs on a whole-wafer layout."""

FREE_VIEWS = frozenset({OpKind.RESHAPE, OpKind.SQUEEZE, OpKind.UNSQUEEZE, OpKind.FLATTEN, OpKind.IDENTITY})
"""Ops that reinterpret the tile layout: no data moves, no arithmetic."""

RELAYOUTS = frozenset({
    OpKind.TRANSPOSE, OpKind.CONCAT, OpKind.SPLIT, OpKind.SLICE, OpKind.EXPAND, OpKind.TILE,
    OpKind.GATHER_ND, OpKind.GATHER_ELEMENTS, OpKind.SCATTER_ND, OpKind.ONE_HOT, OpKind.TRILU,
    OpKind.ARG_MAX, OpKind.TOP_K, OpKind.CUM_SUM,
})
"""Ops that move data to new home PEs without a mesh kernel of their own: one neighbour
exchange of every tile (``mesh_physics.relayout_cycles``) when they move activations (on
integers and booleans only they are shape arithmetic, resolved at compile time)."""


def flops_per_element(op: OpKind, default: int = 1) -> int:
    """FLOPs per element of ``op`` (``default`` for kinds the table does not list)."""
    return FLOPS_PER_ELEMENT.get(op, default)


def row_statistics(op: OpKind) -> int:
    """Row all-reduces ``op`` needs (0 for ops without statistics)."""
    return ROW_STATISTICS.get(op, 0)


def is_free_view(op: OpKind) -> bool:
    return op in FREE_VIEWS
