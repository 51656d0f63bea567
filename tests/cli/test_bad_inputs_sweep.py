"""Bad ``placer sweep`` inputs through the real binary (``python -m placer`` in a subprocess): a
sweep file's ``[options]`` and ``--option`` values of the wrong type, ``models`` that is not a
list of strings, axes of the wrong type, unwritable ``-o``/``--cache`` folders and an unreachable
``--ray`` address are each exit 2 with one stderr line naming the file/option, no traceback, and
nothing written."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_bad_files import TINY_CONFIG

#: Every sweep here is one tiny point on wse-mini, solved in-process with a short limit.
FAST = ("--target", "wse-mini", "-j", "1", "--summary-context", "0", "--time-limit", "0.1")


def _placer(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "placer", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def _one_line(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    return tmp_path


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _sweep_file(work: Path, text: str, *extra: str) -> subprocess.CompletedProcess[str]:
    (work / "s.toml").write_text(text)
    before = _listing(work)
    r = _placer("sweep", "--file", "s.toml", *FAST, "-o", "out", *extra, cwd=work)
    assert _listing(work) == before, "a failed sweep wrote something"
    return r


M = 'models = ["config.json"]\n'


# 1. [options] values of the wrong type (each was exit 0 on a wrong value, or a traceback)
@pytest.mark.parametrize("line, needle", [
    ('pins = "layers.0=0"', "pins: expected a list of strings"),           # was three one-letter pins
    ("pins = [1]", "pins: expected a list of strings"),
    ('dtype_overrides = "*=fp8"', "dtype_overrides: expected a list of strings"),
    ('compare = "no"', "compare: expected true or false"),                 # bool("no") is True
    ("compare = 0", "compare: expected true or false"),
    ("target = 5", "target: expected a string"),
    ("granularity = 5", "granularity: expected a string"),
    ("pin_file = 3", "pin_file: expected a string"),                        # traceback
    ("target_overrides = 5", "target_overrides: expected a list of strings"),  # traceback
    ('target_overrides = ["sram_bytes"]', "target_overrides: expected FIELD=VALUE"),
    ("target_overrides = {sram_bytes = [1]}", "field 'sram_bytes' must be a string or a number"),
    ("target_overrides = {sram_bytes = nan}", "expected a finite number"),
    ("time_limit = true", "time_limit: expected a number"),
    ('time_limit = "10"', "time_limit: expected a number"),
    ("time_limit = inf", "time_limit: expected a finite number"),
    ("reserve = nan", "reserve: expected a finite number"),
    ("seed = true", "seed: expected an integer"),
    ("seed = 1.5", "seed: expected an integer"),
    ('prompt = "12"', "prompt: expected an integer"),
    ("output_tokens = -inf", "output_tokens: expected an integer"),
    ("draft_length = true", "draft_length: expected an integer"),
    ("layout = 1", "layout: expected a string"),
    ('concurrency = "abc"', "concurrency is a sweep axis"),
    ("context = 1.5", "context is a sweep axis"),
    ("objective = 3", "objective is a sweep axis"),
])
def test_sweep_file_options_of_the_wrong_type(work: Path, line: str, needle: str) -> None:
    r = _sweep_file(work, f"{M}[options]\n{line}\n")
    _one_line(r, "s.toml [options]", needle)


# 1. the same checker for --option NAME=VALUE
@pytest.mark.parametrize("item, needle", [
    ("pins=layers.0=0", "pins: expected a list of strings"),
    ("compare=no", "compare: expected true or false"),
    ("seed=null", "seed: expected an integer, got null"),
    ("seed=NaN", "seed: expected an integer"),
    ("time_limit=Infinity", "time_limit: expected a finite number"),
    ("prompt=true", "prompt: expected an integer"),
    ("target=5", "target: expected a string"),
    ("target_overrides=5", "target_overrides: expected a list of strings"),
    ("concurrency=abc", "concurrency is a sweep axis"),
    ("bogus=1", "unknown compile option(s) 'bogus'"),
])
def test_option_values_of_the_wrong_type(work: Path, item: str, needle: str) -> None:
    r = _placer("sweep", "config.json", *FAST, "--option", item, "-o", "out", cwd=work)
    _one_line(r, "option --option", needle)
    assert not (work / "out").exists()


def test_option_values_of_the_right_type_run(work: Path) -> None:
    r = _placer("sweep", "config.json", *FAST, "--option", 'pins=["layers.0=0"]',
                "--option", "compare=false", "--option", 'target_overrides={"clock_hz": 9e8}',
                "-o", "out", "--no-cache", "--json", cwd=work)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"][0]["status"] == "ok"


def test_a_sweep_files_target_is_not_replaced_by_the_default(work: Path) -> None:
    """--target and --granularity have defaults; only a value given on the command line wins over
    the file's (target = "wse-mini" in [options] was silently compiled on wse3)."""
    (work / "s.toml").write_text(f'{M}[options]\ntarget = "no-such-target"\ntime_limit = 0.1\n')
    r = _placer("sweep", "--file", "s.toml", "-j", "1", "--summary-context", "0", "-o", "out", "--no-cache",
                cwd=work)
    _one_line(r, "no-such-target")
    r = _placer("sweep", "--file", "s.toml", *FAST, "-o", "out", "--no-cache", cwd=work)
    assert r.returncode == 0, r.stderr   # given on the command line: --target wins


# 2. models must be a non-empty list of strings
@pytest.mark.parametrize("value, needle", [
    ('"config.json"', "expected a list of strings"), ("3", "expected a list of strings"),
    ("{a = 1}", "expected a list of strings"), ("[]", "empty list"),
    ('["config.json", 3]', "holds int 3"), ('[["config.json"]]', "holds list"),
    ('[""]', "empty name"),
])
def test_sweep_file_models_must_be_a_list_of_strings(work: Path, value: str, needle: str) -> None:
    _one_line(_sweep_file(work, f"models = {value}\n"), "s.toml: models", needle)


