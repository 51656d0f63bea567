"""Benchmark: the full-size Llama-3.1-405B from its config.json: build time and peak RSS.

Run: ``python benchmarks/bench_config.py [ZOO_NAME ...]`` (default llama-3.1-405b). Prints, per
model, the seconds to read the config and build the IR (``from_config``), to load it through the
pipeline (KV caches, units) and, when the solver is installed, to compile it for wse3 with
``--objective min-wafers``; and the process's peak RSS (MB = 1e6 bytes). Target for the 405B:
build + compile under 30 s, under 2 GB.
"""

from __future__ import annotations

import resource
import sys
import time


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # ru_maxrss is KiB on Linux


def bench(name: str) -> None:
    from placer.frontends.hf_config import from_config
    from placer.zoo import load_zoo_config

    t0 = time.perf_counter()
    graph = from_config(load_zoo_config(name), name=name)
    t_build = time.perf_counter() - t0
    print(f"{name}: from_config {t_build:.2f} s, {len(graph.nodes):,} nodes, "
          f"{graph.parameter_count():,} parameters, peak RSS {_peak_rss_mb():.0f} MB", flush=True)
    t0 = time.perf_counter()
    from placer.pipeline import load_graph

    grouped = load_graph(name)
    t_load = time.perf_counter() - t0
    print(f"{name}: load_graph (config -> grouped graph) {t_load:.2f} s, {len(grouped.units)} units, "
          f"peak RSS {_peak_rss_mb():.0f} MB", flush=True)
    try:
        from click.testing import CliRunner

        from placer.cli.main import cli
    except ImportError:
        return
    if "compile" not in cli.commands:
        print(f"{name}: compile not available yet")
        return
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = CliRunner().invoke(cli, ["compile", name, "--target", "wse3", "--objective", "min-wafers",
                                          "-o", out])
        t_compile = time.perf_counter() - t0
    status = "ok" if result.exit_code == 0 else f"exit {result.exit_code}: {result.output.strip()[:200]}"
    print(f"{name}: placer compile (build included) {t_compile:.2f} s ({status}), "
          f"peak RSS {_peak_rss_mb():.0f} MB", flush=True)


if __name__ == "__main__":
    for model in sys.argv[1:] or ["llama-3.1-405b"]:
        bench(model)
