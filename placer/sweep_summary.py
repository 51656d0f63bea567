"""The per-model summary of a sweep, in the style analysts publish.

For each model and precision (weights/KV dtype) of the sweep:

* minimum wafers for the weights: the min-wafers plan at context 0 (weights and buffers only);
* free SRAM per wafer on those wafers (mean of the plan's free bytes, reserve excluded);
* KV bytes of one sequence of ``summary_context`` tokens (default 131,072) and the time to move
  it over the wafers' I/O: the plan of one such sequence (min-wafers), whose swap-in time is the
  performance model's (``placer.perf.swap_in_seconds``: each wafer loads its share in parallel);
* the fastest point of the sweep (most tokens/s per user);
* the cheapest point with at least ``floor`` tokens/s per user: the lowest $ per million output
  tokens when the target has a cost, else the most tokens/s per wafer (the same order when every
  wafer costs the same per hour).

The two plans are ordinary sweep points (``summary_points``): compiled by the same executor,
cached the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from placer.sweep import SweepSpec, precision_of

DEFAULT_SUMMARY_CONTEXT = 131072
DEFAULT_FLOOR = 100.0    # tokens/s per user for the cheapest point


def summary_points(spec: SweepSpec, context: int) -> list[dict[str, Any]]:
    """Per model and precision: the weights-only point and the one-sequence point at ``context``."""
    fixed = {k: v for k, v in spec.fixed.items() if k not in ("min_tokens_per_s_per_user",)}
    out = []
    for model in spec.models:
        for wd in spec.weights_dtype:
            for kd in spec.kv_dtype:
                for ctx in (0, context):
                    out.append({"model": model, "wafers": None, "concurrency": 1, "context": ctx,
                                "weights_dtype": wd, "kv_dtype": kd, "objective": "min-wafers", **fixed})
    return out


def _cheapness(row: Mapping[str, Any]) -> float:
    usd = row.get("usd_per_million_output_tokens")
    return float(usd) if usd is not None else -float(row["tokens_per_s_per_wafer"])


def summarize(rows: Sequence[Mapping[str, Any]], summary_rows: Sequence[Mapping[str, Any]], context: int,
              floor: float = DEFAULT_FLOOR) -> list[dict[str, Any]]:
    """One summary dict per (model, precision), in the sweep's order."""
    out = []
    by_pair: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in summary_rows:
        by_pair.setdefault((r["model"], precision_of(r)), []).append(r)
    for (model, precision), pair in by_pair.items():
        weights = next(r for r in pair if r["context"] == 0)
        one = next((r for r in pair if r["context"] == context), weights)
        mine = [r for r in rows
                if r["model"] == model and precision_of(r) == precision and r["status"] == "ok"]
        fastest = max(mine, key=lambda r: r["tokens_per_s_per_user"], default=None)
        above = [r for r in mine if r["tokens_per_s_per_user"] >= floor]
        cheapest = min(above, key=_cheapness, default=None)
        ok_w, ok_one = weights["status"] == "ok", one["status"] == "ok"
        out.append({
            "model": model, "precision": precision, "context": context, "floor_tokens_per_s_per_user": floor,
            "min_wafers_for_weights": weights["wafers_used"] if ok_w else None,
            "free_sram_gb_per_wafer": weights["mean_free_sram_gb"] if ok_w else None,
            "kv_gb_per_sequence": one["kv_gb_per_sequence"] if ok_one else None,
            "kv_move_ms": one["swap_in_ms"] if ok_one else None,
            "wafers_for_one_sequence": one["wafers_used"] if ok_one else None,
            "why_not": "" if ok_w and ok_one else (weights if not ok_w else one)["message"],
            "fastest": dict(fastest) if fastest else None,
            "cheapest": dict(cheapest) if cheapest else None,
        })
    return out


def _point(r: Mapping[str, Any] | None) -> str:
    if r is None:
        return "-"
    text = (f"{r['tokens_per_s_per_user']:,.1f} tokens/s/user on {r['wafers_used']} wafers, "
            f"concurrency {r['concurrency']}, context {r['context']}")
    usd = r.get("usd_per_million_output_tokens")
    return text + (f", ${usd:,.3f}/M output tokens" if usd is not None else
                   f", {r['tokens_per_s_per_wafer']:,.1f} tokens/s/wafer")


def summary_markdown(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    if not summaries:
        return []
    s0 = summaries[0]
    ctx, floor = s0["context"], s0["floor_tokens_per_s_per_user"]

    def num(x: Any, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    lines = [f"## Per model (KV of one {ctx:,}-token sequence; cheapest at >= {floor:g} tokens/s per user)",
             "",
             "| model | weights/KV | min wafers for the weights | free SRAM per wafer GB | "
             f"KV of one {ctx:,}-token sequence GB | time to move it over the wafers' I/O ms | "
             "fastest point | "
             "cheapest point |", "|---|---|---:|---:|---:|---:|---|---|"]
    for s in summaries:
        lines.append(f"| {s['model']} | {s['precision']} | {num(s['min_wafers_for_weights'], 'd')} | "
                     f"{num(s['free_sram_gb_per_wafer'], '.3f')} | {num(s['kv_gb_per_sequence'], '.3f')} | "
                     f"{num(s['kv_move_ms'], '.3f')} | {_point(s['fastest'])} | {_point(s['cheapest'])} |")
    return lines
