"""Predicted decode speed of every zoo model beside the published CS-3 figures.

Single stream (``--concurrency 1 --context 8192 --objective min-latency``) on wse3, through the
CLI (``placer compile --json``), so the numbers are what a user sees. Published figures come
from ``../shared/HARDWARE.md`` (vendor or third-party claims, order-of-magnitude checks).

Run: ``python benchmarks/bench_predictions.py [NAME ...]`` (default: every zoo model).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine_header  # noqa: E402  (benchmarks/ is not a package)

# tokens/s per user, single-stream decode on CS-3 (HARDWARE.md, "Published serving figures")
PUBLISHED = {
    "llama-3.1-8b": "~1,800-2,200",
    "llama-3.1-70b": "~450 (4 x CS-3, Aug 2024)",
    "llama-3.1-405b": "~969",
    "gpt-oss-120b": "~3,000",
    "qwen3-235b-a22b": "~1,400",
}
FLAGS = ("--target", "wse3", "--concurrency", "1", "--context", "8192", "--objective", "min-latency")


def predict(name: str, extra: tuple[str, ...] = ()) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-m", "placer", "compile", name, *FLAGS, *extra, "-o", out,
                               "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stdout + proc.stderr).strip().splitlines()[-1]}
    return json.loads(proc.stdout)


def main() -> None:
    from placer.zoo import ZOO_MODELS

    names = sys.argv[1:] or list(ZOO_MODELS)
    print(machine_header())
    print("# wse3, concurrency 1, context 8192, min-latency")
    print("| model | wafers | time per token ms | tokens/s per user | TTFT ms | published tokens/s |")
    print("|---|---:|---:|---:|---:|---|")
    for name in names:
        plan = predict(name)
        if "error" in plan:
            print(f"| {name} | - | - | - | - | {PUBLISHED.get(name, '')} ({plan['error']}) |", flush=True)
            continue
        perf = plan["performance"]
        print(f"| {name} | {len(plan['wafers'])} | {perf['time_per_output_token_s'] * 1e3:.3f} | "
              f"{perf['tokens_per_s_per_user']:,.0f} | {perf['ttft_s'] * 1e3:.2f} | "
              f"{PUBLISHED.get(name, '')} |", flush=True)


if __name__ == "__main__":
    main()
