"""``--layout regions`` executed on the mesh emulator: each unit on its rectangle of PEs.

Oracles: onnxruntime (logits, greedy tokens) for the tiny models on wse-mini x 3 wafers; numpy
and the closed-form hop counts for kernels on a rectangle; the plan's own rectangles for the
route between two of them (Manhattan distance of their centres); the ledger for the per-PE
SRAM of a rectangle too small for its unit.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from placer.backends.executor import MeshExecutor
from placer.backends.mesh import MeshSpec, SramOverflowError, StatsObserver, Wafer, linalg
from placer.backends.mesh.tiling import tile_matrix
from placer.errors import UserError
from placer.ir.dtypes import DType
from placer.ir.graph import GraphBuilder, WeightRole
from placer.ir.ops import OpKind
from placer.ir.types import TensorType
from tests.test_run import FAMILIES, TOKENS, _inputs, _ort_greedy

HIDDEN_BYTES = 64 * 4  # the tiny models' hidden state, fp32, one token


@pytest.fixture(scope="module")
def placed_regions(onnx_model):  # noqa: ANN001, ANN201
    import placer

    cache = {}

    def get(family: str):  # noqa: ANN202
        if family not in cache:
            path = onnx_model(family, with_cache=True)
            plan = placer.compile(str(path), target="wse-mini", wafers=3, context=64, prompt=8,
                                  layout="regions")
            cache[family] = (path, plan, placer.load_graph(str(path)))
        return cache[family]

    return get


def _centre(r) -> tuple[int, int]:  # noqa: ANN001
    return r.row + r.rows // 2, r.col + r.cols // 2


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_regions_plan_runs_on_its_rectangles_and_matches_onnxruntime(placed_regions, family: str) -> None:  # noqa: ANN001
    from placer.runner import run_plan

    path, plan, graph = placed_regions(family)
    assert plan.layout == "regions" and len({w for _, w in plan.assignment}) == 3
    feeds = _inputs(graph)
    expected_logits, expected_ids = _ort_greedy(path, feeds, TOKENS)
    result = run_plan(str(path), plan, feeds, tokens=TOKENS)
    scale = np.abs(expected_logits).max()
    assert np.abs(result.prefill_outputs["logits"] - expected_logits).max() <= 1e-4 * scale
    np.testing.assert_array_equal(result.tokens, expected_ids)
    ratio = result.emulated_step_s / result.predicted_step_s
    assert 0.9 <= ratio <= 1.1, ratio
    # Two rectangles of one wafer exchange the hidden state (GPT-2: also its mask and
    # positions) over the fabric, each value the hops of the route between their centres
    # once per step; units alone on a wafer route nothing.
    rects = {r.unit: r for r in plan.floorplan}
    for w in range(3):
        units = [u for u, x in plan.assignment if x == w]
        link = result.decode_stats.per_kernel(f"wafer{w}").get("region-link")
        if len(units) == 1:
            assert link is None
            continue
        assert len(units) == 2  # 4 units on 3 wafers: one wafer holds two consecutive ones
        (r0, c0), (r1, c1) = _centre(rects[units[0]]), _centre(rects[units[1]])
        steps = len(result.decode)
        distance = abs(r0 - r1) + abs(c0 - c1)
        assert link is not None and link.calls % steps == 0 and link.hops == link.calls * distance
        assert link.link_bytes >= steps * distance * HIDDEN_BYTES and link.link_bytes % distance == 0
        if family != "gpt2":
            assert link.calls == steps and link.link_bytes == link.hops * HIDDEN_BYTES
    # Every PE of a rectangle within its SRAM; a unit's step is timed on its rectangle.
    assert 0 < max(result.peak_pe_bytes.values()) <= plan.target.pe_sram_bytes
    assert set(result.predicted_unit_s) == set(rects)


def _tampered(plan, unit: str, **change):  # noqa: ANN001, ANN202
    return dataclasses.replace(plan, floorplan=tuple(dataclasses.replace(r, **change) if r.unit == unit else r
                                                     for r in plan.floorplan))


def test_a_rectangle_too_small_for_its_unit_is_an_sram_error(placed_regions) -> None:  # noqa: ANN001
    from placer.runner import run_plan

    path, plan, graph = placed_regions("llama")
    rect = next(r for r in plan.floorplan if r.unit == "layers.1")
    small = _tampered(plan, "layers.1", rows=1, cols=1)
    # The unit's fp32 weights (tens of KB) cannot sit on the one PE of a 1 x 1 rectangle; the
    # error names the PE at its wafer coordinates (the rectangle's corner).
    with pytest.raises(UserError, match=rf"does not fit the emulated PEs: .*wafer{rect.wafer} PE "
                                        rf"\(row {rect.row}, col {rect.col}\)"):
        run_plan(str(path), small, _inputs(graph), tokens=1)


@pytest.mark.parametrize("change, message", [
    ({"rows": 17}, "outside target 'wse-mini'"), ({"col": -1}, "outside target"),
    ({"wafer": 2}, "on wafer 2 but the assignment"), ({"unit": "layers.9"}, "does not have")])
def test_bad_rectangles_are_user_errors(placed_regions, tmp_path, change, message) -> None:  # noqa: ANN001
    from placer.cli.main import cli

    path, plan, graph = placed_regions("llama")
    d = json.loads(plan.to_json())
    r = next(r for r in d["floorplan"] if r["unit"] == "layers.0")
    r.update(change)
    (tmp_path / "plan.json").write_text(json.dumps(d))
    np.savez(tmp_path / "in.npz", **_inputs(graph))
    res = CliRunner().invoke(cli, ["run", str(path), "--plan", str(tmp_path / "plan.json"), "--inputs",
                                   str(tmp_path / "in.npz")])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def _wafer(rows: int, cols: int, sram: int = 1 << 20) -> tuple[Wafer, StatsObserver]:
    obs = StatsObserver()
    return Wafer(MeshSpec(rows, cols, sram, 16.0, 1, 4, 1e9), "w", [obs]), obs


def test_kernels_run_unchanged_on_a_rectangle_spanning_only_its_rows_and_cols() -> None:
    wafer, obs = _wafer(8, 8)
    region = wafer.region(2, 1, 3, 5)
    assert (region.spec.rows, region.spec.cols, region.origin) == (3, 5, (2, 1))
    assert wafer.region(2, 1, 3, 5) is region
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 10)).astype(np.float32)
    w = rng.standard_normal((10, 11)).astype(np.float32)
    with region.kernel("gemv"):
        y = linalg.gemv(region, x, tile_matrix(w[None], 3, 5), 11, groups=1)
    np.testing.assert_allclose(y[0], x[0] @ w, rtol=1e-5, atol=1e-5)
    assert obs.stats[("w", "gemv")].hops == linalg.gemv_hops(3, 5, 1)  # the rectangle's, not 8 x 8
    assert region.cycles > 0 and wafer.cycles == 0
    with pytest.raises(ValueError, match="does not lie inside"):
        wafer.region(6, 0, 3, 1)


def test_a_rectangle_ledger_is_a_window_of_its_wafer() -> None:
    wafer, _ = _wafer(4, 4, sram=100)
    a, b = wafer.region(0, 0, 2, 4), wafer.region(1, 2, 3, 2)  # overlapping on PEs (1, 2), (1, 3)
    a.ledger.allocate("weight:a", 60)
    assert wafer.ledger.used[:2].tolist() == [[60] * 4] * 2 and wafer.ledger.used[2:].sum() == 0
    b.ledger.allocate("weight:b", 30)
    assert wafer.ledger.used[1].tolist() == [60, 60, 90, 90]
    with pytest.raises(SramOverflowError, match=r"PE \(row 1, col 2\)") as err:
        b.ledger.allocate("kv:b", 20)
    assert err.value.pe == (1, 2)
    b.ledger.free("weight:b")
    assert wafer.ledger.used[1].tolist() == [60] * 4
    assert wafer.peak_pe_bytes == 90


def _fork_join():  # noqa: ANN202
    """x -> two GEMVs on units a and b (no data between them) -> their sum on unit c."""
    b = GraphBuilder("fork-join")
    x = b.input("x", TensorType(DType.FLOAT32, (1, 16)))
    rng = np.random.default_rng(0)

    def weight(name: str) -> str:
        return b.weight(name, TensorType(DType.FLOAT32, (16, 16)),
                        data=rng.standard_normal((16, 16)).astype(np.float32), role=WeightRole.PARAMETER)

    ya = b.op(OpKind.MATMUL, [x, weight("wa")], unit="a")
    yb = b.op(OpKind.MATMUL, [x, weight("wb")], unit="b")
    y = b.op(OpKind.MATMUL, [b.op(OpKind.ADD, [ya, yb], unit="c"), weight("wc")], unit="c")
    b.output(y)
    return b.build()


def test_rectangles_with_no_data_between_them_overlap_in_time() -> None:
    from placer.backends.reference import run_graph

    graph = _fork_join()
    spec = MeshSpec(8, 8, 1 << 20, 16.0, 1, 4, 1e9)
    rects = {"a": (0, 0, 4, 4), "b": (0, 4, 4, 4), "c": (4, 0, 4, 8)}
    ex = MeshExecutor(graph, spec, regions=rects)
    x = {"x": np.random.default_rng(1).standard_normal((1, 16)).astype(np.float32)}
    out, stats = ex.run(x, decode=True)
    name = graph.outputs[0]
    np.testing.assert_allclose(out[name], run_graph(graph, x)[name], rtol=1e-5, atol=1e-5)
    u = stats.unit_cycles
    assert u["a"] == u["b"] > 0  # same GEMV on same-sized rectangles
    link = ex.step_observer.per_kernel("wafer0")["region-link"]
    # a's and b's results each travel 6 hops (centres (2, 2) and (2, 6) to (6, 4)), 64 B each,
    # at once; c starts when both have arrived: the wafer's step is max(a, b) + route + c.
    assert link.calls == 2 and link.hops == 12 and link.link_bytes == 12 * 64
    route = link.comm_cycles // 2
    assert route == 6 + 64 // 4
    assert stats.cycles["wafer0"] == max(u["a"], u["b"]) + route + u["c"] < sum(u.values()) + route
    whole = MeshExecutor(graph, spec).run(x, decode=True)[1]
    assert whole.cycles["wafer0"] == sum(whole.unit_cycles.values())


def test_streamed_weights_are_made_per_unit_and_give_the_same_step() -> None:
    graph = _fork_join()
    values = {name: w.data for name, w in graph.weights.items()}
    bare = dataclasses.replace(graph, weights={n: dataclasses.replace(w, data=None)
                                               for n, w in graph.weights.items()})
    asked: list[str] = []

    def source(unit: str) -> dict[str, np.ndarray]:
        asked.append(unit)
        return {n: values[n] for n in bare.weights if n.endswith(unit)}  # wa, wb, wc

    spec = MeshSpec(8, 8, 1 << 20, 16.0, 1, 4, 1e9)
    rects = {"a": (0, 0, 4, 4), "b": (0, 4, 4, 4), "c": (4, 0, 4, 8)}
    x = {"x": np.random.default_rng(1).standard_normal((1, 16)).astype(np.float32)}
    held = MeshExecutor(graph, spec, regions=rects)
    streamed = MeshExecutor(bare, spec, regions=rects, weight_source=source)
    assert streamed.weights == {} and asked == []
    (want, s1), (got, s2) = held.run(x, decode=True), streamed.run(x, decode=True)
    np.testing.assert_array_equal(got[graph.outputs[0]], want[graph.outputs[0]])
    assert s2.cycles == s1.cycles and s2.unit_cycles == s1.unit_cycles
    assert asked == ["a", "b", "c"] and streamed.weights == {}  # dropped after the step
    grids = [streamed.wafers[0].region(*r) for r in rects.values()]
    assert all(not g.resident for g in grids)  # tiles dropped, ledger entries kept:
    assert streamed.wafers[0].ledger.used.tolist() == held.wafers[0].ledger.used.tolist()
    streamed.run(x, decode=True)
    assert asked == ["a", "b", "c"] * 2


@pytest.mark.parametrize("family", ["llama", "mixtral"])
def test_micro_batches_in_flight_pipeline_through_a_wafers_regions(onnx_model, family: str) -> None:  # noqa: ANN001
    """Four micro-batches of one sequence each in flight on one wafer in regions: the greedy
    tokens equal onnxruntime's for every sequence; each rectangle takes the next micro-batch
    once it is done with one, so they leave the wafer at intervals shorter than the wafer's
    latency (the spatial pipeline); the emulated time per token (the pipeline's tpot of the
    first micro-batch's trip and the wafer's interval) is within 10 % of the model's."""
    import placer
    from placer.runner import run_plan

    path = onnx_model(family, with_cache=True)
    plan = placer.compile(str(path), target="wse-mini", wafers=1, context=64, prompt=8, layout="regions")
    assert plan.layout == "regions" and len(plan.floorplan) >= 3
    graph = placer.load_graph(str(path))
    feeds = _inputs(graph, seed=3, batch=4)
    _, expected_ids = _ort_greedy(path, feeds, 6)
    flight = run_plan(str(path), plan, feeds, tokens=6, micro_batches=4)
    np.testing.assert_array_equal(flight.tokens, expected_ids)
    one = run_plan(str(path), plan, feeds, tokens=6)
    np.testing.assert_allclose(flight.outputs["logits"], one.outputs["logits"], rtol=0, atol=1e-5)
    for step in flight.decode:
        exits = step.in_flight["wafer0"]
        gaps = np.diff(exits)
        assert len(exits) == 4 and (gaps > 0).all()
        assert gaps.max() < exits[0], (exits, "micro-batches overlap on the rectangles")
    ratio = flight.emulated_step_s / flight.predicted_step_s
    assert 0.9 <= ratio <= 1.1, ratio
    # the wafer's own latency and interval against the floorplan's (placer.perf.regions)
    from placer.floorplan import placed_seconds
    from placer.runner import _decode_cost

    target = plan.target
    context = feeds["input_ids"].shape[1] + len(flight.decode)  # the last step's
    cost = _decode_cost(graph, target, context, 1)
    rects = [((r.unit,), r.row, r.col, r.rows, r.cols) for r in plan.floorplan]
    latency, interval = placed_seconds(cost, target, rects, context_tokens=context, batch=1)
    exits = np.array(flight.decode[-1].in_flight["wafer0"]) / target.clock_hz
    assert 0.9 <= exits[0] / latency <= 1.1, (exits[0], latency)
    assert 0.9 <= np.diff(exits).mean() / interval <= 1.1, (np.diff(exits), interval)


