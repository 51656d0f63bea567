"""Output folders: files of one run land together, runs are serialised, kills leave nothing half."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from placer.errors import UserError
from placer.outputs import MANIFEST, open_output_folder, prepare_output_folder, write_output_files


def _pair(run: int) -> dict[str, str]:
    return {"plan.json": json.dumps({"run": run}), "report.md": f"run {run}\n"}


def _read_pair(folder: Path) -> tuple[int, int]:
    """Both files read through one descriptor of the folder (as a consistent reader would)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        plan = json.loads(os.read(os.open("plan.json", os.O_RDONLY, dir_fd=fd), 1 << 16))["run"]
        report = int(os.read(os.open("report.md", os.O_RDONLY, dir_fd=fd), 1 << 16).split()[1])
    finally:
        os.close(fd)
    return plan, report


def test_commit_writes_the_set_and_replaces_it_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output_files(out, {**_pair(1), "extra.svg": "<svg/>"})
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "extra.svg", "plan.json", "report.md"]
    write_output_files(out, _pair(2))
    # the folder holds exactly the second run's files: the first run's extra file is gone
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "plan.json", "report.md"]
    assert _read_pair(out) == (2, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left beside it


def test_foreign_files_are_kept_and_placer_files_replaced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "sub").mkdir()
    write_output_files(tmp_path, _pair(1))
    write_output_files(tmp_path, _pair(2))
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "sub").is_dir()
    assert _read_pair(tmp_path) == (2, 2)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".placer-stage")]


def test_interrupted_journal_is_finished_by_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    (tmp_path / "notes.txt").write_text("mine")  # forces the journal path
    write_output_files(tmp_path, _pair(1))
    real_replace = os.replace
    calls = {"n": 0}

    def dying_replace(src: object, dst: object) -> None:
        if str(dst).endswith(("plan.json", "report.md")):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # killed between the two renames
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        write_output_files(tmp_path, _pair(2))
    monkeypatch.setattr(os, "replace", real_replace)
    with open_output_folder(tmp_path):  # the next run finishes the journal first
        pass
    assert _read_pair(tmp_path) == (2, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "notes.txt", "plan.json", "report.md"]


def test_stale_staging_and_tmp_files_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output_files(out, _pair(1))
    (tmp_path / ".out.placer-stage-dead").mkdir()
    (tmp_path / ".out.placer-stage-dead" / "plan.json").write_text("{}")
    (out / ".plan.json.abc123.tmp").write_text("half")
    write_output_files(out, _pair(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "plan.json", "report.md"]


@pytest.mark.parametrize("make", ["under-file", "proc", "is-file"])
def test_unwritable_folders_are_a_user_error_naming_the_path(tmp_path: Path, make: str) -> None:
    if make == "under-file":
        (tmp_path / "f").write_text("x")
        path = tmp_path / "f" / "out"
    elif make == "is-file":
        path = tmp_path / "f2"
        path.write_text("x")
    else:
        path = Path("/proc/placer-out")
    with pytest.raises(UserError, match=str(path).replace("/", ".")) as info:
        prepare_output_folder(path)
    assert "\n" not in str(info.value)


_HOLDER = textwrap.dedent("""
    import sys, time
    from placer.outputs import open_output_folder
    with open_output_folder(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_a_second_run_waits_for_the_lock_then_times_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out), "30"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with pytest.raises(UserError, match="locked by another placer run"):
            write_output_files(out, _pair(1), lock_timeout_s=0.3)
        assert time.monotonic() - start >= 0.3
    finally:
        holder.kill()
        holder.wait()
    write_output_files(out, _pair(2), lock_timeout_s=5)  # the lock died with its holder
    assert _read_pair(out) == (2, 2)


_WRITER = textwrap.dedent("""
    import json, sys
    from placer.outputs import write_output_files
    first = int(sys.argv[2])
    for run in range(first, first + 100000):
        write_output_files(sys.argv[1], {"plan.json": json.dumps({"run": run}), "report.md": f"run {run}\\n",
                                         "report.html": "x" * 200000})
""")


@pytest.mark.parametrize("foreign", [False, True])
def test_concurrent_and_killed_writers_never_mix_runs(tmp_path: Path, foreign: bool) -> None:
    out = tmp_path / "out"
    out.mkdir()
    if foreign:
        (out / "notes.txt").write_text("mine")
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(out), str(k * 1_000_000)])
               for k in (1, 2)]
    seen = 0
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if (out / "report.md").exists():
                with open_output_folder(out):  # a consistent reader takes the lock (journal case)
                    plan, report = _read_pair(out)
                assert plan == report
                seen += 1
            if not foreign and (out / "report.md").exists():
                plan, report = _read_pair(out)  # exchange: even a lock-free reader sees one run
                assert plan == report
            time.sleep(0.01)
    finally:
        for w in writers:
            w.send_signal(signal.SIGKILL)
            w.wait()
    assert seen > 0
    with open_output_folder(out):
        pass
    plan, report = _read_pair(out)
    assert plan == report
    stray = [p.name for p in [*out.iterdir(), *tmp_path.iterdir()]
             if p.name.endswith(".tmp") or "placer-stage" in p.name or p.name == ".placer-journal.json"]
    assert stray == []


_TINY = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "head_dim": 16,
         "max_position_embeddings": 4096, "torch_dtype": "float32"}


def _placer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "placer", *args], capture_output=True, text=True)


@pytest.mark.parametrize("where", ["under-file", "proc"])
def test_compile_checks_the_output_folder_before_the_solve(tmp_path: Path, where: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_TINY))
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "out" if where == "under-file" else Path("/proc/placer-out")
    run = _placer("compile", str(config), "--target", "wse-mini", "-o", str(out))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert str(out) in run.stderr and "Traceback" not in run.stderr


def test_a_failed_compile_leaves_no_folder(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_TINY))
    run = _placer("compile", str(config), "--target", "wse-mini", "--wafers", "999",
                  "-o", str(tmp_path / "o"))
    assert run.returncode == 2, run.stderr
    assert not (tmp_path / "o").exists()


def test_concurrent_compiles_into_one_folder_leave_one_runs_files(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_TINY))
    out = tmp_path / "out"
    runs = [subprocess.Popen([sys.executable, "-m", "placer", "compile", str(config), "--target", "wse-mini",
                              "--context", str(context), "-o", str(out)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for context in (128, 256, 512, 1024)]
    for r in runs:
        assert r.wait() == 0, r.stderr.read() if r.stderr else ""
    plan = json.loads((out / "plan.json").read_text())
    context = plan["workload"]["context_tokens"]
    report = (out / "report.md").read_text()
    assert f"{context:,}" in report or str(context) in report
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "plan.json", "report.html", "report.md"]
