"""The reference interpreter: runs an IR graph on one device with the numpy kernels.

It is the oracle of the mesh backend. The run loop keeps an environment of live values and
frees each value after its last use (like torch.fx's ``Interpreter`` and JAX's ``eval_jaxpr``);
a failing kernel is re-raised as ``NodeExecutionError`` naming the node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from placer.backends.kernels import KERNELS
from placer.backends.kernels.elementwise import ROUNDED, round_to
from placer.ir.graph import Graph, Node
from placer.ir.ops import OpKind

Execute = Callable[[Node, list], tuple]


class NodeExecutionError(RuntimeError):
    """A node failed while executing; ``node`` is its name."""

    def __init__(self, node: Node, cause: BaseException) -> None:
        self.node = node.name
        self.cause = cause
        super().__init__(f"node {node.name!r} ({node.op.value}) failed: {type(cause).__name__}: {cause}")


class MissingValueError(KeyError):
    """A graph input or weight has no value."""


_NARROW_INTS = {"int4": np.int8, "uint4": np.uint8, "int2": np.int8, "uint2": np.uint8}


def to_compute(array: np.ndarray) -> np.ndarray:
    """Stored values as the type they are computed in: bf16, fp8 and fp4 (ml_dtypes) as
    float32, int4/uint4 as int8/uint8."""
    arr = np.asarray(array)
    if arr.dtype.name in _NARROW_INTS:
        return arr.astype(_NARROW_INTS[arr.dtype.name])
    if arr.dtype.kind == "V" or (arr.dtype.kind == "f" and arr.dtype.itemsize == 1) or \
            arr.dtype.name in ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"):
        return arr.astype(np.float32)
    return arr


def execute_reference(node: Node, args: list) -> tuple:
    """Run one node with the reference kernel of its op kind."""
    out = KERNELS[node.op](node, *args)
    return out if isinstance(out, tuple) else (out,)


def weight_values(graph: Graph, overrides: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Values of the graph's weights: ``overrides`` first, then inline ``Weight.data``."""
    values: dict[str, np.ndarray] = {}
    for name, w in graph.weights.items():
        if overrides is not None and name in overrides:
            values[name] = overrides[name]
        elif w.data is not None:
            values[name] = w.data
    return values


def last_uses(graph: Graph) -> dict[int, list[str]]:
    """Node index -> values whose last reader it is (graph outputs are never freed)."""
    last: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v:
                last[v] = i
    keep = set(graph.outputs)
    out: dict[int, list[str]] = {}
    for v, i in last.items():
        if v not in keep:
            out.setdefault(i, []).append(v)
    return out


def run_graph(graph: Graph, inputs: Mapping[str, np.ndarray], *,
              weights: Mapping[str, np.ndarray] | None = None,
              execute: Execute = execute_reference,
              fetch: Callable[[Node, str], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Evaluate ``graph`` and return its outputs by name.

    Args:
        graph: the graph, in topological order.
        inputs: a value for every graph input.
        weights: values of weights without inline data (and overrides of inline ones).
        execute: runs one node given its input values; the reference kernels by default,
            the mesh backend passes its own.
        fetch: the value of an input that has none yet, asked for by the node reading it
            (weights made when their unit runs); raises KeyError when it has none either.

    Raises:
        MissingValueError: an input or weight has no value.
        NodeExecutionError: a node failed; the message names it.
    """
    env: dict[str, np.ndarray] = {k: to_compute(v) for k, v in weight_values(graph, weights).items()}
    # Values typed bf16/fp8/fp4 are computed in float32 and rounded to their type when made.
    narrow = {name: t.dtype for name, t in graph.types.items() if t.dtype in ROUNDED}
    for name in graph.inputs:
        if name not in inputs:
            raise MissingValueError(f"graph input {name!r} has no value")
        env[name] = np.asarray(inputs[name])
    frees = last_uses(graph)
    for i, node in enumerate(graph.nodes):
        try:
            args = [(env[v] if v in env or fetch is None else fetch(node, v)) if v else None
                    for v in node.inputs]
        except KeyError as e:
            raise MissingValueError(f"node {node.name!r} reads {e.args[0]!r}, which has no value "
                                    "(a weight without data?)") from None
        try:
            results = execute(node, args)
        except NodeExecutionError:
            raise
        except Exception as e:  # noqa: BLE001 - re-raised with the node that failed
            raise NodeExecutionError(node, e) from e
        for name, value in zip(node.outputs, results):
            if name:
                value = np.asarray(value)
                if name in narrow and value.dtype.kind == "f" and node.op is not OpKind.CAST:
                    value = round_to(value, narrow[name])
                env[name] = value
        for v in frees.get(i, ()):
            env.pop(v, None)
    return {name: env[name] for name in graph.outputs}
