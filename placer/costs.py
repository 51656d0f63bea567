"""Cost value objects: per-node costs that add, per-unit costs the solver consumes, and the
model's totals. Produced by ``placer.cost_model.annotate_costs``; consumed by the solver and
the performance model. All byte counts are exact integers; FLOPs count a multiply-add as 2.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from placer.ir.graph import UnitKind


@dataclass(frozen=True)
class NodeCost:
    """What one node costs for one evaluation at concrete shapes.

    ``collectives``: all grid-wide collectives the op needs on a whole-wafer layout. Of
    these, ``row_collectives`` are all-reduces along a grid row (over ``mesh_cols`` PEs, then
    broadcast back along the row): a norm's statistics, a softmax's max and sum, a reduction.
    The other ``collectives - row_collectives`` are GEMV collectives: the input vector
    broadcast along a grid row (``mesh_cols`` PEs) and the partial sums reduced along a grid
    column (``mesh_rows`` PEs), one per contraction over more than one element (weight
    GEMVs, and attention's QK^T and P @ V over the KV cache).
    """

    flops: int = 0
    weight_read_bytes: int = 0
    activation_bytes: int = 0  # activations read and written
    collectives: int = 0
    row_collectives: int = 0  # of ``collectives``: all-reduces along a grid row

    @property
    def gemv_collectives(self) -> int:
        """Collectives that are GEMV broadcasts and column reductions."""
        return self.collectives - self.row_collectives

    def __add__(self, other: NodeCost) -> NodeCost:
        return NodeCost(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class KVCost:
    """One KV cache of a unit: bytes per token at the workload's KV dtype, and its window."""

    name: str
    bytes_per_token: int
    window: int = 0  # 0 = holds the whole context

    def bytes_for(self, context_tokens: int) -> int:
        tokens = min(context_tokens, self.window) if self.window else context_tokens
        return self.bytes_per_token * tokens


@dataclass(frozen=True)
class UnitCost:
    """Everything the solver and the performance model need to know about one unit."""

    name: str
    kind: UnitKind
    layer: int
    parameters: int
    weight_bytes: int            # parameters at the workload's dtype policy
    constant_bytes: int          # non-parameter stored tensors (rotary caches, masks)
    kv: tuple[KVCost, ...]
    decode: NodeCost             # one decode step of one sequence at the workload's context
    prefill: NodeCost            # the whole prompt of one sequence
    activation_out_bytes_per_token: int  # bytes per token on all edges leaving the unit
    matmul_shapes: tuple[tuple[int, int], ...] = ()  # (K, N) of each weight GEMV per token

    @property
    def kv_bytes_per_token(self) -> int:
        return sum(k.bytes_per_token for k in self.kv)

    def kv_bytes(self, context_tokens: int) -> int:
        """KV bytes of one sequence holding ``context_tokens`` tokens (windows capped)."""
        return sum(k.bytes_for(context_tokens) for k in self.kv)

    @property
    def decode_flops_per_token(self) -> int:
        return self.decode.flops


@dataclass(frozen=True)
class EdgeCost:
    """Activations flowing from unit ``src`` to unit ``dst`` per token."""

    src: str
    dst: str
    bytes_per_token: int


@dataclass(frozen=True)
class ModelCost:
    """Per-unit costs in topological order, the unit DAG's edges, and graph totals."""

    model: str
    units: tuple[UnitCost, ...]
    edges: tuple[EdgeCost, ...]
    parameters: int
    weight_bytes: int
    kv_bytes_per_token: int

    def unit(self, name: str) -> UnitCost:
        for u in self.units:
            if u.name == name:
                return u
        raise KeyError(name)
