"""On-wafer floorplanning: each unit (or group of consecutive units) of a wafer on its own
rectangle of PEs, the wafer run as a spatial pipeline.

``floorplan_wafer(cost, target, units, ...)`` prices candidate rectangles (``pricing``), builds
a ``FloorplanProblem`` (``problem``) and solves it with CP-SAT (``cpsat``) from a serpentine
strip hint (``hint``); ``floorplan_records`` gives the plan's ``floorplan`` entries and
``floorplan_svg`` (``svg``) draws one wafer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from placer import perf
from placer.costs import ModelCost, UnitCost
from placer.floorplan.colours import path_colours
from placer.floorplan.cpsat import DEFAULT_TIME_LIMIT_S, solve_floorplan
from placer.floorplan.pricing import (
    TimeOf,
    candidate_shapes,
    region_target,
    region_ticks,
    unit_prefill_seconds_on_rectangle,
    unit_seconds_on_rectangle,
)
from placer.floorplan.problem import (
    Floorplan,
    FloorplanProblem,
    Link,
    Rect,
    Region,
    Shape,
    check_floorplan,
    evaluate,
    link_ticks,
    shape_of,
)
from placer.floorplan.svg import floorplan_svg
from placer.ir.mesh_physics import stream_cycles
from placer.perf.regions import critical_path
from placer.targets import Target

__all__ = [
    "Floorplan",
    "FloorplanProblem",
    "Link",
    "Rect",
    "Region",
    "Shape",
    "WaferFloorplan",
    "check_floorplan",
    "evaluate",
    "floorplan_parts",
    "floorplan_records",
    "floorplan_rects",
    "floorplan_svg",
    "floorplan_wafer",
    "placed_seconds",
    "solve_floorplan",
    "wafer_problem",
]


@dataclass(frozen=True)
class WaferFloorplan:
    """One wafer's problem and its answer."""

    problem: FloorplanProblem
    floorplan: Floorplan


def _anonymous(unit: UnitCost) -> UnitCost:
    """The unit without its names (identical layers then compare equal and are priced once)."""
    return dataclasses.replace(
        unit, name="", layer=0, kv=tuple(dataclasses.replace(k, name="") for k in unit.kv)
    )


def wafer_problem(
    cost: ModelCost,
    target: Target,
    units: Sequence[str],
    *,
    context_tokens: int,
    batch: int = 1,
    group: int = 1,
    max_widths: int = 24,
    time_of: TimeOf = unit_seconds_on_rectangle,
    kv_sequences: int | None = None,
) -> FloorplanProblem:
    """The floorplanning problem of the wafer holding ``units`` (in data-path order).

    Args:
        batch: sequences per micro-batch (a step's time and buffers).
        kv_sequences: sequences whose KV the wafer holds (every resident one; default
            ``batch``): with several micro-batches in flight each keeps its KV here.
        group: consecutive units per region (they share a rectangle and run in turn).
        max_widths: widths offered per band height (see ``pricing.candidate_shapes``).
        time_of: seconds of a unit on a rectangle, ``(unit, target, rows, cols, batch)``.
    """
    by_name = {u.name: u for u in cost.units}
    names = list(units)
    chunks = [names[i : i + max(1, group)] for i in range(0, len(names), max(1, group))]
    region_of = {name: i for i, chunk in enumerate(chunks) for name in chunk}
    regions = []
    priced: dict[tuple[object, ...], tuple[Shape, ...]] = {}  # identical layers are priced once
    for chunk in chunks:
        members = [by_name[n] for n in chunk]
        label = chunk[0] if len(chunk) == 1 else f"{chunk[0]}..{chunk[-1]}"
        key = tuple(_anonymous(u) for u in members)
        if key not in priced:
            priced[key] = candidate_shapes(
                members, target, context_tokens, batch, len(chunks), max_widths, time_of,
                kv_sequences=kv_sequences,
            )
        regions.append(Region(label, tuple(chunk), priced[key]))
    links = _links(cost, target, region_of, batch)
    return FloorplanProblem(
        target.mesh_rows,
        target.mesh_cols,
        target.pe_sram_bytes,
        target.routing_colors,
        path_colours((e.src, e.dst) for e in links),
        target.cycles_per_hop,
        tuple(regions),
        links,
    )


def _links(cost: ModelCost, target: Target, region_of: dict[str, int], batch: int) -> tuple[Link, ...]:
    """The data path between regions: per pair, the unit-DAG edges' bytes of ``batch``
    sequences, streamed."""
    flows: dict[tuple[int, int], int] = {}
    for e in cost.edges:
        a, b = region_of.get(e.src), region_of.get(e.dst)
        if a is not None and b is not None and a != b:
            key = (min(a, b), max(a, b))
            flows[key] = flows.get(key, 0) + e.bytes_per_token
    return tuple(
        Link(a, b, stream_cycles(nbytes * batch, target.link_bytes_per_cycle))
        for (a, b), nbytes in sorted(flows.items())
    )


