"""The CP-SAT floorplanner against its rules (property test) and a brute-force optimum on small
grids; infeasible answers name the region, its bytes per PE and the limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placer.errors import InfeasibleError
from placer.floorplan import (
    FloorplanProblem,
    Link,
    Rect,
    Region,
    Shape,
    check_floorplan,
    evaluate,
    solve_floorplan,
)
from placer.floorplan.hint import serpentine_floorplan

FAST = settings(derandomize=True, deadline=None, max_examples=50, database=None)


@st.composite
def problems(draw: st.DrawFn, max_side: int = 4, max_regions: int = 3) -> FloorplanProblem:
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    regions = []
    for i in range(draw(st.integers(1, max_regions))):
        shapes = {}
        for _ in range(draw(st.integers(1, 3))):
            h, w = draw(st.integers(1, rows)), draw(st.integers(1, cols))
            shapes[(h, w)] = Shape(
                h,
                w,
                pe_bytes=draw(st.integers(0, 120)),
                ticks=draw(st.integers(1, 40)),
                colours=draw(st.integers(0, 6)),
            )
        regions.append(Region(f"u{i}", (f"u{i}",), tuple(shapes.values())))
    links = []
    for a in range(len(regions)):
        for b in range(a + 1, len(regions)):
            if draw(st.booleans()):
                links.append(Link(a, b, draw(st.integers(0, 5))))
    return FloorplanProblem(
        rows,
        cols,
        pe_sram_bytes=100,
        routing_colours=6,
        path_colours=draw(st.integers(0, 2)),
        hop_ticks=draw(st.integers(1, 3)),
        regions=tuple(regions),
        links=tuple(links),
    )


def _placements(problem: FloorplanProblem, i: int):
    for s in problem.regions[i].shapes:
        if s.pe_bytes > problem.pe_sram_bytes or s.colours + problem.path_colours > problem.routing_colours:
            continue
        for row in range(problem.rows - s.rows + 1):
            for col in range(problem.cols - s.cols + 1):
                yield Rect(i, row, col, s.rows, s.cols)


def _overlap(a: Rect, b: Rect) -> bool:
    return (
        a.row < b.row + b.rows
        and b.row < a.row + a.rows
        and a.col < b.col + b.cols
        and b.col < a.col + a.cols
    )


def brute_force(problem: FloorplanProblem) -> tuple[int, int] | None:
    """The lexicographically least (interval, latency) over every valid floorplan."""
    best = None

    def extend(rects: list[Rect]) -> None:
        nonlocal best
        i = len(rects)
        if i == len(problem.regions):
            value = evaluate(problem, rects)
            best = value if best is None or value < best else best
            return
        for r in _placements(problem, i):
            if not any(_overlap(r, o) for o in rects):
                extend(rects + [r])

    extend([])
    return best


@FAST
@given(problems())
def test_every_floorplan_is_valid_and_brute_force_confirms_the_optimum(problem):
    optimum = brute_force(problem)
    try:
        fp = solve_floorplan(problem, time_limit_s=2.0)
    except InfeasibleError:
        assert optimum is None
        return
    assert check_floorplan(problem, fp.rects) == []
    assert (fp.interval_ticks, fp.latency_ticks) == evaluate(problem, fp.rects)
    assert optimum is not None
    assert fp.status == "OPTIMAL"
    assert (fp.interval_ticks, fp.latency_ticks) == optimum


@FAST
@given(problems(max_side=12, max_regions=6))
def test_larger_floorplans_obey_every_rule(problem):
    try:
        fp = solve_floorplan(problem, time_limit_s=0.2)
    except InfeasibleError:
        return
    assert check_floorplan(problem, fp.rects) == []
    assert (fp.interval_ticks, fp.latency_ticks) == evaluate(problem, fp.rects)


def _strip_problem(n: int, rows: int = 4, cols: int = 8) -> FloorplanProblem:
    shapes = tuple(Shape(rows // b, w, 10, 100 // w + b, 2) for b in (1, 2) for w in range(1, cols + 1))
    regions = tuple(Region(f"layers.{i}", (f"layers.{i}",), shapes) for i in range(n))
    links = tuple(Link(i, i + 1, 1) for i in range(n - 1))
    return FloorplanProblem(rows, cols, 100, 24, 2, 1, regions, links)


def test_the_strip_hint_is_valid_and_cpsat_never_worse():
    problem = _strip_problem(6)
    hint = serpentine_floorplan(problem)
    assert hint is not None and check_floorplan(problem, hint) == []
    fp = solve_floorplan(problem, time_limit_s=0.2)
    assert (fp.interval_ticks, fp.latency_ticks) <= evaluate(problem, hint)


def test_serpentine_turns_back_on_odd_bands():
    problem = _strip_problem(4, rows=4, cols=4)
    only_half = FloorplanProblem(
        4,
        4,
        100,
        24,
        2,
        1,
        tuple(
            Region(r.name, r.units, tuple(s for s in r.shapes if s.rows == 2 and s.cols == 2))
            for r in problem.regions
        ),
        problem.links,
    )
    assert serpentine_floorplan(only_half) == [
        Rect(0, 0, 0, 2, 2),
        Rect(1, 0, 2, 2, 2),
        Rect(2, 2, 2, 2, 2),
        Rect(3, 2, 0, 2, 2),
    ]


def test_a_unit_that_fits_no_rectangle_is_named_with_its_bytes_and_the_limit():
    big = Region("layers.7", ("layers.7",), (Shape(4, 4, 70_000, 5, 2), Shape(2, 4, 90_000, 6, 2)))
    problem = FloorplanProblem(4, 4, 49_152, 24, 2, 1, (big,))
    with pytest.raises(InfeasibleError, match=r"'layers.7' needs 70,000 B per PE .* 49,152 B per PE") as e:
        solve_floorplan(problem)
    assert e.value.exit_code == 3


def test_too_many_colours_is_infeasible():
    region = Region("head", ("head",), (Shape(4, 4, 10, 5, 23),))
    with pytest.raises(InfeasibleError, match="23 routing colours plus 2"):
        solve_floorplan(FloorplanProblem(4, 4, 100, 24, 2, 1, (region,)))


def test_regions_that_do_not_pack_are_infeasible():
    regions = tuple(Region(f"u{i}", (f"u{i}",), (Shape(3, 3, 10, 5, 0),)) for i in range(2))
    with pytest.raises(InfeasibleError, match="do not pack"):
        solve_floorplan(FloorplanProblem(4, 4, 100, 24, 0, 1, regions))


def test_check_floorplan_reports_each_broken_rule():
    shapes = (Shape(2, 2, 200, 5, 3),)
    problem = FloorplanProblem(3, 3, 100, 4, 2, 1, tuple(Region(n, (n,), shapes) for n in "abc"))
    errors = check_floorplan(problem, [Rect(0, 0, 0, 2, 2), Rect(1, 1, 1, 2, 2), Rect(2, 2, 2, 2, 2)])
    text = "\n".join(errors)
    assert "a: 200 B per PE exceeds 100 B" in text
    assert "3 + 2 path colours exceed 4" in text
    assert "leaves the 3 x 3 grid" in text
    assert "a and b overlap" in text
    assert check_floorplan(problem, [Rect(0, 0, 0, 3, 3), Rect(1, 0, 0, 2, 2), Rect(2, 0, 0, 2, 2)])[
        0
    ].startswith("region 'a': 3 x 3")


def test_latency_is_the_longest_path_with_hops_between_centres():
    shape = Shape(1, 1, 0, 10, 0)
    regions = tuple(Region(n, (n,), (shape,)) for n in "abc")
    # a -> b and a -> c side by side (experts), b, c -> nothing: they overlap in time.
    problem = FloorplanProblem(1, 5, 100, 24, 1, 2, regions, (Link(0, 1, 3), Link(0, 2, 0)))
    rects = [Rect(0, 0, 0, 1, 1), Rect(1, 0, 1, 1, 1), Rect(2, 0, 4, 1, 1)]
    # a ends at 10; b starts at 10 + 3 + 2 x 1 hop = 15; c at 10 + 0 + 2 x 4 = 18, ends at 28.
    assert evaluate(problem, rects) == (10, 28)


def test_beyond_the_cpsat_size_the_strip_layout_is_the_answer():
    from placer.floorplan.cpsat import CPSAT_MAX_REGIONS

    n = CPSAT_MAX_REGIONS + 4
    shapes = tuple(Shape(1, w, 10, 10 // w, 0) for w in (1, 2))
    regions = tuple(Region(f"layers.{i}", (f"layers.{i}",), shapes) for i in range(n))
    problem = FloorplanProblem(20, 20, 100, 24, 2, 1, regions, tuple(Link(i, i + 1, 0) for i in range(n - 1)))
    fp = solve_floorplan(problem)
    assert fp.status == "HINT" and check_floorplan(problem, fp.rects) == []
    assert fp.interval_ticks == 10  # 260 regions of width 1 fill 13 of the 20 one-row bands
