"""Cost annotation: from a grouped graph, a target and a workload to per-unit costs.

Symbolic shapes are evaluated under bindings discovered from the graph inputs (token ids
``[batch, seq]``, past KV ``[batch, heads, past, head_dim]``, masks of length ``past + seq``):

* decode, graph with a KV cache: one token (``seq = 1``) after ``past = context`` tokens;
* decode, graph without one: the cost of a token at context C is cost(seq = C+1) - cost(seq = C)
  for FLOPs and activations; parameter reads are those of one step (seq = 1), collectives those
  at seq = C+1 (attention's P @ V contracts over the C+1 keys). A node with a ``seq x seq``
  operand (a decomposed attention's scores, masks, P @ V) computes every (query, key) pair,
  masked or not; with a KV cache, as a deployment decodes, the new token computes only its
  own row: for such a node, whose cost is ``f(S) = a S^2 + b S + c``, the token's cost is
  ``a (C+1) + b``, the difference above less ``a C`` (``2a`` is the second difference, so
  they are costed at ``seq = C - 1`` too). A fused causal Attention counts its pairs already;
* prefill: ``seq = prompt_tokens`` with no past;
* activation bytes per token on an edge between units: the crossing values at decode shapes.

Mixture-of-experts layers (``placer.ir.passes.moe_experts``) are built dense (every expert
computes every token), but with top-k routing a token uses only k of the E routed experts.
Under uniform routing (each token picks a uniformly random k-subset of the E experts):

* expert e is used by a token with probability ``1 - C(E-1, k) / C(E, k) = k / E``; the decode
  FLOPs, weight bytes read, activation bytes and collectives of its nodes are scaled by k/E
  (its weights stay resident: ``weight_bytes`` is unchanged);
* in prefill, FLOPs and activation bytes scale by k/E, while weights are read (and the GEMM
  reductions run) once if any of the P prompt tokens picks the expert:
  ``1 - ((E - k) / E) ** P``;
* a unit holding G of the E routed experts (an expert group at ``expert`` granularity) is used
  by a token unless all k choices fall among the other E - G experts:
  ``P(group used) = 1 - C(E - G, k) / C(E, k)``; the activations into it (the token's hidden
  state and gates) and out of it (its partial sum) are scaled by that probability on the
  unit-DAG edges, hence on the I/O between wafers when the group sits on another wafer.

Expected values are rounded to integers per (expert, unit) piece by cumulative rounding over
the experts of a layer, so a layer's total is the same however its experts are grouped, and
every piece is within one of its exact expectation. A dense model is unchanged. A decode
token's active experts (the rounded k of a layer, each unit its share) run batched: each op of
the expert once for all of a unit's active experts, its collectives with their elements times
the count (``_batched_experts``; the emulator runs selected experts the same way).

Recomputable values: a value computed from graph inputs and constants alone, with no parameter
upstream (rotary cos/sin tables, attention masks, position ids), is not shipped between units:
on a real deployment each wafer recomputes it from the position. On a unit-DAG edge such values
cost the bytes of the graph inputs they read as data at decode shapes (an explicit
``position_ids`` or ``attention_mask`` input); inputs reached only through a Shape op cost
nothing (each wafer knows its token count). The receiving unit is charged the recomputation:
the decode and prefill costs of the nodes computing those values (outside the unit), each node
once per unit, except index arithmetic (nodes reading and writing only integer or boolean
values: shapes, positions), which is resolved when the program is compiled, as the mesh
emulator does. A value whose sources are more bytes than itself is shipped instead. Values
that are views of a parameter (a Transpose of a tied embedding table) cost nothing on an edge:
they are weights, not per-token traffic.

Batch is 1 throughout: costs are for one sequence. Every stored tensor is charged to the first
unit (in unit order) that reads it, so parameters, weight, constant and KV bytes of the units
add up to the graph's totals; decode and prefill FLOPs add up to the graph's plus the
recomputations above.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

from placer.cost_rules import COST_RULES, OpCall, Operand
from placer.costs import Collective, CollectiveKind, EdgeCost, KVCost, ModelCost, NodeCost, UnitCost
from placer.ir.attrs import AttentionAttrs, GemmAttrs
from placer.ir.dtypes import DType
from placer.ir.expert_selection import expert_selections, selects_whole_matrices
from placer.ir.graph import Graph, Node, WeightRole
from placer.ir.norm_fusion import fused_norms
from placer.ir.ops import CONTRACTION, OpKind
from placer.ir.passes.find_kv_caches import TokenSymbols, find_token_symbols
from placer.ir.passes.group_units import Structure, is_weighted_contraction, paused_gc, structure_for
from placer.ir.passes.moe_experts import MoeLayer
from placer.ir.symbolic import Sym
from placer.ir.types import TensorType
from placer.targets import Target
from placer.workload import Workload


class _Bindings(dict[str, int]):
    """Symbol values; a symbol no input explains (an exporter's ``unk__3``) is taken as 1."""

    def __missing__(self, key: str) -> int:
        return 1


def annotate_costs(graph: Graph, target: Target, workload: Workload,
                   structure: Structure | None = None) -> ModelCost:
    """Per-unit costs of ``graph`` (which must be grouped) for ``workload`` on ``target``.

    ``target`` is accepted for symmetry with the solver and future layout-dependent rules;
    the costs computed here depend on shapes and dtypes only. ``structure``: the graph's
    ``analyze_structure`` result when the caller has it (``LoadedModel.structure``); computed
    here otherwise (the same result: it does not depend on units).

    Raises:
        ValueError: the graph has no units (run the ``group-units`` pass first), or
            ``structure`` describes another graph.
    """
    del target  # costs here are layout-independent
    if not graph.units:
        raise ValueError(f"graph {graph.name!r} has no units; run the group-units pass first")
    with paused_gc():
        return _annotate_costs(graph, workload, structure_for(graph, structure))


def _warn_unmatched_overrides(graph: Graph, workload: Workload, owner: Mapping[str, str]) -> None:
    """A ``--dtype-override`` pattern that names no parameter is a typo that changes nothing:
    say so (one warning line) rather than report the native sizes as if it applied."""
    import fnmatch
    import warnings

    from placer._warnings import PlacerWarning

    params = [(n, owner.get(n, "")) for n, w in graph.weights.items() if w.role is WeightRole.PARAMETER]
    for pattern, dtype in workload.weights.overrides:
        if not any(fnmatch.fnmatchcase(n, pattern) or (u and fnmatch.fnmatchcase(f"{u}/{n}", pattern))
                   for n, u in params):
            example = params[len(params) // 2][0] if params else "none"
            warnings.warn(f"option --dtype-override {pattern}={dtype}: the pattern matches no weight of "
                          f"{graph.name!r} (weights are named like {example!r}); nothing was overridden",
                          PlacerWarning, stacklevel=3)


def _annotate_costs(graph: Graph, workload: Workload, structure: Structure) -> ModelCost:
    units = list(graph.units)
    rank = {u.name: i for i, u in enumerate(units)}
    owner = _weight_owners(graph, rank)
    stored: dict[str, Operand] = {}
    weights_of: dict[str, list[str]] = {u.name: [] for u in units}
    for name, w in graph.weights.items():
        shape = w.type.static_shape
        if w.role in (WeightRole.PARAMETER, WeightRole.QUANTIZATION):
            unit = owner.get(name, "")
            # Block scales and zero points keep their stored type (the weights they scale too).
            dtype = workload.weights.dtype_for(name, w.type.dtype, unit) \
                if w.role is WeightRole.PARAMETER else w.type.dtype
            nbytes = w.nbytes if dtype == w.type.dtype else dtype.storage_bytes(w.numel)
            stored[name] = Operand(shape, w.type.dtype, stored_bytes=nbytes)
        else:
            stored[name] = Operand(shape, w.type.dtype, constant=True)
        if name in owner:
            weights_of[owner[name]].append(name)
    _warn_unmatched_overrides(graph, workload, owner)
    views = _parameter_views(graph, stored)
    stored.update(views)
    # The structure's graph has the same values and its consumer index is already built.
    syms = find_token_symbols(structure.graph)
    plan = _plan_signatures(graph, stored, _kv_values(graph, syms), syms.seq, _selected_values(graph))
    context, prompt = workload.context_tokens, workload.prompt_tokens
    decode = _decode_costs(plan, syms, context)
    prefill = _signature_costs(plan, _bind(syms, seq=prompt, past=0))
    token_shapes = _bind(syms, seq=1, past=context if syms.past else 0)
    kv_of = _kv_by_unit(graph, rank, workload)
    routing = find_routing(graph, rank, structure)
    edges = []
    out_bytes = {u.name: 0 for u in units}
    recompute = _Recomputable(graph, stored)
    recomputed: dict[str, set[int]] = {}  # unit -> indices of the nodes it recomputes

    def value_bytes(v: str) -> int:
        return 0 if v in views else _value_bytes(graph, v, token_shapes)

    for (src, dst), values in _unit_edges(graph, rank):
        shipped = [v for v in values if v not in recompute.free]
        nbytes = routing.edge_bytes(graph, src, dst, shipped, value_bytes) if shipped else 0
        # Each parameter-free value is recomputed when its sources are fewer bytes than itself.
        tables = [v for v in values if v in recompute.free and
                  sum(map(value_bytes, recompute.sources([v]))) < value_bytes(v)]
        nbytes += sum(value_bytes(v) for v in values if v in recompute.free and v not in tables)
        if tables:
            nbytes += sum(map(value_bytes, recompute.sources(tables)))
            recomputed.setdefault(dst, set()).update(recompute.cone(tables, dst))
        edges.append(EdgeCost(src, dst, nbytes))
        out_bytes[src] += nbytes
    contractions: dict[str, list[Node]] = {u.name: [] for u in units}
    sig_counts: dict[str, Counter[int]] = {u.name: Counter() for u in units}
    # Nodes with collectives, in program order, per unit and per routed piece.
    talkers: dict[str, list[tuple[int, Node]]] = {u.name: [] for u in units}
    talks = [bool(d.collectives or p.collectives) for d, p in zip(decode, prefill)]
    piece_of, pieces = routing.piece_of, routing.pieces
    routing.talkers = [[] for _ in pieces]
    fused = fused_norms(graph)
    for node, sig in zip(graph.nodes, plan.node_sigs):
        if node.op in CONTRACTION:
            contractions[node.unit].append(node)
        piece = piece_of.get(node.name) if piece_of else None
        (sig_counts[node.unit] if piece is None else pieces[piece])[sig] += 1
        if talks[sig]:
            (talkers[node.unit] if piece is None else routing.talkers[piece]).append((sig, node))
    nodes = graph.nodes
    for unit, indices in recomputed.items():
        sig_counts[unit].update(plan.node_sigs[i] for i in indices)
        talkers[unit].extend((plan.node_sigs[i], nodes[i]) for i in sorted(indices)
                             if talks[plan.node_sigs[i]])
    routed_decode, routed_prefill = routing.expected_costs(plan, decode, prefill, prompt)
    costs = []
    memo: _Memo = {}  # collectives renamed, each distinct one made once (this model's alone)
    canon: dict[Collective, Collective] = {}  # the units' collectives, equal ones one object
    local_memo: _Memo = {}  # _local_keys' renamings, to canonical results
    for u in units:
        params = [n for n in weights_of[u.name] if stored[n].is_parameter]
        costs.append(UnitCost(
            name=u.name, kind=u.kind, layer=u.layer,
            parameters=sum(graph.weights[n].numel for n in params
                           if graph.weights[n].role is WeightRole.PARAMETER),
            weight_bytes=sum(stored[n].stored_bytes or 0 for n in params),
            constant_bytes=sum(graph.weights[n].nbytes for n in weights_of[u.name]
                               if not stored[n].is_parameter),
            kv=tuple(kv_of.get(u.name, ())),
            decode=_local_keys(_weighted_sum(decode, sig_counts[u.name])
                               + _collectives(plan, decode, talkers[u.name], fused, memo)
                               + routed_decode.get(u.name, NodeCost())
                               + NodeCost(kv_read_bytes=sum(k.bytes_for(context)
                                                            for k in kv_of.get(u.name, ()))),
                               local_memo, canon),
            prefill=_local_keys(_weighted_sum(prefill, sig_counts[u.name])
                                + _collectives(plan, prefill, talkers[u.name], fused, memo)
                                + routed_prefill.get(u.name, NodeCost()), local_memo, canon),
            activation_out_bytes_per_token=out_bytes[u.name],
            matmul_shapes=_matmul_shapes(graph, contractions[u.name], views),
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
    kv: frozenset[int] = frozenset()  # operand ids of KV cache values
    tokens: str | None = None  # the symbol counting a sequence's token positions
    square: frozenset[int] = frozenset()  # signatures computing all (query, key) pairs
    selected: frozenset[int] = frozenset()  # operand ids of selected expert matrices


class _OperandIds(dict[str, int]):
    """Value name -> operand id; values of equal type (or equal stored operands) share an id.

    Keys are built from C-hashable parts (``id`` of the dtype member, a Sym's ``terms``) so
    that 300k lookups on a 100k-node graph stay cheap.
    """

    def __init__(self, graph: Graph, stored: Mapping[str, Operand], kv: frozenset[str],
                 selected: frozenset[str] = frozenset()) -> None:
        super().__init__({"": 0})
        self.types = graph.types
        self.stored = stored
        self.kv_values = kv
        self.selected_values = selected
        self.kv: set[int] = set()
        self.selected: set[int] = set()
        self.ids: dict[object, int] = {None: 0}
        self.operands: list[TensorType | Operand | None] = [None]

    def __missing__(self, value: str) -> int:
        item: TensorType | Operand | None
        key: object
        stored = self.stored.get(value)
        if stored is not None:
            item = stored
            key = (stored.shape, id(stored.dtype), stored.stored_bytes, stored.constant)
        else:
            item = self.types.get(value)
            # ``__class__ is int``, faster than isinstance on large graphs; mypy does not narrow on it.
            key = None if item is None else (id(item.dtype), tuple(
                [d if d.__class__ is int else d.terms for d in item.shape]))  # type: ignore[union-attr]
            if item is not None and value in self.kv_values:
                key = ("kv", key)
            elif item is not None and value in self.selected_values:
                key = ("selected", key)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.operands)
            self.operands.append(item)
            if key.__class__ is tuple and key[0] == "kv":
                self.kv.add(found)
            elif key.__class__ is tuple and key[0] == "selected":
                self.selected.add(found)
        self[value] = found
        return found


def _plan_signatures(graph: Graph, stored: Mapping[str, Operand], kv: frozenset[str] = frozenset(),
                     tokens: str | None = None, selected: frozenset[str] = frozenset()) -> _Plan:
    ids = _OperandIds(graph, stored, kv, selected)
    get = ids.__getitem__
    sig_ids: dict[tuple[object, ...], int] = {}
    signatures: list[tuple[Node, tuple[int, ...], tuple[int, ...]]] = []
    node_sigs = []
    for node in graph.nodes:
        ins = tuple(map(get, node.inputs))
        outs = tuple(map(get, node.outputs))
        key = (id(node.op), node.attrs, ins, outs)
        sig = sig_ids.get(key)
        if sig is None:
            sig = sig_ids[key] = len(signatures)
            signatures.append((node, ins, outs))
        node_sigs.append(sig)
    return _Plan(tuple(ids.operands), tuple(signatures), tuple(node_sigs), frozenset(ids.kv), tokens,
                 _square_signatures(ids.operands, signatures, tokens), frozenset(ids.selected))


def _square_signatures(operands: Sequence[TensorType | Operand | None],
                       signatures: Sequence[tuple[Node, tuple[int, ...], tuple[int, ...]]],
                       tokens: str | None) -> frozenset[int]:
    """Signatures with an operand of degree 2 or more in ``tokens`` (``[.., seq, seq]``), other
    than a causal fused attention (whose rule counts only the pairs it computes)."""
    if not tokens:
        return frozenset()
    square = set()
    for i, item in enumerate(operands):
        if isinstance(item, TensorType) and sum(max((m.count(tokens) for m, _ in d.terms), default=0)
                                                for d in item.shape if isinstance(d, Sym)) >= 2:
            square.add(i)
    if not square:
        return frozenset()
    return frozenset(k for k, (node, ins, outs) in enumerate(signatures)
                     if not (isinstance(node.attrs, AttentionAttrs) and node.attrs.is_causal)
                     and any(i in square for i in (*ins, *outs)))


def _signature_costs(plan: _Plan, bindings: _Bindings, only: frozenset[int] | None = None) -> list[NodeCost]:
    """Each signature's cost under ``bindings`` (those in ``only``; the others cost nothing)."""
    concrete: list[Operand | None] = []
    kv, selected = plan.kv, plan.selected
    for i, item in enumerate(plan.operands):
        if isinstance(item, TensorType):
            item = Operand(tuple(d if isinstance(d, int) else max(d.evaluate(bindings), 0)
                                 for d in item.shape), item.dtype, kv=i in kv, selected=i in selected)
        concrete.append(item)
    free = NodeCost()
    tokens = bindings[plan.tokens] if plan.tokens else 1
    return [free if outs and _is_view(plan.operands[outs[0]]) else
            COST_RULES[node.op](OpCall(node, tuple(concrete[i] for i in ins),
                                       tuple(concrete[o] for o in outs), tokens))
            if only is None or k in only else free
            for k, (node, ins, outs) in enumerate(plan.signatures)]


# Ops through which a KV cache value stays the cache (appended to, viewed, repeated for GQA).
_KV_OPS = frozenset({OpKind.CONCAT, OpKind.RESHAPE, OpKind.TRANSPOSE, OpKind.SQUEEZE, OpKind.UNSQUEEZE,
                     OpKind.FLATTEN, OpKind.IDENTITY, OpKind.CAST, OpKind.EXPAND, OpKind.TILE})


def _kv_values(graph: Graph, syms: TokenSymbols) -> frozenset[str]:
    """The past KV inputs and the values that are those caches appended to or seen through
    layout ops (present K/V, GQA's repeated K/V): on a deployment the cache is appended to in
    place and read where it is, so reading them is the unit's KV read, not activation traffic."""
    kv = set(syms.past_inputs)
    if not kv:
        return frozenset()
    for node in graph.nodes:
        if node.op in _KV_OPS:
            if node.inputs and (node.inputs[0] in kv or (node.op is OpKind.CONCAT and
                                                         any(i in kv for i in node.inputs))):
                kv.update(node.outputs)
        elif node.op is OpKind.ATTENTION:  # present key / value from past key / value
            for i, o in ((4, 1), (5, 2)):
                if i < len(node.inputs) and node.inputs[i] in kv and o < len(node.outputs):
                    kv.add(node.outputs[o])
    return frozenset(kv)


def _selected_values(graph: Graph) -> frozenset[str]:
    """Outputs of selections of whole expert matrices (``placer.ir.expert_selection``): the
    matrices stay resident, so their MatMuls read them as weights and broadcast the other
    operand, as the mesh emulator runs them."""
    nodes = {n.name: n for n in graph.nodes}
    return frozenset(nodes[name].outputs[0] for name in expert_selections(graph)
                     if selects_whole_matrices(graph, nodes[name]))


def _is_view(item: TensorType | Operand | None) -> bool:
    """A node producing a parameter view is folded when the weights are loaded: free."""
    return isinstance(item, Operand) and item.is_parameter


# Ops whose output is its first input rearranged or converted, element for element.
_VIEW_OPS = frozenset({OpKind.RESHAPE, OpKind.TRANSPOSE, OpKind.SQUEEZE, OpKind.UNSQUEEZE,
                       OpKind.FLATTEN, OpKind.IDENTITY, OpKind.CAST})


def _parameter_views(graph: Graph, stored: Mapping[str, Operand]) -> dict[str, Operand]:
    """Values that are a parameter seen through Transpose, Reshape, Cast... chains (a tied LM
    head reading the embedding table transposed): operands with the parameter's stored bytes,
    so their readers are charged the parameter read."""
    views: dict[str, Operand] = {}
    for node in graph.nodes:
        if node.op not in _VIEW_OPS or not node.inputs or len(node.outputs) != 1:
            continue
        source = views.get(node.inputs[0]) or stored.get(node.inputs[0])
        t = graph.types.get(node.outputs[0])
        if source is None or not source.is_parameter or t is None or \
                not all(isinstance(d, int) for d in t.shape):
            continue
        views[node.outputs[0]] = Operand(t.static_shape, t.dtype,
                                         stored_bytes=source.stored_bytes)
    return views


def _decode_costs(plan: _Plan, syms: TokenSymbols, context: int) -> list[NodeCost]:
    if syms.past or not syms.seq:
        return _signature_costs(plan, _bind(syms, seq=1, past=context))
    after = _signature_costs(plan, _bind(syms, seq=context + 1, past=0))
    before = _signature_costs(plan, _bind(syms, seq=context, past=0)) if context else None
    step = _signature_costs(plan, _bind(syms, seq=1, past=0))
    square = plan.square if context else frozenset()
    prior = _signature_costs(plan, _bind(syms, seq=context - 1, past=0), square) if square else None
    out = []
    for k, (a, s) in enumerate(zip(after, step)):
        b = before[k] if before is not None else NodeCost()
        flops, acts = a.flops - b.flops, a.activation_bytes - b.activation_bytes
        if prior is not None and k in square:  # only the new token's row: less a C (2a = 2nd difference)
            p = prior[k]
            flops -= (a.flops - 2 * b.flops + p.flops) * context // 2
            acts -= (a.activation_bytes - 2 * b.activation_bytes + p.activation_bytes) * context // 2
        # Collectives at the token's own shapes: attention's P @ V contracts over C + 1 keys.
        out.append(NodeCost(max(flops, 0), s.weight_read_bytes, max(acts, 0), a.collectives))
    return out


def _weighted_sum(costs: list[NodeCost], counts: Counter[int]) -> NodeCost:
    """FLOPs and bytes of ``counts[sig]`` nodes of each signature (collectives apart), and how
    many of the nodes are kernels (cost anything: the calibrated per-kernel overhead's count)."""
    flops = weights = activations = kernels = 0
    for sig, n in counts.items():
        c = costs[sig]
        flops += n * c.flops
        weights += n * c.weight_read_bytes
        activations += n * c.activation_bytes
        if c.flops or c.weight_read_bytes or c.activation_bytes or c.collectives:
            kernels += n
    return NodeCost(flops, weights, activations, kernels=kernels)


# id(c) -> (c, {(input_key, feeds): renamed}): keyed by identity, not equality, as hashing a
# Collective (ten fields) per lookup was 0.8 s of a 1T-parameter MoE's cost phase. The entry holds
# ``c`` itself, so an id is never reused while the memo (one annotate_costs call) lives; the
# collectives renamed are a signature's, shared by all its nodes, so identity finds the repeats.
_Memo = dict[int, tuple[Collective, dict[tuple[str, str], Collective]]]


def _rekey(c: Collective, input_key: str, feeds: str, memo: _Memo) -> Collective:
    """``c`` with these keys, each distinct result made once (a MoE model renames ~40,000
    collectives that are a few hundred distinct ones)."""
    if c.input_key == input_key and c.feeds == feeds:
        return c
    entry = memo.get(id(c))
    if entry is None:
        entry = memo[id(c)] = (c, {})
    done = entry[1]
    renamed = done.get((input_key, feeds))
    if renamed is None:
        renamed = done[(input_key, feeds)] = c.with_keys(input_key, feeds)
    return renamed


def _collectives(plan: _Plan, costs: list[NodeCost], nodes: Sequence[tuple[int, Node]],
                 fused: Mapping[str, str] | None = None, memo: _Memo | None = None) -> NodeCost:
    """The collectives of ``nodes`` in order, each keyed by the node's own input values (a
    signature's costs name its first node's values); a norm in ``fused``
    (``placer.ir.norm_fusion.fused_norms``) marks its row all-reduces as feeding its output's
    GEMVs (a softmax there: only its sum, the last, feeding its P @ V)."""
    out: list[Collective] = []
    signatures = plan.signatures
    memo = {} if memo is None else memo
    for sig, node in nodes:
        found = costs[sig].collectives
        if fused and node.name in fused:
            rows = [i for i, c in enumerate(found) if c.kind is CollectiveKind.ROW_ALLREDUCE]
            if node.op is OpKind.SOFTMAX:  # only its sum rides beside P @ V; the max stays
                rows = rows[-1:]
            out.extend(_rekey(c, c.input_key, fused[node.name], memo) if i in rows else c
                       for i, c in enumerate(found))
            continue
        rep = signatures[sig][0]
        if rep is node or not found:
            out.extend(found)
            continue
        names = dict(zip(rep.inputs, node.inputs))
        out.extend(_rekey(c, names.get(c.input_key, c.input_key), c.feeds, memo) if c.input_key else c
                   for c in found)
    return NodeCost(collectives=tuple(out))


def _local_keys(cost: NodeCost, memo: _Memo, canon: dict[Collective, Collective]) -> NodeCost:
    """``cost`` with its collectives' value names (``input_key``, ``feeds``) renamed ``v0``,
    ``v1``, ... in order of first appearance. A key only matters within its unit (which GEMVs
    share a broadcast, which norm feeds which), so identical layers then have equal costs and
    are priced once (the solver's ``DecodeTimes``, the floorplan's candidate shapes) instead of
    once per layer for differing graph value names."""
    names: dict[str, str] = {}

    def local(key: str) -> str:
        return "" if not key else names.setdefault(key, f"v{len(names)}")

    def renamed(c: Collective) -> Collective:
        # equal results as one object (``canon``, across units): the plan's lookups of alike
        # units' costs then compare tuples of identical objects (``memo`` goes by identity);
        # ``memo`` keeps the canonical result, so each distinct one is hashed once
        keys = (local(c.input_key), local(c.feeds))
        entry = memo.get(id(c))
        if entry is None:
            entry = memo[id(c)] = (c, {})
        found = entry[1].get(keys)
        if found is None:
            r = c if (c.input_key, c.feeds) == keys else c.with_keys(*keys)
            found = entry[1][keys] = canon.setdefault(r, r)
        return found

    return replace(cost, collectives=tuple(renamed(c) for c in cost.collectives))


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
        dtype = workload.kv_dtype_for(kv.dtype)
        out.setdefault(unit, []).append(KVCost(kv.name, dtype.storage_bytes(kv.elements_per_token), kv.window,
                                               kv.tokens_per_entry, dtype.storage_bytes(kv.state_elements)))
    return out


def _matmul_shapes(graph: Graph, nodes: list[Node],
                   views: Mapping[str, Operand]) -> tuple[tuple[int, int], ...]:
    """(K, N) of every parameter matrix (or view of one) a unit's contractions multiply by
    (per batch slice)."""
    shapes: list[tuple[int, int]] = []
    for node in nodes:
        if node.op not in CONTRACTION or len(node.inputs) < 2:
            continue
        view = views.get(node.inputs[1])
        w = graph.weights.get(node.inputs[1])
        if view is not None:
            shape: tuple[int, ...] = view.shape
        elif w is not None and w.role is WeightRole.PARAMETER:
            shape = w.type.static_shape
        else:
            continue
        if len(shape) < 2:
            continue
        k, n = shape[-2], shape[-1]
        if isinstance(node.attrs, GemmAttrs) and node.attrs.trans_b:
            k, n = n, k
        copies = 1
        for d in shape[:-2]:
            copies *= d
        shapes.extend([(k, n)] * copies)
    return tuple(shapes)


class _Recomputable:
    """Values computed from graph inputs and constants alone (no parameter upstream): rotary
    tables, masks, position ids. A unit reading one from another unit can recompute it from
    the graph inputs it depends on as data (``sources``; a Shape op needs no data, each wafer
    knows its token count) by running the nodes of its ``cone``."""

    def __init__(self, graph: Graph, stored: Mapping[str, Operand]) -> None:
        self.graph = graph
        dependent: set[str] = set()
        self.free: set[str] = set()
        for node in graph.nodes:
            hit = False
            if node.op is not OpKind.SHAPE:  # a shape is known without the data
                for i in node.inputs:
                    if i in dependent or (i in stored and stored[i].is_parameter):
                        hit = True
                        break
            (dependent if hit else self.free).update(node.outputs)
        self._cones: dict[str, tuple[frozenset[int], frozenset[str]]] = {}
        self._index: dict[str, int] = {}

    def sources(self, values: Sequence[str]) -> set[str]:
        """Graph inputs ``values`` read as data."""
        return set().union(*(self._walk(v)[1] for v in values))

    def cone(self, values: Sequence[str], unit: str) -> set[int]:
        """Indices of the nodes (outside ``unit``) that compute ``values`` from their sources,
        index arithmetic left out (resolved when the program is compiled)."""
        nodes = self.graph.nodes
        return {i for v in values for i in self._walk(v)[0]
                if nodes[i].unit != unit and not self._index_math(nodes[i])}

    def _index_math(self, node: Node) -> bool:
        """Integer or boolean values only: shapes, positions, mask indices (as the mesh
        emulator treats them)."""
        types = self.graph.types
        for v in (*node.inputs, *node.outputs):
            t = types.get(v) if v else None
            if t is not None and not (t.dtype.is_integer or t.dtype is DType.BOOL):
                return False
        return True

    def _walk(self, value: str) -> tuple[frozenset[int], frozenset[str]]:
        found = self._cones.get(value)
        if found is not None:
            return found
        if not self._index:
            self._index = {n.name: i for i, n in enumerate(self.graph.nodes)}
        graph, nodes, inputs = self.graph, set(), set()
        stack, seen = [value], {value}
        while stack:
            v = stack.pop()
            producer = graph.producers.get(v)
            if producer is None:
                if v not in graph.weights:
                    inputs.add(v)
                continue
            nodes.add(self._index[producer.name])
            if producer.op is OpKind.SHAPE:
                continue
            for i in producer.inputs:
                if i and i not in seen:
                    seen.add(i)
                    stack.append(i)
        found = self._cones[value] = (frozenset(nodes), frozenset(inputs))
        return found


def _unit_edges(graph: Graph, rank: Mapping[str, int]) -> list[tuple[tuple[str, str], list[str]]]:
    """Edges of the unit DAG, in unit order, with the values crossing each (first use order)."""
    crossing: dict[tuple[str, str], dict[str, None]] = {}
    producers = graph.producers
    for n in graph.nodes:
        for i in n.inputs:
            p = producers.get(i)
            if p is not None and p.unit != n.unit:
                crossing.setdefault((p.unit, n.unit), {})[i] = None
    return sorted(((k, list(v)) for k, v in crossing.items()), key=lambda e: (rank[e[0][0]], rank[e[0][1]]))


def group_use_probability(experts: int, top_k: int, group: int) -> Fraction:
    """P(a token routes to at least one of ``group`` of ``experts`` experts) under uniform top-k."""
    return 1 - Fraction(math.comb(experts - group, top_k), math.comb(experts, top_k))


def _round(x: Fraction) -> int:
    """Nearest integer, halves up (exact)."""
    return (2 * x.numerator + x.denominator) // (2 * x.denominator)


def _rounded_steps(q: Fraction) -> Callable[[int], int]:
    """x -> round(x * q), halves up, in integers."""
    num, den, half = 2 * q.numerator, 2 * q.denominator, q.denominator
    return lambda x: (x * num + half) // den


def _apportion(costs: Sequence[NodeCost], flops: Fraction, reads: Fraction) -> list[NodeCost]:
    """``costs`` with FLOPs and activation bytes times ``flops``, weight reads and collectives
    times ``reads``, cumulatively rounded per column: the pieces sum to the rounded total, and
    each is within one of its exact value. Collectives are kept or dropped whole: of each kind,
    in order over the pieces, the j-th is kept when round((j + 1) x reads) > round(j x reads),
    so a piece keeps as many as its rounded count, spread evenly over its GEMV shapes."""
    rows = [(c.flops, c.weight_read_bytes, c.activation_bytes) for c in costs]
    columns = []
    for j, q in enumerate((flops, reads, flops)):
        step = _rounded_steps(q)
        total = previous = 0
        column = []
        for r in rows:
            total += r[j]
            now = step(total)
            column.append(now - previous)
            previous = now
        columns.append(column)
    step = _rounded_steps(reads)
    seen = dict.fromkeys(CollectiveKind, 0)
    kept: list[tuple[Collective, ...]] = []
    for c in costs:
        mine = []
        for x in c.collectives:
            j = seen[x.kind]
            seen[x.kind] = j + 1
            if step(j + 1) > step(j):
                mine.append(x)
        kept.append(tuple(mine))
    return [NodeCost(f, w, a, k) for f, w, a, k in zip(*columns, kept)]


@dataclass
class Routing:
    """The routed experts of a grouped graph's MoE layers, cut into (layer, expert, unit) pieces.

    Attributes:
        layers: MoE layers whose ``top_k`` is known (1 <= k <= E).
        keys: ``(index in layers, expert, unit)`` of each piece, in cumulative-rounding order.
        piece_of: node name -> piece index, for nodes of routed experts.
        pieces: signature counts of each piece (filled by the caller).
        group_probability: expert-group unit -> probability that a token uses it.
    """

    layers: tuple[MoeLayer, ...]
    keys: list[tuple[int, int, str]]
    piece_of: dict[str, int]
    pieces: list[Counter[int]] = field(default_factory=list)
    group_probability: dict[str, Fraction] = field(default_factory=dict)
    readers: Mapping[str, list[Node]] | None = None  # value -> consumers (units may be stale)
    talkers: list[list[tuple[int, Node]]] = field(default_factory=list)  # per piece: nodes with collectives

    def edge_bytes(self, graph: Graph, src: str, dst: str, values: Sequence[str],
                   value_bytes: Callable[[str], int]) -> int:
        """Expected bytes per token of ``values`` crossing ``src -> dst``.

        A value a routed expert of the expert-group unit ``src`` produces (its partial sum)
        crosses only when a token uses ``src``; a value that only routed experts of the group
        ``dst`` read (the token's hidden state, its gates) only when a token uses ``dst``.
        Anything else (the residual stream passing by) always crosses.
        """
        p_src, p_dst = self.group_probability.get(src), self.group_probability.get(dst)
        if p_src is None and p_dst is None:
            return sum(value_bytes(v) for v in values)
        total = Fraction(0)
        for v in values:
            nbytes = value_bytes(v)
            if p_src is not None and graph.producers[v].name in self.piece_of:
                total += nbytes * p_src
            elif p_dst is not None and all(c.name in self.piece_of for c in self._consumers(graph, v)
                                           if c.unit == dst):
                total += nbytes * p_dst
            else:
                total += nbytes
        return _round(total)

    def _consumers(self, graph: Graph, value: str) -> list[Node]:
        """Readers of ``value`` in ``graph`` (with their units), through the consumer index the
        structure analysis already built for the same values (``find_routing`` sets it)."""
        if self.readers is None:
            self.readers = graph.consumers
        by_name = graph.node_by_name
        return [by_name[c.name] for c in self.readers.get(value, [])]

    def expected_costs(self, plan: _Plan, decode: list[NodeCost], prefill: list[NodeCost],
                       prompt: int) -> tuple[dict[str, NodeCost], dict[str, NodeCost]]:
        """Expected decode and prefill costs of the routed experts, summed per unit."""
        out_decode: dict[str, NodeCost] = {}
        out_prefill: dict[str, NodeCost] = {}
        by_layer: list[list[int]] = [[] for _ in self.layers]
        for i, key in enumerate(self.keys):
            by_layer[key[0]].append(i)
        for m, idx in zip(self.layers, by_layer):
            used = Fraction(m.top_k, m.num_experts)
            any_of_prompt = 1 - Fraction(m.num_experts - m.top_k, m.num_experts) ** max(prompt, 1)
            dense_d = [_weighted_sum(decode, self.pieces[i]) + _collectives(plan, decode, self.talkers[i])
                       for i in idx]
            dense_p = [_weighted_sum(prefill, self.pieces[i]) + _collectives(plan, prefill, self.talkers[i])
                       for i in idx]
            units = [self.keys[i][2] for i in idx]
            for unit, d, p in zip(units, _apportion(dense_d, used, used),
                                  _apportion(dense_p, used, any_of_prompt)):
                d = replace(d, collectives=())  # the active experts' come batched, below
                out_decode[unit] = out_decode.get(unit, NodeCost()) + d
                out_prefill[unit] = out_prefill.get(unit, NodeCost()) + p
            for unit, batched in _batched_experts(dense_d, units, used).items():
                out_decode[unit] = out_decode.get(unit, NodeCost()) + batched
        return out_decode, out_prefill


def _batched_experts(costs: Sequence[NodeCost], units: Sequence[str], used: Fraction) -> dict[str, NodeCost]:
    """The collectives and kernels of the routed experts a decode token runs, per unit.

    ``costs``: each expert piece of one layer, dense (in cumulative-rounding order), ``units``
    the unit of each. The j-th expert counts as active when ``round((j + 1) x used) > round(j x
    used)``, so the layer runs its rounded ``k`` experts and each unit its share. A token's
    active experts of one unit are known together once it is routed and sit on the same PEs,
    so each op of the expert runs once for all of them as an ``n``-row step, as the emulator
    runs selected experts (``placer.backends.mesh.experts``: one GEMV of ``n`` rows on the
    resident tiles): every collective of the expert once with ``n`` times the elements (the
    latency paid once, the tiles ``n`` times as large; the key of an input all of them share,
    such as the normed hidden state, kept so a sibling's broadcast serves them) and its
    kernels once. (Paying each expert's collectives one after another would charge the fabric
    latency ``n`` times for what is one batched step.)"""
    step = _rounded_steps(used)
    active: dict[str, list[int]] = {}
    for j, unit in enumerate(units):
        if step(j + 1) > step(j):
            active.setdefault(unit, []).append(j)
    out: dict[str, NodeCost] = {}
    for unit, on in active.items():
        n, first = len(on), costs[on[0]]
        merged = []
        for p, c in enumerate(first.collectives):
            keys = {costs[j].collectives[p].input_key if p < len(costs[j].collectives) else "" for j in on}
            merged.append(replace(c, in_elements=c.in_elements * n, out_elements=c.out_elements * n,
                                  input_key=c.input_key if len(keys) == 1 else ""))
        out[unit] = NodeCost(collectives=tuple(merged), kernels=first.kernels)
    return out


def find_routing(graph: Graph, rank: Mapping[str, int], structure: Structure | None = None) -> Routing:
    """Pieces of routed experts and the expert-group units of a grouped ``graph`` (``structure``:
    its ``analyze_structure`` result, computed when not given)."""
    s = structure_for(graph, structure)
    layers = tuple(m for m in s.moe_layers if 1 <= m.top_k <= m.num_experts)
    if not layers:
        return Routing((), [], {})
    node_by_name = graph.node_by_name
    keyed: dict[str, tuple[int, int, str]] = {}
    in_unit: dict[str, set[tuple[int, int]]] = {}
    for li, m in enumerate(layers):
        for name, e in m.routed.items():
            unit = node_by_name[name].unit
            keyed[name] = (li, e, unit)
            in_unit.setdefault(unit, set()).add((li, e))
    other_weights = {n.unit for n in graph.nodes if n.unit in in_unit and n.name not in keyed
                     and n.op in CONTRACTION and is_weighted_contraction(graph, n)}
    keys = sorted(set(keyed.values()), key=lambda k: (k[0], k[1], rank[k[2]]))
    index = {k: i for i, k in enumerate(keys)}
    routing = Routing(layers, keys, {n: index[k] for n, k in keyed.items()}, [Counter() for _ in keys],
                      readers=s.graph.consumers)
    for unit, hits in in_unit.items():
        owners = {li for li, _ in hits}
        if unit not in other_weights and len(owners) == 1:
            m = layers[owners.pop()]
            routing.group_probability[unit] = group_use_probability(m.num_experts, m.top_k, len(hits))
    return routing
