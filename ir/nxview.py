"""A networkx view of a graph for graph algorithms (dominators, components, paths)."""

from __future__ import annotations

import networkx as nx

from placer.ir.graph import Graph


def to_networkx(graph: Graph, *, include_values: bool = False) -> nx.DiGraph:
    """Nodes are IR node names (and, with ``include_values``, value names prefixed ``%``).

    Without values, an edge ``a -> b`` means b reads an output of a; its ``values`` attribute
    lists which.
    """
    g = nx.DiGraph()
    producers = graph.producers
    for n in graph.nodes:
        g.add_node(n.name, op=n.op, unit=n.unit)
        for i in n.inputs:
            if not i:
                continue
            if include_values:
                g.add_edge("%" + i, n.name)
                continue
            p = producers.get(i)
            if p is not None:
                if g.has_edge(p.name, n.name):
                    g.edges[p.name, n.name]["values"].append(i)
                else:
                    g.add_edge(p.name, n.name, values=[i])
        if include_values:
            for o in n.outputs:
                if o:
                    g.add_edge(n.name, "%" + o)
    return g
