"""Solver benchmark: solve time and objective of CP-SAT against every baseline and the bound.

Models: Llama-3.1 8B, 70B and 405B (built-in zoo configs through the real pipeline, at layer
and block granularity) on wse3, in two scenarios:

* ``weights``: ``--context 0 --reserve 0 --objective min-wafers`` (the 405B acceptance case)
* ``kv``: ``--context 8192 --concurrency 8 --objective min-latency`` (default reserve)

plus a synthetic MoE DAG of 40 layers x 256 experts (10,282 units) with min-wafers.

Run: ``python benchmarks/bench_solver.py [--time-limit S] [--moe-time-limit S] [--skip-moe]``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ortools  # noqa: E402

from placer.options import CompileOptions  # noqa: E402
from placer.solver.problem import TICK_S, build_problem  # noqa: E402
from placer.solver.solve import SOLVERS, solve  # noqa: E402
from placer.targets import load_target  # noqa: E402

MODELS = ("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b")
SCENARIOS = {
    "weights": CompileOptions.from_flat(context=0, concurrency=1, objective="min-wafers", reserve=0.0),
    "kv": CompileOptions.from_flat(context=8192, concurrency=8, objective="min-latency"),
}


def load_cost(name: str, granularity: str, target, workload):  # type: ignore[no-untyped-def]
    from placer.cost_model import annotate_costs
    from placer.pipeline import load_model

    return annotate_costs(load_model(name, granularity=granularity).graph, target, workload)


def row(label: str, problem, method: str, time_limit: float) -> str:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    sol = solve(problem, method, time_limit_s=time_limit, seed=0)
    wall = time.perf_counter() - start
    ev = sol.evaluation
    if not sol.feasible:
        return f"| {label} | {method} | infeasible | | | | | | | {wall:.2f} | {ev.reason} |"
    gap = "" if sol.gap is None else f"{100 * sol.gap:.3f}"
    return (f"| {label} | {method} | {sol.status} | {ev.wafers} | {ev.resident} "
            f"| {ev.tpot * TICK_S * 1e3:.4f} "
            f"| {sol.objective} | {'' if sol.bound is None else sol.bound} | {gap} | {wall:.2f} | |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--moe-time-limit", type=float, default=10.0)
    parser.add_argument("--skip-moe", action="store_true")
    args = parser.parse_args()
    target = load_target("wse3")
    print(f"# bench_solver: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, OR-Tools {ortools.__version__}), target wse3, "
          f"deterministic limit {args.time_limit} s per CP-SAT solve")
    print()
    print("| problem | method | status | wafers | resident | time/token ms | objective | bound | gap % "
          "| wall s | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in MODELS:
        for granularity in ("layer", "block"):
            for scenario, options in SCENARIOS.items():
                cost = load_cost(name, granularity, target, options.workload)
                problem = build_problem(cost, target, options)
                label = f"{name} {granularity} ({problem.n} units) {scenario}"
                for method in SOLVERS:
                    print(row(label, problem, method, args.time_limit), flush=True)
    if not args.skip_moe:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.solver.factories import moe_cost

        cost = moe_cost(layers=40, experts=256)
        problem = build_problem(cost, target, CompileOptions.from_flat(context=0, objective="min-wafers"))
        label = f"synthetic MoE 40x256 experts ({problem.n} units, {len(problem.edges)} edges) weights"
        for method in SOLVERS:
            print(row(label, problem, method, args.moe_time_limit), flush=True)


if __name__ == "__main__":
    main()
