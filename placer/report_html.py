"""report.html: a self-contained page (inline CSS and SVG, no script, no network) beside report.md.

For a plan: the summary, per-wafer stacked memory bars (weights, KV, activations, reserve, free),
per-wafer decode stage and prefill time bars, the binding constraints, and the wafers'
floorplans when the compile made them (SVG text, e.g. from ``placer.floorplan.floorplan_svg``).
For a sweep: the Pareto chart of tokens/s per user against tokens/s per wafer, every point with
its settings on hover (an SVG ``<title>``), the frontier table and the per-model summary.

The text is deterministic (same inputs, same bytes): no dates, no wall-clock times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from placer.plan import Plan
    from placer.sweep_exec import SweepResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;
color:#1b1f24;padding:0 16px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#f6f8fa}
td.l,th.l{text-align:left}.note{color:#57606a;font-size:12px}
svg text{font:12px system-ui,sans-serif;fill:#1b1f24}svg .axis{stroke:#57606a}
svg .grid{stroke:#eaeef2}svg circle.pt:hover{stroke:#000;stroke-width:2}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
"""

MEMORY_PARTS = (("weights", "#0969da"), ("kv", "#bf3989"), ("activations", "#e16f24"),
                ("reserved", "#8c959f"), ("free", "#dafbe1"))
_PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#9a6700", "#57606a")


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    head = "".join(f"<th class=\"l\">{escape(h)}</th>" if i < left else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td class=\"l\">{escape(str(c))}</td>" if i < left else
                                    f"<td>{escape(str(c))}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def stacked_bars_svg(labels: Sequence[str], parts: Sequence[tuple[str, str]],
                     values: Sequence[Mapping[str, float]], unit: str, scale: float = 1.0) -> str:
    """Horizontal stacked bars, one per label; each segment's value on hover."""
    width, left, bar, gap = 900, 90, 22, 8
    total = max((sum(v[p] for p, _ in parts) for v in values), default=0.0) or 1.0
    height = len(labels) * (bar + gap) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 20}" height="{height}" role="img">']
    for i, (label, v) in enumerate(zip(labels, values)):
        y = 4 + i * (bar + gap)
        out.append(f'<text x="0" y="{y + bar * 0.7:.1f}">{escape(label)}</text>')
        x = float(left)
        for name, colour in parts:
            w = (width - left) * v[name] / total
            if w <= 0:
                continue
            out.append(f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{bar}" fill="{colour}">'
                       f'<title>{escape(label)}: {escape(name)} {v[name] * scale:.3f} {unit}</title></rect>')
            x += w
    y = len(labels) * (bar + gap) + 18
    out.append(f'<text x="{left}" y="{y}">0</text><text x="{width}" y="{y}" text-anchor="end">'
               f'{total * scale:.3f} {unit}</text></svg>')
    legend = "".join(f'<span><i style="background:{c}"></i>{escape(n)}</span>' for n, c in parts)
    return f'<div class="legend">{legend}</div>' + "".join(out)


def render_plan_html(plan: Plan, floorplans: Sequence[tuple[str, str]] = (),
                     constraints: Sequence[str] = ()) -> str:
    """report.html of one plan. ``floorplans``: (caption, SVG text) per wafer, when made;
    ``constraints``: report.md's binding-constraint lines."""
    perf, kv, t = plan.performance, plan.kv, plan.target
    title = f"Placement of {plan.model.name} on {len(plan.wafers)} x {t.name}"
    body = [f"<h1>{escape(title)}</h1>",
            f"<p>{plan.model.parameters:,} parameters, {plan.model.weight_bytes / 1e9:.3f} GB of weights; "
            f"context {plan.workload.context_tokens:,} tokens, concurrency {plan.workload.concurrency}; "
            f"objective {escape(plan.objective)}; solver {escape(plan.solver.name)} "
            f"{escape(plan.solver.status)}"
            "</p>",
            _table(["time per output token ms", "TTFT ms", "tokens/s per user", "tokens/s total",
                    "resident sequences", "parked sequences"],
                   [[f"{perf.time_per_output_token_s * 1e3:.4f}", f"{perf.ttft_s * 1e3:.3f}",
                     f"{perf.tokens_per_s_per_user:,.1f}", f"{perf.tokens_per_s_total:,.1f}",
                     kv.resident_sequences, kv.parked_sequences]], left=0),
            *_speculative(plan),
            "<h2>Memory per wafer (GB)</h2>"]
    labels = [f"wafer {w.index}" for w in plan.wafers]
    mem = [{p: float(getattr(w.memory, p)) for p, _ in MEMORY_PARTS} for w in plan.wafers]
    body.append(stacked_bars_svg(labels, MEMORY_PARTS, mem, "GB", 1e-9))
    body.append("<h2>Stage time per wafer (ms, one decode step of the plan's micro-batch"
                + ("" if plan.prefill else "; prefill: one chunk") + ")</h2>")
    times = [{"decode stage": w.stage_seconds, "prefill": w.prefill_seconds} for w in plan.wafers]
    body.append(stacked_bars_svg(labels, (("decode stage", "#0969da"),), times, "ms", 1e3))
    if plan.prefill is None:
        body.append(stacked_bars_svg(labels, (("prefill", "#8250df"),), times, "ms", 1e3))
    else:
        body += _prefill_html(plan)
    if constraints:
        items = "".join(f"<li>{escape(c)}</li>" for c in constraints)
        body += ["<h2>Binding constraints</h2>", f"<ul>{items}</ul>"]
    if floorplans:
        body.append("<h2>Floorplans</h2>")
        body += [f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"
                 for caption, svg in floorplans]
    return _page(title, body)


