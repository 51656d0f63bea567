"""Selections of whole expert matrices: a gather of a stacked weight that feeds MatMuls.

Exporters write a mixture-of-experts layer as ``Gather``/``GatherND`` (or ``Expand``) of a
stacked weight ``W [E, A, B]`` by expert id, followed by a batched MatMul with the tokens'
activations. On a wafer the experts' matrices are resident: the selection only tells the PEs
which expert's tiles to use, and the MatMul runs as GEMVs on those tiles. The mesh emulator
(``placer.backends.mesh.experts``) executes such selections that way and the cost model
(``placer.cost_model``) costs them that way: one predicate, here, decides which nodes they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from placer.ir.attrs import AxisAttrs
from placer.ir.graph import Graph, Node
from placer.ir.ops import OpKind

SELECTING = (OpKind.GATHER, OpKind.GATHER_ND, OpKind.EXPAND)


@dataclass(frozen=True)
class ExpertSelection:
    """A node selecting whole matrices of ``weight`` for MatMuls; ``operand`` is the position
    (0 or 1) of the selected matrices in every consuming MatMul; ``users`` those MatMuls."""

    weight: str
    operand: int
    users: tuple[str, ...]


def _candidate(graph: Graph, node: Node) -> bool:
    if node.op not in SELECTING or not node.inputs or node.inputs[0] not in graph.weights:
        return False
    rank = graph.weights[node.inputs[0]].type.rank
    if rank < (2 if node.op is OpKind.EXPAND else 3):
        return False
    return not (node.op is OpKind.GATHER and node.attrs_as(AxisAttrs).axis % rank >= rank - 2)


def expert_selections(graph: Graph) -> dict[str, ExpertSelection]:
    """Nodes (by name) that select matrices of a stacked weight for MatMuls only, at one operand
    position. Whether the selected slices are whole matrices depends on the shapes: see
    ``selects_whole_matrices``."""
    consumers = graph.consumers
    outputs = set(graph.outputs)
    found: dict[str, ExpertSelection] = {}
    for node in graph.nodes:
        if not _candidate(graph, node):
            continue
        out = node.outputs[0]
        users = consumers.get(out, [])
        if not users or out in outputs or any(u.op is not OpKind.MATMUL for u in users):
            continue
        if any(u.inputs.count(out) != 1 for u in users):
            continue
        positions = {u.inputs.index(out) for u in users}
        if len(positions) != 1:
            continue
        found[node.name] = ExpertSelection(node.inputs[0], positions.pop(), tuple(u.name for u in users))
    return found


def selects_whole_matrices(graph: Graph, node: Node) -> bool:
    """Whether ``node``'s output type ends in its weight's last two (static) axes."""
    out = graph.types.get(node.outputs[0])
    weight = graph.weights[node.inputs[0]].type.shape
    return out is not None and len(out.shape) >= 2 and tuple(out.shape[-2:]) == tuple(weight[-2:])
