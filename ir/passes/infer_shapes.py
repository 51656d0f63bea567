"""The ``infer-shapes`` pass: a type for every value, from the rules in ``SHAPE_RULES``.

Graph inputs and weights keep their declared types; every node output is (re)computed in graph
order. Small tensors' contents (shape tensors, inline integer constants) are propagated so that
shapes computed at run time stay symbolic polynomials of the graph inputs' dims.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from placer.ir.graph import Graph
from placer.ir.passes.base import PassResult
from placer.ir.shape_rules import SHAPE_RULES
from placer.ir.shape_values import Info, RuleContext, ShapeMismatch, as_value, shape_error
from placer.ir.types import TensorType


def infer_values(graph: Graph) -> dict[str, Info]:
    """Type and known contents of every value (the pass keeps only the types).

    Raises:
        ShapeError: a node's inputs do not fit its op; names the node and shows the IR around it.
    """
    infos: dict[str, Info] = {}
    for name in graph.inputs:
        infos[name] = Info(graph.type_of(name))
    for name, w in graph.weights.items():
        value = as_value(np.asarray(w.data)) if w.data is not None else None
        infos[name] = Info(w.type, value)
    ctx = RuleContext()
    types: dict[str, TensorType] = dict(graph.types)
    for node in graph.nodes:
        ins = [infos.get(i) if i else None for i in node.inputs]
        try:
            outs = SHAPE_RULES[node.op](ctx, node, ins)
        except ShapeMismatch as err:
            raise shape_error(graph.replace(types=types), node, str(err)) from None
        except (IndexError, ValueError, TypeError) as err:
            raise shape_error(graph.replace(types=types), node,
                              f"inputs {', '.join(str(i.type) if i else '_' for i in ins)} "
                              f"do not fit ({type(err).__name__}: {err})") from None
        for out, info in zip(node.outputs, outs):
            if out:
                infos[out] = info
                types[out] = info.type
    return infos


def infer_shapes(graph: Graph) -> Graph:
    """A copy of ``graph`` whose ``types`` hold a type for every input, weight and node output."""
    infos = infer_values(graph)
    return graph.replace(types={name: info.type for name, info in infos.items()})


@dataclass(frozen=True)
class InferShapes:
    """Pass wrapper of ``infer_shapes``; ``changed`` is whether any type was added or differs."""

    name: ClassVar[str] = "infer-shapes"

    def run(self, graph: Graph) -> PassResult:
        out = infer_shapes(graph)
        return PassResult(out, dict(out.types) != dict(graph.types))
