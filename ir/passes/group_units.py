"""Pass ``group-units``: split a decoder graph into placement units found from its structure.

Units are ``embed``, ``layers.0`` ... ``layers.N-1`` and ``head`` (final norm and LM head). At
``block`` granularity each layer splits into ``layers.N.attn`` and ``layers.N.mlp`` (the norm
before each block goes with it); at ``expert`` granularity MoE layers split their MLP further
into ``layers.N.router``, ``layers.N.shared`` and ``layers.N.experts.G``.

How the structure is found (names are never needed; scopes only name experts):

1. The *activation flow* starts at the embedding gathers (a Gather of a stored table by
   integer ids) and follows data edges, except edges out of ``Shape`` nodes.
2. Dominators of the logits' producer in that flow form the *residual chain*: values every
   activation path passes through (the residual stream after each add, the final norm).
3. Attention cores (an ``attention`` node, a Softmax whose output feeds a MatMul with an
   activation, or the producer of a value the graph declares as a KV cache or recurrent state)
   mark the layers; residual adds on the chain mark where each layer ends.
4. A node off the chain belongs with the chain node that follows its deepest chain dominator.
   Nodes outside the flow (shape arithmetic, masks, rotary tables, past-KV concats' shape
   parts) go to the earliest unit that consumes them, so units stay connected and acyclic.
"""

from __future__ import annotations

import bisect
import fnmatch
import gc
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

from placer.ir.graph import Graph, Node, Unit, UnitKind, WeightRole
from placer.ir.ops import ATTENTION_OPS, CONTRACTION, OpKind
from placer.ir.passes.base import PassResult

if TYPE_CHECKING:
    from placer.ir.passes.moe_experts import MoeLayer

GRANULARITIES = ("layer", "block", "expert")
_EMBEDDING_GATHERS = frozenset({OpKind.GATHER, OpKind.GATHER_BLOCK_QUANTIZED})
_PASS_THROUGH = frozenset({OpKind.CAST, OpKind.IDENTITY, OpKind.WHERE, OpKind.RESHAPE,
                           OpKind.MUL, OpKind.DIV})


class UnitOverrideError(ValueError):
    """A unit override names an unknown unit, matches no node, or breaks the units' DAG.

    ``placer.pipeline`` turns it into a ``UserError``; the message names the file and pattern.
    """


@dataclass(frozen=True)
class UnitOverride:
    """Nodes whose name or scope matches ``pattern`` (fnmatch glob) go to unit ``unit``."""

    pattern: str
    unit: str
    source: str = ""


@dataclass
class Structure:
    """The structural facts of a decoder graph that grouping and KV discovery share."""

    graph: Graph
    order: dict[str, int]
    sources: list[str]
    reachable: set[str]
    idom: dict[str, str]
    chain: list[str]
    cores: list[str]

    @cached_property
    def chain_pos(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.chain)}

    @cached_property
    def moe_layers(self) -> tuple[MoeLayer, ...]:
        """The separable MoE layers (router, shared and routed experts of each MoE MLP)."""
        from placer.ir.passes.moe_experts import find_moe_layers

        assign, units = self.block_assignment
        return find_moe_layers(self.graph, assign, units)

    @cached_property
    def block_assignment(self) -> tuple[dict[str, str], list[Unit]]:
        """Units of the activation-flow nodes at ``block`` granularity (shared, do not mutate)."""
        return _assign_reachable(self, "block")

    def is_parameter(self, value: str) -> bool:
        return is_parameter(self.graph, value)


def is_parameter(graph: Graph, value: str) -> bool:
    """A stored trained tensor (or an unclassified float table of rank >= 2)."""
    w = graph.weights.get(value)
    if w is None:
        return False
    if w.role is WeightRole.PARAMETER:
        return True
    return w.role is WeightRole.UNKNOWN and w.type.dtype.is_float and w.type.rank >= 2


def is_weighted_contraction(graph: Graph, node: Node) -> bool:
    return node.op in CONTRACTION and any(is_parameter(graph, i) for i in node.inputs[:2])


def analyze_structure(graph: Graph) -> Structure:
    """Activation flow, its dominators, the residual chain and the attention cores.

    A pure function of the graph's ops, values and declared KV caches (never of its units), so
    one result serves every graph that differs from ``graph`` in units only: the pipeline
    (``placer.pipeline.load_model``) computes it once after ``find-kv-caches`` and hands it to
    ``group-units``, ``grouping_shortfall`` and the cost model explicitly (no cache here).
    """
    return _analyze_structure(graph)


