"""Shared helpers for benchmarks: a machine/date header and median-of-N subprocess timing with
peak RSS (``resource.getrusage(RUSAGE_CHILDREN)`` measured in a fresh wrapper process, so that
earlier children do not leak into the number)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

_PROBE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "r = subprocess.run(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "dt = time.perf_counter() - t\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
    "print(json.dumps({'seconds': dt, 'peak_rss_bytes': rss, 'returncode': r.returncode,"
    " 'stderr': r.stderr.decode()[-500:]}))\n"
)


def machine_header() -> str:
    """One line naming the machine, Python and the date, for every benchmark's output."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"# {_dt.datetime.now().isoformat(timespec='seconds')} | {cpu} | {os.cpu_count()} cores | "
            f"load {load:.1f} | Python {platform.python_version()} | "
            f"{platform.system()} {platform.release()}")


@dataclass(frozen=True)
class Measurement:
    """Median and spread of wall time, and the largest peak RSS over the runs."""

    seconds_median: float
    seconds_min: float
    seconds_max: float
    peak_rss_bytes: int
    runs: int


def measure_command(argv: Sequence[str], runs: int = 5) -> Measurement:
    """Run ``argv`` ``runs`` times, each in a fresh wrapper; raise if it fails."""
    times, peaks = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(list(argv))],
                             capture_output=True, text=True, check=True).stdout
        data = json.loads(out)
        if data["returncode"] != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {data['stderr']}")
        times.append(data["seconds"])
        peaks.append(data["peak_rss_bytes"])
    return Measurement(statistics.median(times), min(times), max(times), max(peaks), runs)
