"""Bad plan, sweep and output files through the installed ``placer`` command in a real subprocess:
exit 2, one stderr line naming the file/field/option, no traceback, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY_CONFIG = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "head_dim": 16,
}


def _placer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "placer", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def _one_line(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def plan_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    import placer

    tmp = tmp_path_factory.mktemp("plan")
    (tmp / "config.json").write_text(json.dumps(TINY_CONFIG))
    return placer.compile(str(tmp / "config.json"), target="wse-mini", time_limit=0.2).to_json()


def _edit(plan_text: str, change: str) -> bytes:
    d = json.loads(plan_text)
    if change == "nan-field":
        return plan_text.replace('"clock_hz": ', '"clock_hz": NaN, "x": ', 1).encode()
    if change == "not-utf8":
        return plan_text.encode()[:-3] + b"\xff}\n"
    if change == "deep":
        return b'{"a":' * 20000 + b"1" + b"}" * 20000
    if change == "wafer-out-of-range":
        d["assignment"][sorted(d["assignment"])[-1]] = 10**7
    elif change == "performance-string":
        d["performance"]["tokens_per_s_per_user"] = "fast"
    elif change == "performance-negative":
        d["performance"]["ttft_s"] = -1.0
    elif change == "section-list":
        d["kv"] = [1, 2]
    return json.dumps(d).encode()


@pytest.mark.parametrize("change, needle", [
    ("nan-field", "'clock_hz' is NaN"), ("not-utf8", "not UTF-8"), ("deep", "nested"),
    ("wafer-out-of-range", "outside the plan's wafers"),
    ("performance-string", "'tokens_per_s_per_user': expected a number"),
    ("performance-negative", "'ttft_s': must be >= 0"), ("section-list", "section 'kv'")])
@pytest.mark.parametrize("command", ["check", "diff"])
def test_tampered_plans_are_one_line_errors_in_check_and_diff(tmp_path: Path, plan_text: str, change: str,
                                                               needle: str, command: str) -> None:
    (tmp_path / "good.json").write_text(plan_text)
    (tmp_path / "bad.json").write_bytes(_edit(plan_text, change))
    args = ["check", "bad.json"] if command == "check" else ["diff", "bad.json", "good.json"]
    r = _placer(*args, cwd=tmp_path)
    _one_line(r, needle)
    assert "bad.json" in r.stderr


@pytest.mark.parametrize("text, needle", [
    (b'models = ["\xff"]\n', "not UTF-8"), (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested"),
    (b'models = ["config.json"]\noptions = [1, 2]\n', "'options' must be a table")])
def test_bad_sweep_files(tmp_path: Path, text: bytes, needle: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    (tmp_path / "sweep.toml").write_bytes(text)
    r = _placer("sweep", "--file", "sweep.toml", "--target", "wse-mini", "-o", "out", "--no-cache",
                cwd=tmp_path)
    _one_line(r, needle)
    assert "sweep.toml" in r.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("where, needle", [
    ("afile/out.x", "afile is a file"), ("/proc/placer-test/out.x", "/proc"), ("folder", "'folder'"),
    ("n" * 300 + ".x", "longer than the file system allows"), ("fifo", "not a regular file")])
@pytest.mark.parametrize("command", ["run", "calibrate", "export"])
def test_output_files_that_cannot_be_written_are_refused_before_the_work(tmp_path: Path, where: str,
                                                                           needle: str, command: str) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")  # not a device: a wrong write must not replace anything of the system's
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    before = sorted(p.name for p in tmp_path.iterdir())
    args = {"run": ["run", "config.json", "--plan", "nope.json", "--inputs", "nope.npz", "--outputs", where],
            "calibrate": ["calibrate", "nope.toml", "-o", where],
            "export": ["export", "config.json", "--layers", "1", "-o", where]}[command]
    if command == "calibrate":
        from importlib import resources

        (tmp_path / "nope.toml").write_text(resources.files("placer.calibration").joinpath("published.toml")
                                            .read_text())
    before = sorted(p.name for p in tmp_path.iterdir())
    r = _placer(*args, cwd=tmp_path)
    _one_line(r, needle)
    assert ("--outputs" if command == "run" else "--output") in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_calibrate_json_errors_have_their_stderr_line_too(tmp_path: Path) -> None:
    r = _placer("calibrate", "missing.toml", "-o", "t.toml", "--json", cwd=tmp_path)
    _one_line(r, "missing.toml")
    assert json.loads(r.stdout)["exit"] == 2 and not (tmp_path / "t.toml").exists()
