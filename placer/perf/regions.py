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
from typing import TypeVar

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
