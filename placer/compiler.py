"""``compile_model``: MODEL -> costs -> problem -> solve -> Plan (the library behind
``placer compile``; the package re-exports it as ``placer.compile``; the module is not named
compile so that ``placer.compile`` stays the function)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from placer import __version__
from placer.costs import ModelCost
from placer.errors import InfeasibleError, UserError
from placer.floorplan.cpsat import PackingError
from placer.floorplan.layout import WaferLayout, layout_name, layout_records, layout_wafers
from placer.floorplan.svg import floorplan_svg
from placer.options import CompileOptions, Layout
from placer.perf import swap_in_seconds, unit_decode_seconds
from placer.perf.disagg import PrefillWork, disaggregate, prefill_work
from placer.perf.formulas import batch_for, sequences_that_fit, to_ticks, wafer_bytes
from placer.perf.placement import place
from placer.pins import check_pins, resolve_pins
from placer.plan import (
    SCHEMA_VERSION,
    FloorplanRect,
    KVPlan,
    ModelInfo,
    Plan,
    Provenance,
    SolverInfo,
    WaferIO,
    WaferMemory,
    WaferPlan,
)
from placer.solver.bounds import explain_infeasible
from placer.solver.problem import Problem, build_problem, objective_description, objective_value
from placer.solver.solve import SOLVERS, Solution, solve
from placer.speculative_place import Draft, load_draft, speculative_plan, with_draft
from placer.targets import Target
from placer.targets.prefill import PrefillTarget
from placer.workload import Workload


@dataclass(frozen=True)
class CompileResult:
    """The plan, and what report.md needs beside it (never written into plan.json)."""

    plan: Plan
    cost: ModelCost
    problem: Problem
    solution: Solution
    others: tuple[Solution, ...]     # every other method on the same problem
    floorplans: tuple[tuple[int, str], ...] = ()   # (wafer, SVG text) of every regions wafer
    layouts: tuple[WaferLayout, ...] = ()          # each wafer's (``wafer_layouts``); empty if whole
    draft: Draft | None = None                     # --draft: the draft model (``cost`` holds its units)
    two_level: TwoLevel = dataclasses.field(default_factory=lambda: TwoLevel())  # the partitions' iteration

    @property
    def floorplan_svgs(self) -> tuple[tuple[str, str], ...]:
        """(caption, SVG text) per floorplanned wafer (what report.html embeds)."""
        return tuple((f"wafer {w}", svg) for w, svg in self.floorplans)


def compile_model(model: Any, options: CompileOptions | None = None, /, **flat: Any) -> Plan:
    """Place ``model`` (a path, zoo name, config dict, Graph, ``placer.pipeline.LoadedModel`` or
    ``ModelCost``) and return its Plan.

    Give a ``CompileOptions`` or the CLI's flat option names (``placer.options.FLAT_DEFAULTS``),
    not both; the other methods are not run (``compare`` is off)::

        >>> import placer
        >>> plan = placer.compile("llama-3.1-8b", context=2048, concurrency=2)
        >>> len(plan.wafers), plan.kv.resident_sequences
        (1, 2)
    """
    opts = _options(options, flat)
    opts = dataclasses.replace(opts, output=dataclasses.replace(opts.output, compare=False))
    return compile_result(model, opts).plan


def _options(options: CompileOptions | None, flat: dict[str, Any]) -> CompileOptions:
    if options is not None and flat:
        raise TypeError("give a CompileOptions or keyword options, not both")
    return options if options is not None else CompileOptions.from_flat(**flat)


def compile_result(model: Any, options: CompileOptions | None = None, /, **flat: Any) -> CompileResult:
    """Compile and, with ``options.output.compare``, also solve the same problem with every
    other method. Options as for ``compile_model``."""
    opts = _options(options, flat)
    tgt = opts.load_target()
    prefill_target = opts.load_prefill_target()
    opts = opts.resolve(tgt)
    workload = opts.workload
    cost, name, sha, structure_warning, export_warnings = _cost_of(model, tgt, workload,
                                                                   opts.granularity.value)
    prefill = None if prefill_target is None else \
        (prefill_target, prefill_work(cost, prefill_target, workload.prompt_tokens))  # fits, or exit 3
    info = ModelInfo(name, sha, cost.parameters, cost.weight_bytes, len(cost.units), structure_warning,
                     export_warnings)
    # --draft: the draft's units join the partition problem (placer.speculative_place)
    draft = load_draft(opts, tgt, _cost_of)
    target_cost, cost = cost, (cost if draft is None else with_draft(cost, draft))
    pins = resolve_pins(opts.deployment.pins, [u.name for u in cost.units])
    method, limit, seed = opts.solver.method.value, opts.solver.time_limit_s, opts.solver.seed
    problem, solution, layouts, two_level = _partition_and_lay_out(cost, tgt, opts, pins)
    others = _compared(problem, method, limit, seed) if opts.output.compare else ()
    provenance = Provenance(__version__, name, opts)
    plan = build_plan(cost, tgt, workload, problem, solution, info, provenance, layouts, prefill)
    if draft is not None:
        plan = speculative_plan(plan, target_cost, draft, tgt, solution)
    pictures = tuple((w, floorplan_svg(x.floorplan.problem, x.floorplan.floorplan,
                                       f"{name}: wafer {w} of {tgt.name}", tgt.clock_hz))
                     for w, x in enumerate(layouts) if x.floorplan is not None)
    return CompileResult(plan, cost, problem, solution, others, pictures, layouts, draft, two_level)


def _compared(problem: Any, method: str, limit: float, seed: int) -> tuple[Any, ...]:
    """The same problem solved by every other method, for report.md's table; a method the
    problem is past (CP-SAT's int64 range, a ``UserError`` when it is the chosen one) is left out."""
    out = []
    for m in SOLVERS:
        if m == method:
            continue
        try:
            out.append(solve(problem, m, limit, seed))
        except UserError:
            continue
    return tuple(out)


# Under --layout regions, partitions tried before giving up on floorplanning every wafer; each
# next one keeps RESERVE_STEP more of every wafer's SRAM free (see _partition_and_lay_out).
LAYOUT_PASSES = 4
RESERVE_STEP = 0.05
# Under --layout regions|auto, partitions in all, the first timed with whole-wafer unit costs
# and each next one with the unit costs of the previous one's floorplans (a fixed-point
# iteration between the two levels, capped; see _partition_and_lay_out).
TIME_PASSES = 3


@dataclass(frozen=True)
class TwoLevel:
    """How the two levels met: the partitions solved, the one chosen (0-based), and why the
    iteration stopped (``"whole layout"``, ``"no regions wafer"``, ``"fixed point"``,
    ``"cycle"``, ``"cap"`` or ``"infeasible"``, the next partition having no answer)."""

    passes: int = 1
    chosen: int = 0
    stop: str = "whole layout"
    solver_batch: int = 1   # the partition's micro-batch (``formulas.batch_for``)
    batch: int = 1          # the plan's, after ``_micro_batch``


def _partition(cost: ModelCost, target: Target, opts: CompileOptions, pins: Any,
               reserve: float, scale: Sequence[float] = ()) -> tuple[Problem, Solution]:
    """The across-wafer partition with ``reserve`` of each wafer's SRAM kept free (``scale``:
    each unit's time as a multiple of its whole-wafer time, ``build_problem``).

    Raises:
        InfeasibleError: no placement (why, from ``explain_infeasible``).
    """
    opts = dataclasses.replace(opts, deployment=dataclasses.replace(opts.deployment, reserve=reserve))
    problem = build_problem(cost, target, opts, pins, scale)
    check_pins(problem)
    method = opts.solver.method.value
    solution = solve(problem, method, opts.solver.time_limit_s, opts.solver.seed)
    if not solution.feasible:
        heuristic = method not in ("cp-sat", "dp")
        reason = solution.evaluation.reason or "no placement"
        why = explain_infeasible(problem, target.sram_bytes, reserve,
                                 f"solver {method} found none ({reason})" if heuristic else "")
        if heuristic and not why.startswith(f"infeasible: solver {method}"):
            why = f"{why} (solver {method}: {reason})"
        raise InfeasibleError(why)
    return problem, solution


_Laid = tuple[Problem, Solution, tuple["WaferLayout", ...]]
_LayoutCache = dict[tuple[object, ...], WaferLayout]


def _pack(cost: ModelCost, target: Target, opts: CompileOptions, pins: Any, scale: Sequence[float],
          first_attempt: int, cache: _LayoutCache) -> tuple[_Laid, int]:
    """A partition whose wafers all lay out, and its attempt number: the partition keeps
    ``RESERVE_STEP`` more of every wafer free after each one whose wafers do not pack, from
    ``first_attempt``, at most ``LAYOUT_PASSES`` attempts in this fixed order (deterministic).

    Raises:
        InfeasibleError: no partition, or none that packs.
    """
    reserve = opts.deployment.reserve or 0.0
    last: InfeasibleError | None = None
    for attempt in range(first_attempt, LAYOUT_PASSES):
        step = min(reserve + attempt * RESERVE_STEP, 0.95)
        try:
            problem, solution = _partition(cost, target, opts, pins, step, scale)
        except InfeasibleError as e:
            if last is None:
                raise
            raise InfeasibleError(f"{last} (and with {step:.0%} of SRAM kept free to let it pack: {e})") \
                from None
        try:
            return (problem, solution, wafer_layouts(cost, target, opts, solution, cache)), attempt
        except PackingError as e:
            if opts.layout is not Layout.REGIONS or attempt == LAYOUT_PASSES - 1:
                raise InfeasibleError(f"{e} (after {attempt + 1} partition(s), the last with "
                                      f"{step:.0%} of each wafer's SRAM kept free)") from None
            last = e
    raise AssertionError("unreachable")


def _partition_and_lay_out(cost: ModelCost, target: Target, opts: CompileOptions,
                           pins: Any) -> tuple[Problem, Solution, tuple[WaferLayout, ...], TwoLevel]:
    """The partition and each wafer's layout: the two levels, iterated to a fixed point.

    Memory: the partition fills a wafer's SRAM up to ``1 - reserve`` in total, while rectangles
    lose PEs to rounding (ceil tiles, band heights, a code reserve each), so under ``regions`` a
    full wafer may not pack; then the partition is solved again keeping ``RESERVE_STEP`` more of
    every wafer free (``_pack``), and later passes start from the reserve that packed.

    Time: the first partition is timed with whole-wafer unit costs and its wafers floorplanned
    (``wafer_layouts``). Each next partition times every unit of a wafer laid out in regions
    at ``latency / whole`` times its whole-wafer cost (that wafer's floorplan latency over the
    sum of its units' whole-wafer steps, both at the plan's micro-batch; 1 on a whole wafer),
    so the integer model's stage sum equals the floorplans' latencies for the previous answer.
    The iteration stops at a fixed point (the partition repeats one already laid out), when no
    wafer is in regions, when the next partition is infeasible, or after ``TIME_PASSES``
    partitions; of the partitions laid out, the best by the objective evaluated on its
    floorplans (the float model, ``placer.perf.placement.place``, ranked as the solver ranks:
    per-user floor kept, most resident, then ``objective_value``) wins, ties to the earliest.
    Each pass is deterministic (fixed seed, deterministic solver time), so the answer is.
    """
    cache: _LayoutCache = {}
    laid, attempt = _pack(cost, target, opts, pins, (), 0, cache)
    if opts.layout is Layout.WHOLE:
        return (*laid, TwoLevel())
    tried = [laid]
    stop = "cap"
    while len(tried) < TIME_PASSES:
        scale = _layout_scale(cost, target, tried[-1][1], tried[-1][2])
        if all(x == 1.0 for x in scale):
            stop = "no regions wafer"
            break
        try:
            nxt, attempt = _pack(cost, target, opts, pins, scale, attempt, cache)
        except InfeasibleError:
            stop = "infeasible"
            break
        repeats = [i for i, t in enumerate(tried) if t[1].assignment == nxt[1].assignment]
        if repeats:
            stop = "fixed point" if repeats[0] == len(tried) - 1 else "cycle"
            break
        tried.append(nxt)
    problem0 = tried[0][0]
    keys = [_two_level_key(cost, target, opts, problem0, *t) for t in tried]
    best = min(range(len(tried)), key=lambda i: (keys[i], i))
    solver_batch = tried[best][1].evaluation.batch
    chosen = _micro_batch(cost, target, opts, problem0, tried[best], keys[best], cache)
    return (*chosen, TwoLevel(len(tried) + (stop in ("fixed point", "cycle", "infeasible")), best, stop,
                              solver_batch, chosen[1].evaluation.batch))


def _micro_batch(cost: ModelCost, target: Target, opts: CompileOptions, problem0: Problem, laid: _Laid,
                 key: tuple[object, ...], cache: _LayoutCache) -> _Laid:
    """The micro-batch of a partition with wafers in regions. The solver's ``B =
    formulas.batch_for(S, N)`` keeps N whole wafers busy with one micro-batch each, but a wafer
    laid out in regions holds several micro-batches at once (one per region on the path), so
    smaller ones may serve the same S sequences faster: ``B = ceil(S / (N x 2^k))`` for k = 1,
    2, ... down to 1 are each floorplanned (the same partition and resident sequences) and the
    best by the float model on its floorplans (``_two_level_key``) is kept; ties keep the larger
    ``B`` (deterministic). A ``B`` whose wafers do not pack is skipped."""
    problem, solution, layouts = laid
    ev = solution.evaluation
    if not any(x.layout == "regions" for x in layouts) or ev.batch <= 1:
        return laid
    n = len(layouts)
    batches: list[int] = []
    m = 2 * n
    while (b := batch_for(ev.resident, m)) < (batches[-1] if batches else ev.batch):
        batches.append(b)
        m *= 2
    best, best_key = laid, key
    for b in batches:
        trial = dataclasses.replace(solution, evaluation=dataclasses.replace(ev, batch=b))
        try:
            trial_layouts = wafer_layouts(cost, target, opts, trial, cache)
        except InfeasibleError:
            continue
        k = _two_level_key(cost, target, opts, problem0, problem, trial, trial_layouts)
        if k < best_key:
            best, best_key = (problem, trial, trial_layouts), k
    return best


def _layout_scale(cost: ModelCost, target: Target, solution: Solution,
                  layouts: Sequence[WaferLayout]) -> tuple[float, ...]:
    """Each unit's time as a multiple of its whole-wafer time under ``layouts``: its wafer's
    floorplan latency over the sum of its units' whole-wafer steps (1 on a whole wafer)."""
    assert solution.assignment is not None
    batch = solution.evaluation.batch
    whole = [0.0] * len(layouts)
    for u, w in zip(cost.units, solution.assignment):
        whole[w] += unit_decode_seconds(u, target, batch)
    factor = [x.latency_s / s if x.layout == "regions" and s > 0 else 1.0 for x, s in zip(layouts, whole)]
    return tuple(factor[w] for w in solution.assignment)


def _two_level_key(cost: ModelCost, target: Target, opts: CompileOptions, problem0: Problem,
                   problem: Problem, solution: Solution,
                   layouts: Sequence[WaferLayout]) -> tuple[object, ...]:
    """Sort key of a laid-out partition (smaller is better): the solver's ranking
    (``rank_key``: most resident, then ``objective_value``) of the float model on its
    floorplans, in ``problem0``'s terms, after the per-user floor."""
    assert solution.assignment is not None
    ev = solution.evaluation
    regions = [x.times for x in layouts]
    perf = place(cost, target, opts.workload, solution.assignment, ev.resident, ev.batch, regions,
                 disaggregated=opts.prefill_on is not None).performance
    tpot = to_ticks(perf.time_per_output_token_s)
    floor_missed = problem0.max_tpot_ticks is not None and tpot > problem0.max_tpot_ticks
    value = objective_value(problem0, ev.wafers, to_ticks(perf.max_stage_s), tpot)
    return (floor_missed, -ev.resident, value)


def wafer_layouts(cost: ModelCost, target: Target, opts: CompileOptions,
                  solution: Solution, cache: _LayoutCache | None = None) -> tuple[WaferLayout, ...]:
    """Each wafer's on-wafer layout under ``--layout regions|auto`` (empty under ``whole``).

    The partition is given; each wafer's units are floorplanned at the plan's micro-batch
    (CP-SAT, one worker, ``placer.floorplan.cpsat.DEFAULT_TIME_LIMIT_S`` deterministic seconds
    per phase, the partition's seed), and the plan's performance is computed from those
    floorplans. ``cache``: layouts already made, by wafer units, micro-batch and resident
    count (a wafer the next pass leaves unchanged is not floorplanned again).

    Raises:
        InfeasibleError: under ``regions``, a unit fits no rectangle (named, with its bytes per
            PE and the target's limit) or a wafer's units do not pack.
    """
    if opts.layout is Layout.WHOLE:
        return ()
    assert solution.assignment is not None
    batch, assignment, resident = solution.evaluation.batch, solution.assignment, solution.evaluation.resident
    groups = [[u.name for u, w in zip(cost.units, assignment) if w == k] for k in range(max(assignment) + 1)]
    cache = {} if cache is None else cache
    memo: dict[tuple[object, ...], int] = {}  # region ticks priced for one wafer serve the others
    out = []
    for w, names in enumerate(groups):
        key = (tuple(names), batch, resident)
        if key not in cache:
            try:
                cache[key] = layout_wafers(
                    cost, target, [names], layout=opts.layout.value,
                    context_tokens=opts.workload.context_tokens, resident=resident, batch=batch,
                    seed=opts.solver.seed, whole_seconds=lambda u: unit_decode_seconds(u, target, batch),
                    prompt_tokens=opts.workload.prompt_tokens, memo=memo)[0]
            except InfeasibleError as e:  # layout_wafers names the wafer of its own list: 0
                raise type(e)(f"wafer {w}: {str(e).removeprefix('wafer 0: ')}") from None
        out.append(cache[key])
    return tuple(out)


def _cost_of(model: Any, target: Target, workload: Workload,
             granularity: str) -> tuple[ModelCost, str, str, str, tuple[str, ...]]:
    if isinstance(model, ModelCost):
        return model, model.model, hashlib.sha256(repr(model).encode()).hexdigest(), "", ()
    from placer.pipeline import LoadedModel, load_model

    # a LoadedModel (loaded at this granularity by the caller): the sweep loads a model once for
    # several points; the plan is the same as from the path (same graph, name, digest, warnings)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, granularity=granularity)
    try:
        from placer.cost_model import annotate_costs
    except ImportError:
        raise UserError("cost model not available in this build (placer.cost_model); "
                        "pass a ModelCost") from None
    cost = annotate_costs(loaded.graph, target, workload, loaded.structure)
    return cost, loaded.name, loaded.sha256, loaded.structure_warning, \
        tuple(f.message for f in loaded.export_findings)


def build_plan(cost: ModelCost, target: Target, workload: Workload, problem: Problem, solution: Solution,
               model: ModelInfo, provenance: Provenance, layouts: Sequence[WaferLayout] = (),
               prefill: tuple[PrefillTarget, PrefillWork] | None = None) -> Plan:
    """The Plan of a feasible solution, with memory, I/O, KV and performance per the perf model
    (``layouts``: each wafer's from ``wafer_layouts``; empty for the whole layout; ``prefill``:
    the ``--prefill-on`` target and the prompt's work there, ``placer.perf.disagg``)."""
    assert solution.assignment is not None
    ev = solution.evaluation
    resident = ev.resident
    regions = [x.times for x in layouts]
    placed = place(cost, target, workload, solution.assignment, resident, ev.batch, regions,
                   disaggregated=prefill is not None)
    perf, boundary, n = placed.performance, placed.boundary_bytes, len(placed.wafers)
    disaggregated = None
    if prefill is not None:
        kv_prompt = [sum(cost.units[u].kv_bytes(workload.prompt_tokens) for u in fig.units)
                     for fig in placed.wafers]
        disaggregated = disaggregate(prefill[1], prefill[0], target, workload.prompt_tokens, kv_prompt)
        perf = dataclasses.replace(perf, ttft_s=disaggregated.ttft_s)
    reserved = target.sram_bytes - problem.capacity
    rate = perf.tokens_per_s_total
    wafer_plans = []
    for w, fig in enumerate(placed.wafers):
        kv = resident * fig.kv_per_sequence
        in_b = boundary[w - 1] if w > 0 else 0
        out_b = boundary[w] if w < n - 1 else 0
        used = wafer_bytes(fig.weights, fig.kv_per_sequence, resident, fig.buffer)
        link = max(in_b, out_b) * rate + perf.swap_bytes_per_s_per_wafer * (fig.kv_per_sequence > 0)
        region = regions[w] if w < len(regions) else None
        wafer_plans.append(WaferPlan(
            index=w, units=tuple(cost.units[u].name for u in fig.units),
            memory=WaferMemory(fig.weights, kv, fig.buffer, reserved, target.sram_bytes - used - reserved),
            io=WaferIO(in_b, out_b, in_b + out_b, link / target.io_bandwidth_bytes_per_s),
            stage_seconds=fig.stage_seconds, prefill_seconds=fig.prefill_chunk_seconds,
            kv_bytes_per_sequence=fig.kv_per_sequence,
            sequences_that_fit=sequences_that_fit(problem.capacity, fig.weights, fig.buffer,
                                                  fig.kv_per_sequence, workload.concurrency),
            interval_seconds=region.interval_s if region else None,
            prefill_interval_seconds=fig.prefill_interval_seconds))
    parked = workload.concurrency - resident
    kv_seq = [fig.kv_per_sequence for fig in placed.wafers]
    per_seq = sum(kv_seq)
    worst = max(range(n), key=lambda w: (kv_seq[w], -w))
    if parked * kv_seq[worst] > target.external_kv_bytes:
        raise InfeasibleError(
            f"infeasible: external KV store binds: {parked} parked sequences need "
            f"{parked * kv_seq[worst] / 1e9:.3f} GB in the store of wafer {worst}'s system but target "
            f"{target.name!r} has {target.external_kv_bytes / 1e9:.3f} GB of external KV per system; lower "
            f"--concurrency or --context, add wafers (--max-wafers), or --set external_kv_bytes=...")
    kv_plan = KVPlan(cost.kv_bytes_per_token, per_seq, workload.context_tokens, resident, parked,
                     parked * per_seq, swap_in_seconds(target, kv_seq))
    info = SolverInfo(solution.method, solution.status, solution.objective, solution.bound, solution.gap,
                      provenance.options.solver.seed, provenance.options.solver.time_limit_s,
                      objective_description(problem))
    plan = Plan(SCHEMA_VERSION, model, target, workload, provenance.options.objective.value, info,
                tuple(wafer_plans), kv_plan, perf,
                tuple(sorted((cost.units[u].name, w) for u, w in enumerate(solution.assignment))), provenance,
                layout_name(layouts) if layouts else None,
                # The ignore below: the records hold exactly FloorplanRect's fields (unit a str, the
                # rest ints) in one dict[str, object], the shape the plan's JSON has.
                tuple(FloorplanRect(**r) for r in layout_records(layouts)),  # type: ignore[arg-type]
                disaggregated)
    return Plan.from_json(plan.to_json())  # canonical: floats rounded as in the file


#: The files every compile writes (``output_files``; floorplanned wafers add their SVGs).
OUTPUT_NAMES = ("plan.json", "report.md", "report.html")


def output_files(result: CompileResult) -> dict[str, str]:
    """The files one compile writes, by name: ``plan.json``, ``report.md`` and ``report.html``."""
    from placer.report import render_report
    from placer.report_html import render_compile_html

    files = {"plan.json": result.plan.to_json(), "report.md": render_report(result),
             "report.html": render_compile_html(result)}
    if result.floorplans:
        files["report.md"] += _floorplan_links(result)
        files.update({f"floorplan-wafer{w}.svg": svg for w, svg in result.floorplans})
    return files


def _floorplan_links(result: CompileResult) -> str:
    """report.md's floorplan section: one link per ``floorplan-wafer{N}.svg`` written beside it."""
    lines = ["", "## Floorplans", "",
             f"Layout `{result.plan.layout}`: each unit on its own rectangle of PEs, the wafer run as a "
             "spatial pipeline (interval = slowest region, latency = longest data path with hops). "
             f"Partition with {1 - result.problem.capacity / result.plan.target.sram_bytes:.0%} of each "
             "wafer's SRAM kept free (the reserve, raised when a wafer's rectangles did not pack).",
             "", _two_level_line(result.two_level), ""]
    for w, _ in result.floorplans:
        wp = result.plan.wafers[w]
        chunk = result.plan.performance.prefill_chunk_tokens
        lines.append(f"- [wafer {w}](floorplan-wafer{w}.svg): {len(wp.units)} units; decode interval "
                     f"{(wp.interval_seconds or 0.0) * 1e6:.3f} us, latency {wp.stage_seconds * 1e6:.3f} us; "
                     f"prefill chunk of {chunk} tokens interval "
                     f"{(wp.prefill_interval_seconds or wp.prefill_seconds) * 1e6:.3f} us, latency "
                     f"{wp.prefill_seconds * 1e6:.3f} us")
    return "\n".join(lines) + "\n"


def _two_level_line(t: TwoLevel) -> str:
    stop = {"fixed point": "a fixed point: the next partition repeated it",
            "cycle": "a cycle: the next partition repeated an earlier one",
            "cap": f"the cap of {TIME_PASSES} partitions",
            "infeasible": "the next partition had no answer",
            "no regions wafer": "no wafer in regions, nothing to feed back"}.get(t.stop, t.stop)
    batch = (f" Micro-batches of {t.batch} sequence(s) in flight through the spatial pipelines "
             f"(the solver's {t.solver_batch} keeps whole wafers busy; smaller ones were floorplanned and "
             f"this was the best)." if t.batch != t.solver_batch else "")
    return (f"Two levels: {t.passes} partition(s) solved, the first with whole-wafer unit costs and each "
            f"next with the previous floorplans' (latency / whole-wafer time per wafer); partition "
            f"{t.chosen + 1} is the best on its floorplans; stopped at {stop}.{batch}")


def write_outputs(result: CompileResult, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the compile's files into ``out_dir``, replacing the previous run's together
    (``placer.outputs``)."""
    from placer.outputs import write_output_files

    write_output_files(out_dir, output_files(result))
    return Path(out_dir) / "plan.json", Path(out_dir) / "report.md"
