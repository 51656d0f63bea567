"""Mixture-of-experts layers found from graph structure: router, shared experts, routed experts.

Used by ``group-units`` (to split an MoE MLP into router, shared and expert-group units) and by
the cost model (a routed expert computes only for the tokens routed to it). Names are never
needed; scopes only order the experts (``...experts.7...``).

How a layer's MLP (a block-granularity MLP unit holding a ``TopK``) is analysed:

* its weighted contractions are joined into *branches* when one reads another's output through
  non-weighted ops; the *router* is made of those that reach the TopK;
* a branch is *routed* when a value computed only from it is combined with router output (the
  routing weight); the other branches are *shared* experts;
* every other node belongs to the latest branch it depends on (order: router, shared experts,
  routed experts by index), the router when it depends on none: the partial-sum adds of the
  expert chain thus go with the expert whose output they add.

Each pass over the layer is linear in its size: dependencies are summarised per node (one
branch, several, or none; the latest branch) instead of carried as sets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from placer.ir.graph import Graph, Node, Unit, UnitKind
from placer.ir.ops import CONTRACTION, OpKind

ROUTER = -1
_MULTI = "\0multi"  # summary of a node that depends on several branches
_EXPERT_INDEX = re.compile(r"experts?\.(\d+)(?:\.|$)")


@dataclass(frozen=True)
class MoeLayer:
    """One MoE MLP: its block-granularity unit, routing, and each member node's branch.

    Attributes:
        unit: the MLP unit at block granularity (``layers.N.mlp``).
        layer: decoder-layer index.
        top_k: experts chosen per token (the TopK's ``k``), 0 when not a static integer.
        num_experts: routed experts found (E).
        num_shared: shared-expert branches (always computed).
        branch: member node -> ``ROUTER`` (-1), shared expert ``s`` (0..S-1), or routed expert
            ``e`` as ``S + e``.
        routed: node -> routed expert index, for the nodes that compute only for the tokens
            routed to that expert: its own nodes (those depending on it alone) and the nodes
            of its branch that read them (adding its output into the partial sum). The final
            combine with shared experts and the residual add are not among them.
    """

    unit: str
    layer: int
    top_k: int
    num_experts: int
    num_shared: int
    branch: Mapping[str, int] = field(repr=False)
    routed: Mapping[str, int] = field(repr=False, default_factory=dict)

    def expert_of(self, node: str) -> int | None:
        """The routed expert whose tokens alone ``node`` computes for, or None."""
        return self.routed.get(node)

    def units(self, group_size: int) -> tuple[Unit, ...]:
        """Router, shared and expert-group units at ``group_size`` routed experts per group."""
        i = self.layer
        out = [Unit(f"layers.{i}.router", UnitKind.OTHER, i)]
        out += [Unit(self.shared_unit(s), UnitKind.EXPERTS, i) for s in range(self.num_shared)]
        out += [Unit(f"layers.{i}.experts.{g}", UnitKind.EXPERTS, i)
                for g in range(-(-self.num_experts // group_size))]
        return tuple(out)

    def shared_unit(self, s: int) -> str:
        base = f"layers.{self.layer}.shared"
        return base if self.num_shared == 1 else f"{base}.{s}"

    def unit_of(self, node: str, group_size: int) -> str:
        """The unit ``node`` goes to when routed experts are grouped ``group_size`` at a time."""
        b = self.branch.get(node, ROUTER)
        if b == ROUTER:
            return f"layers.{self.layer}.router"
        if b < self.num_shared:
            return self.shared_unit(b)
        return f"layers.{self.layer}.experts.{(b - self.num_shared) // group_size}"


def find_moe_layers(graph: Graph, assign: Mapping[str, str], units: list[Unit]) -> tuple[MoeLayer, ...]:
    """The separable MoE layers among the MLP units of a block-granularity assignment.

    An MLP whose experts are not separate contractions (batched expert weights gathered by
    expert id) is not reported: it stays one unit and is costed densely.
    """
    by_unit: dict[str, list[Node]] = {}
    for n in graph.nodes:
        u = assign.get(n.name)
        if u is not None:
            by_unit.setdefault(u, []).append(n)
    out = []
    for unit in units:
        members = by_unit.get(unit.name, [])
        if unit.kind is UnitKind.MLP and any(n.op is OpKind.TOP_K for n in members):
            found = _analyze_moe(graph, unit, members)
            if found is not None:
                out.append(found)
    return tuple(out)


def _analyze_moe(graph: Graph, unit: Unit, members: list[Node]) -> MoeLayer | None:
    from placer.ir.passes.group_units import is_weighted_contraction

    names = {n.name for n in members}
    producers = graph.producers
    inner = [[q.name for i in n.inputs if (q := producers.get(i)) is not None and q.name in names]
             for n in members]
    inputs_of = {n.name: ins for n, ins in zip(members, inner)}
    reaches_topk: set[str] = set()  # the TopK and its ancestors among the members
    stack = [n.name for n in members if n.op is OpKind.TOP_K]
    while stack:
        x = stack.pop()
        if x not in reaches_topk:
            reaches_topk.add(x)
            stack.extend(inputs_of[x])
    weighted = {n.name for n in members if n.op in CONTRACTION and is_weighted_contraction(graph, n)}
    router = {w for w in weighted if w in reaches_topk}
    parent = {w: w for w in weighted if w not in router}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    # Pass 1: join each weighted contraction with the weighted ones it reads through plain ops.
    # Only plain nodes upstream of a weighted one need their dependency sets.
    needed: set[str] = set()
    stack = [p for n, ins in zip(members, inner) if n.name in parent for p in ins]
    while stack:
        p = stack.pop()
        if p not in needed and p not in weighted:
            needed.add(p)
            stack.extend(inputs_of[p])
    deps_of: dict[str, frozenset[str]] = {}
    empty: frozenset[str] = frozenset()
    for n, ins in zip(members, inner):
        if n.name not in needed and n.name not in parent:
            continue
        deps: set[str] = set()
        for p in ins:
            if p in parent:
                deps.add(p)
            elif p not in router:
                deps |= deps_of.get(p, empty)
        if n.name in parent:
            for d in deps:
                parent[find(d)] = find(n.name)
        else:
            deps_of[n.name] = frozenset(deps)
    root = {w: find(w) for w in parent}
    names_in_order = [n.name for n in members]
    # Pass 2: which branch each node depends on (one root, several, none), and routing.
    contrib: dict[str, str | None] = dict(root)  # what a node passes on: its root, else summary
    routed_dep: set[str] = set(router)  # nodes reading router output
    routed: set[str] = set()
    for name, ins in zip(names_in_order, inner):
        one: str | None = None
        dep = False
        for p in ins:
            if p in routed_dep:
                dep = True
            part = contrib.get(p)
            if part is not None:
                one = part if one is None or one == part else _MULTI
        if dep:
            routed_dep.add(name)
            if one is not None and one != _MULTI:
                routed.add(one)
        if name not in weighted:
            contrib[name] = one
    roots = list(dict.fromkeys(root[w] for w in names_in_order if w in root))
    if not roots:
        return None
    order = {name: j for j, name in enumerate(names_in_order)}
    comps: dict[str, list[str]] = {}
    for w in names_in_order:
        if w in root:
            comps.setdefault(root[w], []).append(w)
    shared = [r for r in roots if r not in routed]
    experts = sorted((r for r in roots if r in routed), key=lambda r: _expert_key(graph, comps[r], order))
    S = len(shared)
    rank = {r: s for s, r in enumerate(shared)}
    rank.update({r: S + e for e, r in enumerate(experts)})
    rank_of = {w: rank[r] for w, r in root.items()}
    # Pass 3: every node's branch (plain nodes take the latest branch they depend on), and the
    # nodes computing for one routed expert alone (``own``) or adding such a node's output.
    branch: dict[str, int] = {}
    own: dict[str, int] = {}
    routed_nodes: dict[str, int] = {}
    for name, ins in zip(names_in_order, inner):
        if name in router:
            b = alone = ROUTER
        elif name in rank_of:
            b = alone = rank_of[name]
        else:
            b = ROUTER
            for p in ins:
                rk = rank_of.get(p)
                if rk is None:
                    rk = branch[p]
                if rk > b:
                    b = rk
            alone = rank.get(contrib[name] or "", ROUTER)
        branch[name] = b
        if alone >= S:
            own[name] = routed_nodes[name] = alone - S
        elif b >= S and any(own.get(p) == b - S for p in ins):
            routed_nodes[name] = b - S
    return MoeLayer(unit.name, unit.layer, _top_k(graph, members, len(experts)), len(experts),
                    S, branch, routed_nodes)


def _top_k(graph: Graph, members: list[Node], experts: int) -> int:
    """``k`` of the TopK choosing among the ``experts`` (its indices' last dim), 0 if unknown."""
    found = 0
    for n in members:
        if n.op is not OpKind.TOP_K or len(n.outputs) < 2:
            continue
        t, scores = graph.types.get(n.outputs[1]), graph.types.get(n.inputs[0])
        k = t.shape[-1] if t is not None and t.shape else None
        if not isinstance(k, int):
            continue
        if scores is not None and scores.shape and scores.shape[-1] == experts:
            return k
        found = k
    return found


def _expert_key(graph: Graph, matmuls: list[str], order: Mapping[str, int]) -> tuple[int, int]:
    """Order experts by the index in their scope (``...experts.7...``), else by position."""
    first = min(order[m] for m in matmuls)
    for m in matmuls:
        hit = _EXPERT_INDEX.search(graph.node_by_name[m].scope)
        if hit:
            return (int(hit.group(1)), first)
    return (1 << 30, first)
