"""report.md: the plan explained for a reader, beside the baselines on the same problem.

Sections: summary, performance, per-wafer table, binding constraints, every method side by side
(wafers, time per token, tokens/s, parked sequences, feasible or why not), solve times. Solve
times are wall-clock and live only here, never in plan.json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from placer.solver.problem import TICK_S
from placer.speculative import report_lines as speculative_report_lines
from placer.sweep import cost_figures

if TYPE_CHECKING:
    from placer.compiler import CompileResult
    from placer.plan import Plan


def _gb(x: float) -> str:
    return f"{x / 1e9:.3f}"


def _usd(x: float) -> str:
    return f"{x:,.3f}" if x else "n/a (no cost_per_hour)"


def summarize_units(names: tuple[str, ...], layer_of: dict[str, int], layer_units: dict[int, int]) -> str:
    """``embed, layers 0-19, layers.20.attn``: whole layers as ranges, the rest by name."""
    count: dict[int, int] = {}
    for name in names:
        if layer_of.get(name, -1) >= 0:
            count[layer_of[name]] = count.get(layer_of[name], 0) + 1
    tokens: list[int | str] = []
    for name in names:
        layer = layer_of.get(name, -1)
        if layer >= 0 and count[layer] == layer_units[layer]:
            if layer not in tokens:
                tokens.append(layer)
        else:
            tokens.append(name)
    out: list[str] = []
    run: list[int] = []
    for token in [*tokens, ""]:
        if isinstance(token, int) and (not run or token == run[-1] + 1):
            run.append(token)
            continue
        if run:
            out.append(f"layers {run[0]}-{run[-1]}" if len(run) > 1 else f"layer {run[0]}")
            run = []
        if isinstance(token, int):
            run.append(token)
        elif token:
            out.append(token)
    return ", ".join(out)


def binding_constraints(plan: Plan) -> list[str]:
    """Plain-language list of the constraints that limit this plan."""
    lines: list[str] = []
    perf, kv = plan.performance, plan.kv
    sram = plan.target.sram_bytes
    tightest = min(plan.wafers, key=lambda w: (w.memory.free, w.index))
    lines.append(f"SRAM: tightest wafer is {tightest.index} with {_gb(tightest.memory.free)} GB free of "
                 f"{_gb(sram)} GB ({100 * tightest.memory.free / sram:.2f} %).")
    if kv.bytes_per_sequence:
        limit = min(plan.wafers, key=lambda w: (w.sequences_that_fit, w.index))
        lines.append(f"KV residency: {kv.resident_sequences} of {plan.workload.concurrency} "
                     f"sequences resident; "
                     f"wafer {limit.index} limits it ({limit.sequences_that_fit} sequences fit there, "
                     f"{_gb(limit.kv_bytes_per_sequence)} GB of KV per sequence); "
                     f"{kv.parked_sequences} parked "
                     f"({_gb(kv.parked_bytes)} GB in the external stores, one per system; "
                     f"{kv.swap_in_seconds * 1e3:.3f} ms to swap one in; "
                     f"{perf.swap_bytes_per_s_per_wafer / 1e9:.3f} GB/s of swaps on the busiest wafer's "
                     f"I/O).")
    else:
        lines.append("KV residency: no KV cache at this context; every sequence is resident.")
    what = {"round-trip": "the decode round trip (stage times plus I/O hops)",
            "stage": "the slowest stage times the micro-batches in flight",
            "io": "boundary I/O bandwidth times the micro-batches in flight"}[perf.bottleneck]
    lines.append(f"Time per output token: {perf.time_per_output_token_s * 1e3:.4f} ms, set by {what}; "
                 f"{perf.micro_batches_in_flight} micro-batch(es) of {perf.micro_batch} sequence(s).")
    why = {"compute": "the wafers' FLOPs",
           "SRAM bandwidth": "SRAM bandwidth (weights, activations, KV reads)",
           "fabric latency": "fabric latency of the collectives (paid once per step, whatever the batch)",
           "I/O": "off-wafer I/O (activations between wafers and KV swaps)",
           "SRAM capacity": "SRAM capacity: the KV of more sequences does not fit, the rest rotate through "
                            "the external store"}
    lines.append(f"Total throughput: {perf.tokens_per_s_total:,.1f} tokens/s, bound by "
                 f"{why.get(perf.throughput_bound, perf.throughput_bound)}.")
    busiest = max(plan.wafers, key=lambda w: (w.io.utilization, -w.index))
    lines.append(f"I/O: busiest wafer is {busiest.index} at {100 * busiest.io.utilization:.4f} % of "
                 f"{plan.target.io_bandwidth_bytes_per_s / 1e9:.1f} GB/s.")
    floor = plan.provenance.options.goal.min_tokens_per_s_per_user
    if floor:
        lines.append(f"Per-user floor: {floor} tokens/s required, "
                     f"{perf.tokens_per_s_per_user:.1f} predicted.")
    return lines


def _method_row(result: CompileResult, sol) -> str:
    ev = sol.evaluation
    p = result.problem
    if not sol.feasible:
        return f"| {sol.method} | - | - | - | - | - | - | no: {ev.reason} | {sol.seconds:.3f} |"
    tps_user = 1 / (ev.tpot * TICK_S) if ev.tpot else float("inf")
    gap = "" if sol.gap is None else f", gap {100 * sol.gap:.2f} %"
    return (f"| {sol.method} | {ev.wafers} | {ev.tpot * TICK_S * 1e3:.4f} | {tps_user:,.1f} | "
            f"{ev.resident * tps_user:,.1f} | {ev.batch} | {p.concurrency - ev.resident} | "
            f"yes ({sol.status}{gap}) | {sol.seconds:.3f} |")


def prefill_section(plan: Plan) -> list[str]:
    """report.md's disaggregated-prefill section (``--prefill-on``; empty otherwise)."""
    from placer.perf.disagg import describe

    if plan.prefill is None:
        return []
    return ["## Disaggregated prefill", "",
            *[f"- {line}" for line in describe(plan.prefill, plan.target.io_bandwidth_bytes_per_s)], ""]


