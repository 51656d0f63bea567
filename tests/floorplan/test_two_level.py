"""The two levels iterated (issue 9, Deliver 3): each partition after the first is timed with
the previous partition's floorplans, stops at a fixed point or the cap, and the best laid-out
partition on its floorplans wins."""

from __future__ import annotations

import pytest

from placer import compiler
from placer.options import CompileOptions
from placer.perf import unit_decode_seconds
from placer.perf.formulas import to_ticks
from placer.solver.problem import build_problem
from placer.targets import load_target
from tests.floorplan.test_layout import TINY_LLAMA

MINI = load_target("wse-mini")
FLAT = {"target": "wse-mini", "context": 256, "prompt": 16, "wafers": 3, "time_limit": 2.0}


@pytest.fixture(scope="module")
def traced():
    """A regions compile with every partition (its problem and solution) and every wafer
    layout call recorded."""
    mp = pytest.MonkeyPatch()
    parts, laid = [], []
    real_partition, real_layouts = compiler._partition, compiler.wafer_layouts

    def partition(*args, **kwargs):
        out = real_partition(*args, **kwargs)
        parts.append(out)
        return out

    def layouts(cost, target, opts, solution, cache=None):
        out = real_layouts(cost, target, opts, solution, cache)
        laid.append((solution, out))
        return out

    mp.setattr(compiler, "_partition", partition)
    mp.setattr(compiler, "wafer_layouts", layouts)
    try:
        result = compiler.compile_result(TINY_LLAMA, CompileOptions.from_flat(layout="regions", **FLAT))
    finally:
        mp.undo()
    return result, parts, laid


def test_each_next_partition_is_timed_with_the_previous_floorplans(traced):
    """The integer model of pass k + 1, on pass k's assignment, has per-wafer stage sums equal
    to pass k's floorplan latencies (within one tick per unit of rounding)."""
    result, parts, laid = traced
    assert len(parts) >= 2  # under regions a second partition is always tried
    for (_, before), (after, _) in zip(parts, parts[1:]):
        layouts = next(x for s, x in laid if s is before)
        assignment, batch = before.assignment, before.evaluation.batch
        ticks, _ = after.decode.at(batch)
        assert len(layouts) == max(assignment) + 1
        for w, lay in enumerate(layouts):
            on = [u for u, x in enumerate(assignment) if x == w]
            assert lay.layout == "regions"
            stage = sum(ticks[u] for u in on)
            assert abs(stage - to_ticks(lay.latency_s)) <= len(on), (w, stage, lay.latency_s)


def test_the_iteration_is_capped_and_says_how_it_stopped(traced):
    result, parts, _ = traced
    t = result.two_level
    assert 1 <= t.passes <= compiler.TIME_PASSES and t.passes == len(parts)
    assert t.stop in {"fixed point", "cycle", "cap", "infeasible"}
    assert 0 <= t.chosen < t.passes
    if t.stop == "fixed point":  # the last partition repeats the one before it
        assert parts[-1][1].assignment == parts[-2][1].assignment


def test_the_chosen_partition_is_the_best_on_its_floorplans(traced):
    """Re-rank every laid-out partition by the float model on its floorplans: the plan is the
    first of the best."""
    result, parts, laid = traced
    opts = CompileOptions.from_flat(layout="regions", **FLAT).resolve(MINI)
    distinct = []
    for problem, solution in parts:
        if solution.assignment not in [s.assignment for _, s, _ in distinct]:
            lay = next(x for s, x in laid if s.assignment == solution.assignment)
            distinct.append((problem, solution, lay))
    keys = [compiler._two_level_key(result.cost, MINI, opts, parts[0][0], *d) for d in distinct]
    best = min(range(len(keys)), key=lambda i: (keys[i], i))
    assert best == result.two_level.chosen
    assert tuple(sorted((result.cost.units[u].name, w) for u, w in enumerate(distinct[best][1].assignment))) \
        == result.plan.assignment


def test_whole_layout_solves_one_partition():
    result = compiler.compile_result(TINY_LLAMA, CompileOptions.from_flat(**FLAT))
    assert result.two_level == compiler.TwoLevel(1, 0, "whole layout")


def test_report_states_the_two_levels(traced):
    result, _, _ = traced
    report = compiler.output_files(result)["report.md"]
    assert f"Two levels: {result.two_level.passes} partition(s) solved" in report


def test_build_problem_scales_unit_times():
    from placer.cost_model import annotate_costs
    from placer.pipeline import load_graph
    from placer.workload import Workload

    cost = annotate_costs(load_graph(TINY_LLAMA), MINI, Workload(context_tokens=256))
    opts = CompileOptions.from_flat(**FLAT)
    scale = tuple(1.0 + 0.5 * (i % 3) for i in range(len(cost.units)))
    plain, scaled = build_problem(cost, MINI, opts), build_problem(cost, MINI, opts, (), scale)
    units = cost.units
    assert scaled.ticks == tuple(to_ticks(unit_decode_seconds(u, MINI) * s) for u, s in zip(units, scale))
    for batch in (1, 4):
        a, b = plain.decode.at(batch)[0], scaled.decode.at(batch)[0]
        assert b == tuple(to_ticks(unit_decode_seconds(u, MINI, batch) * s) for u, s in zip(units, scale))
        assert all(abs(y - x * s) <= 1 for x, y, s in zip(a, b, scale))
    with pytest.raises(ValueError, match="factors"):
        build_problem(cost, MINI, opts, (), (1.0,))


def test_regions_micro_batch_is_the_best_of_the_smaller_ones():
    """With wafers in regions the plan's micro-batch is the best (by the float model on its
    floorplans) of the solver's ``batch_for(S, N)`` and each ``batch_for(S, N x 2^k)`` below it,
    every one floorplanned on the same partition (an exhaustive check over those candidates);
    the spatial pipelines then hold several micro-batches at once."""
    from placer.perf.formulas import batch_for
    from placer.perf.placement import place

    opts = CompileOptions.from_flat(layout="regions", objective="max-throughput",
                                    **{**FLAT, "concurrency": 12})
    result = compiler.compile_result(TINY_LLAMA, opts)
    t, plan = result.two_level, result.plan
    assert plan.performance.micro_batch == t.batch == result.solution.evaluation.batch
    n, s = len(plan.wafers), plan.kv.resident_sequences
    assert t.solver_batch == batch_for(s, n)
    candidates = sorted({t.solver_batch} | {batch_for(s, n * 2**k) for k in range(1, 8)})
    total = {}
    for b in candidates:
        sol = result.solution.__class__(**{**result.solution.__dict__,
                                           "evaluation": result.solution.evaluation.__class__(
                                               **{**result.solution.evaluation.__dict__, "batch": b})})
        layouts = compiler.wafer_layouts(result.cost, plan.target, opts.resolve(plan.target), sol)
        perf = place(result.cost, plan.target, plan.workload, sol.assignment, s, b,
                     [x.times for x in layouts]).performance
        total[b] = perf.tokens_per_s_total
    assert plan.performance.tokens_per_s_total == pytest.approx(max(total.values()), rel=1e-9)
    assert total[t.batch] >= total[t.solver_batch]