def test_no_model_anywhere(work: Path) -> None:
    _one_line(_sweep_file(work, "concurrency = [1]\n"), "give at least one MODEL")


# other keys of a sweep file: axes of the wrong type, empty lists, past the caps, not TOML ...
@pytest.mark.parametrize("text, needle", [
    (f"{M}context = 1.5\n", "s.toml: context: expected integers or range strings"),
    (f"{M}context = true\n", "s.toml: context: expected integers or range strings"),
    (f"{M}concurrency = {{a = 1}}\n", "s.toml: concurrency: expected integers"),
    (f'{M}concurrency = "abc"\n', "s.toml: concurrency: expected integers, ranges"),
    (f"{M}wafers = [1.0]\n", "s.toml: wafers: expected integers"),
    (f"{M}objective = 3\n", "s.toml: objective: expected strings"),
    (f"{M}weights_dtype = [1]\n", "s.toml: weights_dtype: expected strings"),
    (f"{M}prefill_on = [true]\n", "s.toml: prefill_on: expected strings"),
    (f"{M}objective = []\n", "s.toml: objective: empty list"),
    (f"{M}concurrency = []\n", "s.toml: concurrency: empty list"),
    (f'{M}context = "1-1000000000"\n', "s.toml: context: more than 10,000 values"),
    (f'{M}concurrency = "1-2000"\ncontext = "1-1000"\n', "2,000,000 points, past the cap of 1,000,000"),
    (f"{M}modles = []\n", "s.toml: unknown key(s) modles"),
    (f"{M}[options]\nbogus = 1\n", "s.toml: unknown key(s) 'bogus' in [options]"),
    (f"{M}{M}", "s.toml: not valid TOML"),                          # a key twice
    (f"{M}[options]\nseed = 1\nseed = 2\n", "s.toml: not valid TOML"),
    ("models = [\n", "s.toml: not valid TOML"),
])
def test_bad_sweep_file_keys(work: Path, text: str, needle: str) -> None:
    _one_line(_sweep_file(work, text), needle)


def test_sweep_file_missing_or_not_utf8(work: Path) -> None:
    _one_line(_placer("sweep", "--file", "nope.toml", *FAST, "-o", "out", cwd=work), "nope.toml")
    (work / "s.toml").write_bytes(b'models = ["\xff"]\n')
    _one_line(_placer("sweep", "--file", "s.toml", *FAST, "-o", "out", cwd=work), "s.toml", "not UTF-8")
    assert not (work / "out").exists()


# 3. -o / --cache that cannot be written: refused before any point is compiled
@pytest.mark.parametrize("option, where, needle", [
    ("-o", "afile/out", "a path component is a file"),
    ("-o", "/proc/placer-sweep-out", "cannot be created"),
    ("-o", "", "empty path"),
    ("--cache", "afile/cache", "a path component is a file"),
    ("--cache", "/proc/placer-sweep-cache", "cannot be created"),
    ("--cache", "", "empty path"),
    ("--cache", "ro/cache", "not writable"),
    ("-o", "ro/out", "not writable"),
])
def test_unwritable_output_and_cache_folders(work: Path, option: str, where: str, needle: str) -> None:
    (work / "afile").write_text("x")
    (work / "ro").mkdir()
    os.chmod(work / "ro", 0o555)
    try:
        if where.startswith("ro/") and os.access(work / "ro", os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
        before = _listing(work)
        args = ["-o", where] if option == "-o" else ["-o", "out", "--cache", where]
        t = time.monotonic()   # checked before any point is compiled
        r = _placer("sweep", "config.json", *FAST, *args, cwd=work)
        label = "-o/--output" if option == "-o" else "--cache"
        line = _one_line(r, label, needle)
        assert where in line or not where
        assert _listing(work) == before
        assert time.monotonic() - t < 60
    finally:
        os.chmod(work / "ro", 0o755)


def test_json_errors_hold_only_the_error(work: Path) -> None:
    (work / "s.toml").write_text('models = "config.json"\n')
    r = _placer("sweep", "--file", "s.toml", *FAST, "-o", "out", "--json", cwd=work)
    _one_line(r, "s.toml: models")
    d = json.loads(r.stdout)
    assert set(d) == {"error", "exit"} and d["exit"] == 2 and "s.toml: models" in d["error"]
    assert not (work / "out").exists()


def test_a_failed_sweep_removes_the_folders_it_made(work: Path) -> None:
    r = _placer("sweep", "no-such-model", *FAST, "-o", "out", cwd=work)
    _one_line(r, "no-such-model")
    assert not (work / "out").exists()


# 4. --ray: an unreachable address is one line, quickly
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])   # closed again when the block ends: nothing listens


@pytest.mark.parametrize("address, needle", [
    (None, "cannot connect to 127.0.0.1:"), ("ray://127.0.0.1:{port}", "cannot connect to 127.0.0.1:"),
    ("no-port", "expected auto, local, HOST:PORT or ray://HOST:PORT"),
    ("host:99999", "expected auto, local, HOST:PORT"),
])
def test_unreachable_ray_address(work: Path, address: str | None, needle: str) -> None:
    pytest.importorskip("ray")
    port = _closed_port()
    address = f"127.0.0.1:{port}" if address is None else address.format(port=port)
    t = time.monotonic()
    r = _placer("sweep", "config.json", *FAST, "--ray", address, "-o", "out", cwd=work, timeout=60)
    _one_line(r, f"option --ray {address}" if "expected" not in needle else "option --ray", needle)
    assert time.monotonic() - t < 30 and not (work / "out").exists()