def render_report(result: CompileResult) -> str:
    plan = result.plan
    perf, kv, t = plan.performance, plan.kv, plan.target
    layer_of = {u.name: u.layer for u in result.cost.units}
    layer_units: dict[int, int] = {}
    for u in result.cost.units:
        if u.layer >= 0:
            layer_units[u.layer] = layer_units.get(u.layer, 0) + 1
    from placer.speculative_place import draft_units_summary

    s = plan.solver
    cost = cost_figures(plan)   # the sweep's $ columns: one attribution (docs/sweep.md)
    lines = [
        f"# Placement of {plan.model.name} on {len(plan.wafers)} x {t.name}",
        "",
        f"- model: {plan.model.parameters:,} parameters, {_gb(plan.model.weight_bytes)} GB of weights, "
        f"{plan.model.units} units; sha256 `{plan.model.sha256[:16]}`",
        f"- target: {t.name}, {_gb(t.sram_bytes)} GB SRAM per wafer, {t.mesh_rows} x {t.mesh_cols} PEs at "
        f"{t.clock_hz / 1e9:.3f} GHz, I/O {t.io_bandwidth_bytes_per_s / 1e9:.1f} GB/s + "
        f"{t.hop_latency_s * 1e6:.2f} us per hop"
        + (f" ({t.io_latency_s * 1e6:.2f} us link + {t.hop_overhead_s * 1e6:.2f} us fitted hop overhead)"
           if t.hop_overhead_s else ""),
        f"- target variant: {t.overheads_description()}",
        f"- workload: context {plan.workload.context_tokens} tokens, "
        f"prompt {plan.workload.prompt_tokens} tokens, "
        f"concurrency {plan.workload.concurrency} sequences",
        f"- objective: {plan.objective}; solver {s.name}: {s.status}, objective {s.objective}, "
        f"bound {s.bound}, gap {'n/a' if s.gap is None else f'{100 * s.gap:.3f} %'} "
        f"({s.objective_description}); seed {s.seed}",
        "",
        "## Performance",
        "",
        "| time per output token | TTFT | tokens/s per user (resident) | per user, mean / min over all "
        "| tokens/s total | tokens/s per wafer | $ per million output tokens | $ per million input tokens "
        "| micro-batch | in flight |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {perf.time_per_output_token_s * 1e3:.4f} ms | {perf.ttft_s * 1e3:.3f} ms | "
        f"{perf.tokens_per_s_per_user:,.1f} | {perf.tokens_per_s_per_user_mean:,.1f} / "
        f"{perf.tokens_per_s_per_user_min:,.1f} | {perf.tokens_per_s_total:,.1f} | "
        f"{perf.tokens_per_s_per_wafer:,.1f} | "
        f"{_usd(perf.usd_per_million_tokens)} | {_usd(cost.get('usd_per_million_input_tokens', 0.0))} | "
        f"{perf.micro_batch} | {perf.micro_batches_in_flight} |",
        "",
        f"Decode round trip {perf.round_trip_s * 1e3:.4f} ms, slowest stage {perf.max_stage_s * 1e3:.4f} ms "
        f"(one step of {perf.micro_batch} sequence(s)); {perf.sequences_to_fill_pipeline} sequences fill the "
        f"pipeline; " + (f"prefill on {plan.prefill.target.name} (below)." if plan.prefill else
                         f"prefill in chunks of {perf.prefill_chunk_tokens} tokens"
                         + (" (the chunk with the shortest TTFT: wafers in regions prefill as spatial "
                            "pipelines, Floorplans below)." if plan.layout else ".")),
        "",
        *prefill_section(plan),
        *speculative_report_lines(plan),
        "## Wafers",
        "",
        "| wafer | units | weights GB | KV GB | activations GB | reserved GB | free GB | I/O bytes/token "
        "| I/O use % | stage ms (one step) | sequences that fit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in plan.wafers:
        m = w.memory
        draft = getattr(result, "draft", None)
        units = summarize_units(w.units, layer_of, layer_units) if draft is None \
            else draft_units_summary(w.units, result.cost, draft)
        lines.append(f"| {w.index} | {units} | {_gb(m.weights)} | "
                     f"{_gb(m.kv)} | {_gb(m.activations)} | {_gb(m.reserved)} | {_gb(m.free)} | "
                     f"{w.io.bytes_per_token:,} | {100 * w.io.utilization:.4f} | "
                     f"{w.stage_seconds * 1e3:.4f} | "
                     f"{w.sequences_that_fit} |")
    lines += ["", "## KV cache", "",
              f"{kv.bytes_per_token:,} bytes per token, {_gb(kv.bytes_per_sequence)} GB per sequence at "
              f"{kv.context_tokens} tokens; {kv.resident_sequences} resident, {kv.parked_sequences} parked; "
              f"swap-in of one parked sequence {kv.swap_in_seconds * 1e3:.3f} ms.",
              "", "## Binding constraints", ""]
    lines += [f"- {line}" for line in binding_constraints(plan)]
    lines += ["", "## Every method on the same problem", "",
              "| method | wafers | time/token ms | tokens/s per user | tokens/s total | micro-batch | parked "
              "| feasible | solve s |", "|---|---|---|---|---|---|---|---|---|"]
    for sol in sorted((result.solution, *result.others), key=lambda x: x.method):
        lines.append(_method_row(result, sol))
    lines += ["", "Times in this table come from the solver's integer model (0.1 ns ticks; swaps of parked "
              "sequences not charged); the performance section uses the floating-point model. Solve times "
              "are wall-clock seconds.", ""]
    return "\n".join(lines)
