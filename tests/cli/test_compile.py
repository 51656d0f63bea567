"""``placer compile`` through click's CliRunner: files, --json, and exit codes 2 and 3."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from placer.cli.main import cli
from placer.plan import Plan

MODEL = "llama-3.1-8b"  # built-in zoo config, costed by the real pipeline


def _run(*args: str):
    return CliRunner().invoke(cli, ["compile", *args], catch_exceptions=False)


def test_writes_plan_and_report(tmp_path):
    out = tmp_path / "out"
    r = _run(MODEL, "--context", "2048", "--time-limit", "2", "-o", str(out), "--json")
    assert r.exit_code == 0, r.output
    plan = Plan.from_json((out / "plan.json").read_text())
    assert json.loads(r.output) == json.loads((out / "plan.json").read_text())
    assert len(plan.wafers) == 1 and plan.model.parameters == 8_030_261_248
    assert (out / "report.md").read_text().startswith("# Placement of")


@pytest.mark.parametrize("args, message", [
    (["--weights-dtype", "bf16", "--set", "sram_bytes=1e9"], "SRAM per wafer binds: largest unit"),
    (["--wafers", "1", "--weights-dtype", "bf16", "--context", "0", "--set", "sram_bytes=8e9"],
     "too few wafers.*fewest wafers that could fit is 3"),
    (["--wafers", "3", "--context", "0", "--set", "sram_bytes=8e9", "--set", "io_bandwidth_bytes_per_s=1e3",
      "--min-tokens-per-s-per-user", "1"], "dominated by I/O transfer"),
])
def test_infeasible_exits_3_with_the_reason(tmp_path, args, message):
    r = CliRunner().invoke(cli, ["compile", MODEL, *args, "-o", str(tmp_path / "o"), "--time-limit", "2"])
    assert r.exit_code == 3, r.output
    import re

    assert re.search(message, r.output), r.output
    assert "Traceback" not in r.output and "--" in r.output  # names an option to change


@pytest.mark.parametrize("args", [["--pin", "nothing.here=0"], ["--reserve", "1.5"], ["--wafers", "2",
                                  "--max-wafers", "3"], ["--solver", "magic"], ["--set", "nope=1"]])
def test_bad_input_exits_2(tmp_path, args):
    r = CliRunner().invoke(cli, ["compile", MODEL, *args, "-o", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output


def test_cli_options_are_the_flat_options_with_their_defaults_and_enum_choices():
    from placer.cli.compile import compile_command
    from placer.options import FLAT_DEFAULTS, Granularity, Objective, Solver
    from placer.solver.solve import SOLVERS

    params = {p.name: p for p in compile_command.params}
    renamed = {"target": "target_name", "target_overrides": "target_sets"}
    for name, default in FLAT_DEFAULTS.items():
        if name == "compare":  # the CLI always compares (report.md's table)
            continue
        param = params[renamed.get(name, name)]
        assert param.multiple and default == () or param.default == default, name
    for name, enum in (("objective", Objective), ("solver", Solver), ("granularity", Granularity)):
        assert tuple(params[name].type.choices) == enum.choices()
    assert tuple(SOLVERS) == Solver.choices()


def test_cli_and_python_api_build_the_same_options(tmp_path):
    import placer
    from placer.options import CompileOptions

    args = ["--context", "2048", "--concurrency", "3", "--objective", "min-latency", "--time-limit", "2",
            "--set", "clock_hz=1e9", "--reserve", "0.1"]
    r = _run(MODEL, *args, "-o", str(tmp_path / "o"), "--json")
    assert r.exit_code == 0, r.output
    cli_plan = Plan.from_json(r.output)
    api_plan = placer.compile(MODEL, context=2048, concurrency=3, objective="min-latency", time_limit=2,
                              target_overrides={"clock_hz": "1e9"}, reserve=0.1)
    assert cli_plan.to_json() == api_plan.to_json()
    opts = api_plan.provenance.options
    assert isinstance(opts, CompileOptions) and opts.deployment.reserve == 0.1
    assert opts.deployment.max_wafers == 64  # resolved once from the target, recorded as used


def test_provenance_records_the_reserve_used_not_none(tmp_path):
    r = _run(MODEL, "--context", "1024", "--time-limit", "2", "-o", str(tmp_path / "o"), "--json")
    d = json.loads(r.output)
    assert d["provenance"]["options"]["deployment"]["reserve"] == d["target"]["default_reserve"] == 0.05


def test_unknown_keyword_is_a_type_error():
    import placer

    with pytest.raises(TypeError, match="context_tokens"):
        placer.compile(MODEL, context_tokens=8192)


def test_api_names_are_functions_after_submodule_imports():
    import placer
    import placer.compiler  # noqa: F401
    import placer.runner  # noqa: F401

    assert callable(placer.compile) and placer.compile.__name__ == "compile_model"
    assert callable(placer.run) and placer.run.__name__ == "run_plan"


def test_cli_startup_does_not_import_solver_or_torch():
    import subprocess
    import sys

    code = ("import sys, placer.cli.main; "
            "print(sorted(m for m in ('ortools', 'torch', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