def test_micro_batches_must_divide_the_batch(placed_regions) -> None:  # noqa: ANN001
    from placer.runner import run_plan

    path, plan, graph = placed_regions("llama")
    with pytest.raises(UserError, match="--micro-batches: 3 does not divide the 4"):
        run_plan(str(path), plan, _inputs(graph, batch=4), tokens=2, micro_batches=3)


def test_cli_run_micro_batches(placed_regions, tmp_path) -> None:  # noqa: ANN001
    import json

    from placer.cli.main import cli

    path, plan, graph = placed_regions("llama")
    (tmp_path / "plan.json").write_text(plan.to_json())
    np.savez(tmp_path / "in.npz", **_inputs(graph))
    args = ["run", str(path), "--plan", str(tmp_path / "plan.json"), "--inputs", str(tmp_path / "in.npz"),
            "--tokens", "3", "--batch", "2"]
    res = CliRunner().invoke(cli, [*args, "--micro-batches", "2", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["micro_batches"] == 2 and set(d["micro_batch_exits_cycles"]) == {"wafer0", "wafer1", "wafer2"}
    assert all(len(t) == 2 and t[0] < t[1] for t in d["micro_batch_exits_cycles"].values())
    res = CliRunner().invoke(cli, [*args, "--micro-batches", "2"])
    assert res.exit_code == 0 and "in 2 micro-batches in flight" in res.output and "interval" in res.output
    res = CliRunner().invoke(cli, [*args, "--micro-batches", "3"])
    assert res.exit_code == 2 and "option --micro-batches" in res.output and "Traceback" not in res.output
