"""Floorplan benchmark: time to floorplan one WSE-3 wafer against the number of rectangles.

* 34 rectangles: Llama-3.1-8B from its zoo config (embed, 32 layers, head; context 8192,
  one sequence), the issue-9 acceptance case (< 30 s, byte-identical across runs);
* 128 and 1,000 rectangles: synthetic chains of Llama-3.1-8B-like layers, each with
  ``32 / n`` of a layer's weights, FLOPs and KV (the GEMVs' output widths scaled), so that the
  chain still fills one wafer.

Each case is floorplanned 3 times in this process (pricing + CP-SAT at the default
deterministic time limit); the table gives the median wall time, the pricing and solve parts
of that run, the answer's interval and latency, and whether the 3 answers were identical.

Run: ``python benchmarks/bench_floorplan.py [--sizes 34,128,1000] [--time-limit S]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_header  # noqa: E402
from placer.cost_model import annotate_costs  # noqa: E402
from placer.costs import EdgeCost, ModelCost, NodeCost, UnitCost  # noqa: E402
from placer.floorplan import check_floorplan, floorplan_records, solve_floorplan, wafer_problem  # noqa: E402
from placer.floorplan.cpsat import DEFAULT_TIME_LIMIT_S  # noqa: E402
from placer.pipeline import load_graph  # noqa: E402
from placer.targets import load_target  # noqa: E402
from placer.workload import Workload  # noqa: E402
from placer.zoo import load_zoo_config  # noqa: E402


def _scaled(unit: UnitCost, f: float, name: str, layer: int) -> UnitCost:
    def node(c: NodeCost) -> NodeCost:
        return dataclasses.replace(
            c,
            flops=round(c.flops * f),
            weight_read_bytes=round(c.weight_read_bytes * f),
            activation_bytes=round(c.activation_bytes * f),
        )

    shapes = tuple((k, max(1, round(n * f))) for k, n in unit.matmul_shapes)
    params = sum(k * n for k, n in shapes)
    return dataclasses.replace(
        unit,
        name=name,
        layer=layer,
        parameters=params,
        weight_bytes=2 * params,
        kv=tuple(
            dataclasses.replace(c, bytes_per_token=max(2, round(c.bytes_per_token * f))) for c in unit.kv
        ),
        decode=node(unit.decode),
        matmul_shapes=shapes,
        constant_bytes=0,
    )


def synthetic_chain(layer: UnitCost, n: int) -> ModelCost:
    """``n`` scaled copies of ``layer`` in a chain."""
    units = tuple(_scaled(layer, 32 / n, f"layers.{i}", i) for i in range(n))
    edges = tuple(EdgeCost(f"layers.{i}", f"layers.{i + 1}", 8192) for i in range(n - 1))
    return ModelCost(
        f"chain-{n}", units, edges, sum(u.parameters for u in units), sum(u.weight_bytes for u in units), 0
    )


def run(cost: ModelCost, target, time_limit: float) -> tuple[float, float, float, str, object]:  # type: ignore[no-untyped-def]
    names = [u.name for u in cost.units]
    start = time.perf_counter()
    problem = wafer_problem(cost, target, names, context_tokens=8192)
    priced = time.perf_counter()
    fp = solve_floorplan(problem, time_limit_s=time_limit)
    done = time.perf_counter()
    assert check_floorplan(problem, fp.rects) == [], check_floorplan(problem, fp.rects)[:3]
    text = json.dumps(floorplan_records(problem, fp, 0), sort_keys=True)
    return done - start, priced - start, done - priced, text, fp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="34,128,1000")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S)
    args = parser.parse_args()
    print(machine_header())
    target = load_target("wse3")
    llama = annotate_costs(load_graph(load_zoo_config("llama-3.1-8b")), target, Workload())
    print(
        f"wse3 {target.mesh_rows} x {target.mesh_cols} PEs, {target.pe_sram_bytes:,} B per PE; "
        f"time limit {args.time_limit} deterministic s per phase; median of 3 runs"
    )
    print(
        "| rectangles | model | median wall s | pricing s | CP-SAT s | interval cycles | latency cycles "
        "| status | identical runs |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        cost = llama if n == len(llama.units) else synthetic_chain(llama.unit("layers.1"), n)
        label = "llama-3.1-8b" if cost is llama else f"synthetic chain of {n} layers"
        runs = [run(cost, target, args.time_limit) for _ in range(3)]
        walls = [r[0] for r in runs]
        mid = runs[walls.index(statistics.median(walls))]
        fp = mid[4]
        same = len({r[3] for r in runs}) == 1
        print(
            f"| {n} | {label} | {mid[0]:.2f} | {mid[1]:.2f} | {mid[2]:.2f} | {fp.interval_ticks:,} "
            f"| {fp.latency_ticks:,} | {fp.status} | {'yes' if same else 'NO'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
