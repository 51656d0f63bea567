"""Norms whose statistic runs beside the GEMVs they feed (``mesh_physics.fused_norm_extra_cycles``).

A norm ``y = (x - mean) * inv * gamma + beta`` (LayerNorm; RMSNorm: ``mean = 0``, no ``beta``)
read only by GEMVs ``y @ W`` commutes with them: ``y @ W = inv * ((x gamma) @ W - mean (gamma @ W))
+ beta @ W``, where ``gamma @ W`` and ``beta @ W`` are constants of the weights. So each GEMV can
start on the un-normalised ``x gamma`` while the norm's statistics (sum, and sum of squares) are
reduced; the GEMV's reduction root scales its result by ``inv`` (and corrects for the mean and
the bias). The performance model and the mesh emulator fuse exactly the norms this finds.

A norm is fused when (pattern over the IR graph, any norm kind ``NORMS``, one or more GEMVs):
its only used output is ``y`` (LayerNorm's mean and inverse std unread), ``y`` is not a graph
output, it normalises the last axis only (the GEMVs' contraction axis), and every reader of
``y`` is a MatMul or Gemm (not ``trans_a``) in the same unit that reads ``y`` as its first
operand and a stored 2-D weight as its second (fused QKV: q, k and v projections sharing
``y``; gate/up).

A Softmax is fused the same way when its probabilities feed P @ V directly (a decomposed
attention: MatMul, Softmax, MatMul): it normalises the last axis, ``y`` is not a graph output,
and its one reader is a MatMul of its unit reading ``y`` as its first operand and a value (not
a stored tensor: V) as its second. P @ V runs on ``exp(x - max)``, the row sums are reduced
beside its collective and its roots divide (``mesh_physics``: "Softmax sum after P @ V"); the
max all-reduce stays. (A softmax that reaches P @ V through other ops, such as the ``IsNaN`` /
``Where`` of torch's sdpa export, is not fused.)
"""

from __future__ import annotations

from placer.ir.attrs import AxisAttrs, GemmAttrs, NormAttrs
from placer.ir.graph import Graph, Node
from placer.ir.ops import OpKind

NORMS = frozenset({OpKind.RMS_NORM, OpKind.LAYER_NORM})
"""Norm kinds whose statistics can run beside the GEMVs they feed."""


def _reads_as_gemv_input(node: Node, value: str, graph: Graph) -> bool:
    if node.op not in (OpKind.MATMUL, OpKind.GEMM) or len(node.inputs) < 2:
        return False
    if node.inputs[0] != value or value in node.inputs[1:]:
        return False
    if node.op is OpKind.GEMM and node.attrs_as(GemmAttrs).trans_a:
        return False
    w = graph.weights.get(node.inputs[1])
    return w is not None and len(w.type.shape) == 2


def _feeds_pv(node: Node, graph: Graph, consumers: dict[str, list[Node]], outputs: set[str]) -> bool:
    """A Softmax over the last axis whose one reader is P @ V (a MatMul on a value)."""
    y = node.outputs[0]
    t = graph.types.get(y)
    axis = node.attrs_as(AxisAttrs).axis
    if y in outputs or (axis != -1 and (t is None or t.rank < 1 or axis % t.rank != t.rank - 1)):
        return False
    readers = consumers.get(y, [])
    if len(readers) != 1:
        return False
    r = readers[0]
    return (r.op is OpKind.MATMUL and r.unit == node.unit and len(r.inputs) >= 2 and r.inputs[0] == y
            and r.inputs[1] != y and r.inputs[1] not in graph.weights)


def fused_norms(graph: Graph) -> dict[str, str]:
    """Norm (or Softmax) node name -> its output ``y`` for every norm the GEMVs reading ``y``
    absorb (every softmax whose sum P @ V carries)."""
    consumers = graph.consumers
    outputs = set(graph.outputs)
    found: dict[str, str] = {}
    for node in graph.nodes:
        if node.op is OpKind.SOFTMAX and node.outputs and node.outputs[0]:
            if _feeds_pv(node, graph, consumers, outputs):
                found[node.name] = node.outputs[0]
            continue
        if node.op not in NORMS or not node.outputs or not node.outputs[0]:
            continue
        y = node.outputs[0]
        if y in outputs or any(o and (o in outputs or consumers.get(o)) for o in node.outputs[1:]):
            continue
        axis = node.attrs_as(NormAttrs).axis
        t = graph.types.get(node.inputs[0]) or graph.types.get(y)
        if axis != -1 and (t is None or t.rank < 1 or axis % t.rank != t.rank - 1):
            continue
        readers = consumers.get(y, [])
        if readers and all(r.unit == node.unit and _reads_as_gemv_input(r, y, graph) for r in readers):
            found[node.name] = y
    return found