def _prefill_html(plan: Plan) -> list[str]:
    """The disaggregated prefill (``--prefill-on``): the three TTFT terms as a bar and a table."""
    from placer.perf.disagg import describe

    d = plan.prefill
    assert d is not None
    terms = (("prefill", "#8250df"), ("KV transfer", "#bf3989"), ("hops", "#8c959f"))
    values = [{"prefill": d.prefill_s, "KV transfer": d.kv_transfer_s, "hops": d.hops_s}]
    items = "".join(f"<li>{escape(line)}</li>" for line in describe(d, plan.target.io_bandwidth_bytes_per_s))
    return [f"<h2>Disaggregated prefill on {escape(d.target.name)}: TTFT (ms)</h2>",
            stacked_bars_svg(["TTFT"], terms, values, "ms", 1e3),
            _table(["prefill ms", "KV transfer ms", "hops ms", "TTFT ms", "KV GB", "transfer bound by",
                    "wafers' I/O binds"],
                   [[f"{d.prefill_s * 1e3:.3f}", f"{d.kv_transfer_s * 1e3:.3f}", f"{d.hops_s * 1e3:.3f}",
                     f"{d.ttft_s * 1e3:.3f}", f"{d.kv_bytes / 1e9:.3f}", d.transfer_bound,
                     "yes" if d.io_binds else "no"]], left=0),
            f"<ul>{items}</ul>"]


def _speculative(plan: Plan) -> list[str]:
    """The plan's speculative-decoding figures (``placer.speculative``; none without --draft)."""
    s = plan.speculative
    if s is None:
        return []
    return [f"<h2>Speculative decoding: draft {escape(s.draft)}, {escape(s.placement())}</h2>",
            _table(["draft length k", "acceptance a", "expected tokens per step",
                    "effective tokens/s per user", "target alone tokens/s per user", "target wafers",
                    "draft wafers"],
                   [[s.draft_length, f"{s.acceptance:g}", f"{s.expected_tokens_per_step:.4f}",
                     f"{s.tokens_per_s_per_user:,.1f}", f"{plan.performance.tokens_per_s_per_user:,.1f}",
                     ", ".join(map(str, s.target_wafers)), ", ".join(map(str, s.draft_wafers))]], left=0)]


# ---------------------------------------------------------------------------------------------
# Sweeps


def _axis(lo: float, hi: float) -> tuple[float, float, bool]:
    """Axis range, log scale when the points span more than 30x."""
    lo, hi = max(lo, 1e-12), max(hi, 1e-12)
    if hi / lo > 30:
        return math.log10(lo) - 0.05, math.log10(hi) + 0.05, True
    pad = (hi - lo) * 0.06 or hi * 0.1 or 1.0
    return max(0.0, lo - pad), hi + pad, False


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0 ** k for k in range(math.floor(lo), math.ceil(hi) + 1) if lo <= k <= hi]
    step = 10 ** math.floor(math.log10((hi - lo) / 5 or 1))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= 6:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _settings(r: Mapping[str, Any]) -> str:
    return (f"{r['model']}: {r['wafers_used']} wafers (asked {r['wafers'] or 'auto'}), concurrency "
            f"{r['concurrency']}, context {r['context']}, weights {r['weights_dtype']}, KV {r['kv_dtype']}, "
            f"{r['objective']}, prefill on {r.get('prefill_on') or 'the wafers'}: "
            f"{r['tokens_per_s_per_user']:,.1f} tokens/s per user, TTFT {r['ttft_ms']:,.3f} ms, "
            f"{r['tokens_per_s_per_wafer']:,.1f} tokens/s per wafer, {r['parked_sequences']} parked"
            + ("" if r.get("usd_per_million_output_tokens") is None else
               f", ${r['usd_per_million_output_tokens']:,.3f} per M output tokens")
            + (" (frontier)" if r.get("frontier") else ""))


