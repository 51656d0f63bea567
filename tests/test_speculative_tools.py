"""Speculative plans through the other commands: ``run`` refuses them in one line, ``diff`` and
``check`` compare the effective tokens/s per user and name the settings, ``sweep`` takes
``--draft``/``--draft-length``/``--acceptance``.

Oracles: the plan's own ``speculative`` section (``placer.compile`` with the same options) and
the plan compiled without a draft.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from placer.cli.main import cli
from placer.plan import Plan
from tests.test_speculative_plan import FLAGS, tiny_llama

SPEC = ["--draft-length", "4", "--acceptance", "0.8"]


def _cli(*args):
    return CliRunner().invoke(cli, [*map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """(target, draft, folder of the plan with the draft, folder of the plan without)."""
    d = tmp_path_factory.mktemp("spectools")
    target, draft = tiny_llama(d / "target.json", 6, 128), tiny_llama(d / "draft.json", 2, 64)
    for name, extra in (("spec", ["--draft", draft, *SPEC]), ("plain", [])):
        r = _cli("compile", target, *extra, *FLAGS, "-o", d / name)
        assert r.exit_code == 0, r.output
    return target, draft, d / "spec", d / "plain"


def _plan(folder):
    return Plan.from_json((folder / "plan.json").read_text())


def test_run_refuses_a_speculative_plan_in_one_line(plans, tmp_path):
    target, _, spec, _ = plans
    np.savez(tmp_path / "in.npz", input_ids=np.zeros((1, 4), np.int64))
    r = _cli("run", target, "--plan", spec / "plan.json", "--inputs", tmp_path / "in.npz")
    assert r.exit_code == 2
    line = r.stderr.strip()
    assert "\n" not in line and "--draft draft" in line and "without --draft" in line
    assert "unknown unit" not in line
    r = _cli("run", target, "--plan", spec / "plan.json", "--inputs", tmp_path / "in.npz", "--json")
    assert json.loads(r.stdout)["exit"] == 2


def test_diff_compares_effective_tokens_per_s_and_shows_the_settings(plans):
    _, _, spec, plain = plans
    s = _plan(spec).speculative
    alone = _plan(plain).performance.tokens_per_s_per_user
    r = _cli("diff", plain, spec, "--json")
    d = json.loads(r.output)
    effective = next(m for m in d["metrics"] if m["metric"] == "effective tokens/s per user")
    assert effective["before"] == pytest.approx(alone) and effective["after"] == pytest.approx(
        s.tokens_per_s_per_user)
    assert d["speculative"]["a"] is None
    assert d["speculative"]["b"]["draft_length"] == 4 and d["speculative"]["b"]["acceptance"] == 0.8
    # the draft helps on wse3 (speedup > 1): adding it passes, dropping it is a regression (exit 1)
    assert s.tokens_per_s_per_user > alone * 1.01
    assert r.exit_code == 0, d["regressions"]
    r = _cli("diff", spec, plain, "--json")
    d = json.loads(r.output)
    assert r.exit_code == 1 and any("effective tokens/s per user fell" in x for x in d["regressions"])
    text = _cli("diff", plain, spec).output
    assert "Speculative decoding: A none; B draft draft, draft length 4, acceptance 0.8" in text
    # two plans without a draft: nothing speculative in the diff
    d = json.loads(_cli("diff", plain, plain, "--json").output)
    assert "speculative" not in d and all(m["metric"] != "effective tokens/s per user" for m in d["metrics"])


def test_check_budgets_the_effective_rate_of_a_speculative_plan(plans):
    _, _, spec, _ = plans
    plan = _plan(spec)
    effective, alone = plan.speculative.tokens_per_s_per_user, plan.performance.tokens_per_s_per_user
    assert effective > alone  # the draft helps: a budget between the two passes on the effective rate
    between = (effective + alone) / 2
    assert _cli("check", spec, "--min-tokens-per-s-per-user", between).exit_code == 0
    r = _cli("check", spec, "--min-tokens-per-s-per-user", effective * 1.01)
    assert r.exit_code == 1 and "effective tokens/s per user" in r.output
    r = _cli("check", spec, "--min-tokens-per-s-per-user", effective * 0.99, "--json")
    d = json.loads(r.output)
    assert r.exit_code == 0 and d["measured"]["effective_tokens_per_s_per_user"] == pytest.approx(effective)
    assert d["measured"]["speculative"]["draft"] == "draft"
    assert "draft length 4, acceptance 0.8" in _cli("check", spec, "--max-wafers", 1).output


def test_sweep_takes_the_speculative_options(plans, tmp_path):
    target, draft, spec, _ = plans
    s = _plan(spec).speculative
    r = _cli("sweep", target, "--draft", draft, *SPEC, *FLAGS, "--summary-context", 0, "--no-cache", "-j", 1,
             "-o", tmp_path / "sw", "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)["rows"]
    assert row["status"] == "ok" and (row["draft_length"], row["acceptance"]) == (4, 0.8)
    assert row["effective_tokens_per_s_per_user"] == pytest.approx(s.tokens_per_s_per_user, rel=1e-9)
    assert row["expected_tokens_per_step"] == pytest.approx(3.3616)
    r = _cli("sweep", target, "--draft-length", 4, "-o", tmp_path / "bad")
    assert r.exit_code == 2 and "--draft-length needs --draft" in r.output
