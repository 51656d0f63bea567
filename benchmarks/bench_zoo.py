"""Benchmark: every zoo model through load, cost and compile (wse3, ``--objective min-wafers``).

Run: ``python benchmarks/bench_zoo.py [--granularity layer|block|expert] [--runs 3] [NAME ...]``
(default: every zoo model, layer granularity, 3 runs). Each run is a fresh Python process that
times ``load_model`` (config -> IR -> KV caches -> units -> verify), ``annotate_costs`` and the
solve (``compile_result`` on the ModelCost), and reports its own peak RSS. Prints the median
over the runs of wall and CPU seconds per phase (CPU time is steadier on a shared machine), the
largest peak RSS (MB = 1e6 bytes), and the machine and date.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine_header  # noqa: E402  (benchmarks/ is not a package)

PHASES = ("load", "cost", "compile")


def run_one(name: str, granularity: str) -> dict[str, float]:
    """Time the phases for ``name`` in this process; returns seconds and peak RSS."""
    import resource

    from placer.compiler import compile_result
    from placer.cost_model import annotate_costs
    from placer.pipeline import load_model
    from placer.targets import load_target
    from placer.workload import Workload

    out: dict[str, float] = {}
    target = load_target("wse3")

    def timed(phase: str, fn):  # type: ignore[no-untyped-def]
        w, c = time.perf_counter(), time.process_time()
        value = fn()
        out[f"{phase}_wall_s"] = time.perf_counter() - w
        out[f"{phase}_cpu_s"] = time.process_time() - c
        return value

    loaded = timed("load", lambda: load_model(name, granularity=granularity))
    # the structure load_model found, as compile passes it (annotate_costs would recompute it)
    cost = timed("cost", lambda: annotate_costs(loaded.graph, target, Workload(), loaded.structure))
    result = timed("compile", lambda: compile_result(cost, target=target, objective="min-wafers",
                                                     compare=False))
    out["nodes"] = len(loaded.graph.nodes)
    out["units"] = len(cost.units)
    out["wafers"] = len(result.plan.wafers)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return out


def measure(name: str, granularity: str, runs: int) -> dict[str, float]:
    """Median of ``runs`` fresh processes (peak RSS: the largest)."""
    samples = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, __file__, "--child", "--granularity", granularity, name],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{name}: child failed: {proc.stderr.strip()[-500:]}")
        samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    out["peak_rss_bytes"] = max(s["peak_rss_bytes"] for s in samples)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--granularity", default="layer", choices=("layer", "block", "expert"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.names[0], args.granularity)))
        return
    from placer.zoo import ZOO_MODELS

    names = args.names or list(ZOO_MODELS)
    print(machine_header())
    print(f"# granularity {args.granularity}, wse3, min-wafers; median of {args.runs} fresh processes; "
          "seconds wall (CPU)")
    print("| model | nodes | units | wafers | load s | cost s | compile s | total s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        m = measure(name, args.granularity, args.runs)
        cells = [f"{m[f'{p}_wall_s']:.2f} ({m[f'{p}_cpu_s']:.2f})" for p in PHASES]
        total_w = sum(m[f"{p}_wall_s"] for p in PHASES)
        total_c = sum(m[f"{p}_cpu_s"] for p in PHASES)
        print(f"| {name} | {int(m['nodes']):,} | {int(m['units'])} | {int(m['wafers'])} | "
              f"{' | '.join(cells)} | {total_w:.2f} ({total_c:.2f}) | {m['peak_rss_bytes'] / 1e6:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
