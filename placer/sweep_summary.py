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
                                "weights_dtype": wd, "kv_dtype": kd, "objective": "min-wafers",
                                "prefill_on": None, **fixed})
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
    return (f"{r['tokens_per_s_per_user']:,.1f} tokens/s/user, {r['tokens_per_s_per_wafer']:,.1f} "
            f"tokens/s/wafer on {r['wafers_used']} wafers, concurrency {r['concurrency']}, "
            f"context {r['context']}")


def usd(r: Mapping[str, Any] | None, which: str) -> str:
    """``$0.123`` of ``usd_per_million_{which}_tokens`` of a row, ``-`` when it has none."""
    x = None if r is None else r.get(f"usd_per_million_{which}_tokens")
    return "-" if x is None else f"${x:,.3f}"


SUMMARY_HEADERS = ("model", "weights/KV", "min wafers for the weights", "free SRAM per wafer GB",
                   "KV of one {ctx}-token sequence GB", "time to move it over the wafers' I/O ms",
                   "fastest point", "fastest $ per M output tokens", "cheapest point",
                   "cheapest $ per M output tokens", "cheapest $ per M input tokens")


def summary_cells(s: Mapping[str, Any]) -> list[str]:
    """One summary as the cells of ``SUMMARY_HEADERS`` (Markdown and HTML tables)."""

    def num(x: Any, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    return [s["model"], s["precision"], num(s["min_wafers_for_weights"], "d"),
            num(s["free_sram_gb_per_wafer"], ".3f"), num(s["kv_gb_per_sequence"], ".3f"),
            num(s["kv_move_ms"], ".3f"), _point(s["fastest"]), usd(s["fastest"], "output"),
            _point(s["cheapest"]), usd(s["cheapest"], "output"), usd(s["cheapest"], "input")]


def summary_title(s0: Mapping[str, Any]) -> str:
    return (f"Per model (KV of one {s0['context']:,}-token sequence; cheapest at >= "
            f"{s0['floor_tokens_per_s_per_user']:g} tokens/s per user; $ per million tokens at the target's "
            "cost_per_hour, docs/sweep.md)")


def summary_markdown(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    if not summaries:
        return []
    ctx = f"{summaries[0]['context']:,}"
    headers = [h.format(ctx=ctx) for h in SUMMARY_HEADERS]
    lines = [f"## {summary_title(summaries[0])}", "",
             "| " + " | ".join(headers) + " |", "|---|---|" + "---:|" * 4 + "---|---:|---|---:|---:|"]
    lines += ["| " + " | ".join(summary_cells(s)) + " |" for s in summaries]
    return lines
