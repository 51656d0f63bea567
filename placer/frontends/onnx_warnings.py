"""Warnings about ONNX files whose numbers would silently mislead (``PlacerWarning``, one line).

* Static token dims: ``input_ids`` of fixed shape (and no dynamic past) means the graph is one
  fixed length: KV bytes and FLOPs then describe that length, not a decode step.
* One stored tensor serving several parameters: two norms reading one initializer (the dynamo
  optimizer merges initializers with equal contents, e.g. freshly initialised norms) count
  once, so parameters are undercounted. Stored tensors are identified by content for inline
  data and by (location, offset) for external data. A table read by the embedding gather and
  by the LM head (tied weights) is legitimate and not reported.

``odd_export_findings(graph)`` returns the findings; ``warn_findings`` emits them. Each
``ExportWarning`` carries its finding, so ``--json`` outputs can list them.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from placer._warnings import PlacerWarning
from placer.ir.graph import Graph, WeightRole
from placer.ir.ops import CONTRACTION, OpKind
from placer.ir.passes.find_kv_caches import find_token_symbols

# Ops through which a stored tensor is still the same tensor.
_VIEWS = frozenset({OpKind.TRANSPOSE, OpKind.RESHAPE, OpKind.CAST, OpKind.IDENTITY, OpKind.UNSQUEEZE,
                    OpKind.SQUEEZE, OpKind.FLATTEN, OpKind.EXPAND})
_GATHERS = frozenset({OpKind.GATHER, OpKind.GATHER_BLOCK_QUANTIZED})


@dataclass(frozen=True)
class Finding:
    kind: str            # "static-token-dims" or "shared-stored-tensor"
    message: str
    values: tuple[str, ...] = ()  # the input, or the parameters sharing one stored tensor

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, "values": list(self.values)}


class ExportWarning(PlacerWarning):
    """A ``PlacerWarning`` about the exported file; ``finding`` has the details."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def odd_export_findings(graph: Graph, label: str = "") -> list[Finding]:
    where = f"{label}: " if label else ""
    return [*_static_tokens(graph, where), *_shared_tensors(graph, where)]


def warn_findings(findings: Iterable[Finding]) -> None:
    for f in findings:
        warnings.warn(ExportWarning(f), stacklevel=3)


def _static_tokens(graph: Graph, where: str) -> list[Finding]:
    syms = find_token_symbols(graph)
    token = syms.token_input
    if token is None or syms.past is not None or not any(
            c.op in _GATHERS and c.inputs[1:2] == (token,) and c.inputs[0] in graph.weights
            for c in graph.consumers.get(token, [])):
        return []  # no token ids feeding an embedding table, or a dynamic past
    shape = graph.types[token].shape
    if len(shape) < 2 or not isinstance(shape[1], int) or shape[1] <= 1:
        return []
    return [Finding("static-token-dims",
                    f"{where}input {token!r} has the static shape {list(shape)}: KV and FLOPs describe "
                    f"that fixed length of {shape[1]} tokens, not a decode step; export with dynamic "
                    "shapes (torch.onnx.export(..., dynamic_shapes=...), or `placer export`)", (token,))]


def _storage_key(graph: Graph, name: str) -> tuple[object, ...]:
    w = graph.weights[name]
    if w.location is not None:
        return ("external", w.location.path, w.location.offset)
    if w.data is not None:
        return ("inline", str(w.data.dtype), w.data.shape, hashlib.sha1(w.data.tobytes()).digest())
    return ("name", name)


def _uses(graph: Graph, name: str) -> list[tuple[str, OpKind]]:
    """(node, op) of every node reading ``name`` other than through views."""
    out, stack, seen = [], [name], set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        for c in graph.consumers.get(v, []):
            if c.op in _VIEWS:
                stack.extend(o for o in c.outputs if o)
            else:
                out.append((c.name, c.op))
    return out


def _shared_tensors(graph: Graph, where: str) -> list[Finding]:
    groups: dict[tuple[object, ...], list[str]] = {}
    for name, w in graph.weights.items():
        if w.role is WeightRole.PARAMETER and w.numel > 1:
            groups.setdefault(_storage_key(graph, name), []).append(name)
    findings = []
    for names in groups.values():
        uses = sorted({u for n in names for u in _uses(graph, n)})
        if len(uses) < 2:
            continue
        ops = [op for _, op in uses]
        gathers = sum(op in _GATHERS for op in ops)
        if gathers == 1 and all(op in CONTRACTION or op in _GATHERS for op in ops) and len(ops) == 2:
            continue  # tied embedding and LM head
        nodes = ", ".join(n for n, _ in uses[:4]) + (", ..." if len(uses) > 4 else "")
        findings.append(Finding(
            "shared-stored-tensor",
            f"{where}one stored tensor ({', '.join(sorted(names)[:3])}) serves {len(uses)} parameters "
            f"({nodes}): possible exporter deduplication (e.g. equal norm weights merged), so "
            "parameters are undercounted; export with distinct (trained or random) weights",
            tuple(sorted(names))))
    return findings