def structure_for(graph: Graph, structure: Structure | None) -> Structure:
    """``structure`` when given (checked to describe ``graph``), else ``graph``'s own.

    Raises:
        ValueError: ``structure`` was analysed on a graph with other nodes, KV caches or outputs.
    """
    if structure is None:
        return analyze_structure(graph)
    known = structure.graph
    same = (len(known.nodes) == len(graph.nodes) and known.kv_caches == graph.kv_caches
            and known.outputs == graph.outputs
            and all(a.name == b.name and a.op is b.op and a.inputs == b.inputs
                    for a, b in zip(known.nodes, graph.nodes)))
    if not same:
        raise ValueError(f"the structure given describes graph {known.name!r}, not the nodes, KV caches "
                         f"or outputs of {graph.name!r}")
    return structure


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around a pass over a large graph.

    A 100k-node graph is millions of live objects; the collector's full passes, triggered by
    the allocations of a linear pass, would traverse all of them again and again (about a third
    of the run time). Nothing here creates reference cycles; reference counting frees as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def with_units(nodes: Sequence[Node], assign: Mapping[str, str]) -> tuple[Node, ...]:
    """``nodes`` with ``Node.unit`` set from ``assign`` (name -> unit); unchanged nodes are kept.

    Builds each changed node with ``Node.replace`` semantics but without the per-call field
    introspection of ``dataclasses.replace`` (five times faster on 100k nodes).
    """
    out = []
    new = object.__new__
    for n in nodes:
        unit = assign[n.name]
        if unit == n.unit:
            out.append(n)
            continue
        m = new(Node)
        m.__dict__.update(n.__dict__)
        m.__dict__["unit"] = unit
        out.append(m)
    return tuple(out)


def _analyze_structure(graph: Graph) -> Structure:
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    producers = graph.producers
    sources = _embedding_sources(graph)
    if not sources:  # a model fed with embeddings: start at its float inputs of rank 3
        sources = [c.name for i in graph.inputs if graph.types[i].dtype.is_float
                   and graph.types[i].rank == 3 for c in graph.consumers.get(i, [])]
    source_set = set(sources)
    reachable: set[str] = set()
    idom: dict[str, str] = {}
    depth: dict[str, int] = {"": 0}
    for node in graph.nodes:
        if node.op is OpKind.SHAPE:
            continue  # a shape carries no activation data
        preds = [] if node.name in source_set else sorted(
            {producers[i].name for i in node.inputs if i in producers and producers[i].name in reachable},
            key=order.__getitem__)
        if node.name not in source_set and not preds:
            continue
        dom = ""
        if preds:
            dom = preds[0]
            for p in preds[1:]:
                dom = _common_dominator(dom, p, idom, depth)
        reachable.add(node.name)
        idom[node.name] = dom
        depth[node.name] = depth[dom] + 1
    # A value the graph declares as cached per sequence (a frontend's KV cache or recurrent
    # state) marks its layer too: linear-attention layers have no softmax to find.
    cached = {producers[kv.value].name for kv in graph.kv_caches if kv.value in producers}
    cores = [n.name for n in graph.nodes
             if n.name in reachable and (n.name in cached or is_attention_core(graph, n))]
    sink = _find_sink(graph, reachable, set(cores), order)
    chain: list[str] = []
    cur = sink
    while cur:
        chain.append(cur)
        cur = idom[cur]
    chain.reverse()
    return Structure(graph, order, sources, reachable, idom, chain, cores)


def _common_dominator(a: str, b: str, idom: dict[str, str], depth: dict[str, int]) -> str:
    while a != b:
        if depth[a] >= depth[b]:
            a = idom[a]
        else:
            b = idom[b]
    return a


def _embedding_sources(graph: Graph) -> list[str]:
    int_inputs = {i for i in graph.inputs if graph.types[i].dtype.is_integer}
    out = []
    for node in graph.nodes:
        if node.op in _EMBEDDING_GATHERS and len(node.inputs) >= 2 and is_parameter(graph, node.inputs[0]):
            if _derives_from(graph, node.inputs[1], int_inputs):
                out.append(node.name)
    return out


def _derives_from(graph: Graph, value: str, roots: set[str], limit: int = 64) -> bool:
    stack, seen = [value], set[str]()
    while stack and len(seen) < limit:
        v = stack.pop()
        if v in roots:
            return True
        if v in seen:
            continue
        seen.add(v)
        p = graph.producers.get(v)
        if p is not None and p.op is not OpKind.SHAPE:
            stack.extend(i for i in p.inputs if i)
    return False


