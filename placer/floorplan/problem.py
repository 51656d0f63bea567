"""The floorplanning problem of one wafer, its answer, and the checks every answer must pass.

A wafer is a ``rows x cols`` grid of PEs. Each region (one unit, or a group of consecutive
units that share a rectangle and run one after the other in it) gets one axis-aligned
rectangle, chosen among its candidate ``Shape``s; the caller prices each shape (per-PE SRAM
bytes, time in ticks, routing colours), so this module owns no time or memory formula.

Ticks are clock cycles. A ``Link`` is data flowing from one region to a later one per token;
its time is ``link.ticks`` (streaming, independent of the placement) plus ``hop_ticks`` per
hop of the Manhattan distance between the two rectangles' centres, where a centre is
``(row + rows // 2, col + cols // 2)``.

The two objectives, in lexicographic order:

The formulas are ``placer.perf.regions``'s (the one place); in ticks here:

* interval: ``max_i ticks_i`` over the regions. The wafer runs as a spatial pipeline: every
  region works on a different token (or micro-batch) at once, so a new token leaves the wafer
  every interval (links stream concurrently with compute and are not part of it).
* latency: the longest path through the regions' DAG, ``start_v >= start_u + ticks_u +
  link_ticks(u, v)`` for every link, ``latency = max_v start_v + ticks_v``: one token's trip
  through the wafer. Regions with no path between them (routed experts side by side) overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

from placer.perf.regions import spatial_pipeline


@dataclass(frozen=True)
class Shape:
    """One candidate rectangle of a region, priced by the caller."""

    rows: int
    cols: int
    pe_bytes: int  # SRAM bytes on the busiest PE (tiles divided with ceil)
    ticks: int  # decode step of the region's units on this rectangle, in clock cycles
    colours: int  # routing colours the region's own collectives use on this rectangle


@dataclass(frozen=True)
class Region:
    """A rectangle to place: its name, the units it holds (in data-path order) and its shapes."""

    name: str
    units: tuple[str, ...]
    shapes: tuple[Shape, ...]


@dataclass(frozen=True)
class Link:
    """Activations from region ``src`` to region ``dst`` (indices, ``src < dst``)."""

    src: int
    dst: int
    ticks: int = 0  # streaming cycles, independent of the placement


@dataclass(frozen=True)
class FloorplanProblem:
    """One wafer's PE grid, its limits, and the regions in topological order."""

    rows: int
    cols: int
    pe_sram_bytes: int
    routing_colours: int
    path_colours: int  # colours the links between regions use, on every PE (see ``colours``)
    hop_ticks: int  # cycles per hop between neighbouring PEs
    regions: tuple[Region, ...]
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Rect:
    """Where region ``region`` (index) sits: top-left corner, height and width in PEs."""

    region: int
    row: int
    col: int
    rows: int
    cols: int

    @property
    def centre(self) -> tuple[int, int]:
        return self.row + self.rows // 2, self.col + self.cols // 2


@dataclass(frozen=True)
class Floorplan:
    """An answer: one rectangle per region (in region order) and its two objective values."""

    rects: tuple[Rect, ...]
    interval_ticks: int
    latency_ticks: int
    status: str  # OPTIMAL (both phases proved), FEASIBLE, or HINT (the strip layout as is)


def shape_of(problem: FloorplanProblem, rect: Rect) -> Shape:
    """The region's candidate shape that ``rect`` uses.

    Raises:
        ValueError: ``rect`` has a size that is not one of the region's candidates.
    """
    for s in problem.regions[rect.region].shapes:
        if (s.rows, s.cols) == (rect.rows, rect.cols):
            return s
    raise ValueError(
        f"region {problem.regions[rect.region].name!r}: {rect.rows} x {rect.cols} "
        "is not one of its candidate shapes"
    )


def link_ticks(problem: FloorplanProblem, link: Link, rects: tuple[Rect, ...] | list[Rect]) -> int:
    """Cycles of one link on this floorplan: streaming plus hops between the centres."""
    (ar, ac), (br, bc) = rects[link.src].centre, rects[link.dst].centre
    return link.ticks + problem.hop_ticks * (abs(ar - br) + abs(ac - bc))


def evaluate(problem: FloorplanProblem, rects: tuple[Rect, ...] | list[Rect]) -> tuple[int, int]:
    """``(interval, latency)`` in ticks of a floorplan (``placer.perf.regions.spatial_pipeline``)."""
    interval, latency, _ = spatial_pipeline(
        [shape_of(problem, r).ticks for r in rects],
        [(e.src, e.dst, link_ticks(problem, e, rects)) for e in problem.links],
    )
    return interval, latency


def check_floorplan(problem: FloorplanProblem, rects: tuple[Rect, ...] | list[Rect]) -> list[str]:
    """Every violated rule of a floorplan, one line each (empty when valid): one rectangle
    per region with a candidate size, inside the grid, no two overlapping, per-PE bytes within
    the PE's SRAM, and the region's colours plus the path colours within the target's count."""
    errors: list[str] = []
    if [r.region for r in rects] != list(range(len(problem.regions))):
        return [f"expected one rectangle per region in order, got regions {[r.region for r in rects]}"]
    for r in rects:
        name = problem.regions[r.region].name
        try:
            s = shape_of(problem, r)
        except ValueError as e:
            errors.append(str(e))
            continue
        if r.row < 0 or r.col < 0 or r.row + r.rows > problem.rows or r.col + r.cols > problem.cols:
            errors.append(
                f"{name}: rectangle ({r.row}, {r.col}) {r.rows} x {r.cols} leaves the "
                f"{problem.rows} x {problem.cols} grid"
            )
        if s.pe_bytes > problem.pe_sram_bytes:
            errors.append(f"{name}: {s.pe_bytes} B per PE exceeds {problem.pe_sram_bytes} B")
        if s.colours + problem.path_colours > problem.routing_colours:
            errors.append(
                f"{name}: {s.colours} + {problem.path_colours} path colours exceed {problem.routing_colours}"
            )
    # Sweep by row so that the overlap check is not quadratic on 1,000 rectangles.
    order = sorted(rects, key=lambda r: (r.row, r.col))
    active: list[Rect] = []
    for r in order:
        active = [a for a in active if a.row + a.rows > r.row]
        for a in active:
            if a.col < r.col + r.cols and r.col < a.col + a.cols:
                errors.append(
                    f"{problem.regions[a.region].name} and {problem.regions[r.region].name} overlap"
                )
        active.append(r)
    return errors
