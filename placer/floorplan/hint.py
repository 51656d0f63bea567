"""The serpentine strip layout: a feasible floorplan built greedily, the CP-SAT model's hint.

The grid is cut into ``b`` horizontal bands of height ``rows // b``. Regions are laid along
the bands in data-path order, left to right in even bands and right to left in odd ones (a
boustrophedon), so consecutive regions touch, including across a band turn. Each region takes
the narrowest of its shapes of the band's height whose time is within a threshold ``T``; a
region that does not fit the rest of a band starts the next one. The smallest feasible ``T``
is found by bisection over the distinct shape times (a larger ``T`` only narrows every
region, so feasibility is monotone), for every band count; the best ``(interval, latency)``
wins, ties to the fewer bands.
"""

from __future__ import annotations

from bisect import bisect_left

from placer.floorplan.problem import FloorplanProblem, Rect, Shape, evaluate


def _usable(problem: FloorplanProblem, shape: Shape) -> bool:
    return (
        shape.pe_bytes <= problem.pe_sram_bytes
        and shape.colours + problem.path_colours <= problem.routing_colours
    )


def band_heights(problem: FloorplanProblem) -> list[int]:
    """Band heights ``rows // b`` that every region has a usable shape of, tallest first."""
    common: set[int] | None = None
    for r in problem.regions:
        heights = {s.rows for s in r.shapes if _usable(problem, s)}
        common = heights if common is None else common & heights
    bands = {problem.rows // b for b in range(1, problem.rows + 1)}
    return sorted((common or set()) & bands, reverse=True)


def _pack(problem: FloorplanProblem, choice: list[Shape], height: int) -> list[Rect] | None:
    bands = problem.rows // height
    band, used = 0, 0
    rects = []
    for i, s in enumerate(choice):
        if used + s.cols > problem.cols:
            band, used = band + 1, 0
            if band >= bands:
                return None
        col = used if band % 2 == 0 else problem.cols - used - s.cols
        rects.append(Rect(i, band * height, col, s.rows, s.cols))
        used += s.cols
    return rects


def _strips(problem: FloorplanProblem, height: int) -> list[Rect] | None:
    options = []  # per region: usable shapes of this height, narrowest first
    for r in problem.regions:
        shapes = sorted(
            (s for s in r.shapes if s.rows == height and _usable(problem, s)), key=lambda s: (s.cols, s.ticks)
        )
        options.append(shapes)

    def choose(limit: int) -> list[Shape] | None:
        out = []
        for shapes in options:
            fit = next((s for s in shapes if s.ticks <= limit), None)
            if fit is None:
                return None
            out.append(fit)
        return out

    levels = sorted({s.ticks for shapes in options for s in shapes})
    lo = max(min(s.ticks for s in shapes) for shapes in options)
    lo_index = bisect_left(levels, lo)
    best = None
    hi_index = len(levels) - 1
    while lo_index <= hi_index:  # smallest level whose choice packs
        mid = (lo_index + hi_index) // 2
        choice = choose(levels[mid])
        rects = _pack(problem, choice, height) if choice is not None else None
        if rects is None:
            lo_index = mid + 1
        else:
            best, hi_index = rects, mid - 1
    return best


def serpentine_floorplan(problem: FloorplanProblem) -> list[Rect] | None:
    """The best strip layout over every band height, or None when none packs."""
    best: tuple[tuple[int, int], list[Rect]] | None = None
    for height in band_heights(problem):
        rects = _strips(problem, height)
        if rects is None:
            continue
        value = evaluate(problem, rects)
        if best is None or value < best[0]:
            best = (value, rects)
    return best[1] if best else None