def is_attention_core(graph: Graph, node: Node) -> bool:
    """An ``attention`` node, or a Softmax whose probabilities multiply an activation (V)."""
    if node.op in ATTENTION_OPS:
        return True
    return node.op is OpKind.SOFTMAX and probability_matmul(graph, node.outputs[0]) is not None


def probability_matmul(graph: Graph, probabilities: str) -> Node | None:
    """The MatMul that multiplies ``probabilities`` (a Softmax output) by an activation (V),
    through casts, masks, scales and reshapes; None when there is none within a few ops."""
    frontier = [probabilities]
    for _ in range(6):
        nxt: list[str] = []
        for v in frontier:
            for c in graph.consumers.get(v, []):
                if c.op is OpKind.MATMUL and c.inputs[0] == v and c.inputs[1] not in graph.weights:
                    return c
                if c.op in _PASS_THROUGH:
                    nxt.extend(o for o in c.outputs if o)
        frontier = nxt
    return None


def _find_sink(graph: Graph, reachable: set[str], cores: set[str], order: dict[str, int]) -> str:
    """The producer of the logits: the reachable output with the most attention cores upstream.

    One pass in topological order gives every node the set of cores upstream of it as a bit mask
    (a Python int, bit k for the k-th core): a walk of each output's ancestors instead was
    quadratic in layers when every layer's present KV is an output (a 126-layer export: 253
    outputs x 25k nodes, 40 of the 60 s of ``placer inspect``).
    """
    bit = {name: 1 << k for k, name in enumerate(sorted(cores, key=order.__getitem__))}
    producers = graph.producers
    upstream: dict[str, int] = {}
    for node in graph.nodes:
        mask = bit.get(node.name, 0)
        for i in node.inputs:
            p = producers.get(i)
            if p is not None:
                mask |= upstream[p.name]
        upstream[node.name] = mask
    best: tuple[int, int] | None = None
    sink = ""
    for out in graph.outputs:
        p = producers.get(out)
        if p is None or p.name not in reachable:
            continue
        key = (upstream[p.name].bit_count(), order[p.name])
        if best is None or key > best:
            best, sink = key, p.name
    return sink


def _is_residual_add(s: Structure, name: str) -> bool:
    node = s.graph.node_by_name[name]
    if node.op is not OpKind.ADD:
        return False
    prods = [s.graph.producers.get(i) for i in node.inputs]
    return all(p is not None and p.name in s.reachable for p in prods)


@dataclass(frozen=True)
class GroupUnits:
    """Set ``Node.unit`` on every node and ``Graph.units``.

    Attributes:
        granularity: ``layer``, ``block`` (attention / MLP) or ``expert`` (MoE split further).
        overrides: rules from ``placer.unit_overrides.load_unit_overrides``, applied after grouping.
        expert_group_size: routed experts per ``experts.G`` unit; 0 picks the size that gives
            at most 8 groups per layer.
    """

    name: ClassVar[str] = "group-units"
    granularity: str = "layer"
    overrides: Sequence[UnitOverride] = field(default=())
    expert_group_size: int = 0

    def run(self, graph: Graph, structure: Structure | None = None) -> PassResult:
        """Group ``graph``; ``structure``: its ``analyze_structure`` result when the caller has it."""
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        with paused_gc():
            s = structure_for(graph, structure)
            if self.granularity == "layer":
                assign, units = _assign_reachable(s, self.granularity)
            else:  # block and expert start from the same split (not mutated below)
                assign, units = s.block_assignment
            if self.granularity == "expert":
                assign, units = split_experts(s, assign, units, self.expert_group_size)
            assign = _assign_rest(graph, assign, units)
            used = set(assign.values())
            units = [u for u in units if u.name in used]
            new = graph.replace(nodes=with_units(graph.nodes, assign), units=tuple(units))
            if self.overrides:
                new = apply_unit_overrides(new, self.overrides)
            changed = new.units != graph.units or any(
                a is not b for a, b in zip(new.nodes, graph.nodes))
        return PassResult(new, changed)


def group_units(graph: Graph, granularity: str = "layer",
                overrides: Sequence[UnitOverride] = (), expert_group_size: int = 0) -> Graph:
    """Functional form of ``GroupUnits``."""
    return GroupUnits(granularity, tuple(overrides), expert_group_size).run(graph).graph


