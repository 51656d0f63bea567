"""summary.md of a sweep: what was run, and the Pareto frontier as a table (fit for a CI job
summary; on a terminal the CLI renders it with rich)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placer.fileio import write_atomic
from placer.sweep import precision_of

if TYPE_CHECKING:
    from placer.sweep_exec import SweepResult


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        if column == "prefill_on":
            return "wafers"   # co-located prefill
        return "auto" if column == "wafers" else "-"   # no wafer count asked: the compiler chose
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


FRONTIER_COLUMNS = ("model", "wafers_used", "concurrency", "context", "weights_dtype", "kv_dtype",
                    "objective", "prefill_on",
                    "tokens_per_s_per_user", "tokens_per_s_per_wafer", "tokens_per_s_total",
                    "time_per_output_token_ms", "parked_sequences", "usd_per_million_output_tokens",
                    "usd_per_million_input_tokens")


def column_label(name: str) -> str:
    """A row field as a table header that says its unit: ``$ per M output tokens``, ``ttft ms``."""
    return name.replace("usd_per_million_", "$ per M ").replace("_", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], cols: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(column_label(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c), c) for c in cols) + " |" for r in rows]
    return lines


def render_summary(result: SweepResult, floor: float = 100.0) -> str:
    rows = result.rows
    ok = [r for r in rows if r["status"] == "ok"]
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    lines = ["# Sweep", "",
             f"{len(rows)} points: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) +
             f"; {result.computed} compiled in this run, {result.cached} from the cache.", ""]
    front = sorted(result.frontier, key=lambda r: -r["tokens_per_s_per_user"])
    lines += [f"## Pareto frontier: tokens/s per user against tokens/s per wafer ({len(front)} of "
              f"{len(ok)} feasible points)", ""]
    lines += markdown_table(front, FRONTIER_COLUMNS) if front else ["No feasible point."]
    groups: dict[str, int] = {}
    for r in rows:
        if r.get("frontier_precision"):
            groups[precision_of(r)] = groups.get(precision_of(r), 0) + 1
    if len(groups) > 1:
        lines += ["", "## Frontier per precision (weights/KV): points on it", "",
                  "| precision | points |", "|---|---:|"]
        lines += [f"| {g} | {n} |" for g, n in sorted(groups.items())]
    lines += prefill_comparison(rows)
    if result.summary_context is not None:
        from placer.sweep_summary import summarize, summary_markdown

        lines += ["", *summary_markdown(summarize(rows, result.summary_rows, result.summary_context,
                                                  floor))]
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        lines += ["", f"## Points without a plan ({len(bad)})", ""]
        lines += markdown_table(bad[:20], ("model", "wafers", "concurrency", "context", "weights_dtype",
                                           "kv_dtype", "objective", "status", "message"))
        if len(bad) > 20:
            lines.append(f"... and {len(bad) - 20} more (see sweep.csv).")
    return "\n".join(lines) + "\n"


PREFILL_COLUMNS = ("model", "wafers_used", "concurrency", "context", "weights_dtype", "kv_dtype", "objective",
                   "prefill_on", "ttft_ms", "prefill_ms", "kv_transfer_ms", "kv_transfer_bound",
                   "tokens_per_s_per_user", "resident_sequences", "min_free_sram_gb",
                   "usd_per_million_input_tokens")


def prefill_groups(rows: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Feasible points that differ only in ``prefill_on`` (co-located and disaggregated prefill of
    the same settings), in grid order; only groups with more than one such point."""
    from placer.sweep import AXES

    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault(tuple(r.get(a) for a in AXES if a != "prefill_on"), []).append(r)
    return [g for g in groups.values() if len({r.get("prefill_on") for r in g}) > 1]


def prefill_comparison(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """summary.md's co-located against disaggregated prefill table (empty without the axis)."""
    groups = prefill_groups(rows)
    if not groups:
        return []
    return ["", f"## Where prefill runs: co-located (wafers) against disaggregated ({len(groups)} settings)",
            "",
            *markdown_table([r for g in groups for r in g], PREFILL_COLUMNS), "",
            "TTFT of a disaggregated point = prefill ms + KV transfer ms + one switch hop; the KV transfer "
            "is bound by the slower of the prefill machine's link and the wafers' I/O (docs/sweep.md)."]


def write_summary(result: SweepResult, out_dir: str | os.PathLike[str],
                  floor: float = 100.0) -> dict[str, Path]:
    """summary.md and report.html (the frontier chart) in ``out_dir``."""
    from placer.report_html import render_sweep_html
    from placer.sweep_summary import summarize

    out = Path(out_dir)
    summaries = summarize(result.rows, result.summary_rows, result.summary_context, floor) \
        if result.summary_context is not None else []
    write_atomic(out / "summary.md", render_summary(result, floor))
    write_atomic(out / "report.html", render_sweep_html(result, summaries))
    return {"summary": out / "summary.md", "html": out / "report.html"}
