"""Text form of a graph: stable, one line per weight and node, used in errors and golden files."""

from __future__ import annotations

from placer.ir.attrs import Attrs, attrs_to_dict
from placer.ir.graph import Graph, Node, Weight


def format_attrs(attrs: Attrs) -> str:
    items = attrs_to_dict(attrs)
    if not items:
        return ""
    return "[" + ", ".join(f"{k}={_fmt(v)}" for k, v in items.items()) + "]"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return str(v)


def format_weight(w: Weight) -> str:
    where = ""
    if w.location is not None:
        where = f" external({w.location.path}@{w.location.offset}+{w.location.length})"
    elif w.data is not None:
        where = " inline"
    return f"weight %{w.name}: {w.type} {w.role.value} {w.nbytes}B{where}"


def format_node(graph: Graph, node: Node) -> str:
    outs = ", ".join(f"%{o}" if o else "_" for o in node.outputs)
    ins = ", ".join(f"%{i}" if i else "_" for i in node.inputs)
    types = ", ".join(str(graph.types[o]) if o in graph.types else "?" for o in node.outputs if o)
    tail = []
    if node.unit:
        tail.append(f"unit={node.unit}")
    if node.scope:
        tail.append(f"scope={node.scope}")
    comment = f"  # {node.name}" + (" " + " ".join(tail) if tail else "")
    return f"{outs} = {node.op.value}{format_attrs(node.attrs)}({ins}) : {types}{comment}"


def print_graph(graph: Graph) -> str:
    """The whole graph as text."""
    ins = ", ".join(f"%{i}: {graph.types[i]}" if i in graph.types else f"%{i}" for i in graph.inputs)
    outs = ", ".join(f"%{o}" for o in graph.outputs)
    lines = [f"graph {graph.name}({ins}) -> ({outs}) {{"]
    for w in graph.weights.values():
        lines.append("  " + format_weight(w))
    for u in graph.units:
        lines.append(f"  unit {u.name}: {u.kind.value}" + (f" layer={u.layer}" if u.layer >= 0 else ""))
    for kv in graph.kv_caches:
        win = f" window={kv.window}" if kv.window else ""
        per = f"/{kv.tokens_per_entry} tokens" if kv.tokens_per_entry > 1 else "/token"
        state = f" state={kv.state_elements}" if kv.state_elements else ""
        lines.append(f"  kv_cache {kv.name}: %{kv.value} {kv.elements_per_token}{per} "
                     f"{kv.dtype.value}{win}{state}")
    for n in graph.nodes:
        lines.append("  " + format_node(graph, n))
    lines.append("}")
    return "\n".join(lines) + "\n"


def excerpt(graph: Graph, node: Node | None, context: int = 2) -> str:
    """The lines around ``node`` (marked with ``>>``), for error messages."""
    if node is None or node not in graph.nodes:
        return ""
    idx = graph.nodes.index(node)
    lo, hi = max(0, idx - context), min(len(graph.nodes), idx + context + 1)
    out = []
    for i in range(lo, hi):
        mark = ">> " if i == idx else "   "
        out.append(mark + format_node(graph, graph.nodes[i]))
    return "\n".join(out)