def _assign_reachable(s: Structure, granularity: str) -> tuple[dict[str, str], list[Unit]]:
    """Units of nodes in the activation flow, from the residual chain and attention cores."""
    if not s.cores or not s.chain:
        return {n: "model" for n in s.reachable}, [Unit("model", UnitKind.OTHER)]
    pos = s.chain_pos
    # Chain position of each node's deepest chain dominator; -1 for nodes that come before the
    # chain (GPT-2's token and position gathers, whose sum starts the chain): they go with it.
    seg: dict[str, int] = {"": -1}
    for node in s.graph.nodes:
        if node.name in s.reachable:
            seg[node.name] = pos[node.name] if node.name in pos else seg.get(s.idom[node.name], -1)
    last = len(s.chain) - 1
    starts = sorted({seg[c] for c in s.cores})  # chain position of the stream entering each layer
    adds = [i for i, n in enumerate(s.chain) if _is_residual_add(s, n)]  # ascending
    # By bisection, not by scanning ``adds`` per layer (quadratic in the layers: 20,000 took a minute).
    ends = []
    for i, k in enumerate(starts):
        limit = starts[i + 1] if i + 1 < len(starts) else last
        j = bisect.bisect_right(adds, limit) - 1  # the last residual add in (k, limit]
        ends.append(adds[j] if j >= 0 and adds[j] > k else limit)
    mids = []
    for k, e in zip(starts, ends):
        j = bisect.bisect_right(adds, k)  # the first residual add in (k, e)
        mids.append(adds[j] if j < len(adds) and adds[j] < e else None)
    split = granularity in ("block", "expert")
    units: list[Unit] = [Unit("embed", UnitKind.EMBEDDING)]
    bounds: list[tuple[int, str]] = [(starts[0], "embed")]  # (last chain position, unit)
    for i, (e, m) in enumerate(zip(ends, mids)):
        if split and m is not None:
            units += [Unit(f"layers.{i}.attn", UnitKind.ATTENTION, i),
                      Unit(f"layers.{i}.mlp", UnitKind.MLP, i)]
            bounds += [(m, f"layers.{i}.attn"), (e, f"layers.{i}.mlp")]
        else:
            units.append(Unit(f"layers.{i}", UnitKind.LAYER, i))
            bounds.append((e, f"layers.{i}"))
    units.append(Unit("head", UnitKind.HEAD))
    bounds.append((last, "head"))
    by_pos = []
    b = 0
    for j in range(last + 1):
        while bounds[b][0] < j:
            b += 1
        by_pos.append(bounds[b][1])
    assign = {}
    for name in s.reachable:
        owner = pos[name] if name in pos else min(seg[name] + 1, last)
        assign[name] = by_pos[owner]
    return assign, units


def _assign_rest(graph: Graph, assign: dict[str, str], units: list[Unit]) -> dict[str, str]:
    """Nodes outside the activation flow join the earliest unit that consumes them."""
    rank = {u.name: i for i, u in enumerate(units)}
    out = dict(assign)
    for node in reversed(graph.nodes):
        if node.name in out:
            continue
        used = [out[c.name] for o in node.outputs if o for c in graph.consumers.get(o, [])
                if c.name in out]
        if used:
            out[node.name] = min(used, key=rank.__getitem__)
    for node in graph.nodes:  # dead ends: the latest unit among their producers
        if node.name not in out:
            prods = [out[graph.producers[i].name] for i in node.inputs
                     if i in graph.producers and graph.producers[i].name in out]
            out[node.name] = max(prods, key=rank.__getitem__) if prods else units[0].name
    return out


def apply_unit_overrides(graph: Graph, rules: Sequence[UnitOverride]) -> Graph:
    """Move nodes matching each rule's glob (by node name or scope) to its unit; last rule wins.

    Raises:
        UnitOverrideError: a rule names an unknown unit, matches no node, or breaks the units.
    """
    known = graph.unit_by_name
    assign = {n.name: n.unit for n in graph.nodes}
    for rule in rules:
        where = f"{rule.source}: " if rule.source else ""
        if rule.unit not in known:
            raise UnitOverrideError(f"{where}pattern {rule.pattern!r} maps to unknown unit {rule.unit!r}; "
                            f"units are {_unit_range(graph)}")
        regex = re.compile(fnmatch.translate(rule.pattern))
        hits = [n.name for n in graph.nodes if regex.match(n.name) or (n.scope and regex.match(n.scope))]
        if not hits:
            raise UnitOverrideError(f"{where}pattern {rule.pattern!r} matches no node name or scope")
        for h in hits:
            assign[h] = rule.unit
    used = set(assign.values())
    out = graph.replace(nodes=with_units(graph.nodes, assign),
                        units=tuple(u for u in graph.units if u.name in used))
    from placer.ir.verifier import VerificationError, verify

    try:
        verify(out)
    except VerificationError as e:
        source = rules[0].source if rules else ""
        where = f"{source}: " if source else ""
        raise UnitOverrideError(f"{where}unit overrides break the units: {e.short}") from None
    return out


