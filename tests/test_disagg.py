"""Disaggregated prefill (``--prefill-on``): TTFT = prefill there + KV transfer + hops, checked by
hand arithmetic on a hand-built model; the wafers hold no prefill buffers; $ of the input tokens
is the prefill machine's; prefill target files validated like wafer targets; CLI exit codes and
byte-identical plans; the sweep axis."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from placer.cli.main import cli
from placer.compiler import compile_model
from placer.costs import EdgeCost, KVCost, ModelCost, NodeCost, UnitCost
from placer.errors import InfeasibleError, UserError
from placer.ir.graph import UnitKind
from placer.perf.disagg import PREFILL_LINK, WAFER_IO
from placer.sweep import cost_figures
from placer.targets.prefill import PREFILL_TARGETS, load_prefill_target

# A round prefill machine: 1 TFLOP/s, 100 GB/s of memory, a 1 GB/s link, a 5 us switch hop.
ROUND = """name = "round"
description = "round test numbers"
peak_flops = 1e12
memory_bytes = 1_000_000_000
memory_bandwidth_bytes_per_s = 1e11
link_bandwidth_bytes_per_s = 1e9
hop_latency_s = 5e-6
cost_per_hour = 36.0
"""
PROMPT = 100


def _unit(i: int) -> UnitCost:
    """One layer: 1 MB of weights, 1,000 KV bytes per token, 2e9 FLOPs for the whole prompt."""
    return UnitCost(name=f"layers.{i}", kind=UnitKind.LAYER, layer=i, parameters=500_000,
                    weight_bytes=1_000_000, constant_bytes=0, kv=(KVCost(f"layers.{i}.kv", 1000),),
                    decode=NodeCost(flops=10**6, weight_read_bytes=1_000_000),
                    prefill=NodeCost(flops=2 * 10**9, weight_read_bytes=1_000_000),
                    activation_out_bytes_per_token=2000)


COST = ModelCost(model="hand", units=(_unit(0), _unit(1)), edges=(EdgeCost("layers.0", "layers.1", 2000),),
                 parameters=10**6, weight_bytes=2_000_000, kv_bytes_per_token=2000)


@pytest.fixture
def round_target(tmp_path):
    p = tmp_path / "round.toml"
    p.write_text(ROUND)
    return str(p)


def _plan(prefill_on, **over):
    opts = {"target": "wse-mini", "wafers": 2, "context": 200, "prompt": PROMPT, "concurrency": 1,
            "time_limit": 1, "prefill_on": prefill_on, **over}
    return compile_model(COST, **opts)


def test_ttft_is_prefill_plus_transfer_plus_hops_by_hand(round_target):
    plan = _plan(round_target)
    d = plan.prefill
    assert d is not None and d.target.name == "round"
    # prefill: FLOPs 2 units x 2e9 = 4e9 over 1e12 FLOP/s = 4 ms; bytes: weights 2 x 1e6 plus
    # the prompt's KV 2 x 1,000 x 100 = 2e5, 2.2e6 over 1e11 B/s = 22 us; the roofline: 4 ms
    assert d.flops == 4e9 and d.kv_bytes == 200_000
    assert d.prefill_s == pytest.approx(4e-3, rel=1e-12)
    # transfer: one layer per wafer, 1e5 bytes each; the link carries 2e5 over 1e9 B/s = 0.2 ms,
    # each wafer's I/O 1e5 over 150e9 B/s = 0.67 us: the link binds, 0.2 ms
    assert [len(w.units) for w in plan.wafers] == [1, 1] and d.max_kv_bytes_per_wafer == 100_000
    assert d.kv_transfer_s == pytest.approx(2e-4, rel=1e-12) and d.transfer_bound == PREFILL_LINK
    assert not d.io_binds
    # hops: one 5 us switch hop. TTFT = 4 ms + 0.2 ms + 0.005 ms = 4.205 ms
    assert d.hops_s == 5e-6
    assert plan.performance.ttft_s == pytest.approx(4.205e-3, rel=1e-12)


def test_slow_wafer_io_binds_the_transfer(round_target):
    # wafer I/O at 1e8 B/s: 1e5 bytes into each wafer take 1 ms > the link's 0.2 ms;
    # TTFT = 4 ms + 1 ms + 0.005 ms = 5.005 ms
    plan = _plan(round_target, target_overrides=["io_bandwidth_bytes_per_s=1e8"])
    assert plan.prefill.transfer_bound == WAFER_IO and plan.prefill.io_binds
    assert plan.prefill.kv_transfer_s == pytest.approx(1e-3, rel=1e-12)
    assert plan.performance.ttft_s == pytest.approx(5.005e-3, rel=1e-12)


def test_wafers_hold_no_prefill_buffers_and_the_input_is_charged_to_the_prefill_machine(round_target):
    here, there = _plan(None, concurrency=3), _plan(round_target, concurrency=3)
    assert here.prefill is None and "prefill" not in json.loads(here.to_json())
    # co-located: 2,000 bytes per token x (a 16-token chunk on wse-mini's 16 PE rows + 3 sequences)
    assert [w.memory.activations for w in here.wafers] == [2000 * (16 + 3)] * 2
    # disaggregated: one token of each of the 3 sequences only
    assert [w.memory.activations for w in there.wafers] == [2000 * 3] * 2
    # decode is the same on the wafers; input tokens cost the prefill machine's 4 ms at $36/h:
    # 4e-3 s x 36 / 3600 = $4e-5 per prompt, over 100 tokens = $0.40 per million
    assert there.performance.time_per_output_token_s == here.performance.time_per_output_token_s
    cost = cost_figures(there)
    assert cost["usd_per_million_input_tokens"] == pytest.approx(0.40, rel=1e-9)
    assert cost["usd_per_million_output_tokens"] == here.performance.usd_per_million_tokens
    assert cost["usd_per_request"] == pytest.approx(
        (0.40 * PROMPT + cost["usd_per_million_output_tokens"] * 256) / 1e6, rel=1e-9)


def test_prefill_machine_without_cost_gives_no_input_dollars(tmp_path):
    p = tmp_path / "free.toml"
    p.write_text(ROUND.replace("cost_per_hour = 36.0\n", ""))
    cost = cost_figures(_plan(str(p)))
    assert "usd_per_million_input_tokens" not in cost and "usd_per_request" not in cost
    assert cost["usd_per_million_output_tokens"] > 0


def test_weights_that_do_not_fit_the_prefill_machine_are_infeasible(tmp_path):
    p = tmp_path / "small.toml"
    p.write_text(ROUND.replace("memory_bytes = 1_000_000_000", "memory_bytes = 2_000_000"))
    with pytest.raises(InfeasibleError, match="prefill target 'round' has 0.002 GB of memory"):
        _plan(str(p))


def test_builtin_h100x8_matches_its_datasheet():
    (name,) = PREFILL_TARGETS
    t = load_prefill_target(name)
    assert t.peak_flops == pytest.approx(8 * 989.4e12, rel=1e-3)   # dense bf16 per H100 SXM
    assert t.memory_bytes == 8 * 80e9 and t.memory_bandwidth_bytes_per_s == 8 * 3.35e12
    assert t.link_bandwidth_bytes_per_s == 8 * 400e9 / 8           # 8 x 400 Gb/s ConnectX-7
    assert t.hop_latency_s == 5e-6 and t.cost_per_hour > 0


@pytest.mark.parametrize("edit, message", [
    (("peak_flops = 1e12", "peak_flops = -1"), "field peak_flops: must be > 0"),
    (("peak_flops = 1e12", 'peak_flops = "fast"'), "field peak_flops: expected a number"),
    (("memory_bytes = 1_000_000_000", "memory_bytes = 1.5"), "field memory_bytes: expected an integer"),
    (("hop_latency_s = 5e-6", "hop_latency_s = -5e-6"), "field hop_latency_s: must be >= 0"),
    (("cost_per_hour = 36.0", "utilisation = 1.5"), r"field utilisation: must be in \(0, 1\]"),
    (("cost_per_hour = 36.0", "mesh_rows = 4"), "unknown field.*mesh_rows"),
    (("link_bandwidth_bytes_per_s = 1e9\n", ""), "missing field.*link_bandwidth_bytes_per_s"),
    (("name = ", "name = = "), "not valid TOML"),
])
def test_bad_prefill_target_files(tmp_path, edit, message):
    p = tmp_path / "bad.toml"
    p.write_text(ROUND.replace(*edit))
    with pytest.raises(UserError, match=message) as e:
        load_prefill_target(str(p))
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_cli_bad_prefill_target_exits_2_with_one_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text(ROUND.replace("hop_latency_s = 5e-6", "hop_latency_s = -1"))
    base = ["compile", "llama-3.1-8b", "--prefill-on", str(p), "-o", str(tmp_path / "o")]
    r = CliRunner().invoke(cli, base)
    assert r.exit_code == 2 and r.stderr.strip().count("\n") == 0, r.output
    assert str(p) in r.stderr and "hop_latency_s" in r.stderr and "Traceback" not in r.output
    r = CliRunner().invoke(cli, [*base, "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["exit"] == 2
    r = CliRunner().invoke(cli, ["compile", "llama-3.1-8b", "--prefill-on", "nope", "-o",
                                 str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown prefill target 'nope'" in r.stderr


def test_cli_plan_is_byte_identical_and_reports_the_transfer(tmp_path):
    args = ["compile", "llama-3.1-8b", "--context", "2048", "--time-limit", "1", "--prefill-on", "h100x8"]
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        r = CliRunner().invoke(cli, [*args, "-o", str(out)], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    a, b = ((o / "plan.json").read_bytes() for o in outs)
    assert a == b
    plan = json.loads(a)
    d = plan["prefill"]
    assert d["target"]["name"] == "h100x8" and plan["provenance"]["options"]["prefill_on"] == "h100x8"
    assert plan["performance"]["ttft_s"] == pytest.approx(d["prefill_s"] + d["kv_transfer_s"] + d["hops_s"],
                                                          rel=1e-9)
    # one wafer receives all 134 MB (1,024 tokens x 128 KiB): 0.89 ms at 150 GB/s > 0.34 ms on the link
    assert d["transfer_bound"] == WAFER_IO
    md, html = (outs[0] / "report.md").read_text(), (outs[0] / "report.html").read_text()
    assert "## Disaggregated prefill" in md and "the wafers' I/O binds" in md
    assert f"KV transfer {d['kv_transfer_s'] * 1e3:.3f} ms" in md
    assert "Disaggregated prefill on h100x8" in html and "wafers&#x27; I/O binds" in html


def test_sweep_compares_colocated_and_disaggregated_prefill(tmp_path):
    from placer.sweep import spec_from_lists
    from placer.sweep_exec import run_sweep

    spec = spec_from_lists(["llama-3.1-8b"], wafers="1", concurrency="1", context=[2048],
                           prefill_on="none,h100x8", options={"time_limit": 1, "prompt": 100})
    rows = run_sweep(spec, jobs=1, cache_dir=tmp_path / "cache").rows
    here, there = rows
    assert here["prefill_on"] is None and there["prefill_on"] == "h100x8"
    assert "kv_transfer_ms" not in here and there["kv_transfer_bound"] in (WAFER_IO, PREFILL_LINK)
    assert there["ttft_ms"] == pytest.approx(there["prefill_ms"] + there["kv_transfer_ms"]
                                             + there["prefill_hops_ms"], rel=1e-9)
    assert there["tokens_per_s_per_user"] == here["tokens_per_s_per_user"]
    again = run_sweep(spec, jobs=1, cache_dir=tmp_path / "cache")
    assert again.computed == 0 and again.rows == rows
    from placer.report_html import render_sweep_html
    from placer.sweep_report import render_summary

    md = render_summary(again)
    section = md[md.index("## Where prefill runs"):]
    assert "(1 settings)" in section and "| wafers |" in section and "| h100x8 |" in section
    assert "Where prefill runs" in render_sweep_html(again)
    with pytest.raises(UserError, match="sweep axis"):
        spec_from_lists(["llama-3.1-8b"], options={"prefill_on": "h100x8"})
