"""The IR: a topologically ordered sequence of nodes over named SSA values.

Values are names (strings); their types live in ``Graph.types``. Weights are references: a
name, a type, an exact byte size and either inline data or an external location, so that a
graph of a 405B-parameter model never holds its weights in memory. Everything is immutable;
change by copy with ``dataclasses.replace`` or ``Graph.replace``.

Printed form (see ``placer.ir.printer``)::

    graph tiny(%ids: i64[batch, seq]) -> (%logits) {
      weight %wte: f32[64, 16] parameter
      %h = gather[axis=0](%wte, %ids) : f32[batch, seq, 16]  # unit=embed
      ...
    }
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np

from placer.ir.attrs import Attrs, NoAttrs, attrs_class
from placer.ir.dtypes import DType
from placer.ir.ops import OpKind
from placer.ir.types import TensorType

AttrsT = TypeVar("AttrsT", bound=Attrs)


class WeightRole(enum.Enum):
    """What a stored tensor is: a trained parameter, a constant (rotary cache, masks, shapes),
    or the block scales / zero points of a quantized parameter (weight bytes, not parameters)."""

    PARAMETER = "parameter"
    CONSTANT = "constant"
    QUANTIZATION = "quantization"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ExternalLocation:
    """Where an external weight's bytes are: a file relative to the model, offset and length."""

    path: str
    offset: int
    length: int


@dataclass(frozen=True)
class Weight:
    """A stored tensor. ``nbytes`` is exact for ``type.dtype`` (sub-byte and block formats
    included); ``data`` is held only for small inline tensors and never compared."""

    name: str
    type: TensorType
    nbytes: int
    role: WeightRole = WeightRole.UNKNOWN
    location: ExternalLocation | None = None
    data: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def numel(self) -> int:
        n = self.type.numel
        assert isinstance(n, int), f"weight {self.name} has a symbolic shape"
        return n


@dataclass(frozen=True)
class Node:
    """One operation. ``inputs`` may hold ``""`` for an absent optional input.

    ``scope`` is a hint from the source (an ONNX node name or a torch module path such as
    ``model.layers.3.mlp``); ``unit`` is the placement unit assigned by the grouping pass.
    """

    name: str
    op: OpKind
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Attrs = field(default_factory=NoAttrs)
    scope: str = ""
    unit: str = ""

    def attrs_as(self, cls: type[AttrsT]) -> AttrsT:
        """``attrs`` narrowed to ``cls``; a TypeError naming the node if it holds another class.

        Kernels, shape rules and cost rules read fields through this, so a rule registered for
        the wrong op fails with the node's name instead of a bare AttributeError.
        """
        a = self.attrs
        if not isinstance(a, cls):
            raise TypeError(f"node {self.name!r} ({self.op.value}) has {type(a).__name__}, "
                            f"expected {cls.__name__}")
        return a

    def replace(self, **changes: Any) -> Node:
        return dataclasses.replace(self, **changes)


class UnitKind(enum.Enum):
    EMBEDDING = "embedding"
    LAYER = "layer"
    ATTENTION = "attention"
    MLP = "mlp"
    EXPERTS = "experts"
    HEAD = "head"
    OTHER = "other"


@dataclass(frozen=True)
class Unit:
    """A placement unit: the smallest thing the solver places. Nodes name it in ``Node.unit``.

    ``layer`` is the decoder-layer index the unit belongs to (-1 for embedding, head, other).
    """

    name: str
    kind: UnitKind
    layer: int = -1


