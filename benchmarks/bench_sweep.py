"""Benchmark: a Llama-3.1-70B sweep of >= 100 points (issue 12 acceptance).

Run: ``python benchmarks/bench_sweep.py [--concurrency 1-64:x4] [--extra '--option layout=whole']
[--no-ray]``. Times, each in a fresh process with a fresh cache: the sweep with the local executor
(all cores, warm workers), the re-run (every point from the cache), and the same sweep on a local
Ray cluster (``--ray local``, cluster start included); checks that the Ray table (sweep.csv) is
byte-identical to the local one. Prints the machine (cores, load) and date.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine_header  # noqa: E402  (benchmarks/ is not a package)


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr[-800:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.1-70b")
    ap.add_argument("--wafers", default="4-16")
    ap.add_argument("--concurrency", default="1-64:x4")
    ap.add_argument("--context", default="8192,32768")
    ap.add_argument("--extra", default="", help="more placer sweep options, e.g. '--option layout=whole'")
    ap.add_argument("--no-ray", action="store_true")
    a = ap.parse_args()
    print(machine_header())
    placer = [sys.executable, "-m", "placer"]
    grid = [a.model, "--wafers", a.wafers, "--concurrency", a.concurrency, "--context", a.context,
            *shlex.split(a.extra)]
    with tempfile.TemporaryDirectory() as tmp:
        local, ray_out = Path(tmp) / "local", Path(tmp) / "ray"
        t_local = timed([*placer, "sweep", *grid, "-o", str(local)])
        points = len((local / "sweep.csv").read_text().splitlines()) - 1
        t_rerun = timed([*placer, "sweep", *grid, "-o", str(local)])
        print(f"points: {points}")
        print(f"local executor ({os.cpu_count()} workers), fresh cache: {t_local:.1f} s")
        print(f"re-run, every point from the cache: {t_rerun:.2f} s")
        if not a.no_ray:
            t_ray = timed([*placer, "sweep", *grid, "--ray", "local", "-o", str(ray_out)])
            same = (ray_out / "sweep.csv").read_bytes() == (local / "sweep.csv").read_bytes()
            print(f"ray executor (local cluster, start included), fresh cache: {t_ray:.1f} s; "
                  f"table identical to the local one: {same}")
            if not same:
                for line in differing_rows(local / "sweep.jsonl", ray_out / "sweep.jsonl"):
                    print(line)
                raise SystemExit("the Ray table differs from the local one")


def differing_rows(a: Path, b: Path, limit: int = 10) -> list[str]:
    """The settings and the differing fields of rows that two sweeps' sweep.jsonl disagree on."""
    import json

    out = []
    rows_a = [json.loads(x) for x in a.read_text().splitlines()]
    rows_b = [json.loads(x) for x in b.read_text().splitlines()]
    for ra, rb in zip(rows_a, rows_b):
        if ra != rb:
            keys = sorted(k for k in {*ra, *rb} if ra.get(k) != rb.get(k))
            moved = ", ".join(f"{k} {ra.get(k)!r} vs {rb.get(k)!r}" for k in keys)
            out.append(f"  wafers {ra.get('wafers')} concurrency {ra.get('concurrency')} context "
                       f"{ra.get('context')}: {moved}")
    return out[:limit] + ([f"  ... {len(out) - limit} more"] if len(out) > limit else [])


if __name__ == "__main__":
    main()
