"""A wafer laid out in regions (``--layout regions``): its interval and latency, written once.

Under ``regions`` every unit (or group of consecutive units) of a wafer owns a rectangle of
PEs (``placer.floorplan``) and the wafer runs as a spatial pipeline: each region works on a
different micro-batch at once. With ``t_i`` the step of region ``i`` on its rectangle (the
unit formulas of ``placer.perf.unit`` on a target cut down to the rectangle,
``placer.floorplan.pricing``) and, for each data-path link ``i -> j``, ``h_ij`` its streaming
time plus ``cycles_per_hop`` per hop between the two rectangles' centres:

* interval ``I_w = max_i t_i``: a new micro-batch leaves the wafer every ``I_w`` (links stream
  concurrently with compute);
* latency ``L_w = max_j (s_j + t_j)`` with ``s_j = max over links i -> j of s_i + t_i + h_ij``
  (``s = 0`` for a region nothing feeds): one micro-batch's trip through the wafer along the
  longest data path; regions with no path between them (routed experts side by side) overlap.

The floorplanner minimises ``I_w`` then ``L_w``; its CP-SAT model states the same two
formulas as constraints and its answers are re-evaluated here. The across-wafer pipeline then
uses ``L_w`` as the wafer's stage time in the round trip and ``I_w`` in the throughput term
(``predict_performance(..., stage_intervals=...)``; formulas in the package docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from placer.perf.pipeline import StageParts

N = TypeVar("N", int, float)


def spatial_pipeline(steps: Sequence[N], links: Sequence[tuple[int, int, N]]) -> tuple[N, N, list[N]]:
    """``(interval, latency, starts)`` of a wafer laid out in regions.

    Args:
        steps: each region's step (ticks or seconds), in topological order.
        links: ``(src, dst, time)`` with ``src < dst``: the link's streaming time plus its hops.
    """
    start: list[N] = [0 for _ in steps]  # type: ignore[misc]
    for src, dst, t in sorted(links, key=lambda e: (e[0], e[1])):  # src < dst: topological
        start[dst] = max(start[dst], start[src] + steps[src] + t)
    interval = max(steps, default=0)
    latency = max((s + t for s, t in zip(start, steps)), default=0)
    return interval, latency, start


def critical_path(steps: Sequence[N], links: Sequence[tuple[int, int, N]]) -> tuple[list[int], N]:
    """The regions on the longest data path of ``spatial_pipeline`` (first to last) and the
    link time along it: the regions whose steps one micro-batch's latency adds up (routed
    experts side by side contribute one of them). Ties go to the lowest index."""
    _, latency, start = spatial_pipeline(steps, links)
    if not steps:
        return [], latency
    node = min(i for i in range(len(steps)) if start[i] + steps[i] == latency)
    path: list[int] = [node]
    linked = latency - latency  # zero of the steps' type
    while start[node] > 0:
        src, t = min(((a, t) for a, b, t in links if b == node and start[a] + steps[a] + t == start[node]),
                     key=lambda e: e[0])
        linked += t
        node = src
        path.append(node)
    return path[::-1], linked


@dataclass(frozen=True)
class RegionTimes:
    """A wafer laid out in regions, as the pipeline formulas use it (seconds): one decode
    micro-batch's latency and interval; for every prefill chunk size a plan may choose
    (``placer.perf.unit.prefill_chunk_ladder``), one chunk's latency and interval through the
    same spatial pipeline (every region running the chunk on its rectangle); and what the
    decode step waits for, along the longest data path (``critical_path``) and of the slowest
    region (the throughput bound)."""

    latency_s: float
    interval_s: float
    prefill: tuple[tuple[int, float, float], ...]   # (chunk tokens, latency, interval)
    parts: StageParts
    interval_parts: StageParts

    def prefill_at(self, chunk: int) -> tuple[float, float]:
        """``(latency, interval)`` of one prefill chunk of ``chunk`` tokens.

        Raises:
            KeyError: ``chunk`` is not on the wafer's ladder.
        """
        for c, latency, interval in self.prefill:
            if c == chunk:
                return latency, interval
        raise KeyError(f"prefill chunk {chunk} not priced (have {[c for c, *_ in self.prefill]})")