def frontier_svg(rows: Sequence[Mapping[str, Any]], group: str = "precision") -> str:
    """Scatter of every feasible point, coloured by precision, the overall frontier joined."""
    from placer.sweep import precision_of

    ok = [r for r in rows if r.get("status") == "ok"]
    width, height, ml, mb, mt, mr = 900, 480, 80, 50, 14, 20
    if not ok:
        return "<p>No feasible point.</p>"
    xs = [float(r["tokens_per_s_per_user"]) for r in ok]
    ys = [float(r["tokens_per_s_per_wafer"]) for r in ok]
    x0, x1, xlog = _axis(min(xs), max(xs))
    y0, y1, ylog = _axis(min(ys), max(ys))

    def px(v: float) -> float:
        v = math.log10(max(v, 1e-12)) if xlog else v
        return ml + (width - ml - mr) * (v - x0) / ((x1 - x0) or 1)

    def py(v: float) -> float:
        v = math.log10(max(v, 1e-12)) if ylog else v
        return height - mb - (height - mb - mt) * (v - y0) / ((y1 - y0) or 1)

    groups = sorted({precision_of(r) for r in ok})
    colour = {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(groups)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for v in _ticks(x0, x1, xlog):
        x = px(v)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{height - mb}"/>'
                   f'<text x="{x:.1f}" y="{height - mb + 16}" text-anchor="middle">{_fmt(v)}</text>')
    for v in _ticks(y0, y1, ylog):
        y = py(v)
        out.append(f'<line class="grid" x1="{ml}" y1="{y:.1f}" x2="{width - mr}" y2="{y:.1f}"/>'
                   f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    out.append(f'<line class="axis" x1="{ml}" y1="{height - mb}" x2="{width - mr}" y2="{height - mb}"/>'
               f'<line class="axis" x1="{ml}" y1="{mt}" x2="{ml}" y2="{height - mb}"/>'
               f'<text x="{(ml + width) / 2}" y="{height - 10}" text-anchor="middle">tokens/s per user'
               f'{" (log)" if xlog else ""}</text>'
               f'<text transform="translate(16 {(height - mb) / 2}) rotate(-90)" text-anchor="middle">'
               f'tokens/s per wafer{" (log)" if ylog else ""}</text>')
    front = sorted((r for r in ok if r.get("frontier")), key=lambda r: r["tokens_per_s_per_user"])
    if len(front) > 1:
        pts = " ".join(f"{px(r['tokens_per_s_per_user']):.1f},{py(r['tokens_per_s_per_wafer']):.1f}"
                       for r in front)
        out.append(f'<polyline points="{pts}" fill="none" stroke="#1b1f24" stroke-width="1.5"/>')
    for r in ok:
        on = bool(r.get("frontier"))
        stroke = ' stroke="#1b1f24"' if on else ""
        out.append(f'<circle class="pt" cx="{px(r["tokens_per_s_per_user"]):.1f}" '
                   f'cy="{py(r["tokens_per_s_per_wafer"]):.1f}" r="{5 if on else 3.5}" '
                   f'fill="{colour[precision_of(r)]}" fill-opacity="{1 if on else 0.55}"{stroke}>'
                   f'<title>{escape(_settings(r))}</title></circle>')
    out.append("</svg>")
    legend = "".join(f'<span><i style="background:{colour[g]}"></i>weights/KV {escape(g)}</span>'
                     for g in groups)
    return (f'<div class="legend">{legend}<span>outlined and joined: the Pareto frontier; '
            f'hover a point for its settings</span></div>' + "".join(out))


def render_sweep_html(result: SweepResult, summaries: Sequence[Mapping[str, Any]] = ()) -> str:
    from placer.sweep_report import FRONTIER_COLUMNS, _cell, column_label

    rows = result.rows
    ok = [r for r in rows if r["status"] == "ok"]
    front = sorted(result.frontier, key=lambda r: -r["tokens_per_s_per_user"])
    body = ["<h1>Sweep</h1>",
            f"<p>{len(rows)} points, {len(ok)} feasible; {len(front)} on the Pareto frontier of tokens/s per "
            "user against tokens/s per wafer.</p>",
            "<h2>Frontier</h2>", frontier_svg(rows),
            "<h2>Frontier points</h2>",
            _table([column_label(c) for c in FRONTIER_COLUMNS],
                   [[_cell(r.get(c), c) for c in FRONTIER_COLUMNS] for r in front])]
    from placer.sweep_report import PREFILL_COLUMNS, prefill_groups

    pairs = [r for g in prefill_groups(rows) for r in g]
    if pairs:
        body += ["<h2>Where prefill runs: co-located (wafers) against disaggregated</h2>",
                 _table([column_label(c) for c in PREFILL_COLUMNS],
                        [[_cell(r.get(c), c) for c in PREFILL_COLUMNS] for r in pairs])]
    if summaries:
        from placer.sweep_summary import SUMMARY_HEADERS, summary_cells, summary_title

        ctx = f"{summaries[0]['context']:,}"
        body.append(f"<h2>{escape(summary_title(summaries[0]))}</h2>")
        body.append(_table([h.format(ctx=ctx) for h in SUMMARY_HEADERS],
                           [summary_cells(s) for s in summaries], left=2))
    body.append('<p class="note">Self-contained: inline SVG and CSS, no script, no network.</p>')
    return _page("placer sweep", body)


def render_compile_html(result: Any) -> str:
    """report.html of a ``CompileResult`` (the binding constraints as in report.md; floorplans
    when the result carries SVG pictures of them as ``floorplan_svgs``: (caption, svg) pairs)."""
    from placer.report import binding_constraints

    floorplans = tuple(getattr(result, "floorplan_svgs", ()) or ())
    return render_plan_html(result.plan, floorplans, binding_constraints(result.plan))
