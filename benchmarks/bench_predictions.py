"""Predicted decode speed of every zoo model beside the published CS-3 figures.

Single stream (``--concurrency 1 --context 8192 --objective min-latency``) on ``wse3-physics``
(no fitted overhead: the bound) and the built-in ``wse3`` (overheads calibrated to the two
August 2024 points), through the CLI (``placer compile --json``), so the numbers are what a user
sees. Published figures come from ``../shared/HARDWARE.md`` (vendor or third-party claims).

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
FLAGS = ("--concurrency", "1", "--context", "8192", "--objective", "min-latency")
TARGETS = ("wse3-physics", "wse3")


def predict(name: str, target: str, extra: tuple[str, ...] = ()) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-m", "placer", "compile", name, "--target", target, *FLAGS,
                               *extra, "-o", out,
                               "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stdout + proc.stderr).strip().splitlines()[-1]}
    return json.loads(proc.stdout)


def main() -> None:
    from placer.zoo import ZOO_MODELS

    names = sys.argv[1:] or list(ZOO_MODELS)
    print(machine_header())
    print("# concurrency 1, context 8192, min-latency; tokens/s per user (TTFT ms)")
    print("| model | wafers | " + " | ".join(f"{t} tok/s | {t} TTFT ms" for t in TARGETS) +
          " | published tokens/s |")
    print("|---|---:|" + "---:|---:|" * len(TARGETS) + "---|")
    for name in names:
        cells, wafers = [], "-"
        for target in TARGETS:
            plan = predict(name, target)
            if "error" in plan:
                cells += ["-", str(plan["error"])]
                continue
            perf = plan["performance"]
            wafers = str(len(plan["wafers"]))  # type: ignore[arg-type]
            cells += [f"{perf['tokens_per_s_per_user']:,.0f}", f"{perf['ttft_s'] * 1e3:.2f}"]  # type: ignore[index]
        print(f"| {name} | {wafers} | " + " | ".join(cells) + f" | {PUBLISHED.get(name, '')} |", flush=True)

if __name__ == "__main__":
    main()
