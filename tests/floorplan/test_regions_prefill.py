"""A wafer in regions prefills, and names its throughput bound, from its floorplan (issue 9,
Deliver 3: "the performance model computes each unit's time from its rectangle ... and a
wafer's stage time and latency from the floorplan").

Oracles: ``placed_seconds`` re-prices every rectangle of the plan as ``placer run`` does; the
TTFT formula is evaluated independently at every chunk size of the ladder (brute force over
the choice); the critical path is checked against an exhaustive enumeration of paths."""

from __future__ import annotations

import itertools
import random

import pytest

import placer
from placer import compiler
from placer.floorplan import placed_seconds
from placer.options import CompileOptions
from placer.perf import prefill_chunk, ttft_seconds
from placer.perf.regions import critical_path, spatial_pipeline
from placer.perf.unit import prefill_chunk_ladder
from placer.plan import Plan
from tests.floorplan.test_layout import TINY_LLAMA

FLAT = {"target": "wse-mini", "context": 256, "prompt": 200, "wafers": 3, "time_limit": 2.0}


@pytest.fixture(scope="module")
def regions():
    return compiler.compile_result(TINY_LLAMA, CompileOptions.from_flat(layout="regions", **FLAT))


def _rects(plan: Plan, w: int) -> list[tuple[list[str], int, int, int, int]]:
    shared: dict[tuple[int, int, int, int], list[str]] = {}
    order = {u: i for i, u in enumerate(plan.wafers[w].units)}
    for r in sorted((r for r in plan.floorplan if r.wafer == w), key=lambda r: order[r.unit]):
        shared.setdefault((r.row, r.col, r.rows, r.cols), []).append(r.unit)
    return [(units, *rect) for rect, units in shared.items()]


def test_prefill_chunk_of_a_regions_wafer_is_priced_on_its_rectangles(regions):
    """Each regions wafer's prefill latency and interval in the plan equal the plan's
    rectangles re-priced for one chunk (``placed_seconds(..., prefill=...)``)."""
    plan, cost = regions.plan, regions.cost
    chunk = plan.performance.prefill_chunk_tokens
    assert plan.layout == "regions"
    for w, wp in enumerate(plan.wafers):
        latency, interval = placed_seconds(cost, plan.target, _rects(plan, w),
                                           context_tokens=plan.workload.context_tokens,
                                           batch=plan.performance.micro_batch,
                                           prefill=(chunk, plan.workload.prompt_tokens))
        assert wp.prefill_seconds == pytest.approx(latency, rel=1e-9)
        assert wp.prefill_interval_seconds == pytest.approx(interval, rel=1e-9)
        assert interval <= latency  # a pipeline's interval is one of its steps


def test_the_chunk_is_the_ladders_shortest_ttft(regions):
    """The plan's chunk minimises TTFT over every power of two up to the full grid's chunk,
    each wafer priced on its rectangles at that chunk (brute force over the ladder)."""
    plan, cost = regions.plan, regions.cost
    prompt = plan.workload.prompt_tokens
    ladder = prefill_chunk_ladder(plan.target, prompt)
    assert ladder[0] == 1 and ladder[-1] == prefill_chunk(plan.target, prompt)
    assert all(b == 2 * a for a, b in zip(ladder, ladder[1:]))
    boundary = [w.io.out_bytes_per_token for w in plan.wafers[:-1]]
    ttft = {}
    for c in ladder:
        figs = [placed_seconds(cost, plan.target, _rects(plan, w),
                               context_tokens=plan.workload.context_tokens,
                               batch=plan.performance.micro_batch, prefill=(c, prompt))
                for w in range(len(plan.wafers))]
        ttft[c] = ttft_seconds(plan.target, [a for a, _ in figs], boundary, prompt, c, 0.0,
                               [b for _, b in figs])
    best = min(ttft.values())
    assert ttft[plan.performance.prefill_chunk_tokens] == pytest.approx(best, rel=1e-9)
    assert plan.performance.ttft_s >= plan.performance.round_trip_s * (1 - 1e-12)
    # the plan's TTFT is this formula at its chunk (the round trip and request overhead on top)
    assert plan.performance.ttft_s == pytest.approx(
        max(ttft[plan.performance.prefill_chunk_tokens], plan.performance.round_trip_s)
        + plan.target.request_overhead_s, rel=1e-9)


def test_whole_layout_keeps_the_full_grid_chunk():
    plan = compiler.compile_model(TINY_LLAMA, CompileOptions.from_flat(**FLAT))
    assert plan.layout is None
    assert plan.performance.prefill_chunk_tokens == prefill_chunk(plan.target, FLAT["prompt"])
    assert all(w.prefill_interval_seconds is None for w in plan.wafers)
    assert "prefill_interval_seconds" not in plan.to_json()


def test_regions_plan_round_trips_through_json(regions):
    text = regions.plan.to_json()
    assert '"prefill_interval_seconds"' in text
    assert Plan.from_json(text).to_json() == text


