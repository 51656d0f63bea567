"""Cost annotation: from a grouped graph, a target and a workload to per-unit costs.

Symbolic shapes are evaluated under bindings discovered from the graph inputs (token ids
``[batch, seq]``, past KV ``[batch, heads, past, head_dim]``, masks of length ``past + seq``):

* decode, graph with a KV cache: one token (``seq = 1``) after ``past = context`` tokens;
* decode, graph without one: the cost of a token at context C is cost(seq = C+1) - cost(seq = C)
  for FLOPs and activations; parameter reads and collectives are those of one step (seq = 1);
* prefill: ``seq = prompt_tokens`` with no past;
* activation bytes per token on an edge between units: the crossing values at decode shapes.

Batch is 1 throughout: costs are for one sequence. Every stored tensor is charged to the first
unit (in unit order) that reads it, so unit costs add up to the graph's totals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from placer.cost_rules import COST_RULES, OpCall, Operand
from placer.costs import EdgeCost, KVCost, ModelCost, NodeCost, UnitCost
from placer.ir.attrs import GemmAttrs
from placer.ir.graph import Graph, Node, WeightRole
from placer.ir.ops import CONTRACTION
from placer.ir.passes.find_kv_caches import TokenSymbols, find_token_symbols
from placer.ir.symbolic import Sym
from placer.ir.types import TensorType
from placer.ir.verifier import unit_graph
from placer.targets import Target
from placer.workload import Workload


class _Bindings(dict[str, int]):
    """Symbol values; a symbol no input explains (an exporter's ``unk__3``) is taken as 1."""

    def __missing__(self, key: str) -> int:
        return 1


def annotate_costs(graph: Graph, target: Target, workload: Workload) -> ModelCost:
    """Per-unit costs of ``graph`` (which must be grouped) for ``workload`` on ``target``.

    ``target`` is accepted for symmetry with the solver and future layout-dependent rules;
    the costs computed here depend on shapes and dtypes only.

    Raises:
        ValueError: the graph has no units (run the ``group-units`` pass first).
    """
    del target  # costs here are layout-independent
    if not graph.units:
        raise ValueError(f"graph {graph.name!r} has no units; run the group-units pass first")
    units = list(graph.units)
    rank = {u.name: i for i, u in enumerate(units)}
    owner = _weight_owners(graph, rank)
    stored: dict[str, Operand] = {}
    weights_of: dict[str, list[str]] = {u.name: [] for u in units}
    for name, w in graph.weights.items():
        shape = tuple(int(d) for d in w.type.shape)
        if w.role is WeightRole.PARAMETER:
            unit = owner.get(name, "")
            dtype = workload.weights.dtype_for(name, w.type.dtype, unit)
            nbytes = w.nbytes if dtype == w.type.dtype else dtype.storage_bytes(w.numel)
            stored[name] = Operand(shape, w.type.dtype, stored_bytes=nbytes)
        else:
            stored[name] = Operand(shape, w.type.dtype, constant=True)
        if name in owner:
            weights_of[owner[name]].append(name)
    plan = _plan_signatures(graph, stored)
    syms = find_token_symbols(graph)
    context, prompt = workload.context_tokens, workload.prompt_tokens
    decode = _decode_costs(plan, syms, context)
    prefill = _signature_costs(plan, _bind(syms, seq=prompt, past=0))
    token_shapes = _bind(syms, seq=1, past=context if syms.past else 0)
    kv_of = _kv_by_unit(graph, rank, workload)
    dag = unit_graph(graph)
    edges = []
    out_bytes = {u.name: 0 for u in units}
    for src, dst, data in sorted(dag.edges(data=True), key=lambda e: (rank[e[0]], rank[e[1]])):
        nbytes = sum(_value_bytes(graph, v, token_shapes) for v in data["values"])
        edges.append(EdgeCost(src, dst, nbytes))
        out_bytes[src] += nbytes
    by_unit_nodes: dict[str, list[Node]] = {u.name: [] for u in units}
    sig_counts: dict[str, Counter[int]] = {u.name: Counter() for u in units}
    for node, sig in zip(graph.nodes, plan.node_sigs):
        by_unit_nodes[node.unit].append(node)
        sig_counts[node.unit][sig] += 1
    costs = []
    for u in units:
        params = [n for n in weights_of[u.name] if stored[n].is_parameter]
        costs.append(UnitCost(
            name=u.name, kind=u.kind, layer=u.layer,
            parameters=sum(graph.weights[n].numel for n in params),
            weight_bytes=sum(stored[n].stored_bytes or 0 for n in params),
            constant_bytes=sum(graph.weights[n].nbytes for n in weights_of[u.name]
                               if not stored[n].is_parameter),
            kv=tuple(kv_of.get(u.name, ())),
            decode=_weighted_sum(decode, sig_counts[u.name]),
            prefill=_weighted_sum(prefill, sig_counts[u.name]),
            activation_out_bytes_per_token=out_bytes[u.name],
            matmul_shapes=_matmul_shapes(graph, by_unit_nodes[u.name]),
        ))
    return ModelCost(graph.name, tuple(costs), tuple(edges),
                     parameters=sum(c.parameters for c in costs),
                     weight_bytes=sum(c.weight_bytes for c in costs),
                     kv_bytes_per_token=sum(c.kv_bytes_per_token for c in costs))


def _bind(syms: TokenSymbols, *, seq: int, past: int) -> _Bindings:
    b = _Bindings()
    if syms.batch:
        b[syms.batch] = 1
    if syms.seq:
        b[syms.seq] = seq
    if syms.past:
        b[syms.past] = past
    for t in syms.total:
        b[t] = past + seq
    return b


@dataclass(frozen=True)
class _Plan:
    """Nodes reduced to signatures (op, attributes, operand types): a decoder's layers repeat,
    so each distinct signature is costed once per set of bindings."""

    operands: tuple[TensorType | Operand | None, ...]  # symbolic types, or stored operands
    signatures: tuple[tuple[Node, tuple[int, ...], tuple[int, ...]], ...]
    node_sigs: tuple[int, ...]


def _plan_signatures(graph: Graph, stored: Mapping[str, Operand]) -> _Plan:
    operand_ids: dict[object, int] = {None: 0}
    operands: list[TensorType | Operand | None] = [None]

    by_value: dict[str, int] = {}

    def intern(value: str) -> int:
        found = by_value.get(value)
        if found is not None:
            return found
        item: TensorType | Operand | None = None
        if value:
            item = stored.get(value) or graph.types.get(value)
        key = (item.dtype.value, item.shape) if isinstance(item, TensorType) else item
        if key not in operand_ids:
            operand_ids[key] = len(operands)
            operands.append(item)
        by_value[value] = operand_ids[key]
        return by_value[value]

    sig_ids: dict[tuple[object, ...], int] = {}
    signatures = []
    node_sigs = []
    for node in graph.nodes:
        ins = tuple(intern(i) for i in node.inputs)
        outs = tuple(intern(o) for o in node.outputs)
        key = (node.op, node.attrs, ins, outs)
        sig = sig_ids.get(key)
        if sig is None:
            sig = sig_ids[key] = len(signatures)
            signatures.append((node, ins, outs))
        node_sigs.append(sig)
    return _Plan(tuple(operands), tuple(signatures), tuple(node_sigs))


def _signature_costs(plan: _Plan, bindings: _Bindings) -> list[NodeCost]:
    concrete: list[Operand | None] = []
    for item in plan.operands:
        if isinstance(item, TensorType):
            item = Operand(tuple(d if isinstance(d, int) else max(d.evaluate(bindings), 0)
                                 for d in item.shape), item.dtype)
        concrete.append(item)
    return [COST_RULES[node.op](OpCall(node, tuple(concrete[i] for i in ins),
                                       tuple(concrete[o] for o in outs)))
            for node, ins, outs in plan.signatures]


def _decode_costs(plan: _Plan, syms: TokenSymbols, context: int) -> list[NodeCost]:
    if syms.past or not syms.seq:
        return _signature_costs(plan, _bind(syms, seq=1, past=context))
    after = _signature_costs(plan, _bind(syms, seq=context + 1, past=0))
    before = _signature_costs(plan, _bind(syms, seq=context, past=0)) if context else None
    step = _signature_costs(plan, _bind(syms, seq=1, past=0))
    out = []
    for k, (a, s) in enumerate(zip(after, step)):
        b = before[k] if before is not None else NodeCost()
        out.append(NodeCost(max(a.flops - b.flops, 0), s.weight_read_bytes,
                            max(a.activation_bytes - b.activation_bytes, 0), s.collectives))
    return out


def _weighted_sum(costs: list[NodeCost], counts: Counter[int]) -> NodeCost:
    flops = weights = activations = collectives = 0
    for sig, n in counts.items():
        c = costs[sig]
        flops += n * c.flops
        weights += n * c.weight_read_bytes
        activations += n * c.activation_bytes
        collectives += n * c.collectives
    return NodeCost(flops, weights, activations, collectives)


def _value_bytes(graph: Graph, value: str, bindings: _Bindings) -> int:
    t = graph.types.get(value)
    if t is None:
        return 0
    numel = 1
    for d in t.shape:
        numel *= d.evaluate(bindings) if isinstance(d, Sym) else d
    return t.dtype.storage_bytes(max(numel, 0))


def _weight_owners(graph: Graph, rank: Mapping[str, int]) -> dict[str, str]:
    """Each stored tensor's first reader, in unit order."""
    owner: dict[str, str] = {}
    for node in graph.nodes:
        for i in node.inputs:
            if i in graph.weights and (i not in owner or rank[node.unit] < rank[owner[i]]):
                owner[i] = node.unit
    return owner


def _kv_by_unit(graph: Graph, rank: Mapping[str, int], workload: Workload) -> dict[str, list[KVCost]]:
    out: dict[str, list[KVCost]] = {}
    for kv in graph.kv_caches:
        producer = graph.producers.get(kv.value)
        if producer is not None:
            unit = producer.unit
        else:
            readers = [c.unit for c in graph.consumers.get(kv.value, [])]
            unit = min(readers, key=rank.__getitem__) if readers else graph.units[0].name
        nbytes = workload.kv_dtype_for(kv.dtype).storage_bytes(kv.elements_per_token)
        out.setdefault(unit, []).append(KVCost(kv.name, nbytes, kv.window))
    return out


def _matmul_shapes(graph: Graph, nodes: list[Node]) -> tuple[tuple[int, int], ...]:
    """(K, N) of every parameter matrix a unit's contractions multiply by (per batch slice)."""
    shapes: list[tuple[int, int]] = []
    for node in nodes:
        if node.op not in CONTRACTION or len(node.inputs) < 2:
            continue
        w = graph.weights.get(node.inputs[1])
        if w is None or w.role is not WeightRole.PARAMETER or w.type.rank < 2:
            continue
        k, n = int(w.type.shape[-2]), int(w.type.shape[-1])
        if isinstance(node.attrs, GemmAttrs) and node.attrs.trans_b:
            k, n = n, k
        copies = 1
        for d in w.type.shape[:-2]:
            copies *= int(d)
        shapes.extend([(k, n)] * copies)
    return tuple(shapes)
