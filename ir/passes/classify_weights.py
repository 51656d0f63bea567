"""The ``classify-weights`` pass: each weight is a PARAMETER or a CONSTANT by its role.

Names cannot be trusted (the dynamo exporter renames and merges initializers), so the pass
looks at how a weight meets the hidden-state data path:

* activations are the float values that depend on a float graph input (hidden states, past
  K/V) or on an embedding lookup (a float table gathered with indices read from a graph input);
* a float weight is a parameter when, possibly through layout ops (transpose, reshape, cast,
  gather of expert slices, ...), it is a MatMul/Gemm operand opposite an activation, a Gemm
  bias next to a parameter, the scale or bias of a normalization op, an embedding table, a
  per-channel vector (numel > 1, one non-1 dim equal to the activation's last dim) added to
  or multiplied with an activation, or a gathered table added to an activation (learned
  position embeddings);
* the packed weights of MatMulNBits / GatherBlockQuantized are parameters and their block
  scales and zero points ``QUANTIZATION`` (bytes of the parameter, not parameters);
* everything else is a constant: integer tensors, shape constants, scalars (epsilon, scales),
  rotary ``inv_freq`` (it meets position ids, not hidden states), cos/sin caches, masks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from placer.ir.graph import Graph, Node, Weight, WeightRole
from placer.ir.ops import OpKind
from placer.ir.passes.base import PassResult

# Ops through which a weight is still "the same weight" (possibly reshaped or sliced).
_CARRY = frozenset({
    OpKind.TRANSPOSE, OpKind.RESHAPE, OpKind.CAST, OpKind.IDENTITY, OpKind.UNSQUEEZE,
    OpKind.SQUEEZE, OpKind.SLICE, OpKind.SPLIT, OpKind.CONCAT, OpKind.EXPAND, OpKind.FLATTEN,
    OpKind.TILE, OpKind.GATHER, OpKind.GATHER_ND,
})
# Ops through which integer indices are still "the graph input's indices".
_INDEX_CARRY = frozenset({
    OpKind.CAST, OpKind.RESHAPE, OpKind.UNSQUEEZE, OpKind.SQUEEZE, OpKind.IDENTITY,
    OpKind.FLATTEN, OpKind.EXPAND,
})
_NORMS = frozenset({OpKind.LAYER_NORM, OpKind.RMS_NORM})
# Quantized ops: (packed parameter inputs, scale/zero-point inputs, bias inputs) by position.
_QUANTIZED: dict[OpKind, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    OpKind.MATMUL_NBITS: ((1,), (2, 3), (5,)),
    OpKind.GATHER_BLOCK_QUANTIZED: ((0,), (2, 3), ()),
}
_ELEMENTWISE_PARAM = frozenset({OpKind.ADD, OpKind.MUL, OpKind.SUB})


def classify_weights(graph: Graph) -> Graph:
    """A copy of ``graph`` with every weight's role set to PARAMETER or CONSTANT."""
    roots = _weight_roots(graph)
    activations = _activations(graph, roots)
    params: set[str] = set()

    def mark(value: str) -> None:
        w = roots.get(value)
        if w is not None:
            params.add(w)

    quant: set[str] = set()
    for node in graph.nodes:
        ins = node.inputs
        if node.op in _QUANTIZED and (ins[0] in activations or _inputs_indices(graph, node)):
            # Packed weights are integers (not in ``roots``): the op's operands say what they are.
            packed, extra, bias = _QUANTIZED[node.op]
            params.update(ins[i] for i in packed + bias if i < len(ins) and ins[i] in graph.weights)
            quant.update(ins[i] for i in extra if i < len(ins) and ins[i] in graph.weights)
        elif node.op in (OpKind.MATMUL, OpKind.GEMM) and len(ins) >= 2:
            a, b = ins[0], ins[1]
            if a in activations:
                mark(b)
            if b in activations:
                mark(a)
            if node.op is OpKind.GEMM and len(ins) > 2 and ins[2] and (
                    roots.get(a) in params or roots.get(b) in params or a in activations
                    or b in activations):
                mark(ins[2])
        elif node.op in _NORMS:
            for x in ins[1:3]:
                if x:
                    mark(x)
        elif node.op is OpKind.GATHER and len(ins) >= 2 and ins[0] in roots:
            if _is_input_indices(graph, ins[1]) or _added_to_activation(graph, node, activations):
                mark(ins[0])
        elif node.op in _ELEMENTWISE_PARAM and len(ins) == 2:
            for w, x in ((ins[0], ins[1]), (ins[1], ins[0])):
                if w in roots and x in activations and _per_channel(graph, w, x):
                    mark(w)
    weights: dict[str, Weight] = {}
    for name, wt in graph.weights.items():
        role = WeightRole.PARAMETER if name in params else \
            WeightRole.QUANTIZATION if name in quant else WeightRole.CONSTANT
        weights[name] = wt if wt.role is role else replace(wt, role=role)
    return graph.replace(weights=weights)


