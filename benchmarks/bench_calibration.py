"""Benchmark: fidelity of the performance model against published CS-3 points (issue 10).

Run: ``python benchmarks/bench_calibration.py``. Prints the machine and date, then
1. the calibration of ``wse3-physics`` to the shipped points (``placer calibrate``'s own
   output: identifiability, fitted values, the fidelity table with every published point,
   physics-only and calibrated predictions, ratios and leave-one-out ratios);
2. the shipped ``wse3`` against ``wse3-physics`` on every zoo model (single stream, context
   8192, min-latency on the fewest wafers): physics-only must be at least as fast;
3. the speculative reference point (Llama-3.1-70B with a Llama-3.1-8B draft) when available.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine_header  # noqa: E402  (benchmarks/ is not a package)


def main() -> None:
    from placer.calibrate import PointPredictor, calibrate, render_calibration
    from placer.calibrate_points import load_published_points
    from placer.compiler import compile_result
    from placer.targets import load_target
    from placer.zoo import ZOO_MODELS

    print(machine_header())
    points = load_published_points()
    physics = load_target("wse3-physics")
    start = time.perf_counter()
    result = calibrate(points, physics, name="wse3", predictor=PointPredictor(points, physics))
    print(f"\n## Calibration ({time.perf_counter() - start:.1f} s wall)\n")
    print(render_calibration(result))

    shipped = load_target("wse3")
    print(f"\n## wse3-physics vs the shipped wse3 ({shipped.calibration or 'not calibrated'})\n")
    print("| model | wafers | physics-only tokens/s per user | wse3 tokens/s per user "
          "| physics >= calibrated |")
    print("|---|---:|---:|---:|---|")
    for name in ZOO_MODELS:
        row = []
        for target in (physics, shipped):
            plan = compile_result(name, target=target, objective="min-latency", context=8192, concurrency=1,
                                  compare=False).plan
            row.append((len(plan.wafers), plan.performance.tokens_per_s_per_user))
        ok = row[0][1] >= row[1][1] * (1 - 1e-9)
        print(f"| {name} | {row[0][0]} | {row[0][1]:,.1f} | {row[1][1]:,.1f} | {'yes' if ok else 'NO'} |")


if __name__ == "__main__":
    main()
