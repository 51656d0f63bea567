"""``placer sweep``: grid parsing, the Pareto frontier (property test against brute force), the
row cache (re-run and resume), and identical tables from every executor."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from placer.cli.main import cli
from placer.errors import UserError
from placer.sweep import parse_int_list, point_key, spec_from_lists
from placer.sweep_exec import run_sweep, write_tables
from placer.sweep_frontier import frontier_flags, pareto_indices

MODEL = "llama-3.1-8b"
FIXED = {"time_limit": 2}


@pytest.mark.parametrize("text, expected", [
    ("4", (4,)), ("1,2,8", (1, 2, 8)), ("4-7", (4, 5, 6, 7)), ("4-16:4", (4, 8, 12, 16)),
    ("1-64:x2", (1, 2, 4, 8, 16, 32, 64)), ("1-100:x10", (1, 10, 100)), ("2,1-3", (2, 1, 3)),
    ([8192, "32768"], (8192, 32768)), (7, (7,)),
])
def test_parse_int_list(text, expected):
    assert parse_int_list(text, "--x") == expected


@pytest.mark.parametrize("text", ["", "a", "4-", "9-3", "1-8:x1", "1-8:0", "0-8:x2", "3:2"])
def test_parse_int_list_rejects(text):
    with pytest.raises(UserError, match="option --x"):
        parse_int_list(text, "--x")


def test_auto_wafers():
    assert parse_int_list("auto,4", "--wafers", allow_auto=True) == (None, 4)
    with pytest.raises(UserError):
        parse_int_list("auto", "--concurrency")


def _dominated(p, q):
    return q[0] >= p[0] and q[1] >= p[1] and (q[0] > p[0] or q[1] > p[1])


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)) | st.tuples(
    st.floats(0, 1e6, allow_nan=False), st.floats(0, 1e6, allow_nan=False)), max_size=40))
def test_frontier_is_exactly_the_non_dominated_points(points):
    expected = [i for i, p in enumerate(points) if not any(_dominated(p, q) for q in points)]
    assert pareto_indices(points) == expected


def test_frontier_flags_per_group_and_only_ok_rows():
    rows = [
        {"status": "ok", "g": "a", "tokens_per_s_per_user": 1.0, "tokens_per_s_per_wafer": 1.0},
        {"status": "ok", "g": "b", "tokens_per_s_per_user": 2.0, "tokens_per_s_per_wafer": 2.0},
        {"status": "ok", "g": "a", "tokens_per_s_per_user": 0.5, "tokens_per_s_per_wafer": 3.0},
        {"status": "infeasible", "g": "a"},
    ]
    assert frontier_flags(rows) == [False, True, True, False]
    assert frontier_flags(rows, lambda r: r["g"]) == [True, True, True, False]


def test_spec_points_and_keys():
    spec = spec_from_lists([MODEL], wafers="1,2", concurrency="1-4:x2", context=[2048],
                           weights_dtype="native,fp8", options=FIXED)
    points = spec.points()
    assert len(points) == 2 * 3 * 2
    assert points[0] == {"model": MODEL, "wafers": 1, "concurrency": 1, "context": 2048,
                         "weights_dtype": "native", "kv_dtype": "native", "objective": "min-wafers",
                         "prefill_on": None, "time_limit": 2}
    keys = [point_key(p) for p in points]
    assert len(set(keys)) == len(keys)
    assert point_key(dict(points[0])) == keys[0]
    assert point_key({**points[0], "target_overrides": {"clock_hz": "1e9"}}) != keys[0]
    assert point_key({**points[0], "prefill_on": "h100x8"}) != keys[0]
    with pytest.raises(UserError, match="sweep axis"):
        spec_from_lists([MODEL], options={"context": 4})


@pytest.fixture(scope="module")
def small_spec():
    # 4 points; the last is infeasible (the 8B model's 16 GB of bf16 weights on 1 wafer of 10 GB)
    return spec_from_lists([MODEL], wafers="1,2", concurrency="1,4", context=[2048], options=FIXED)


@pytest.fixture(scope="module")
def reference(small_spec):
    return run_sweep(small_spec, jobs=1)


def test_rows_have_settings_figures_and_frontier(reference):
    rows = reference.rows
    assert [(r["wafers"], r["concurrency"]) for r in rows] == [(1, 1), (1, 4), (2, 1), (2, 4)]
    assert all(r["status"] == "ok" for r in rows)
    for r in rows:
        assert r["tokens_per_s_per_wafer"] == pytest.approx(r["tokens_per_s_total"] / r["wafers_used"])
        assert r["tokens_per_s_total"] == pytest.approx(r["resident_sequences"] * r["tokens_per_s_per_user"])
    pts = [(r["tokens_per_s_per_user"], r["tokens_per_s_per_wafer"]) for r in rows]
    assert [r["frontier"] for r in rows] == [i in pareto_indices(pts) for i in range(4)]
    assert reference.computed == 4 and reference.cached == 0


def test_local_pool_gives_the_same_table(small_spec, reference):
    assert run_sweep(small_spec, jobs=2).rows == reference.rows


def test_cache_rerun_and_resume(small_spec, reference, tmp_path):
    first = run_sweep(small_spec, jobs=1, cache_dir=tmp_path)
    assert first.rows == reference.rows and first.computed == 4
    again = run_sweep(small_spec, jobs=1, cache_dir=tmp_path)
    assert again.rows == reference.rows and (again.computed, again.cached) == (0, 4)
    # the same sweep.csv bytes (columns in the same order) whether the rows came from the cache
    tables = [write_tables(r, tmp_path / f"out{i}") for i, r in enumerate((first, again))]
    assert tables[0]["csv"].read_bytes() == tables[1]["csv"].read_bytes()
    # a killed sweep: only some rows reached the cache; the re-run computes the rest
    files = sorted(tmp_path.rglob("*.json"))
    assert len(files) == 4
    for f in files[:2]:
        f.unlink()
    resumed = run_sweep(small_spec, jobs=1, cache_dir=tmp_path)
    assert resumed.rows == reference.rows and (resumed.computed, resumed.cached) == (2, 2)
    # shards: each computes its share into the shared cache; a last run assembles the table
    shared = tmp_path / "shared"
    parts = [run_sweep(small_spec, jobs=1, cache_dir=shared, shard=(k, 3)) for k in (1, 2, 3)]
    assert [len(p.rows) for p in parts] == [2, 1, 1] and sum(p.computed for p in parts) == 4
    whole = run_sweep(small_spec, jobs=1, cache_dir=shared)
    assert whole.rows == reference.rows and whole.computed == 0
    # a larger grid reuses the cached points
    bigger = spec_from_lists([MODEL], wafers="1,2", concurrency="1,2,4", context=[2048], options=FIXED)
    grown = run_sweep(bigger, jobs=1, cache_dir=tmp_path)
    assert (grown.computed, grown.cached) == (2, 4)


def test_ray_gives_the_same_table(small_spec, reference):
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert run_sweep(small_spec, ray_address="auto").rows == reference.rows
    finally:
        ray.shutdown()


def test_output_tokens_set_the_io_per_request(tmp_path):
    spec = spec_from_lists([MODEL], wafers="2", concurrency="1", context=[2048],
                           options={**FIXED, "prompt": 100, "output_tokens": 50})
    (row,) = run_sweep(spec, jobs=1).rows
    from placer.compiler import compile_model

    plan = compile_model(MODEL, wafers=2, context=2048, prompt=100, output_tokens=50, time_limit=2)
    assert plan.workload.output_tokens == 50
    boundary = plan.wafers[0].io.out_bytes_per_token
    assert boundary > 0 and row["io_mb_per_request"] == pytest.approx(boundary * 150 / 1e6)
    r = CliRunner().invoke(cli, ["compile", MODEL, "--output-tokens", "0", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--output-tokens must be >= 1" in r.stderr


def test_infeasible_points_are_rows(tmp_path):
    spec = spec_from_lists([MODEL], wafers="1", concurrency="1", context=[2048],
                           options={**FIXED, "target_overrides": {"sram_bytes": "1e10"}})
    (row,) = run_sweep(spec, jobs=1, cache_dir=tmp_path).rows
    assert row["status"] == "infeasible" and "SRAM" in row["message"] and row["frontier"] is False
    assert len(list(tmp_path.rglob("*.json"))) == 1   # deterministic: cached too


def test_cli_writes_tables_and_json(tmp_path):
    out = tmp_path / "out"
    args = ["sweep", MODEL, "--wafers", "1,2", "--concurrency", "1", "--context", "2048", "--time-limit", "2",
            "-j", "1", "-o", str(out)]
    r = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["points"], d["computed"]) == (2, 4) and len(d["rows"]) == 2   # + 2 summary points
    (m,) = d["models"]
    assert m["model"] == MODEL and m["min_wafers_for_weights"] == 1 and m["context"] == 131072
    lines = (out / "sweep.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == d["rows"]
    csv = (out / "sweep.csv").read_text().splitlines()
    assert csv[0].startswith("model,wafers,concurrency,context,weights_dtype,kv_dtype,objective,prefill_on,"
                             "status,")
    assert len(csv) == 3
    assert "Pareto frontier" in (out / "summary.md").read_text()
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0 and "2 points and 2 summary points (0 compiled, 4 from the cache" in r.stdout


def test_cli_sweep_file_and_errors(tmp_path):
    f = tmp_path / "sweep.toml"
    f.write_text(f'models = ["{MODEL}"]\nwafers = "1"\nconcurrency = [1]\ncontext = "2048"\n'
                 '[options]\ntime_limit = 2\n')
    r = CliRunner().invoke(cli, ["sweep", "--file", str(f), "-j", "1", "-o", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"][0]["status"] == "ok"
    r = CliRunner().invoke(cli, ["sweep", MODEL, "--wafers", "9-3", "-o", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 2 and "option --wafers" in json.loads(r.stdout)["error"]
    f.write_text("modles = []\n")
    r = CliRunner().invoke(cli, ["sweep", "--file", str(f), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown key(s) modles" in r.stderr
    r = CliRunner().invoke(cli, ["sweep", "no-such-model", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "zoo name" in r.stderr


def test_rows_of_other_placer_source_are_refused():
    """A worker (e.g. a Ray node) running other placer source would make the table depend on the
    executor: its rows are refused with one line, the driver's digest accepted."""
    from placer.sweep import code_digest
    from placer.sweep_exec import _same_code

    row = {"status": "ok"}
    assert list(_same_code(iter([([("k", row)], code_digest())]))) == [("k", row)]
    with pytest.raises(UserError, match="install the same placer on every node"):
        list(_same_code(iter([([("k", row)], "0" * 64)])))