def _inputs_indices(graph: Graph, node: Node) -> set[str]:
    """The stored table of a GatherBlockQuantized indexed by graph-input ids (an embedding)."""
    if node.op is OpKind.GATHER_BLOCK_QUANTIZED and len(node.inputs) > 1 and \
            _is_input_indices(graph, node.inputs[1]):
        return {node.inputs[0]}
    return set()


def _weight_roots(graph: Graph) -> dict[str, str]:
    """Value -> the float weight it carries (the weight itself, or through _CARRY ops)."""
    roots = {n: n for n, w in graph.weights.items() if w.type.dtype.is_float}
    for node in graph.nodes:
        if node.op in _CARRY and node.inputs and node.inputs[0] in roots:
            for o in node.outputs:
                if o:
                    roots[o] = roots[node.inputs[0]]
    return roots


def _is_input_indices(graph: Graph, value: str) -> bool:
    inputs = set(graph.inputs)
    producers = graph.producers
    while value not in inputs:
        node = producers.get(value)
        if node is None or node.op not in _INDEX_CARRY:
            return False
        value = node.inputs[0]
    return graph.types[value].dtype.is_integer if value in graph.types else True


def _activations(graph: Graph, roots: dict[str, str]) -> set[str]:
    """Float values on the hidden-state data path."""
    types = graph.types
    act = {i for i in graph.inputs if i in types and types[i].dtype.is_float}
    for node in graph.nodes:
        seed = (node.op is OpKind.GATHER and len(node.inputs) >= 2 and node.inputs[0] in roots
                and _is_input_indices(graph, node.inputs[1])) or bool(_inputs_indices(graph, node))
        if seed or any(i in act for i in node.inputs if i):
            for o in node.outputs:
                if o and (o not in types or types[o].dtype.is_float):
                    act.add(o)
    return act


def _added_to_activation(graph: Graph, node: Node, activations: set[str]) -> bool:
    """Whether a gathered table's rows are added to the hidden state (position embeddings)."""
    frontier = [o for o in node.outputs if o]
    seen: set[str] = set()
    while frontier:
        v = frontier.pop()
        if v in seen:
            continue
        seen.add(v)
        for user in graph.consumers.get(v, []):
            if user.op is OpKind.ADD and any(i in activations for i in user.inputs if i != v):
                return True
            if user.op in _CARRY:
                frontier.extend(o for o in user.outputs if o)
    return False


def _per_channel(graph: Graph, w: str, x: str) -> bool:
    """``w`` is a vector along the activation ``x``'s last dim (a norm scale or a bias)."""
    wt, xt = graph.types.get(w), graph.types.get(x)
    if wt is None or xt is None or not xt.shape:
        return False
    big = [d for d in wt.shape if d != 1]
    return len(big) == 1 and big[0] == xt.shape[-1] and wt.shape[-1] == xt.shape[-1] and big[0] != 1


@dataclass(frozen=True)
class ClassifyWeights:
    """Pass wrapper of ``classify_weights``; needs types (run ``infer-shapes`` first)."""

    name: ClassVar[str] = "classify-weights"

    def run(self, graph: Graph) -> PassResult:
        out = classify_weights(graph)
        changed = any(out.weights[n].role is not w.role for n, w in graph.weights.items())
        return PassResult(out, changed)