def placed_seconds(
    cost: ModelCost,
    target: Target,
    rects: Sequence[tuple[Sequence[str], int, int, int, int]],
    *,
    context_tokens: int,
    batch: int = 1,
    prefill: tuple[int, int] | None = None,
    memo: dict[tuple[object, ...], int] | None = None,
) -> tuple[float, float]:
    """``(latency, interval)`` seconds of one micro-batch through a wafer laid out as given.

    Args:
        rects: per region, in data-path order, ``(units, row, col, rows, cols)`` (a plan's
            ``floorplan`` rectangles); each region is priced on its rectangle alone
            (``pricing.region_ticks``, as ``price_shape`` prices it) and the answer evaluated by
            ``evaluate`` (``placer.perf.regions.spatial_pipeline``), as the floorplanner does.
        prefill: ``(chunk, prompt)``: time one prefill chunk of ``chunk`` prompt tokens instead
            of a decode step (each region runs its units' chunk on its rectangle,
            ``pricing.unit_prefill_seconds_on_rectangle``, and the links stream ``chunk``
            tokens' activations), so a regions wafer prefills as the same spatial pipeline.
        memo: region ticks already priced, shared across calls (identical layers on equal
            rectangles are priced once).
    """
    by_name = {u.name: u for u in cost.units}
    region_of = {name: i for i, (units, *_) in enumerate(rects) for name in units}
    time_of: TimeOf = unit_seconds_on_rectangle
    tokens = batch
    if prefill is not None:
        chunk, prompt = prefill
        tokens = chunk

        def time_of(u: UnitCost, t: Target, rows: int, cols: int, _batch: int) -> float:
            return unit_prefill_seconds_on_rectangle(u, t, rows, cols, chunk, prompt)

    memo = {} if memo is None else memo
    regions = []
    for units, _, _, rows, cols in rects:
        members = [by_name[n] for n in units]
        key = (tuple(_anonymous(u) for u in members), rows, cols, batch, prefill)
        if key not in memo:
            memo[key] = region_ticks(members, target, rows, cols, batch, time_of)
        regions.append(Region(units[0], tuple(units), (Shape(rows, cols, 0, memo[key], 0),)))
    problem = FloorplanProblem(target.mesh_rows, target.mesh_cols, target.pe_sram_bytes,
                               target.routing_colors, 0, target.cycles_per_hop, tuple(regions),
                               _links(cost, target, region_of, tokens))
    interval, latency = evaluate(problem, [Rect(i, r, c, h, w) for i, (_, r, c, h, w) in enumerate(rects)])
    return latency / target.clock_hz, interval / target.clock_hz


def floorplan_rects(wf: WaferFloorplan) -> list[tuple[tuple[str, ...], int, int, int, int]]:
    """``placed_seconds``'s rectangles of a floorplan: per region, ``(units, row, col, rows, cols)``."""
    return [(wf.problem.regions[r.region].units, r.row, r.col, r.rows, r.cols) for r in wf.floorplan.rects]


def floorplan_parts(cost: ModelCost, target: Target, wf: WaferFloorplan,
                    batch: int = 1) -> tuple[perf.StageParts, perf.StageParts]:
    """What a floorplanned wafer's decode step waits for (``placer.perf.StageParts``, seconds),
    each unit priced on its rectangle: along the longest data path (the regions one micro-batch's
    latency adds up, the links between them as fabric), and of the slowest region (what sets
    the interval; the first on ties)."""
    by_name = {u.name: u for u in cost.units}
    per = [sum((perf.unit_decode_parts(by_name[n], region_target(target, r.rows, r.cols), batch)
                for n in wf.problem.regions[r.region].units), perf.StageParts())
           for r in wf.floorplan.rects]
    ticks = [shape_of(wf.problem, r).ticks for r in wf.floorplan.rects]
    links = [(e.src, e.dst, link_ticks(wf.problem, e, wf.floorplan.rects)) for e in wf.problem.links]
    path, linked = critical_path(ticks, links)
    along = sum((per[i] for i in path), perf.StageParts(fabric=linked / target.clock_hz))
    slowest = max(range(len(per)), key=lambda i: (ticks[i], -i))
    return along, per[slowest]


def floorplan_wafer(
    cost: ModelCost,
    target: Target,
    units: Sequence[str],
    *,
    context_tokens: int,
    batch: int = 1,
    group: int = 1,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    seed: int = 0,
    max_widths: int = 24,
    time_of: TimeOf = unit_seconds_on_rectangle,
    kv_sequences: int | None = None,
) -> WaferFloorplan:
    """Floorplan one wafer (see ``wafer_problem`` and ``cpsat.solve_floorplan``).

    Raises:
        InfeasibleError: a unit fits no rectangle (named, with its bytes per PE and the
            target's limit), or the units do not pack on the grid.
    """
    problem = wafer_problem(
        cost,
        target,
        units,
        context_tokens=context_tokens,
        batch=batch,
        group=group,
        max_widths=max_widths,
        time_of=time_of,
        kv_sequences=kv_sequences,
    )
    return WaferFloorplan(problem, solve_floorplan(problem, time_limit_s=time_limit_s, seed=seed))


def floorplan_records(problem: FloorplanProblem, floorplan: Floorplan, wafer: int) -> list[dict[str, object]]:
    """The plan's ``floorplan`` entries: one per unit, ``{"unit", "wafer", "row", "col", "rows",
    "cols"}`` (top-left corner, height, width in PEs); units of one region share its rectangle."""
    return [
        {"unit": unit, "wafer": wafer, "row": r.row, "col": r.col, "rows": r.rows, "cols": r.cols}
        for r in floorplan.rects
        for unit in problem.regions[r.region].units
    ]
