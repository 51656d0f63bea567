"""Cost value objects: per-node costs that add, per-unit costs the solver consumes, and the
model's totals. Produced by ``placer.cost_model.annotate_costs``; consumed by the solver and
the performance model. All byte counts are exact integers; FLOPs count a multiply-add as 2.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from placer.ir.graph import UnitKind


class _CachedHash:
    """A frozen dataclass hashed once: costs are immutable and hashed often (alike units are
    priced once by their costs: the solver's ``DecodeTimes``, ``placer.perf.placement.place``,
    the floorplan's shapes), and a MoE unit's cost holds ~1,600 collectives. The cached value
    is never pickled (string hashes differ between processes)."""

    # Read as an attribute (this class default until set), not through ``self.__dict__``: on
    # CPython >= 3.11 that would build a dict object per instance (10k+ for a MoE model, which
    # pushed a full garbage collection of the whole model into the compile phase).
    _hash: ClassVar[int | None] = None
    # Per class, its fields' values as a tuple (``operator.attrgetter``, in C): building the
    # tuple with ``fields()`` and ``getattr`` per hash was 0.8 s of a 1T-parameter MoE's compile.
    _field_values: ClassVar[Callable[[Any], tuple[object, ...]] | None] = None

    def __hash__(self) -> int:
        cached = self._hash
        if cached is None:
            cls = type(self)
            values = cls.__dict__.get("_field_values")
            if values is None:
                names = [f.name for f in fields(self)]  # type: ignore[arg-type]  # a dataclass
                values = (operator.attrgetter(*names) if len(names) > 1
                          else (lambda x: (getattr(x, names[0]),)))
                type.__setattr__(cls, "_field_values", values)
            cached = hash(values(self))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}


class CollectiveKind(enum.Enum):
    """The grid-wide collectives of a whole-wafer layout (``placer.backends.mesh``)."""

    GEMV = "gemv"                     # input broadcast along a grid row, partial sums down a column
    ROW_ALLREDUCE = "row-allreduce"   # statistics reduced along a grid row and broadcast back
    RELAYOUT = "relayout"             # every PE's tile to its new home PE: one neighbour exchange
    ROUTE = "route"                   # rows of a resident table to their consumers, all at once


@dataclass(frozen=True)
class Collective(_CachedHash):
    """One collective an op needs, for one token of one sequence.

    Sizes are whole vectors, not per-PE tiles (the performance model tiles them over the
    grid): a GEMV ``[1, K] x [K, N]`` has ``in_elements = K`` (the broadcast input) and
    ``out_elements = N`` (the reduced partial sums), summed over batched slices (attention's
    heads); a row all-reduce has ``in_elements = out_elements`` = statistics per token (one
    per normalised row: a norm's mean square, a softmax's max, per head); a relayout the
    elements it moves per token; a route the elements of one gathered row.

    ``input_key`` names the broadcast input value: GEMVs of one unit with the same non-empty
    key (fused QKV, gate/up) can share one broadcast. An empty key shares with nothing.
    ``matrix``: the GEMV multiplies by one 2-D matrix (a weight; not attention's per-head
    slices), which a prefill of several rows may run as a Cannon GEMM instead
    (``placer.ir.mesh_physics.prefill_gemm`` chooses, for the emulator and the model alike).
    ``feeds``: a row all-reduce of a norm that ``placer.ir.norm_fusion`` fuses into the GEMVs
    reading ``feeds`` (their ``input_key``): its statistics run beside the first one's collective.
    ``heads`` > 0: an attention GEMV over the KV cache (QK^T or P @ V; ``Collective.attention``)
    of ``heads`` query heads in ``groups`` KV head groups, each group's GEMV on its own band of
    grid rows (``placer.ir.mesh_physics.attention_gemv_cycles``); ``sums``: P @ V on the
    un-normalised scores, the softmax's row sums (one per head) carried beside its reduction.
    """

    __hash__ = _CachedHash.__hash__  # in the body, so that @dataclass keeps it

    kind: CollectiveKind
    in_elements: int
    out_elements: int
    element_bytes: int
    input_key: str = ""
    matrix: bool = False
    feeds: str = ""
    heads: int = 0
    groups: int = 0
    sums: bool = False

    def with_keys(self, input_key: str, feeds: str) -> Collective:
        """``dataclasses.replace(self, input_key=input_key, feeds=feeds)``, ten times faster (no
        per-call field introspection; the cost model renames ~40,000 collectives of a MoE
        model). The copy starts without a cached hash."""
        copy = object.__new__(Collective)
        values = copy.__dict__
        values.update(self.__dict__)
        values.pop("_hash", None)
        values["input_key"] = input_key
        values["feeds"] = feeds
        return copy

    @classmethod
    def attention(cls, heads: int, groups: int, k: int, n: int, element_bytes: int, input_key: str = "",
                  sums: bool = False) -> Collective:
        """QK^T (``k = d``, ``n`` keys) or P @ V (``k`` keys, ``n = d``) of ``heads`` query heads
        in ``groups`` KV head groups, per token."""
        return cls(CollectiveKind.GEMV, heads * k, heads * n, element_bytes, input_key, False, "",
                   heads, max(1, groups), sums)

    @classmethod
    def gemv(cls, in_elements: int, out_elements: int, element_bytes: int, input_key: str = "",
             matrix: bool = False) -> Collective:
        return cls(CollectiveKind.GEMV, in_elements, out_elements, element_bytes, input_key, matrix)

    @classmethod
    def row_allreduce(cls, statistics: int, element_bytes: int) -> Collective:
        return cls(CollectiveKind.ROW_ALLREDUCE, statistics, statistics, element_bytes)

    @classmethod
    def relayout(cls, elements: int, element_bytes: int) -> Collective:
        """A relayout of ``elements`` elements per token (``ir.op_semantics.RELAYOUTS``)."""
        return cls(CollectiveKind.RELAYOUT, elements, elements, element_bytes)

    @classmethod
    def route(cls, row_elements: int, element_bytes: int) -> Collective:
        """Gathered rows of ``row_elements`` elements from a resident table (however many rows:
        they travel at once)."""
        return cls(CollectiveKind.ROUTE, row_elements, row_elements, element_bytes)

    @property
    def in_bytes(self) -> int:
        return self.in_elements * self.element_bytes

    @property
    def out_bytes(self) -> int:
        return self.out_elements * self.element_bytes


@dataclass(frozen=True)
class NodeCost(_CachedHash):
    """What one node (or a unit: costs add) costs for one evaluation at concrete shapes.

    ``weight_read_bytes`` are parameter bytes read (the same whatever the micro-batch);
    ``activation_bytes`` activations read and written; ``kv_read_bytes`` the KV cache read
    (set per unit by ``placer.cost_model``: the unit's window-capped KV bytes at the context;
    activations and KV reads scale with the micro-batch). ``collectives``: every grid-wide
    collective the op needs on a whole-wafer layout, in program order (see ``Collective``):
    a GEMV per contraction over more than one element (weight GEMVs, attention's QK^T and
    P @ V over the KV cache), a row all-reduce per statistic (a norm's statistics, a
    softmax's max and sum, a reduction).
    """

    __hash__ = _CachedHash.__hash__  # in the body, so that @dataclass keeps it

    flops: int = 0
    weight_read_bytes: int = 0
    activation_bytes: int = 0  # activations read and written, KV cache reads excluded
    collectives: tuple[Collective, ...] = ()
    kv_read_bytes: int = 0
    kernels: int = 0  # mesh ops one step launches: the nodes that cost anything (free views do not)

    @property
    def gemv_collectives(self) -> int:
        """How many collectives are GEMV broadcasts and column reductions."""
        return sum(1 for c in self.collectives if c.kind is CollectiveKind.GEMV)

    @property
    def row_collectives(self) -> int:
        """How many collectives are all-reduces along a grid row."""
        return sum(1 for c in self.collectives if c.kind is CollectiveKind.ROW_ALLREDUCE)

    @property
    def memory_bytes(self) -> int:
        """All SRAM traffic of one sequence: weights, activations and KV reads."""
        return self.weight_read_bytes + self.activation_bytes + self.kv_read_bytes

    def __add__(self, other: NodeCost) -> NodeCost:
        return NodeCost(self.flops + other.flops, self.weight_read_bytes + other.weight_read_bytes,
                        self.activation_bytes + other.activation_bytes,
                        self.collectives + other.collectives, self.kv_read_bytes + other.kv_read_bytes,
                        self.kernels + other.kernels)


@dataclass(frozen=True)
class KVCost:
    """One KV cache of a unit: bytes per token at the workload's KV dtype, and its window.

    A compressed cache (``tokens_per_entry`` > 1) adds ``bytes_per_token`` bytes once per that
    many tokens; ``state_bytes`` are held per sequence whatever its length (linear-attention
    state), so they reach the solver's memory as a per-sequence constant."""

    name: str
    bytes_per_token: int
    window: int = 0  # 0 = holds the whole context
    tokens_per_entry: int = 1
    state_bytes: int = 0

    def bytes_for(self, context_tokens: int) -> int:
        tokens = min(context_tokens, self.window) if self.window else context_tokens
        return self.bytes_per_token * (tokens // self.tokens_per_entry) + self.state_bytes


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
        """Bytes per token of context (a compressed cache's entry spread over its tokens, rounded
        down; per-sequence state excluded: see ``kv_state_bytes``)."""
        return sum(k.bytes_per_token // k.tokens_per_entry for k in self.kv)

    @property
    def kv_state_bytes(self) -> int:
        """Bytes each sequence holds whatever its length (linear-attention state)."""
        return sum(k.state_bytes for k in self.kv)

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

    def kv_bytes(self, context_tokens: int) -> int:
        """KV bytes of one sequence holding ``context_tokens`` tokens (windows capped)."""
        return sum(u.kv_bytes(context_tokens) for u in self.units)

    def unit(self, name: str) -> UnitCost:
        for u in self.units:
            if u.name == name:
                return u
        raise KeyError(name)
