"""``placer inspect`` through click's CliRunner: table, JSON, determinism, one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from placer.cli.main import cli
from placer.synthetic import write_llama_like_onnx


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(write_llama_like_onnx(tmp_path_factory.mktemp("cli") / "m.onnx", layers=2, hidden=64,
                                     heads=4, kv_heads=2, head_dim=16, ffn=96, vocab=100, dtype="f32"))


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_table_has_a_row_per_unit_and_units_in_headers(model) -> None:
    res = _run("inspect", model)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    header = next(l for l in lines if l.startswith("unit"))
    for unit in ("(GB)", "(bytes/token)", "(GFLOP/token)"):
        assert unit in header
    rows = [l.split()[0] for l in lines if l.split() and l.split()[0] in
            ("embed", "layers.0", "layers.1", "head", "total")]
    assert rows == ["embed", "layers.0", "layers.1", "head", "total"]
    total = next(l for l in lines if l.startswith("total")).split()
    assert total[1] == f"{(100 * 64) * 2 + 64 + 2 * (2 * 64 + 64 * 64 * 2 + 2 * 64 * 32 + 3 * 64 * 96):,}"


def test_json_is_deterministic_and_matches_options(model) -> None:
    a = _run("inspect", model, "--json", "--granularity", "block", "--weights-dtype", "bf16",
             "--kv-dtype", "fp8", "--context", "128")
    b = _run("inspect", model, "--json", "--granularity", "block", "--weights-dtype", "bf16",
             "--kv-dtype", "fp8", "--context", "128")
    assert a.exit_code == 0 and a.output == b.output
    data = json.loads(a.output)
    assert [u["name"] for u in data["units"]][:3] == ["embed", "layers.0.attn", "layers.0.mlp"]
    for key in ("name", "parameters", "weight_bytes", "kv_bytes_per_token", "decode_flops_per_token"):
        assert all(key in u for u in data["units"])
    totals = data["totals"]
    assert totals["weight_bytes"] == 2 * totals["parameters"]
    assert totals["kv_bytes_per_token"] == 2 * 2 * 2 * 16 * 1
    assert totals["parameters"] == sum(u["parameters"] for u in data["units"])


def test_unit_overrides_option(model, tmp_path) -> None:
    bad = tmp_path / "u.toml"
    bad.write_text('"*" = "nowhere"\n')
    res = CliRunner().invoke(cli, ["inspect", model, "--unit-overrides", str(bad)])
    assert res.exit_code == 2
    assert "u.toml" in res.output and "nowhere" in res.output


@pytest.mark.parametrize("args", [
    ["--granularity", "atoms"],
    ["--weights-dtype", "fp7"],
    ["--kv-dtype", "int3"],
    ["--context", "lots"],
    ["--context", "-5"],
    ["--dtype-override", "nonsense"],
    ["--set", "clock_hz=fast"],
    ["--target", "wse99"],
])
def test_bad_options_exit_2_with_one_line(model, args) -> None:
    res = CliRunner().invoke(cli, ["inspect", model, *args])
    assert res.exit_code == 2, res.output
    lines = [l for l in res.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("placer: error:"), res.output


def test_missing_model_exits_2(tmp_path) -> None:
    res = CliRunner().invoke(cli, ["inspect", str(tmp_path / "nope.onnx")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