def test_throughput_bound_parts_add_up_to_the_floorplan(regions):
    """A regions wafer's parts along its longest path sum to its floorplan latency (within a
    tick per unit of rounding), and its interval parts to its interval."""
    for x in regions.layouts:
        t = x.times
        assert t is not None
        units = len(x.floorplan.problem.regions)
        tick = 1 / regions.plan.target.clock_hz
        assert t.parts.seconds == pytest.approx(t.latency_s, abs=units * tick)
        assert t.interval_parts.seconds == pytest.approx(t.interval_s, abs=units * tick)
    assert regions.plan.performance.throughput_bound in ("compute", "SRAM bandwidth", "fabric latency", "I/O")


def _paths(n, links):
    """Every path (list of nodes) of the DAG that starts at a node with no incoming link."""
    succ = {i: [(b, t) for a, b, t in links if a == i] for i in range(n)}
    has_in = {b for _, b, _ in links}
    out = []

    def walk(path, linked):
        out.append((list(path), linked))
        for b, t in succ[path[-1]]:
            walk(path + [b], linked + t)

    for s in range(n):
        if s not in has_in:
            walk([s], 0)
    return out


@pytest.mark.parametrize("seed", range(40))
def test_critical_path_is_the_longest_path(seed):
    """Against every path of a random DAG: the critical path is a path, its steps plus links
    equal the spatial pipeline's latency, and no path is longer."""
    rng = random.Random(seed)
    n = rng.randint(1, 7)
    steps = [rng.randint(0, 9) for _ in range(n)]
    links = [(a, b, rng.randint(0, 5)) for a, b in itertools.combinations(range(n), 2) if rng.random() < 0.4]
    _, latency, _ = spatial_pipeline(steps, links)
    path, linked = critical_path(steps, links)
    assert sum(steps[i] for i in path) + linked == latency
    edges = {(a, b): t for a, b, t in links}
    assert all((a, b) in edges for a, b in zip(path, path[1:]))
    assert linked == sum(edges[(a, b)] for a, b in zip(path, path[1:]))
    longest = max(sum(steps[i] for i in p) + t for p, t in _paths(n, links))
    assert longest == latency


def test_rectangles_hold_the_kv_of_every_resident_sequence():
    """With several micro-batches in flight every wafer keeps the KV of all resident sequences,
    so each rectangle is sized for all of them (its buffers and step for one micro-batch); the
    floorplan's per-PE bytes are then within the PE's SRAM with every resident KV tile counted."""
    from placer.floorplan.pricing import region_pe_bytes
    from placer.floorplan.problem import shape_of

    result = compiler.compile_result(TINY_LLAMA, CompileOptions.from_flat(
        layout="regions", objective="max-throughput", **{**FLAT, "concurrency": 12}))
    plan, cost = result.plan, result.cost
    perf, resident = plan.performance, plan.kv.resident_sequences
    assert perf.micro_batches_in_flight > 1 and resident > perf.micro_batch
    by_name = {u.name: u for u in cost.units}
    for x in result.layouts:
        wf = x.floorplan
        for r in wf.floorplan.rects:
            units = [by_name[n] for n in wf.problem.regions[r.region].units]
            held = region_pe_bytes(units, plan.target, r.rows, r.cols, plan.workload.context_tokens,
                                   perf.micro_batch, resident)
            assert shape_of(wf.problem, r).pe_bytes == held <= plan.target.pe_sram_bytes
            if any(u.kv for u in units):
                assert held > region_pe_bytes(units, plan.target, r.rows, r.cols,
                                              plan.workload.context_tokens, perf.micro_batch)


def test_prefill_elsewhere_keeps_the_full_grid_chunk():
    """With ``--prefill-on`` the wafers run no prefill chunk, so no chunk is searched for (on
    its wafers, Llama-3.1-8B in regions would prefill a 1,024-token prompt in chunks of 8)."""
    plan = placer.compile("llama-3.1-8b", target="wse3", wafers=1, context=2048, prompt=1024,
                          layout="regions", prefill_on="h100x8")
    assert plan.prefill is not None
    assert plan.performance.prefill_chunk_tokens == prefill_chunk(plan.target, 1024) == 1024


@pytest.mark.parametrize("field", ["prefill_interval_seconds", "interval_seconds", "stage_seconds"])
def test_a_negative_wafer_time_in_a_plan_is_refused_by_name(regions, tmp_path, field):
    import json

    from click.testing import CliRunner

    from placer.cli.main import cli

    d = json.loads(regions.plan.to_json())
    d["wafers"][0][field] = -1.0
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(d))
    out = CliRunner().invoke(cli, ["check", str(path), "--max-wafers", "9"])
    assert out.exit_code == 2, out.output
    assert f"'wafers' [0]: field '{field}'" in out.output and "-1" in out.output
