"""Benchmark: fidelity of the performance model against published CS-3 points (issue 10).

Run: ``python benchmarks/bench_calibration.py [--speculative]`` (``--speculative``: section 3
alone). Prints the machine and date, then
1. the calibration of ``wse3-physics`` to the shipped points (``placer calibrate``'s own
   output: identifiability, fitted values, the fidelity table with every published point,
   physics-only and calibrated predictions, ratios and leave-one-out ratios);
2. the shipped ``wse3`` against ``wse3-physics`` on every zoo model (single stream, context
   8192, min-latency on the fewest wafers): physics-only must be at least as fast;
3. Llama-3.1-70B with a Llama-3.1-8B draft (k = 4, a = 0.8, and k = 8, a = 0.9) on the shipped
   ``wse3`` and (k = 4, a = 0.8) on ``wse3-physics``, beside the published speculative 70B point.
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
    if "--speculative" in sys.argv[1:]:  # section 3 alone
        speculative(points, physics, load_target("wse3"))
        return
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
    speculative(points, physics, shipped)


# (draft length k, acceptance a) of the measurement, then settings that show what it takes
SPECULATIVE_SETTINGS = ((4, 0.8), (8, 0.9))


def speculative(points, physics, shipped) -> None:  # type: ignore[no-untyped-def]
    """Llama-3.1-70B with a Llama-3.1-8B draft beside the published speculative 70B figure
    (its draft, draft length and acceptance are not stated: the reference point)."""
    from placer.compiler import compile_result

    ref = next(p for p in points.points if p.id == "llama-3.1-70b-speculative")
    print(f"\n## Speculative decoding: llama-3.1-70b with a llama-3.1-8b draft beside {ref.id} "
          f"({ref.tokens_per_s_per_user:,.0f} tokens/s per user, {ref.source})\n")
    print("Single stream, context 8192, prompt 1024, native (bf16) weights and KV, min-latency on the "
          "fewest wafers; one partition of both models' units.\n")
    print("| target | k | a | E | wafers (target / draft / shared) | draft step ms | verification step ms "
          "| target alone tokens/s per user | effective tokens/s per user | published | ratio | compile s |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    runs = [(shipped, k, a) for k, a in SPECULATIVE_SETTINGS] + [(physics, *SPECULATIVE_SETTINGS[0])]
    for target, k, a in runs:
        start = time.perf_counter()
        plan = compile_result("llama-3.1-70b", target=target, objective="min-latency", context=8192,
                              prompt=1024, concurrency=1, draft="llama-3.1-8b", draft_length=k, acceptance=a,
                              compare=False).plan
        seconds = time.perf_counter() - start
        s = plan.speculative
        ratio = s.tokens_per_s_per_user / ref.tokens_per_s_per_user
        span = " / ".join(",".join(map(str, w)) or "none" for w in (s.target_wafers, s.draft_wafers,
                                                                    s.shared_wafers))
        print(f"| {target.name} | {k} | {a:g} | {s.expected_tokens_per_step:.4f} | {span} | "
              f"{s.draft_step_s * 1e3:.4f} | {s.verify_step_s * 1e3:.4f} | "
              f"{plan.performance.tokens_per_s_per_user:,.1f} | {s.tokens_per_s_per_user:,.1f} | "
              f"{ref.tokens_per_s_per_user:,.0f} | {ratio:.3f} | "
              f"{seconds:.1f} |")


if __name__ == "__main__":
    main()
