"""Row bounds of table lookups, checked before ``placer run`` emulates anything.

A ``Gather`` from a weight table (token embeddings, a learned position table such as GPT-2's
``wpe``) fails in the middle of a run when its indices pass the table's rows: a prompt longer
than the model's positions fails only after the prefill was priced (or reports an SRAM overflow
of the long prompt first), and ``--tokens`` past the positions fails after minutes of decoding.
Those indices are computed by a small integer sub-graph of the inputs (``Range`` over the
sequence length plus the past's length, ``position_ids`` plus one per step), so it is evaluated
here on the prefill's inputs and on the inputs of the last decode step, with the reference
kernels, and the first lookup past its table is a one-line error naming the node, the table and
what to shorten. Lookups whose indices depend on float values (a router's ``TopK``) are left to
the run: their cone is not index math.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from placer.backends.reference import execute_reference, to_compute
from placer.errors import UserError
from placer.ir import Graph
from placer.ir.attrs import AxisAttrs
from placer.ir.dtypes import DType
from placer.ir.graph import Node
from placer.ir.ops import OpKind

MAX_CONE_NODES = 256   # an index cone larger than this is not a position computation: not checked
# Ops that only read their inputs' shapes: a float graph input may feed them (its values are
# never read, so the check feeds a zero-stride array of the right shape).
_SHAPE_READERS = frozenset({OpKind.SHAPE})


def _index_cones(graph: Graph) -> list[tuple[Node, list[Node]]]:
    """Gathers from a weight table whose indices an all-integer sub-graph computes, each with
    that sub-graph's nodes in graph order."""
    producers = graph.producers
    order = {id(n): i for i, n in enumerate(graph.nodes)}
    out = []
    for node in graph.nodes:
        if node.op is not OpKind.GATHER or len(node.inputs) < 2 or node.inputs[0] not in graph.weights:
            continue
        cone: dict[int, Node] = {}
        stack, ok = [node.inputs[1]], True
        while stack and ok:
            v = stack.pop()
            p = producers.get(v)
            if p is None or id(p) in cone:
                continue
            ok = len(cone) < MAX_CONE_NODES and all(
                not o or graph.types[o].dtype.is_integer or graph.types[o].dtype is DType.BOOL
                for o in p.outputs)
            cone[id(p)] = p
            if p.op not in _SHAPE_READERS:
                stack.extend(i for i in p.inputs if i)
        if ok:
            out.append((node, sorted(cone.values(), key=lambda n: order[id(n)])))
    return out


def _evaluate(graph: Graph, cone: list[Node], wanted: str, feeds: Mapping[str, np.ndarray],
              weights: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """``wanted``'s value after running ``cone`` with the reference kernels; None when a value
    it reads has none (a weight without data) or a kernel fails (the run will say so)."""
    env: dict[str, np.ndarray] = {}

    def value(name: str) -> np.ndarray | None:
        if name in env:
            return env[name]
        if name in feeds:
            return np.asarray(feeds[name])
        w = graph.weights.get(name)
        if w is not None:
            data = weights.get(name, w.data)
            return None if data is None else to_compute(np.asarray(data))
        return None

    try:
        for n in cone:
            args = [value(i) if i else None for i in n.inputs]
            if any(i and a is None for i, a in zip(n.inputs, args)):
                return None
            for name, res in zip(n.outputs, execute_reference(n, args)):
                if name:
                    env[name] = np.asarray(res)
    except Exception:  # noqa: BLE001 - a cone the check cannot evaluate is left to the run
        return None
    return value(wanted)


def first_out_of_range(graph: Graph, feeds: Mapping[str, np.ndarray],
                       weights: Mapping[str, np.ndarray]) -> tuple[Node, str, int, int] | None:
    """The first table lookup whose indices pass its table under ``feeds``: (node, table, the
    index, the table's rows); None when every checked lookup is in range. ``weights`` holds the
    values of weights without inline data (a cone reading one that has none is skipped)."""
    for gather, cone in _index_cones(graph):
        indices = _evaluate(graph, cone, gather.inputs[1], feeds, weights)
        if indices is None or indices.size == 0 or indices.dtype.kind not in "iu":
            continue
        shape = graph.types[gather.inputs[0]].shape
        if not shape:
            continue
        dim = shape[gather.attrs_as(AxisAttrs).axis % len(shape)]
        if not isinstance(dim, int):
            continue
        rows = dim
        hi, lo = int(indices.max()), int(indices.min())
        if hi >= rows:
            return gather, gather.inputs[0], hi, rows
        if lo < -rows:
            return gather, gather.inputs[0], lo, rows
    return None


def last_step_feeds(graph: Graph, feeds: Mapping[str, np.ndarray], pairs: list[tuple[str, str]],
                    held: int, tokens: int) -> dict[str, np.ndarray]:
    """The inputs of the last of ``tokens - 1`` decode steps after a prefill that left ``held``
    tokens per sequence, as ``runner._next_feeds`` would make them, with zero-stride pasts (their
    values are never read by an index cone, only their shapes)."""
    steps = tokens - 1
    past_of = dict(pairs)
    out: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        f = np.asarray(feeds[name])
        if name in past_of and f.ndim > 2:
            shape = (*f.shape[:2], held + steps - 1, *f.shape[3:])
            out[name] = np.broadcast_to(np.zeros((), f.dtype), shape)
        elif name == "attention_mask" and f.ndim >= 2:
            out[name] = np.ones((f.shape[0], f.shape[1] + steps), f.dtype)
        elif name == "position_ids" and f.ndim >= 2:
            out[name] = f[:, -1:] + steps
        elif f.ndim >= 2:
            out[name] = np.zeros((f.shape[0], 1), f.dtype)
        else:
            out[name] = f
    return out


def check_lookups(graph: Graph, feeds: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray],
                  pairs: list[tuple[str, str]], held: int, tokens: int, model: str, inputs: str) -> None:
    """Refuse, before the run, a prompt or a ``--tokens`` whose table lookups pass their tables."""
    hit = first_out_of_range(graph, feeds, weights)
    if hit is not None:
        node, table, index, rows = hit
        raise UserError(f"{inputs}: node {node.name!r} (Gather) of {model} would read row {index:,} of "
                        f"{table!r}, which has {rows:,} rows (the prompt holds {held:,} tokens); "
                        f"shorten the prompt or fix the ids so every index is below {rows:,}")
    if tokens < 2 or not pairs:
        return
    hit = first_out_of_range(graph, last_step_feeds(graph, feeds, pairs, held, tokens), weights)
    if hit is not None:
        node, table, index, rows = hit
        most = max(tokens - (index - rows + 1), 1)
        raise UserError(f"option --tokens: decoding {tokens:,} tokens after a prompt of {held:,} makes node "
                        f"{node.name!r} (Gather) of {model} read row {index:,} of {table!r}, which has "
                        f"{rows:,} rows (the model's positions); decode at most {most:,} tokens or shorten "
                        f"the prompt")
