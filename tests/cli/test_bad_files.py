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


def _write_cases(tmp: Path, plan_text: str) -> None:
    import numpy as np

    (tmp / "config.json").write_text(json.dumps(TINY_CONFIG))
    (tmp / "plan.json").write_text(plan_text)
    (tmp / "pins.txt").write_text("layers.0=99\n")
    (tmp / "sweep.toml").write_text('models = ["config.json"]\n[options]\nbogus_key = 3\n')
    np.savez(tmp / "in.npz", input_ids=np.array([[1, 2, 3]]), position_ids=np.array([[0, 1, 2]]))
    data = (tmp / "in.npz").read_bytes()
    (tmp / "truncated.npz").write_bytes(data[:len(data) // 2])
    np.save(tmp / "ids.npy", np.array([[1, 2, 3]]))
    (tmp / "time.toml").write_text('models = ["config.json"]\n[options]\ntime_limit = "x"\n')
    with open(tmp / "big.json", "wb") as f:  # sparse: a 17 MiB config past the 16 MiB cap, written in no time
        f.truncate(17 * 2**20)


# Each case of issue 13's remaining list: arguments, the needle its one stderr line must hold.
OPTION_CASES = {
    "diff-nan": (["diff", "plan.json", "plan.json", "--max-tpot-rise", "nan"],
                 "option --max-tpot-rise: expected a finite number, got nan"),
    "diff-inf": (["diff", "plan.json", "plan.json", "--max-tokens-per-s-drop", "inf"],
                 "option --max-tokens-per-s-drop: expected a finite number"),
    "time-limit-inf": (["compile", "config.json", "--time-limit", "inf", "-o", "out"],
                       "option --time-limit: expected a finite number"),
    "seed-2**70": (["compile", "config.json", "--seed", str(2**70), "-o", "out"],
                   "option --seed: must be <= 2,147,483,647"),
    "pin-wafer-99": (["compile", "config.json", "--target", "wse-mini", "--pin-file", "pins.txt",
                      "-o", "out"],
                     "layers.0 on wafer 99 but only wafers 0..7 are allowed"),
    "run-tokens": (["run", "config.json", "--plan", "plan.json", "--inputs", "in.npz",
                    "--tokens", str(10**9)],
                   "option --tokens: must be <= 65,536"),
    "run-batch": (["run", "config.json", "--plan", "plan.json", "--inputs", "in.npz", "--batch", str(10**12)],
                  "option --batch: must be <= 4,096"),
    "min-floor-inf": (["compile", "config.json", "--min-tokens-per-s-per-user", "inf", "-o", "out"],
                      "option --min-tokens-per-s-per-user must be a finite number > 0"),
    "check-floor-inf": (["check", "plan.json", "--min-tokens-per-s-per-user", "inf"],
                        "must be a finite number > 0"),
    "sweep-time-limit": (["sweep", "config.json", "--time-limit", "inf", "-o", "out", "--no-cache"],
                         "option --time-limit: expected a finite number"),
    "run-truncated-npz": (["run", "config.json", "--plan", "plan.json", "--inputs", "truncated.npz"],
                          "truncated.npz: not a readable .npz file"),
    "sweep-wafers": (["sweep", "config.json", "--wafers", "1-1000000000", "-o", "out", "--no-cache"],
                     "option --wafers: more than 10,000 values"),
    "sweep-points": (["sweep", "config.json", "--concurrency", "1-2000", "--context", "1-1000", "-o", "out",
                      "--no-cache"], "2,000,000 points, past the cap of 1,000,000"),
    "sweep-option-key": (["sweep", "--file", "sweep.toml", "-o", "out", "--no-cache"],
                         "sweep.toml: unknown key(s) 'bogus_key' in [options]"),
    "sweep-cli-option": (["sweep", "config.json", "--option", "bogus=1", "-o", "out", "--no-cache"],
                         "unknown compile option(s) 'bogus'"),
    "config-too-big": (["inspect", "big.json"], "more than the 16,777,216 bytes (16 MiB)"),
    # workload sizes past their documented caps (a 400-digit --context was an OverflowError traceback,
    # 10^30 an "infeasible" naming a 10^23 GB unit, --draft-length 10^9 exit 0)
    "context-huge": (["compile", "config.json", "--context", str(10**400), "-o", "out"],
                     "option --context: about 10^400 is more than placer's cap of 16,777,216"),
    "context-cap": (["compile", "config.json", "--context", str(2**24 + 1), "-o", "out"],
                    "option --context: 16,777,217 is more than placer's cap of 16,777,216 "
                    "(placer.workload.MAX_CONTEXT_TOKENS"),
    "inspect-context": (["inspect", "config.json", "--context", str(10**30)],
                        "option --context: about 10^30 is more than placer's cap"),
    "prompt-huge": (["compile", "config.json", "--prompt", str(10**12), "-o", "out"],
                    "option --prompt: 1,000,000,000,000 is more than placer's cap of 16,777,216"),
    "output-tokens-huge": (["compile", "config.json", "--output-tokens", str(10**20), "-o", "out"],
                           "option --output-tokens: about 10^20 is more than"),
    "concurrency-huge": (["compile", "config.json", "--concurrency", str(10**400), "-o", "out"],
                         "option --concurrency: about 10^400 is more than placer's cap of 1,048,576"),
    "draft-length-huge": (["compile", "config.json", "--draft", "config.json", "--acceptance", "0.5",
                           "--draft-length", str(10**9), "-o", "out"],
                          "option --draft-length: 1,000,000,000 tokens per verification step is more than "
                          "placer's cap of 64 (placer.speculative.MAX_DRAFT_LENGTH"),
    "sweep-draft-length": (["sweep", "config.json", "--draft", "config.json", "--acceptance", "0.5",
                            "--draft-length", "65", "-o", "out", "--no-cache"], "cap of 64"),
    "sweep-context-huge": (["sweep", "config.json", "--context", str(10**30), "-o", "out", "--no-cache"],
                           "option --context: about 10^30 is more than placer's cap"),
    "wafers-huge": (["compile", "config.json", "--wafers", str(10**400), "-o", "out"],
                    "option --wafers about 10^400 exceeds the"),
    # held-out corpus, round 2: a .npy for --inputs was a TypeError traceback; the others exit 0
    # (-o "" wrote into the current folder) or a traceback (a floor of 1e-320 tokens/s overflowed)
    "run-npy": (["run", "config.json", "--plan", "plan.json", "--inputs", "ids.npy"],
                "ids.npy: a single .npy array, not an .npz archive"),
    "output-empty": (["compile", "config.json", "-o", ""], "the output folder is an empty path"),
    "run-outputs-empty": (["run", "config.json", "--plan", "plan.json", "--inputs", "in.npz",
                           "--outputs", " "],
                          "option --outputs: the output file is an empty path"),
    "floor-tiny": (["compile", "config.json", "--min-tokens-per-s-per-user", "1e-320", "-o", "out"],
                   "outside placer's range 1e-06 to 1e+12 tokens/s"),
    "sweep-summary-context": (["sweep", "config.json", "--summary-context", str(10**30), "-o", "out"],
                              "option --summary-context: must be <= 16,777,216"),
    "sweep-floor-nan": (["sweep", "config.json", "--floor", "nan", "-o", "out"],
                        "option --floor: expected a finite number"),
    "sweep-file-time-limit-text": (["sweep", "--file", "time.toml", "-o", "out", "--no-cache"],
                                   "time.toml [options]: time_limit: expected a number, got str 'x'"),
    "sweep-jobs": (["sweep", "config.json", "-j", str(10**9), "-o", "out"],
                   "option --jobs: must be <= 1,024"),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_option_and_file_caps_are_one_line_exit_2(tmp_path: Path, plan_text: str, case: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fuzz.contract import invoke

    _write_cases(tmp_path, plan_text)
    monkeypatch.chdir(tmp_path)
    args, needle = OPTION_CASES[case]
    result = invoke(args, out_dir=tmp_path / "out", allowed={2})
    assert needle in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["pin-wafer-99", "run-truncated-npz", "seed-2**70", "context-huge",
                                  "draft-length-huge", "concurrency-huge", "run-npy", "output-empty"])
def test_option_and_file_caps_through_the_binary(tmp_path: Path, plan_text: str, case: str) -> None:
    _write_cases(tmp_path, plan_text)
    args, needle = OPTION_CASES[case]
    _one_line(_placer(*args, cwd=tmp_path), needle)
    assert not (tmp_path / "out").exists()


MIXTRAL = {**TINY_CONFIG, "model_type": "mixtral", "architectures": ["MixtralForCausalLM"],
           "num_local_experts": 4, "num_experts_per_tok": 2}


# Held-out corpus (issue 13): config fields that were a MemoryError (head_dim 10^12), a hang past
# 90 s (10^9 experts), a ValueError traceback (a string rope factor) or exit 0 (a negative rope factor
# or theta: NaN frequencies, a RuntimeWarning on stderr).
@pytest.mark.parametrize("config, needle", [
    ({**TINY_CONFIG, "head_dim": 10**12},
     "field 'head_dim' is 1,000,000,000,000, above placer's cap of 65,536"),
    ({**TINY_CONFIG, "num_attention_heads": 10**12}, "cap of 65,536 (placer.frontends.hf_reader.MAX_HEADS)"),
    ({**MIXTRAL, "num_local_experts": 10**9}, "cap of 4,096 (placer.frontends.hf_reader.MAX_EXPERTS)"),
    ({**TINY_CONFIG, "rope_scaling": {"rope_type": "llama3", "factor": "big"}},
     "field rope_scaling.'factor' must be a number, got 'big'"),
    ({**TINY_CONFIG, "rope_scaling": {"rope_type": "yarn", "factor": -1.0}},
     "field rope_scaling.'factor' must be a number > 0, got -1.0"),
    ({**TINY_CONFIG, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
     "field rope_scaling.'low_freq_factor' is missing"),
    ({**TINY_CONFIG, "rope_theta": -10000.0}, "field 'rope_theta' must be > 0"),
])
def test_bad_config_fields_through_the_binary(tmp_path: Path, config: dict, needle: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    _one_line(_placer("inspect", "config.json", "--target", "wse-mini", cwd=tmp_path), needle)