# A decoder layer's index in a node scope or name: HF module paths (model.layers.3, h.3),
# torch.onnx's /model/layers.3/..., Optimum's /model/layers.3/... and node names like layers_3_...
_LAYER_NAME = re.compile(r"(?:^|[./_])(?:layers|layer|h|blocks|block)[./_](\d+)(?=$|[./_])")


def _layer_index(node: Node) -> int | None:
    for text in (node.scope, node.name):
        m = _LAYER_NAME.search(text) if text else None
        if m:
            return int(m.group(1))
    return None


def grouping_shortfall(graph: Graph, structure: Structure | None = None) -> str:
    """Why grouped ``graph`` has fewer layer units than its node names number decoder layers
    (one line), or "" when it has as many or the names number none.

    Layers are told apart by their attention cores and the residual stream between them; a
    layer without a core (an architecture placer does not recognise) merges into a neighbour,
    and a value crossing layers beside the residual stream hides a boundary. ``structure``: the
    graph's ``analyze_structure`` result when the caller has it.
    """
    layer_of = {n.name: _layer_index(n) for n in graph.nodes}
    # A name counts a decoder layer only where that layer holds a weighted contraction: exporters
    # also number non-layer nodes (onnxruntime-genai names the final norm layers.{num_layers}).
    named = {ix for n in graph.nodes
             if (ix := layer_of[n.name]) is not None and is_weighted_contraction(graph, n)}
    found = len({u.layer for u in graph.units if u.layer >= 0})
    if not named or found >= len(named):
        return ""
    s = structure_for(graph, structure)
    with_core = {ix for c in s.cores if (ix := layer_of.get(c)) is not None}
    missing = sorted(named - with_core)
    if missing:
        why = (f"no attention core (an Attention node, a Softmax whose output multiplies V, or a declared "
               f"KV cache) was found in layer {_ranges(missing)}, so it was merged with its neighbour")
    else:
        why = ("every layer has an attention core, but values other than the residual stream cross "
               "layers, so some layer boundaries could not be found")
    return (f"grouping found {found} decoder layer unit(s) but node names number {len(named)} layers: "
            f"{why}; costs are per merged unit (pass --unit-overrides to set units by node name)")


def _ranges(values: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"`` (at most a few groups)."""
    groups: list[list[int]] = []
    for v in values:
        if groups and v == groups[-1][-1] + 1:
            groups[-1].append(v)
        else:
            groups.append([v])
    text = [f"{g[0]}-{g[-1]}" if len(g) > 1 else str(g[0]) for g in groups]
    return ", ".join(text[:4]) + (f" and {len(text) - 4} more ranges" if len(text) > 4 else "")


def _unit_range(graph: Graph) -> str:
    names = [u.name for u in graph.units]
    return ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:3])}, ..., {names[-1]}"


def expert_group_size_for(experts: int, requested: int) -> int:
    """Experts per group: ``requested``, or (0) the size giving at most 8 groups."""
    return requested if requested > 0 else max(1, math.ceil(experts / 8))


def split_experts(s: Structure, assign: dict[str, str], units: list[Unit],
                  group_size: int) -> tuple[dict[str, str], list[Unit]]:
    """Split each separable MoE MLP unit into router, shared and expert-group units.

    The branches come from ``placer.ir.passes.moe_experts`` (``Structure.moe_layers``); MLPs
    whose experts are not separable (batched weights gathered by expert id) stay whole.
    """
    layers = {m.unit: m for m in s.moe_layers}
    out = dict(assign)
    new_units: list[Unit] = []
    sizes: dict[str, int] = {}
    for unit in units:
        moe = layers.get(unit.name)
        if moe is None:
            new_units.append(unit)
            continue
        sizes[unit.name] = expert_group_size_for(moe.num_experts, group_size)
        new_units.extend(moe.units(sizes[unit.name]))
    for name, unit_name in assign.items():
        moe = layers.get(unit_name)
        if moe is not None:
            out[name] = moe.unit_of(name, sizes[unit_name])
    return out, new_units
