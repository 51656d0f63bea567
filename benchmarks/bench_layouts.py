"""Layout benchmark: single-stream tokens/s per user under ``--layout whole`` and ``regions``
(issue 9), with the compile's wall time, the rectangles floorplanned, whether two regions
compiles gave byte-identical plans, and whether every floorplan passes ``check_floorplan``.

Settings as ``bench_predictions``: ``placer compile NAME --target wse3 --concurrency 1
--context 8192 --objective min-latency`` (plus ``--granularity``); published figures from
``../shared/HARDWARE.md``.

Run: ``python benchmarks/bench_layouts.py [llama-3.1-8b:layer gpt-oss-120b:expert ...]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_header  # noqa: E402
from placer.compiler import CompileResult, compile_result  # noqa: E402
from placer.floorplan import check_floorplan  # noqa: E402
from placer.options import CompileOptions  # noqa: E402

PUBLISHED = {"llama-3.1-8b": "~1,800-2,300", "gpt-oss-120b": "~3,000", "llama-4-maverick": ""}
DEFAULT = ("llama-3.1-8b:layer", "gpt-oss-120b:expert", "llama-4-maverick:expert")


def _compile(model: str, granularity: str, layout: str) -> tuple[float, CompileResult]:
    opts = CompileOptions.from_flat(target="wse3", concurrency=1, context=8192, objective="min-latency",
                                    granularity=granularity, layout=layout, compare=False)
    start = time.perf_counter()
    result = compile_result(model, opts)
    return time.perf_counter() - start, result


def main() -> None:
    cases = sys.argv[1:] or DEFAULT
    print(machine_header())
    print("| model | granularity | wafers whole / regions | whole tok/s | whole s | regions tok/s "
          "| regions s | SRAM kept free (regions) | rectangles | regions interval us (max) "
          "| identical | valid "
          "| published tok/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for case in cases:
        model, _, granularity = case.partition(":")
        granularity = granularity or "layer"
        whole_s, whole = _compile(model, granularity, "whole")
        runs = [_compile(model, granularity, "regions") for _ in range(2)]
        (regions_s, regions), (_, again) = runs
        plan = regions.plan
        identical = plan.to_json() == again.plan.to_json()
        valid = all(not check_floorplan(x.floorplan.problem, x.floorplan.floorplan.rects)
                    for x in regions.layouts if x.floorplan is not None)
        interval = max(w.interval_seconds or 0.0 for w in plan.wafers)
        free = 1 - regions.problem.capacity / plan.target.sram_bytes
        print(f"| {model} | {granularity} | {len(whole.plan.wafers)} / {len(plan.wafers)} | "
              f"{whole.plan.performance.tokens_per_s_per_user:,.0f} | {whole_s:.1f} | "
              f"{plan.performance.tokens_per_s_per_user:,.0f} | {regions_s:.1f} | {free:.0%} | "
              f"{len(plan.floorplan)} | "
              f"{interval * 1e6:.2f} | {'yes' if identical else 'NO'} | {'yes' if valid else 'NO'} | "
              f"{PUBLISHED.get(model, '')} |", flush=True)


if __name__ == "__main__":
    main()
