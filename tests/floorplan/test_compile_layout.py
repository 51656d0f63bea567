"""``--layout whole|regions|auto`` through the compiler: the plan's layout and floorplan, its
performance from the floorplan, byte-identical plans, SVGs beside plan.json, exit 3."""

from __future__ import annotations

import json
import math

import networkx as nx
import pytest
from click.testing import CliRunner

import placer
from placer.cli.main import cli
from placer.floorplan.pricing import unit_seconds_on_rectangle
from placer.ir.mesh_physics import stream_cycles
from placer.options import CompileOptions, Layout
from placer.perf.pipeline import predict_performance
from placer.plan import Plan
from placer.targets import load_target
from tests.floorplan.test_layout import TINY_LLAMA

MINI = load_target("wse-mini")
FLAT = {"target": "wse-mini", "context": 256, "prompt": 16, "wafers": 3, "time_limit": 2.0}


@pytest.fixture(scope="module")
def regions() -> Plan:
    return placer.compile(TINY_LLAMA, layout="regions", **FLAT)


def test_layout_option_derives_from_the_enum_and_is_recorded_only_when_not_whole():
    assert Layout.choices() == ("whole", "regions", "auto")
    assert CompileOptions().layout is Layout.WHOLE
    assert "layout" not in CompileOptions().to_dict()
    opts = CompileOptions.from_flat(layout="auto")
    assert opts.to_dict()["layout"] == "auto"
    assert CompileOptions.from_dict(opts.to_dict()) == opts


def test_whole_plans_carry_no_layout_fields():
    d = json.loads(placer.compile(TINY_LLAMA, **FLAT).to_json())
    assert "layout" not in d and "floorplan" not in d and "layout" not in d["provenance"]["options"]
    assert all("interval_seconds" not in w for w in d["wafers"])


def test_regions_plan_has_a_valid_rectangle_for_every_unit(regions):
    d = json.loads(regions.to_json())
    assert d["layout"] == "regions" and d["provenance"]["options"]["layout"] == "regions"
    assert sorted(r["unit"] for r in d["floorplan"]) == sorted(u for u, _ in regions.assignment)
    assert all(set(r) == {"unit", "wafer", "row", "col", "rows", "cols"} for r in d["floorplan"])
    for r in d["floorplan"]:
        assert r["wafer"] == regions.wafer_of(r["unit"])
        assert 0 <= r["row"] and r["row"] + r["rows"] <= MINI.mesh_rows
        assert 0 <= r["col"] and r["col"] + r["cols"] <= MINI.mesh_cols
    # no two rectangles of a wafer share a PE
    for w in range(len(regions.wafers)):
        pes = [(r["row"] + i, r["col"] + j) for r in d["floorplan"] if r["wafer"] == w
               for i in range(r["rows"]) for j in range(r["cols"])]
        assert len(pes) == len(set(pes))
    assert Plan.from_json(regions.to_json()) == regions


def test_regions_plan_is_byte_identical_across_runs(regions):
    assert placer.compile(TINY_LLAMA, layout="regions", **FLAT).to_json() == regions.to_json()


