"""``--json`` on every subcommand: stdout holds only JSON, errors too (``{"error", "exit"}``);
``placer run --json`` against the text accounting of the same run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from placer.cli.main import cli


def _invoke(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r.exit_code, r.stdout


@pytest.mark.parametrize("args, code, message", [
    (["compile", "no-such-model", "-o", "{tmp}/o", "--json"], 2, "zoo name"),
    (["compile", "llama-3.1-8b", "--concurrency", "x", "-o", "{tmp}/o", "--json"], 2, "--concurrency"),
    (["compile", "llama-3.1-8b", "--set", "sram_bytes=1e9", "--weights-dtype", "bf16", "-o", "{tmp}/o",
      "--time-limit", "1", "--json"], 3, "SRAM per wafer binds"),
    (["inspect", "no-such-model", "--json"], 2, "zoo name"),
    (["targets", "nope", "--json"], 2, "nope"),
    (["sweep", "llama-3.1-8b", "--shard", "3/2", "-o", "{tmp}/s", "--json"], 2, "--shard"),
    (["diff", "{tmp}/a.json", "{tmp}/b.json", "--json"], 2, "no such plan file"),
    (["check", "{tmp}/a.json", "--json", "--all-resident"], 2, "no such plan file"),
    (["run", "no-such.onnx", "--plan", "{tmp}/p.json", "--inputs", "{tmp}/i.npz", "--json"], 2, ""),
])
def test_errors_are_json_on_stdout(tmp_path, args, code, message):
    got, out = _invoke(*[a.format(tmp=tmp_path) for a in args])
    assert got == code, out
    d = json.loads(out)            # stdout is exactly one JSON object
    assert set(d) == {"error", "exit"} and d["exit"] == code and message in d["error"]


def test_run_json_matches_the_accounting(onnx_model, tmp_path):
    import placer
    from tests.test_run import _inputs

    path = onnx_model("llama", with_cache=True)
    plan = placer.compile(str(path), target="wse-mini", wafers=3, context=64, prompt=8)
    (tmp_path / "plan.json").write_text(plan.to_json())
    graph = placer.load_graph(str(path))
    np.savez(tmp_path / "in.npz", **_inputs(graph))
    args = ["run", path, "--plan", tmp_path / "plan.json", "--inputs", tmp_path / "in.npz", "--tokens", "3"]
    code, out = _invoke(*args, "--json", "--outputs", tmp_path / "out.npz")
    assert code == 0, out
    d = json.loads(out)
    assert d["wafers"] == 3 and d["decode_steps"] >= 1 and len(d["tokens"][0]) == 3
    with np.load(tmp_path / "out.npz") as saved:
        assert saved["tokens"].tolist() == d["tokens"]
    assert d["emulated_over_predicted"] == pytest.approx(d["emulated_seconds_per_token"]
                                                         / d["predicted_seconds_per_token"])
    code, text = _invoke(*args)
    assert code == 0
    assert "generated token ids: " + " ".join(map(str, d["tokens"][0])) in text
    for wafer, stats in d["decode_per_token"].items():   # the text table's per-wafer row
        assert f"{stats['cycles']:,}" in text.split(wafer, 1)[1].splitlines()[0]
        assert sum(k["cycles"] for k in stats["kernels"].values()) >= stats["cycles"] - len(stats["kernels"])
