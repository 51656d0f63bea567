"""Per-wafer layouts of a partitioned model: ``whole``, ``regions`` or ``auto``.

* ``whole``: every unit of the wafer spread over the full PE grid, run one after the other;
  one token of one sequence takes ``t_whole = sum_u t_u(full grid)``, and the wafer takes a new
  token only when it is done: latency = interval = ``t_whole``.
* ``regions``: each unit on its own rectangle (``floorplan_wafer``); the wafer is a spatial
  pipeline: latency = the floorplan's longest path, interval = its slowest region.
* ``auto``: per wafer, ``regions`` when its time for the plan's ``S`` resident sequences to
  pass, ``max(latency, S x interval)``, is below ``whole``'s ``S x t_whole``; ties and
  wafers that cannot be floorplanned stay ``whole``.

The pipeline formulas of ``placer.perf`` then use each wafer's latency in the round trip and
its interval in the throughput term (``predict_performance(..., stage_intervals=...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from placer.costs import ModelCost, UnitCost
from placer.errors import InfeasibleError
from placer.floorplan import (
    WaferFloorplan,
    floorplan_parts,
    floorplan_records,
    floorplan_rects,
    floorplan_wafer,
    placed_seconds,
)
from placer.floorplan.cpsat import DEFAULT_TIME_LIMIT_S
from placer.perf.regions import RegionTimes
from placer.perf.unit import prefill_chunk_ladder
from placer.targets import Target

LAYOUTS = ("whole", "regions", "auto")


@dataclass(frozen=True)
class WaferLayout:
    """One wafer's chosen layout and its two times (seconds, one token of one sequence)."""

    layout: str  # "whole" or "regions"
    latency_s: float  # through the wafer
    interval_s: float  # between tokens leaving the wafer when it is full
    floorplan: WaferFloorplan | None
    times: RegionTimes | None = None  # what the pipeline formulas use; None on a whole wafer


def layout_wafers(
    cost: ModelCost,
    target: Target,
    groups: Sequence[Sequence[str]],
    *,
    layout: str,
    context_tokens: int,
    resident: int,
    whole_seconds: Callable[[UnitCost], float],
    batch: int = 1,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    seed: int = 0,
    prompt_tokens: int = 1,
    memo: dict[tuple[object, ...], int] | None = None,
) -> list[WaferLayout]:
    """The layout of each wafer (``groups[w]``: its units in data-path order).

    Args:
        whole_seconds: a unit's decode seconds on the full grid (the performance model's).
        resident: sequences whose KV every wafer holds: each rectangle keeps the KV tiles of
            all of them (several micro-batches of ``batch`` are in flight), while a step's time
            and buffers are those of one micro-batch.
        prompt_tokens: the prompt a regions wafer's prefill figures are timed for, at every
            chunk of ``perf.unit.prefill_chunk_ladder`` (the plan picks one, ``place``).
        memo: region ticks already priced (``placed_seconds``), shared across calls.

    Raises:
        InfeasibleError: with ``layout="regions"``, a wafer's units cannot be floorplanned.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {LAYOUTS}")
    by_name = {u.name: u for u in cost.units}
    memo = {} if memo is None else memo  # prefill region ticks, shared by the wafers
    out = []
    for w, names in enumerate(groups):
        whole = sum(whole_seconds(by_name[n]) for n in names)
        chosen = WaferLayout("whole", whole, whole, None)
        if layout != "whole":
            try:
                wf = floorplan_wafer(
                    cost,
                    target,
                    names,
                    context_tokens=context_tokens,
                    batch=batch,
                    time_limit_s=time_limit_s,
                    seed=seed,
                    kv_sequences=max(batch, resident),
                )
            except InfeasibleError as e:
                if layout == "regions":
                    raise type(e)(f"wafer {w}: {e}") from None  # keeps PackingError
                wf = None
            if wf is not None:
                rects = floorplan_rects(wf)
                prefill = tuple(
                    (chunk, *placed_seconds(cost, target, rects, context_tokens=context_tokens, batch=batch,
                                            prefill=(chunk, max(1, prompt_tokens)), memo=memo))
                    for chunk in prefill_chunk_ladder(target, prompt_tokens))
                parts, interval_parts = floorplan_parts(cost, target, wf, batch)
                latency = wf.floorplan.latency_ticks / target.clock_hz
                interval = wf.floorplan.interval_ticks / target.clock_hz
                regions = WaferLayout("regions", latency, interval, wf,
                                      RegionTimes(latency, interval, prefill, parts, interval_parts))
                s = max(1, resident)
                if layout == "regions" or max(regions.latency_s, s * regions.interval_s) < s * whole:
                    chosen = regions
        out.append(chosen)
    return out


def layout_name(layouts: Sequence[WaferLayout]) -> str:
    """The plan's ``layout``: ``whole`` or ``regions`` when every wafer agrees, else ``mixed``."""
    kinds = {x.layout for x in layouts}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def layout_records(layouts: Sequence[WaferLayout]) -> list[dict[str, object]]:
    """The plan's ``floorplan``: every rectangle of every ``regions`` wafer."""
    out: list[dict[str, object]] = []
    for w, x in enumerate(layouts):
        if x.floorplan is not None:
            out.extend(floorplan_records(x.floorplan.problem, x.floorplan.floorplan, w))
    return out