@dataclass(frozen=True)
class KVCache:
    """A tensor whose per-token slices are kept for every past token of a sequence.

    ``value`` is the SSA value that is cached (a K or V projection, or MLA's compressed latent);
    each token adds ``elements_per_token`` elements. ``window`` > 0 caps the tokens kept
    (sliding-window attention). ``dtype`` is the native element type of the cache.

    ``tokens_per_entry`` > 1: the cache adds one entry of ``elements_per_token`` elements per
    that many tokens (DeepSeek-V4's compressed KV: one row per closed window of tokens), so a
    sequence of T tokens holds ``T // tokens_per_entry`` entries. ``state_elements``: elements
    held per sequence whatever its length (a linear-attention layer's recurrent and convolution
    state, a compressor's open window); a cache may have only state (``elements_per_token`` 0).
    """

    name: str
    value: str
    elements_per_token: int
    dtype: DType
    window: int = 0
    tokens_per_entry: int = 1
    state_elements: int = 0

    def elements_for(self, tokens: int) -> int:
        """Elements one sequence of ``tokens`` tokens holds in this cache."""
        held = min(tokens, self.window) if self.window else tokens
        return self.elements_per_token * (held // self.tokens_per_entry) + self.state_elements


@dataclass(frozen=True)
class Graph:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    nodes: tuple[Node, ...]
    types: Mapping[str, TensorType]
    weights: Mapping[str, Weight] = field(default_factory=dict)
    units: tuple[Unit, ...] = ()
    kv_caches: tuple[KVCache, ...] = ()

    def replace(self, **changes: Any) -> Graph:
        return dataclasses.replace(self, **changes)

    @cached_property
    def producers(self) -> dict[str, Node]:
        """Value name -> the node that produces it (graph inputs and weights have none)."""
        return {out: n for n in self.nodes for out in n.outputs if out}

    @cached_property
    def consumers(self) -> dict[str, list[Node]]:
        """Value name -> nodes that read it, in graph order."""
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                if v:
                    readers = out.get(v)
                    if readers is None:
                        out[v] = [n]
                    elif readers[-1] is not n:  # a node reading a value twice is listed once
                        readers.append(n)
        return out

    @cached_property
    def node_by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def unit_by_name(self) -> dict[str, Unit]:
        return {u.name: u for u in self.units}

    def type_of(self, value: str) -> TensorType:
        try:
            return self.types[value]
        except KeyError:
            raise KeyError(f"value %{value} has no type (run shape inference)") from None

    def nodes_of_unit(self, unit: str) -> list[Node]:
        return [n for n in self.nodes if n.unit == unit]

    def parameter_count(self) -> int:
        return sum(w.numel for w in self.weights.values() if w.role is WeightRole.PARAMETER)


class GraphBuilder:
    """Builds a graph node by node; used by frontends and tests.

    >>> b = GraphBuilder("g")
    >>> x = b.input("x", TensorType(DType.FLOAT32, (2, 3)))
    >>> y = b.op(OpKind.RELU, [x])
    >>> b.output(y)
    >>> g = b.build()
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._nodes: list[Node] = []
        self._types: dict[str, TensorType] = {}
        self._weights: dict[str, Weight] = {}
        self._kv: list[KVCache] = []
        self._used: set[str] = set()
        self._counter = 0

    def fresh(self, hint: str = "v") -> str:
        """A value or node name not used yet."""
        while True:
            self._counter += 1
            name = f"{hint}_{self._counter}"
            if name not in self._used:
                self._used.add(name)
                return name

    def _claim(self, name: str) -> str:
        if name in self._used:
            raise ValueError(f"name %{name} is defined twice")
        self._used.add(name)
        return name

    def input(self, name: str, type: TensorType) -> str:
        self._inputs.append(self._claim(name))
        self._types[name] = type
        return name

    def weight(
        self,
        name: str,
        type: TensorType,
        *,
        data: np.ndarray | None = None,
        role: WeightRole = WeightRole.UNKNOWN,
        nbytes: int | None = None,
        location: ExternalLocation | None = None,
    ) -> str:
        self._claim(name)
        numel = type.numel
        assert isinstance(numel, int), f"weight {name} needs a static shape, got {type}"
        size = nbytes if nbytes is not None else type.dtype.storage_bytes(numel)
        self._weights[name] = Weight(name, type, size, role, location, data)
        self._types[name] = type
        return name

    def constant(self, value: np.ndarray | int | float | Sequence[int], name: str | None = None,
                 dtype: DType | None = None) -> str:
        """An inline constant weight (role CONSTANT) holding ``value``."""
        arr = np.asarray(value)
        if dtype is None:
            dtype = _dtype_of_numpy(arr.dtype)
        arr = arr.astype(dtype.to_numpy())
        if name is None:
            name = self.fresh("const")
            self._used.discard(name)  # ``weight`` claims it
        return self.weight(name, TensorType(dtype, tuple(arr.shape)), data=arr, role=WeightRole.CONSTANT)

    def op(
        self,
        op: OpKind,
        inputs: Iterable[str],
        attrs: Attrs | None = None,
        *,
        outputs: Sequence[str] | None = None,
        num_outputs: int = 1,
        name: str | None = None,
        scope: str = "",
        unit: str = "",
        types: Sequence[TensorType] | None = None,
    ) -> str:
        """Append a node; returns its first output name (all of them are in ``last_outputs``)."""
        if attrs is None:
            attrs = attrs_class(op)()
        outs = [self._claim(o) if o else "" for o in outputs] if outputs is not None else [
            self.fresh(op.value) for _ in range(num_outputs)
        ]
        node = Node(name or self.fresh(f"n_{op.value}"), op, tuple(inputs), tuple(outs), attrs,
                    scope, unit)
        self._nodes.append(node)
        if types is not None:
            for o, t in zip(outs, types):
                self._types[o] = t
        self.last_outputs = tuple(outs)
        return outs[0]

    def kv_cache(self, cache: KVCache) -> None:
        self._kv.append(cache)

    def output(self, *names: str) -> None:
        self._outputs.extend(names)

    def build(self) -> Graph:
        return Graph(self.name, tuple(self._inputs), tuple(self._outputs), tuple(self._nodes),
                     dict(self._types), dict(self._weights), (), tuple(self._kv))


def _dtype_of_numpy(dt: np.dtype) -> DType:
    table = {
        "float64": DType.FLOAT64, "float32": DType.FLOAT32, "float16": DType.FLOAT16,
        "int64": DType.INT64, "int32": DType.INT32, "int16": DType.INT16, "int8": DType.INT8,
        "uint8": DType.UINT8, "bool": DType.BOOL,
    }
    try:
        return table[str(dt)]
    except KeyError:
        raise ValueError(f"no IR dtype for numpy dtype {dt}") from None
