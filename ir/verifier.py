"""The IR verifier. Every pass manager step and every frontend ends with it.

Errors name the node and show the IR around it, like JAX's ``check_jaxpr``.
"""

from __future__ import annotations

import networkx as nx

from placer.ir.attrs import attrs_class
from placer.ir.graph import Graph, Node
from placer.ir.printer import excerpt


class VerificationError(ValueError):
    """The graph breaks an IR invariant. ``node`` is the offending node's name, if any."""

    def __init__(self, message: str, node: str | None = None, context: str = "") -> None:
        self.node = node
        self.context = context
        self.short = message
        super().__init__(message + (f"\n{context}" if context else ""))


def _fail(graph: Graph, node: Node | None, message: str) -> VerificationError:
    where = f"node {node.name!r} ({node.op.value}): " if node is not None else ""
    return VerificationError(where + message, node.name if node else None, excerpt(graph, node))


def verify(graph: Graph, *, require_types: bool = False, require_units: bool = False) -> None:
    """Check SSA form, topological order, attribute types and, if present, units.

    Raises:
        VerificationError: on the first violated invariant.
    """
    defined: set[str] = set()
    for name in graph.inputs:
        if name in defined:
            raise _fail(graph, None, f"graph input %{name} is declared twice")
        defined.add(name)
        if name not in graph.types:
            raise _fail(graph, None, f"graph input %{name} has no type")
    for name, w in graph.weights.items():
        if name != w.name:
            raise _fail(graph, None, f"weight table key {name!r} != weight name {w.name!r}")
        if name in defined:
            raise _fail(graph, None, f"weight %{name} has the name of a graph input")
        defined.add(name)
    all_outputs = {o for n in graph.nodes for o in n.outputs if o}
    seen_nodes: set[str] = set()
    for node in graph.nodes:
        if node.name in seen_nodes:
            raise _fail(graph, node, "node name is used twice")
        seen_nodes.add(node.name)
        if not isinstance(node.attrs, attrs_class(node.op)):
            raise _fail(graph, node, f"attributes are {type(node.attrs).__name__}, "
                        f"expected {attrs_class(node.op).__name__}")
        for i in node.inputs:
            if i and i not in defined:
                if i in all_outputs:
                    raise _fail(graph, node, f"input %{i} is used before it is defined "
                                "(the graph has a cycle or is not topologically sorted)")
                raise _fail(graph, node, f"input %{i} is not defined anywhere (dangling input)")
        for o in node.outputs:
            if not o:
                continue
            if o in defined:
                raise _fail(graph, node, f"output %{o} is defined twice")
            defined.add(o)
            if require_types and o not in graph.types:
                raise _fail(graph, node, f"output %{o} has no type")
    for o in graph.outputs:
        if o not in defined:
            raise _fail(graph, None, f"graph output %{o} is not defined")
    for kv in graph.kv_caches:
        if kv.value not in defined:
            raise _fail(graph, None, f"kv cache {kv.name} refers to undefined value %{kv.value}")
        if kv.tokens_per_entry < 1 or kv.state_elements < 0 or kv.elements_per_token < 0:
            raise _fail(graph, None, f"kv cache {kv.name}: tokens_per_entry must be >= 1 and sizes >= 0")
    if graph.units or require_units:
        _verify_units(graph)


def _verify_units(graph: Graph) -> None:
    names = {u.name for u in graph.units}
    if len(names) != len(graph.units):
        raise _fail(graph, None, "a unit name is declared twice")
    members: dict[str, list[Node]] = {u: [] for u in names}
    for node in graph.nodes:
        if node.unit not in names:
            raise _fail(graph, node, f"node is in unknown unit {node.unit!r}")
        members[node.unit].append(node)
    for unit, nodes in members.items():
        if not nodes:
            raise _fail(graph, None, f"unit {unit!r} has no nodes")
    # Each unit is weakly connected through its own nodes' values (weights count as shared):
    # one union-find over all nodes, linear in the graph.
    parent = {n.name: n.name for n in graph.nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    producers = graph.producers
    for n in graph.nodes:
        for i in n.inputs:
            p = producers.get(i)
            if p is not None and p.unit == n.unit:
                a, b = find(p.name), find(n.name)
                if a != b:
                    parent[a] = b
    for unit, nodes in members.items():
        roots = {find(n.name) for n in nodes}
        if len(roots) > 1:
            pieces: dict[str, list[str]] = {}
            for n in nodes:
                pieces.setdefault(find(n.name), []).append(n.name)
            firsts = sorted(min(v) for v in pieces.values())
            raise _fail(graph, graph.node_by_name[firsts[1]],
                        f"unit {unit!r} is not connected ({len(roots)} pieces)")
    dag = unit_graph(graph)
    if not nx.is_directed_acyclic_graph(dag):
        cycle = nx.find_cycle(dag)
        raise _fail(graph, None, "units form a cycle: " + " -> ".join(a for a, _ in cycle))


def unit_graph(graph: Graph) -> nx.DiGraph:
    """Units as a DiGraph; an edge u -> v carries the values flowing from u to v."""
    dag = nx.DiGraph()
    dag.add_nodes_from(u.name for u in graph.units)
    producers = graph.producers
    for n in graph.nodes:
        for i in n.inputs:
            p = producers.get(i)
            if p is not None and p.unit != n.unit:
                if dag.has_edge(p.unit, n.unit):
                    vals = dag.edges[p.unit, n.unit]["values"]
                    if i not in vals:
                        vals.append(i)
                else:
                    dag.add_edge(p.unit, n.unit, values=[i])
    return dag