def _oracle_latency_interval(plan: Plan, wafer: int) -> tuple[float, float]:
    """A wafer's latency and interval recomputed from the plan's rectangles: the longest path
    of a networkx DAG whose edges weigh the source unit's ticks plus the link's streaming and
    hop cycles (Manhattan distance between centres ``row + rows // 2, col + cols // 2``)."""
    cost = placer.cost_model.annotate_costs(placer.pipeline.load_graph(TINY_LLAMA), MINI, plan.workload)
    rect = {r.unit: r for r in plan.floorplan if r.wafer == wafer}
    ticks = {u.name: math.ceil(unit_seconds_on_rectangle(u, MINI, rect[u.name].rows, rect[u.name].cols,
                                                         plan.performance.micro_batch) * MINI.clock_hz - 1e-9)
             for u in cost.units if u.name in rect}
    g = nx.DiGraph()
    for u, t in ticks.items():
        g.add_edge(u, "sink", weight=t)
    for e in cost.edges:
        if e.src in rect and e.dst in rect:
            a, b = rect[e.src], rect[e.dst]
            hops = (abs(a.row + a.rows // 2 - b.row - b.rows // 2)
                    + abs(a.col + a.cols // 2 - b.col - b.cols // 2))
            link = stream_cycles(e.bytes_per_token * plan.performance.micro_batch, MINI.link_bytes_per_cycle)
            w = ticks[e.src] + link + MINI.cycles_per_hop * hops
            if not g.has_edge(e.src, e.dst) or g[e.src][e.dst]["weight"] < w:
                g.add_edge(e.src, e.dst, weight=w)
    return nx.dag_longest_path_length(g) / MINI.clock_hz, max(ticks.values()) / MINI.clock_hz


def test_regions_performance_comes_from_the_floorplan(regions):
    for w, wp in enumerate(regions.wafers):
        latency, interval = _oracle_latency_interval(regions, w)
        assert wp.stage_seconds == pytest.approx(latency, rel=1e-9)
        assert wp.interval_seconds == pytest.approx(interval, rel=1e-9)
    p, n = regions.performance, len(regions.wafers)
    trip = (sum(w.stage_seconds for w in regions.wafers) + n * MINI.io_latency_s
            + sum(p.micro_batch * b / MINI.io_bandwidth_bytes_per_s for b in _boundaries(regions))
            + MINI.host_overhead_s_per_token)
    assert p.round_trip_s == pytest.approx(trip, rel=1e-9)
    assert p.max_stage_s == pytest.approx(max(w.interval_seconds for w in regions.wafers), rel=1e-9)


def _boundaries(plan: Plan) -> list[int]:
    return [w.io.out_bytes_per_token for w in plan.wafers[:-1]]


def test_a_wafer_in_regions_serves_micro_batches_at_its_interval():
    """TPOT = max(round trip, M x max interval): with intervals given, latencies enter only the
    round trip; fill = B x ceil(R / max interval)."""
    lat, ivl = [4e-6, 6e-6], [1e-6, 2e-6]
    p = predict_performance(MINI, lat, [1e-6, 1e-6], [100], 8, 16, batch=1, stage_intervals=ivl)
    trip = (sum(lat) + 2 * MINI.io_latency_s + 100 / MINI.io_bandwidth_bytes_per_s
            + MINI.host_overhead_s_per_token)
    assert p.round_trip_s == pytest.approx(trip)
    assert p.time_per_output_token_s == pytest.approx(max(trip, 8 * 2e-6))
    assert p.sequences_to_fill_pipeline == math.ceil(trip / 2e-6 - 1e-12)


def test_compile_writes_one_svg_per_wafer_and_links_them(tmp_path):
    out = tmp_path / "o"
    r = CliRunner().invoke(cli, ["compile", "-o", str(out), "--layout", "regions", "--target", "wse-mini",
                                 "--context", "256", "--prompt", "16", "--wafers", "3", "--time-limit", "2",
                                 _config(tmp_path)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = (out / "report.md").read_text()
    for w in range(3):
        assert (out / f"floorplan-wafer{w}.svg").read_text().startswith("<svg")
        assert f"(floorplan-wafer{w}.svg)" in report
    assert "<h2>Floorplans</h2>" in (out / "report.html").read_text()


def _config(tmp_path) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY_LLAMA))
    return str(path)


def test_a_unit_that_fits_no_rectangle_is_infeasible_exit_3(tmp_path):
    r = CliRunner().invoke(cli, ["compile", "-o", str(tmp_path / "o"), "--layout", "regions", "--target",
                                 "wse-mini", "--context", "256", "--prompt", "16", "--wafers", "3",
                                 "--set", "pe_sram_bytes=600", "--json", _config(tmp_path)])
    assert r.exit_code == 3, r.output
    error = json.loads(r.stdout)
    assert error["exit"] == 3
    assert "B per PE" in error["error"] and "the target has 600 B per PE" in error["error"]
    assert "unit '" in error["error"]


def test_bad_layout_exits_2(tmp_path):
    r = CliRunner().invoke(cli, ["compile", "-o", str(tmp_path / "o"), "--layout", "spiral", "llama-3.1-8b"])
    assert r.exit_code == 2 and "--layout" in r.output


def test_a_wafer_that_does_not_pack_is_partitioned_again_with_more_sram_free(monkeypatch):
    """The two levels: the first partition whose wafers all pack wins; each retry keeps
    RESERVE_STEP more SRAM free; after LAYOUT_PASSES failures the answer is infeasible."""
    from placer import compiler
    from placer.floorplan.cpsat import PackingError

    real, calls = compiler.wafer_layouts, []

    def fails_first(cost, target, opts, solution, cache=None):
        calls.append(solution)
        if len(calls) == 1:
            raise PackingError("wafer 0: the 2 regions do not pack")
        return real(cost, target, opts, solution, cache)

    monkeypatch.setattr(compiler, "wafer_layouts", fails_first)
    result = compiler.compile_result(TINY_LLAMA, CompileOptions.from_flat(layout="regions", **FLAT))
    # the 2nd partition packs; later passes of the time iteration start from its reserve
    assert len(calls) >= 2 and result.plan.layout == "regions"
    free = 1 - result.problem.capacity / MINI.sram_bytes
    assert free == pytest.approx(MINI.default_reserve + compiler.RESERVE_STEP, abs=1e-6)
    assert result.plan.provenance.options.deployment.reserve == MINI.default_reserve

    def never(cost, target, opts, solution, cache=None):
        raise PackingError("wafer 0: the 2 regions do not pack")

    monkeypatch.setattr(compiler, "wafer_layouts", never)
    with pytest.raises(placer.errors.InfeasibleError, match=f"after {compiler.LAYOUT_PASSES} partition"):
        compiler.compile_result(TINY_LLAMA, CompileOptions.from_flat(layout="regions", **FLAT))
