"""Speculative decoding in plans: tiny target and draft models through the CLI and the Python API.

Oracles: the plain compiler on each model alone (the draft's step at concurrency 1, the target's
batched step at concurrency k + 1 on one wafer), the formula of ``placer.speculative``, and
SRAM sizes that force the draft off the target's wafer.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
from click.testing import CliRunner

import placer
from placer.cli.main import cli
from placer.plan import Plan
from placer.speculative import expected_tokens_per_step

WORKLOAD = {"context": 256, "prompt": 16, "time_limit": 2}
FLAGS = ["--context", "256", "--prompt", "16", "--time-limit", "2"]


def tiny_llama(path, layers, hidden, vocab=1000):
    config = json.loads((resources.files("placer.zoo") / "llama-3.1-8b.json").read_text())
    config.update(num_hidden_layers=layers, hidden_size=hidden, intermediate_size=4 * hidden,
                  num_attention_heads=8, num_key_value_heads=2, vocab_size=vocab)
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("spec")
    return tiny_llama(d / "target.json", 6, 128), tiny_llama(d / "draft.json", 2, 64)


def _compile(*args):
    return CliRunner().invoke(cli, ["compile", *args], catch_exceptions=False)


def test_cli_plan_fields_and_byte_identical_plans(models, tmp_path):
    target, draft = models
    args = [target, "--draft", draft, "--draft-length", "4", "--acceptance", "0.8", *FLAGS]
    runs = [_compile(*args, "-o", str(tmp_path / f"o{i}"), "--json") for i in range(2)]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    first, second = ((tmp_path / f"o{i}" / "plan.json").read_bytes() for i in range(2))
    assert first == second and runs[0].output.encode() == first
    plan = Plan.from_json(first.decode())
    s = plan.speculative
    assert s is not None and (s.draft, s.draft_length, s.acceptance) == ("draft", 4, 0.8)
    assert s.expected_tokens_per_step == pytest.approx(3.3616)
    assert s.step_s == pytest.approx(4 * s.draft_step_s + s.verify_step_s)
    assert s.tokens_per_s_per_user == pytest.approx(s.expected_tokens_per_step / s.step_s)
    assert s.speedup == pytest.approx(s.tokens_per_s_per_user / plan.performance.tokens_per_s_per_user)
    # both tiny models fit one wafer: the solver shares it; the plan places every unit of both
    assert s.target_wafers == s.draft_wafers == s.shared_wafers == (0,) and len(plan.wafers) == 1
    assert sum(u.startswith("draft.") for u, _ in plan.assignment) == s.draft_units == 4
    assert plan.model.name == "target" and plan.workload.speculative.draft == draft
    report = (tmp_path / "o0" / "report.md").read_text()
    assert "## Speculative decoding" in report and f"{s.tokens_per_s_per_user:,.1f}" in report
    assert "draft: embed, layers 0-1, head; embed, layers 0-5, head" in report
    assert "Speculative decoding" in (tmp_path / "o0" / "report.html").read_text()
    text = _compile(*args, "-o", str(tmp_path / "o3")).output
    assert "effective tokens/s per user" in text and "draft on wafer(s) 0" in text


def test_figures_are_the_plain_compiler_on_each_model(models):
    target, draft = models
    k = 3
    plan = placer.compile(target, draft=draft, draft_length=k, acceptance=0.6, **WORKLOAD)
    alone = placer.compile(target, **WORKLOAD)
    drafted = placer.compile(draft, **WORKLOAD)
    verify = placer.compile(target, concurrency=k + 1, **WORKLOAD)  # one step of k + 1 rows
    s = plan.speculative
    assert verify.performance.micro_batch == k + 1 and len(verify.wafers) == 1
    assert s.draft_step_s == pytest.approx(drafted.performance.time_per_output_token_s, rel=1e-9)
    assert s.verify_step_s == pytest.approx(verify.performance.time_per_output_token_s, rel=1e-9)
    assert plan.performance == alone.performance  # the target alone on its wafer
    assert s.verify_step_s > alone.performance.time_per_output_token_s  # more rows cost more
    assert s.tokens_per_s_per_user == pytest.approx(
        expected_tokens_per_step(k, 0.6) / (k * s.draft_step_s + s.verify_step_s))
    # the draft's weights and KV sit on the shared wafer beside the target's
    mem, alone_mem = plan.wafers[0].memory, alone.wafers[0].memory
    assert mem.weights == alone_mem.weights + drafted.wafers[0].memory.weights
    assert plan.kv.bytes_per_token == alone.kv.bytes_per_token + drafted.kv.bytes_per_token


def test_the_solver_gives_the_draft_its_own_wafer_when_nothing_fits_beside_it(tmp_path):
    # A large vocabulary (embeddings and heads of 1-2 MB) and SRAM for little more than the
    # draft alone: the draft's head and the target's embedding never fit one wafer together.
    target = tiny_llama(tmp_path / "target.json", 6, 128, vocab=8000)
    draft = tiny_llama(tmp_path / "draft.json", 2, 64, vocab=8000)
    drafted = placer.compile(draft, **WORKLOAD)
    m = drafted.wafers[0].memory
    sram = int((m.weights + m.kv + m.activations) * 1.05 / (1 - drafted.target.default_reserve))
    plan = placer.compile(target, draft=draft, draft_length=2, acceptance=0.5,
                          target_overrides={"sram_bytes": str(sram)}, **WORKLOAD)
    s = plan.speculative
    assert s.shared_wafers == () and s.draft_wafers == (0,) and s.placement() == "on its own wafer(s)"
    assert s.target_wafers == tuple(range(1, len(plan.wafers))) and len(s.target_wafers) >= 2
    assert plan.wafers[0].units == tuple(f"draft.{u}" for u in drafted.wafers[0].units)


@pytest.mark.parametrize("args,option", [
    (["--draft-length", "0", "--acceptance", "0.8"], "--draft-length"),
    (["--draft-length", "4", "--acceptance", "1"], "--acceptance"),
    (["--draft-length", "4", "--acceptance", "-0.2"], "--acceptance"),
    (["--draft-length", "4", "--acceptance", "often"], "--acceptance"),
    (["--draft-length", "two", "--acceptance", "0.5"], "--draft-length"),
    (["--draft-length", "4"], "--acceptance"),
    (["--draft-length", "4", "--acceptance", "0.8", "--layout", "regions"], "--layout whole"),
    (["--draft-length", "4", "--acceptance", "0.8", "--min-tokens-per-s-per-user", "10"],
     "--min-tokens-per-s-per-user"),
    (["--draft-length", "4", "--acceptance", "0.8", "--prefill-on", "h100x8"], "--prefill-on"),
])
def test_bad_option_values_exit_2_naming_the_option(models, tmp_path, args, option):
    target, draft = models
    r = CliRunner().invoke(cli, ["compile", target, "--draft", draft, *args, *FLAGS, "-o",
                                 str(tmp_path / "o"), "--json"])
    assert r.exit_code == 2, r.output
    assert option in r.output and "Traceback" not in r.output
    assert json.loads(r.output.strip().splitlines()[-1])["exit"] == 2


def test_bad_draft_model_and_orphan_options_exit_2(models, tmp_path):
    target, _ = models
    for extra, needle in ((["--draft", str(tmp_path / "missing.json"), "--draft-length", "2",
                            "--acceptance", "0.5"], "missing.json"),
                          (["--acceptance", "0.5"], "--acceptance needs --draft")):
        r = CliRunner().invoke(cli, ["compile", target, *extra, *FLAGS, "-o", str(tmp_path / "o")])
        assert r.exit_code == 2 and needle in r.output, r.output
