"""``placer inspect``: a model's placement units, their costs, and the totals.

Everything the command prints is computed here; ``placer.cli.inspect`` only parses options.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from placer.costs import ModelCost
from placer.errors import UserError
from placer.targets import Target, load_target
from placer.workload import DtypePolicy, Workload


@dataclass(frozen=True)
class Inspection:
    """The costed units of a model, with the options that produced them."""

    model: str
    target: Target
    workload: Workload
    granularity: str
    cost: ModelCost
    options: dict[str, Any] = field(default_factory=dict)
    structure_warning: str = ""  # why grouping found fewer layers than the graph has
    export_findings: tuple[Any, ...] = ()  # placer.frontends.onnx_warnings.Finding


def inspect_model(model: Any, *, target: Target | str = "wse3", workload: Workload | None = None,
                  granularity: str = "layer",
                  unit_overrides: str | os.PathLike[str] | None = None) -> Inspection:
    """Load ``model`` (ONNX file, config.json, zoo name, Graph), group it and cost its units.

    Raises:
        UserError: the model cannot be read or an option is invalid.
    """
    from placer.cost_model import annotate_costs
    from placer.pipeline import load_model

    workload = workload or Workload()
    if isinstance(target, str):
        target = load_target(target)
    loaded = load_model(model, granularity=granularity, unit_overrides=unit_overrides)
    cost = annotate_costs(loaded.graph, target, workload, loaded.structure)
    return Inspection(loaded.name, target, workload, granularity, cost,
                      structure_warning=loaded.structure_warning, export_findings=loaded.export_findings)


def parse_workload(*, context: str | int = 8192, weights_dtype: str = "native",
                   dtype_overrides: tuple[str, ...] = (), kv_dtype: str = "native") -> Workload:
    """A ``Workload`` from command-line strings; a UserError names the bad option."""
    from placer.workload import parse_dtype_option

    try:
        tokens = int(context)
    except ValueError:
        raise UserError(f"option --context: expected a whole number of tokens, got {context!r}") from None
    policy = DtypePolicy.parse(weights_dtype, list(dtype_overrides))
    return Workload(context_tokens=tokens, weights=policy,  # the default prompt: 1,024 or the context
                    kv_dtype=parse_dtype_option(kv_dtype, "--kv-dtype"))


_COLUMNS = (
    ("unit", "", "<"),
    ("parameters", "", ">"),
    ("weights", "GB", ">"),
    ("KV", "bytes/token", ">"),
    ("decode", "GFLOP/token", ">"),
    ("activations out", "bytes/token", ">"),
)


def format_inspection(result: Inspection) -> str:
    """A table with one row per unit and a total row; every header names its unit."""
    cost = result.cost
    rows = [[u.name, f"{u.parameters:,}", f"{u.weight_bytes / 1e9:.3f}", f"{u.kv_bytes_per_token:,}",
             f"{u.decode.flops / 1e9:.3f}", f"{u.activation_out_bytes_per_token:,}"] for u in cost.units]
    total_flops = sum(u.decode.flops for u in cost.units)
    rows.append(["total", f"{cost.parameters:,}", f"{cost.weight_bytes / 1e9:.3f}",
                 f"{cost.kv_bytes_per_token:,}", f"{total_flops / 1e9:.3f}",
                 f"{sum(u.activation_out_bytes_per_token for u in cost.units):,}"])
    headers = [f"{name} ({unit})" if unit else name for name, unit, _ in _COLUMNS]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, w, (_, _, a) in zip(cells, widths, _COLUMNS)).rstrip()

    w = result.workload
    head = (f"{result.model}: {len(cost.units)} units ({result.granularity} granularity) on "
            f"{result.target.name}; weights {w.weights.default}, KV {w.kv_dtype}, "
            f"decode at {w.context_tokens:,} tokens of context, batch 1")
    kv = cost.kv_bytes(w.context_tokens)  # sliding-window and chunked layers capped, as compile does
    foot = (f"weights {cost.weight_bytes / 1e9:.3f} GB + KV {kv / 1e9:.3f} GB per sequence at "
            f"{w.context_tokens:,} tokens = {(cost.weight_bytes + kv) / 1e9:.3f} GB; "
            f"one wafer holds {result.target.sram_bytes / 1e9:.3f} GB of SRAM")
    sep = "  ".join("-" * x for x in widths)
    return "\n".join([head, "", line(headers), sep, *(line(r) for r in rows[:-1]), sep,
                      line(rows[-1]), "", foot])


def inspection_to_dict(result: Inspection) -> dict[str, Any]:
    """The JSON form: units with their costs and the totals (integers: bytes, FLOPs)."""
    cost = result.cost
    return {
        "model": result.model,
        "target": result.target.name,
        "granularity": result.granularity,
        "workload": result.workload.to_dict(),
        "units": [{
            "name": u.name,
            "kind": u.kind.value,
            "layer": u.layer,
            "parameters": u.parameters,
            "weight_bytes": u.weight_bytes,
            "constant_bytes": u.constant_bytes,
            "kv_bytes_per_token": u.kv_bytes_per_token,
            "kv_bytes": u.kv_bytes(result.workload.context_tokens),
            "kv_caches": [{"name": k.name, "bytes_per_token": k.bytes_per_token, "window": k.window,
                           "tokens_per_entry": k.tokens_per_entry, "state_bytes": k.state_bytes}
                          for k in u.kv],
            "decode_flops_per_token": u.decode.flops,
            "decode_weight_read_bytes": u.decode.weight_read_bytes,
            "decode_kv_read_bytes": u.decode.kv_read_bytes,
            "decode_collectives": len(u.decode.collectives),
            "prefill_flops": u.prefill.flops,
            "activation_out_bytes_per_token": u.activation_out_bytes_per_token,
        } for u in cost.units],
        "edges": [{"src": e.src, "dst": e.dst, "bytes_per_token": e.bytes_per_token} for e in cost.edges],
        "totals": {
            "units": len(cost.units),
            "parameters": cost.parameters,
            "weight_bytes": cost.weight_bytes,
            "kv_bytes_per_token": cost.kv_bytes_per_token,
            "kv_bytes": cost.kv_bytes(result.workload.context_tokens),
            "kv_state_bytes_per_sequence": sum(u.kv_state_bytes for u in cost.units),
            "decode_flops_per_token": sum(u.decode.flops for u in cost.units),
        },
        "structure_warning": result.structure_warning or None,
        "export_warnings": [f.to_dict() for f in result.export_findings],
    }


def inspection_to_json(result: Inspection) -> str:
    return json.dumps(inspection_to_dict(result), indent=2, sort_keys=False) + "\n"
