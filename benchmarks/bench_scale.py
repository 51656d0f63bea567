"""Benchmark: a config with N decoder layers read, grouped and costed (issue 13, bounded work).

Run: ``python benchmarks/bench_scale.py [--timeout 900] [N ...]`` (default N: 1,000 4,000 20,000
100,000). Each N is one fresh Python process, with ``PLACER_MAX_LAYERS=N`` (the cap of 4,096
layers raised) so that the work itself is timed: ``load_model`` (config -> IR -> KV caches ->
structure -> units -> verify) and ``annotate_costs``, wall and CPU seconds, peak RSS (MB = 1e6
bytes). A size that outlasts ``--timeout`` wall seconds is reported as such. The model is a small
Llama (hidden 64, 4 heads, 16 nodes per layer), so the numbers are the per-layer overhead of
placer's passes, not of big tensors. Last, ``placer inspect`` of the 100,000-layer config at the
default cap: the exit code and the seconds to refuse it. Prints the machine and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine_header  # noqa: E402  (benchmarks/ is not a package)


def config(layers: int) -> dict[str, object]:
    return dict(model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                num_attention_heads=4, num_key_value_heads=2, vocab_size=256)


def run_one(layers: int) -> dict[str, float]:
    """Time the phases in this process (the cap raised to ``layers``)."""
    import resource

    import placer.frontends.hf_reader as reader
    from placer.cost_model import annotate_costs
    from placer.pipeline import load_model
    from placer.targets import load_target
    from placer.workload import Workload

    reader.MAX_LAYERS = max(reader.MAX_LAYERS, layers)  # also for code without PLACER_MAX_LAYERS
    out: dict[str, float] = {}
    target = load_target("wse3")
    w, c = time.perf_counter(), time.process_time()
    loaded = load_model(config(layers))
    out["load_wall_s"], out["load_cpu_s"] = time.perf_counter() - w, time.process_time() - c
    w, c = time.perf_counter(), time.process_time()
    structure = getattr(loaded, "structure", None)  # as placer compile (absent before issue 13)
    cost = annotate_costs(loaded.graph, target, Workload(), *([structure] if structure else []))
    out["cost_wall_s"], out["cost_cpu_s"] = time.perf_counter() - w, time.process_time() - c
    out["nodes"], out["units"] = len(loaded.graph.nodes), len(cost.units)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return out


def measure(layers: int, timeout: float) -> dict[str, float] | None:
    """One fresh process; None when it outlasts ``timeout`` seconds."""
    env = dict(os.environ, PLACER_MAX_LAYERS=str(layers))
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", str(layers)], capture_output=True,
                              text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"{layers} layers: child failed: {proc.stderr.strip()[-500:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def refusal(layers: int) -> tuple[int, float, str]:
    """``placer inspect`` of a ``layers``-layer config at the default cap: exit, seconds, stderr."""
    env = {k: v for k, v in os.environ.items() if k != "PLACER_MAX_LAYERS"}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(config(layers), f)
        t = time.perf_counter()
        proc = subprocess.run(["placer", "inspect", path], capture_output=True, text=True, env=env)
        return proc.returncode, time.perf_counter() - t, proc.stderr.strip().replace(path, "config.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layers", nargs="*", type=int)
    parser.add_argument("--timeout", type=float, default=900.0, help="wall seconds per size")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.layers[0])))
        return
    print(machine_header())
    print("# small Llama config, layer granularity, one fresh process per size; seconds wall (CPU)")
    print("| layers | nodes | units | load s | cost s | total s | s per 1,000 layers | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for layers in args.layers or [1_000, 4_000, 20_000, 100_000]:
        m = measure(layers, args.timeout)
        if m is None:
            print(f"| {layers:,} | | | | | > {args.timeout:.0f} (timed out) | | |", flush=True)
            continue
        total = m["load_wall_s"] + m["cost_wall_s"]
        total_cpu = m["load_cpu_s"] + m["cost_cpu_s"]
        print(f"| {layers:,} | {int(m['nodes']):,} | {int(m['units']):,} | "
              f"{m['load_wall_s']:.1f} ({m['load_cpu_s']:.1f}) | "
              f"{m['cost_wall_s']:.1f} ({m['cost_cpu_s']:.1f}) | "
              f"{total:.1f} ({total_cpu:.1f}) | {1000 * total_cpu / layers:.2f} | "
              f"{m['peak_rss_bytes'] / 1e6:,.0f} |", flush=True)
    code, seconds, err = refusal(100_000)
    print(f"# placer inspect of 100,000 layers at the default cap: exit {code} after {seconds:.2f} s: {err}")


if __name__ == "__main__":
    main()
