"""``placer diff`` and ``placer check``: exit codes and messages on plans that do and do not regress.

The plans are real compiles of the Llama-3.1-8B zoo config (a few seconds for the module); the
regressed ones differ by one cause each: one more wafer, a parked sequence, a slower clock."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from placer.check import Budgets, check_plan
from placer.cli.main import cli
from placer.diff import Thresholds, diff_plans

MODEL = "llama-3.1-8b"
BASE = {"context": 2048, "concurrency": 2, "time_limit": 2}


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    from placer.compiler import compile_model

    root = tmp_path_factory.mktemp("plans")
    variants = {
        "base": {},
        "two_wafers": {"wafers": 2},
        # 17.3 GB of SRAM holds the 16.1 GB of weights and one sequence's 0.27 GB of KV, not two.
        "parked": {"wafers": 1, "target_overrides": {"sram_bytes": 17.3e9}},
        "slow_clock": {"target_overrides": {"clock_hz": 1.0e9}},   # 9 % fewer tokens/s
    }
    out = {}
    for name, extra in variants.items():
        plan = compile_model(MODEL, **{**BASE, **extra})
        (root / name).mkdir()
        (root / name / "plan.json").write_text(plan.to_json())
        out[name] = (plan, root / name / "plan.json")
    return out


def _cli(*args):
    r = CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)
    return r.exit_code, r.stdout


def test_same_plan_is_no_regression(plans):
    code, out = _cli("diff", plans["base"][1], plans["base"][1])
    assert code == 0, out
    assert "No regression" in out and "Units that changed wafer: 0" in out


def test_added_wafer_regresses_and_lists_moved_units(plans):
    code, out = _cli("diff", plans["base"][1], plans["two_wafers"][1])
    assert code == 1, out
    assert "**Regression**: wafers 1 -> 2 (+1, 0 allowed)" in out
    a, b = plans["base"][0], plans["two_wafers"][0]
    moved = sum(1 for u, w in b.assignment if a.wafer_of(u) != w)
    assert moved > 0 and f"Units that changed wafer: {moved}" in out
    # one run row for the consecutive layers that moved to wafer 1
    first = min(int(u.split(".")[1]) for u, w in b.assignment if w == 1 and u.startswith("layers."))
    assert f"| layers.{first}-" in out
    code, _ = _cli("diff", plans["base"][1], plans["two_wafers"][1], "--max-added-wafers", "1")
    assert code == 0
    # the other way round: one wafer fewer is no wafer regression; tokens/s per user regress
    # exactly when they fall by more than 1 % (at concurrency 2 one wafer's micro-batch of 2 is
    # about as fast per user as two pipelined wafers: the step is fabric-latency bound)
    two, one = plans["two_wafers"][0].performance, plans["base"][0].performance
    pct = 100 * (one.tokens_per_s_per_user - two.tokens_per_s_per_user) / two.tokens_per_s_per_user
    d = diff_plans(plans["two_wafers"][0], plans["base"][0])
    assert not any(r.startswith("wafers") for r in d.regressions)
    fell = f"tokens/s per user fell {pct:+.2f} % (> 1 % allowed)"
    assert (fell in d.regressions) == (pct < -1)


def test_parked_sequence_regresses(plans):
    code, out = _cli("diff", plans["base"][1], plans["parked"][1], "--json")
    assert code == 1
    d = json.loads(out)
    assert d["regression"] and any(r.startswith("parked sequences 0 -> 1") for r in d["regressions"])
    code, _ = _cli("diff", plans["base"][1], plans["parked"][1], "--max-added-parked", "1",
                   "--max-tokens-per-s-drop", "60")
    assert code == 0


def test_tokens_per_s_threshold(plans):
    a, b = plans["base"][0], plans["slow_clock"][0]
    drop = 100 * (1 - b.performance.tokens_per_s_total / a.performance.tokens_per_s_total)
    assert 1 < drop < 20
    d = diff_plans(a, b)
    assert d.exit_code == 1 and any("tokens/s total fell" in r for r in d.regressions)
    assert diff_plans(a, b, Thresholds(tokens_per_s_drop_pct=drop + 0.1)).exit_code == 0
    assert diff_plans(a, b, Thresholds(tokens_per_s_drop_pct=drop - 0.1)).exit_code == 1
    assert diff_plans(b, a).exit_code == 0     # faster is never a regression
    # an optional TPOT threshold
    assert diff_plans(a, b, Thresholds(tokens_per_s_drop_pct=100, tpot_rise_pct=1)).exit_code == 1


def test_json_lists_metrics_wafers_and_moves(plans):
    code, out = _cli("diff", plans["base"][1], plans["two_wafers"][1], "--json")
    d = json.loads(out)
    assert code == 1 and d["regression"] is True
    wafers = {m["metric"]: m for m in d["metrics"]}["wafers"]
    assert (wafers["before"], wafers["after"], wafers["delta"]) == (1, 2, 1)
    assert [w["index"] for w in d["wafers"]] == [0, 1] and d["wafers"][1]["before"] is None
    b = plans["two_wafers"][0]
    assert d["wafers"][1]["after"]["weights"] == b.wafers[1].memory.weights
    assert {m["unit"] for m in d["moved_units"]} == {u for u, w in b.assignment if w == 1}


def test_other_schema_versions_and_non_plans_are_refused(plans, tmp_path):
    data = json.loads(plans["base"][1].read_text())
    data["schema_version"] = 0
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    code, out = _cli("diff", old, plans["base"][1], "--json")
    err = json.loads(out)
    assert code == 2 and err["exit"] == 2
    assert err["error"].startswith(f"{old}: plan schema_version 0 is not") and "recompile" in err["error"]
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    r = CliRunner().invoke(cli, ["diff", str(bad), str(plans["base"][1])])
    assert r.exit_code == 2 and "not a placer plan" in r.stderr and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["check", str(tmp_path / "missing.json"), "--max-wafers", "1"])
    assert r.exit_code == 2 and "no such plan file" in r.stderr


def test_check_passes_and_fails_with_one_line(plans):
    path = plans["two_wafers"][1]
    code, out = _cli("check", path, "--max-wafers", "2", "--all-resident")
    assert code == 0 and out.startswith(f"{path}: ok (2 wafers")
    code, out = _cli("check", path, "--max-wafers", "1")
    assert code == 1 and out == f"{path}: check failed: wafers 2 > --max-wafers 1\n"
    code, out = _cli("check", plans["parked"][1], "--all-resident", "--json")
    d = json.loads(out)
    assert code == 1 and d["exit"] == 1 and d["failures"] == ["1 of 2 sequences parked (--all-resident)"]
    user = plans["base"][0].performance.tokens_per_s_per_user
    code, out = _cli("check", plans["base"][1], "--min-tokens-per-s-per-user", user + 1)
    assert code == 1 and "--min-tokens-per-s-per-user" in out and len(out.splitlines()) == 1
    code, out = _cli("check", plans["base"][1], "--min-tokens-per-s-per-user", user - 1,
                     "--min-total-tokens-per-s", 1e9, "--max-wafers", 1)
    assert code == 1 and out.count(";") == 0 and "--min-total-tokens-per-s" in out


def test_check_needs_a_budget(plans):
    r = CliRunner().invoke(cli, ["check", str(plans["base"][1]), "--json"])
    assert r.exit_code == 2 and "at least one budget" in json.loads(r.stdout)["error"]
    with pytest.raises(Exception, match="at least one budget"):
        check_plan(plans["base"][0], Budgets())


def test_check_library_measures(plans):
    plan = plans["parked"][0]
    r = check_plan(plan, Budgets(max_wafers=1, all_resident=True))
    assert not r.ok and r.measured["parked_sequences"] == 1 and r.measured["wafers"] == 1
