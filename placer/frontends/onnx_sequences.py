"""ONNX sequence ops of the dynamo exporter's unoptimised graphs, imported as slices.

``torch.onnx.export(..., dynamo=True, optimize=False)`` writes ``torch.split`` (GPT-2's fused
QKV, Mixtral's router) as ``SplitToSequence`` followed by one ``SequenceAt`` per piece. The IR
has no sequence values: each ``SequenceAt(seq, i)`` becomes the ``Slice`` of piece i (its
start and end along the axis follow from the constant ``split`` input: a chunk size or a
list of sizes), so the pieces need no knowledge of the split axis' length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from placer.ir import attrs as A
from placer.ir.graph import Node
from placer.ir.ops import OpKind

if TYPE_CHECKING:
    from placer.frontends.onnx import _Importer


@dataclass(frozen=True)
class _Sequence:
    source: str
    sizes: tuple[int, ...] | int | None  # piece sizes, one chunk size, or None (pieces of 1)
    axis: int
    keepdims: bool


def _constant(imp: _Importer, value: str, name: str, what: str) -> np.ndarray:
    w = imp.weights.get(value)
    if w is None or w.data is None:
        raise imp.fail(f"node {name!r}: {what} %{value} must be a constant")
    return np.asarray(w.data)


def _split_to_sequence(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str],
                       scope: str) -> None:
    sizes: tuple[int, ...] | int | None = None
    if len(ins) > 1 and ins[1]:
        split = _constant(imp, ins[1], name, "the split input")
        sizes = int(split) if split.ndim == 0 else tuple(int(s) for s in split.reshape(-1))
    users = [n for n in imp.proto.graph.node if outs[0] in n.input]
    if any(u.op_type != "SequenceAt" or list(u.input).index(outs[0]) != 0 for u in users):
        raise imp.fail(f"node {name!r}: SplitToSequence is supported only when SequenceAt reads its "
                       "pieces (export with the optimizer, which turns it into Split)")
    keep = bool(a.get("keepdims", 1)) or sizes is not None
    imp.sequences[outs[0]] = _Sequence(ins[0], sizes, int(a.get("axis", 0)), keep)


def _sequence_at(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str], scope: str) -> None:
    seq = imp.sequences.get(ins[0])
    if seq is None:
        raise imp.fail(f"node {name!r}: SequenceAt of %{ins[0]}, which is not a SplitToSequence output")
    i = int(_constant(imp, ins[1], name, "the position"))
    if isinstance(seq.sizes, tuple):
        if i < 0:
            i += len(seq.sizes)
        start, end = sum(seq.sizes[:i]), sum(seq.sizes[:i + 1])
    else:
        if i < 0:
            raise imp.fail(f"node {name!r}: SequenceAt with a negative position of a chunked split")
        chunk = seq.sizes or 1
        start, end = i * chunk, (i + 1) * chunk  # Slice clamps the last, shorter chunk
    piece = outs[0] if seq.keepdims else f"{name}/piece"
    inputs = (seq.source, imp.constant(name, [start]), imp.constant(name, [end]),
              imp.constant(name, [seq.axis]))
    imp.nodes.append(Node(name, OpKind.SLICE, inputs, (piece,), A.NoAttrs(), scope))
    if not seq.keepdims:
        imp.nodes.append(Node(imp.fresh_name(f"{name}/squeeze"), OpKind.SQUEEZE,
                              (piece, imp.constant(name, [seq.axis])), (outs[0],), A.SqueezeAttrs(), scope))


SEQUENCE_EXPANDERS = {("", "SplitToSequence"): _split_to_sequence, ("", "SequenceAt"): _sequence_at}
