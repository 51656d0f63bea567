"""CP-SAT floorplanner: one rectangle per region, no two overlapping, lexicographic objective.

Per region ``i``: one Boolean per usable shape (``ExactlyOne``), height ``h_i``, width
``w_i`` and ticks ``t_i`` as the chosen shape's, a top-left corner ``(y_i, x_i)`` and the
intervals ``[x_i, x_i + w_i)``, ``[y_i, y_i + h_i)`` in one ``AddNoOverlap2D``. A shape is
usable when its per-PE bytes fit the PE's SRAM and its colours plus the path colours fit
the target's count (both hard constraints, enforced by leaving the others out). A redundant
``sum area_i <= rows x cols`` helps the search prove the interval.

Phase 1 minimises the interval ``T >= t_i``. Phase 2 fixes ``T <= T*`` and minimises the
latency: start times ``s_v >= s_u + t_u + link.ticks + hop x (d_r + d_c)`` with ``d_r, d_c``
at least the absolute row and column distance of the two centres, ``L >= s_i + t_i``. The
reported values are recomputed exactly by ``problem.evaluate``.

Deterministic: the partitioner's settings (``placer.solver.cpsat.solver_parameters``: fixed
seed, deterministic time only, the presolve workaround) with a single worker (see
``floorplan_solver_parameters``), and each phase starts from a hint on every variable: the
serpentine strip layout, then phase 1's answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ortools.sat.python import cp_model

from placer.errors import InfeasibleError
from placer.floorplan.hint import serpentine_floorplan
from placer.floorplan.problem import Floorplan, FloorplanProblem, Rect, Shape, evaluate, link_ticks
from placer.perf.regions import spatial_pipeline
from placer.solver.cpsat import solver_parameters

# Deterministic seconds per phase. NoOverlap2D's propagation is cheap in CP-SAT's
# deterministic clock and dear on the wall (about 20 wall seconds per deterministic second for
# Llama-3.1-8B's 34 regions on a loaded 2-core machine), and the strip hint is within a few
# percent of the bounds.
DEFAULT_TIME_LIMIT_S = 0.2


class PackingError(InfeasibleError):
    """Every region fits some rectangle, but no packing of them all on the grid was found (the
    compiler may then re-partition with more SRAM kept free; see ``placer.compiler``)."""
# Above this many regions CP-SAT's presolve alone (symmetry detection, probing) outlasts any
# useful limit (1,000 regions: 14 s of wall for 0.2 deterministic s, then no search at all;
# with those two off, 173 s for phase 1 without improving the hint): the strip layout is the
# answer (status HINT).
CPSAT_MAX_REGIONS = 256


@dataclass
class _Vars:
    lits: list[list[cp_model.IntVar]]
    shapes: list[list[Shape]]
    x: list[cp_model.IntVar]
    y: list[cp_model.IntVar]
    ticks: list[cp_model.LinearExpr | int]  # a sum of shape literals (the int 0 of an empty sum)
    interval: cp_model.IntVar
    sizes: list[tuple[cp_model.IntVar, cp_model.IntVar, cp_model.IntVar, cp_model.IntVar]]  # h, w, ye, xe
    start: list[cp_model.IntVar] | None = None
    distances: list[tuple[cp_model.IntVar, cp_model.IntVar]] | None = None  # per link: rows, cols
    latency: cp_model.IntVar | None = None


def usable_shapes(problem: FloorplanProblem) -> list[list[Shape]]:
    """Each region's shapes within the PE's SRAM and the colour budget, in a fixed order.

    Raises:
        InfeasibleError: a region has none; names it, its fewest bytes per PE and the limit.
    """
    out = []
    for region in problem.regions:
        ok = [
            s
            for s in region.shapes
            if s.pe_bytes <= problem.pe_sram_bytes
            and s.colours + problem.path_colours <= problem.routing_colours
        ]
        if not ok:
            if not region.shapes:
                raise InfeasibleError(
                    f"region {region.name!r} has no candidate rectangle "
                    f"on the {problem.rows} x {problem.cols} PE grid"
                )
            least = min(region.shapes, key=lambda s: (s.pe_bytes, s.rows * s.cols))
            if least.pe_bytes > problem.pe_sram_bytes:
                raise InfeasibleError(
                    f"unit {region.name!r} needs {least.pe_bytes:,} B per PE even on "
                    f"{least.rows} x {least.cols} PEs; the target has {problem.pe_sram_bytes:,} B per PE "
                    "(use more wafers, a smaller dtype, or a shorter context)"
                )
            colours = min(s.colours for s in region.shapes)
            raise InfeasibleError(
                f"unit {region.name!r} needs {colours} routing colours plus {problem.path_colours} for "
                f"the data path; the target has {problem.routing_colours}"
            )
        out.append(sorted(set(ok), key=lambda s: (s.rows, s.cols, s.ticks, s.pe_bytes, s.colours)))
    return out


def _build(problem: FloorplanProblem, shapes: list[list[Shape]], model: cp_model.CpModel) -> _Vars:
    R, C = problem.rows, problem.cols
    lits, xs, ys, sizes = [], [], [], []
    ticks: list[cp_model.LinearExpr | int] = []
    x_iv, y_iv, areas = [], [], []
    for i, options in enumerate(shapes):
        row = [model.new_bool_var(f"s{i}_{k}") for k in range(len(options))]
        model.add_exactly_one(row)
        h = model.new_int_var_from_domain(
            cp_model.Domain.from_values(sorted({s.rows for s in options})), f"h{i}")
        w = model.new_int_var_from_domain(
            cp_model.Domain.from_values(sorted({s.cols for s in options})), f"w{i}")
        model.add(h == sum(s.rows * b for s, b in zip(options, row)))
        model.add(w == sum(s.cols * b for s, b in zip(options, row)))
        x = model.new_int_var(0, C - min(s.cols for s in options), f"x{i}")
        y = model.new_int_var(0, R - min(s.rows for s in options), f"y{i}")
        xe, ye = model.new_int_var(1, C, f"xe{i}"), model.new_int_var(1, R, f"ye{i}")
        x_iv.append(model.new_interval_var(x, w, xe, f"ix{i}"))
        y_iv.append(model.new_interval_var(y, h, ye, f"iy{i}"))
        sizes.append((h, w, ye, xe))
        areas.append(sum(s.rows * s.cols * b for s, b in zip(options, row)))
        ticks.append(sum(s.ticks * b for s, b in zip(options, row)))
        lits.append(row)
        xs.append(x)
        ys.append(y)
    model.add_no_overlap_2d(x_iv, y_iv)
    model.add(sum(areas) <= R * C)
    top = max(s.ticks for options in shapes for s in options)
    interval = model.new_int_var(0, top, "interval")
    for t in ticks:
        model.add(interval >= t)
    return _Vars(lits, shapes, xs, ys, ticks, interval, sizes)


def _hint(problem: FloorplanProblem, model: cp_model.CpModel, v: _Vars, rects: list[Rect]) -> None:
    """Hint every variable (a complete hint is taken as the first solution when feasible)."""
    model.clear_hints()
    ticks = []
    for i, r in enumerate(rects):
        chosen = None
        for s, b in zip(v.shapes[i], v.lits[i]):
            model.add_hint(b, 1 if (s.rows, s.cols) == (r.rows, r.cols) else 0)
            chosen = s if (s.rows, s.cols) == (r.rows, r.cols) else chosen
        ticks.append(chosen.ticks if chosen else 0)
        h, w, ye, xe = v.sizes[i]
        for var, value in (
            (v.x[i], r.col),
            (v.y[i], r.row),
            (h, r.rows),
            (w, r.cols),
            (ye, r.row + r.rows),
            (xe, r.col + r.cols),
        ):
            model.add_hint(var, value)
    model.add_hint(v.interval, max(ticks))
    if v.start is None or v.distances is None or v.latency is None:
        return
    for (dr, dc), e in zip(v.distances, problem.links):
        (ar, ac), (br, bc) = rects[e.src].centre, rects[e.dst].centre
        model.add_hint(dr, abs(ar - br))
        model.add_hint(dc, abs(ac - bc))
    _, latency, start = spatial_pipeline(ticks, [(e.src, e.dst, link_ticks(problem, e, rects))
                                                  for e in problem.links])
    for var, value in zip(v.start, start):
        model.add_hint(var, value)
    model.add_hint(v.latency, latency)


def _read(solver: cp_model.CpSolver, v: _Vars) -> list[Rect]:
    rects = []
    for i, options in enumerate(v.shapes):
        s = next(s for s, b in zip(options, v.lits[i]) if solver.value(b))
        rects.append(Rect(i, solver.value(v.y[i]), solver.value(v.x[i]), s.rows, s.cols))
    return rects


def _add_latency(problem: FloorplanProblem, model: cp_model.CpModel, v: _Vars) -> cp_model.IntVar:
    R, C = problem.rows, problem.cols
    n = len(v.shapes)
    horizon = sum(max(s.ticks for s in options) for options in v.shapes) + sum(
        e.ticks + problem.hop_ticks * (R + C) for e in problem.links
    )
    centre_r, centre_c = [], []
    for i, options in enumerate(v.shapes):
        centre_r.append(v.y[i] + sum((s.rows // 2) * b for s, b in zip(options, v.lits[i])))
        centre_c.append(v.x[i] + sum((s.cols // 2) * b for s, b in zip(options, v.lits[i])))
    start = [model.new_int_var(0, horizon, f"start{i}") for i in range(n)]
    v.start, v.distances = start, []
    for j, e in enumerate(problem.links):
        dr = model.new_int_var(0, R, f"dr{j}")
        dc = model.new_int_var(0, C, f"dc{j}")
        model.add(dr >= centre_r[e.src] - centre_r[e.dst])
        model.add(dr >= centre_r[e.dst] - centre_r[e.src])
        model.add(dc >= centre_c[e.src] - centre_c[e.dst])
        model.add(dc >= centre_c[e.dst] - centre_c[e.src])
        model.add(start[e.dst] >= start[e.src] + v.ticks[e.src] + e.ticks + problem.hop_ticks * (dr + dc))
        v.distances.append((dr, dc))
    latency = model.new_int_var(0, horizon, "latency")
    v.latency = latency
    for i in range(n):
        model.add(latency >= start[i] + v.ticks[i])
    return latency


def floorplan_solver_parameters(solver: cp_model.CpSolver, time_limit_s: float, seed: int) -> None:
    """The partitioner's settings (seed, deterministic time only, the presolve workaround), but
    one worker: with the interleaved 8-worker search, this model (NoOverlap2D, hints on every
    variable) gave 3 different Llama-3.1-8B floorplans in 3 runs of the same problem at 0.05
    deterministic s (same proto), while one worker gave the same floorplan every time."""
    solver_parameters(solver, time_limit_s, seed)
    solver.parameters.num_workers = 1
    solver.parameters.interleave_search = False


def _solve(model: cp_model.CpModel, time_limit_s: float,
           seed: int) -> tuple[cp_model.CpSolver, cp_model.CpSolverStatus]:
    solver = cp_model.CpSolver()
    floorplan_solver_parameters(solver, time_limit_s, seed)
    return solver, solver.solve(model)


def solve_floorplan(
    problem: FloorplanProblem, time_limit_s: float = DEFAULT_TIME_LIMIT_S, seed: int = 0
) -> Floorplan:
    """The lexicographically best floorplan found within ``time_limit_s`` deterministic
    seconds per phase.

    Raises:
        InfeasibleError: a region fits no rectangle (see ``usable_shapes``), or no packing of
            all regions exists (or none was found within the limit and the strip layout fails).
    """
    shapes = usable_shapes(problem)
    if not problem.regions:
        return Floorplan((), 0, 0, "OPTIMAL")
    usable = FloorplanProblem(
        problem.rows,
        problem.cols,
        problem.pe_sram_bytes,
        problem.routing_colours,
        problem.path_colours,
        problem.hop_ticks,
        tuple(type(r)(r.name, r.units, tuple(s)) for r, s in zip(problem.regions, shapes)),
        problem.links,
    )
    hint = serpentine_floorplan(usable)
    if hint is not None and len(problem.regions) > CPSAT_MAX_REGIONS:
        interval, latency = evaluate(usable, hint)
        return Floorplan(tuple(hint), interval, latency, "HINT")
    if hint is not None:  # no shape slower than the hint's interval can improve either phase
        bound = evaluate(usable, hint)[0]
        shapes = [[s for s in options if s.ticks <= bound] for options in shapes]
    model = cp_model.CpModel()
    v = _build(usable, shapes, model)
    if hint is not None:
        _hint(usable, model, v, hint)
    else:  # a hint always: the smallest shapes in the corner (infeasible, but it seeds the search)
        _hint(usable, model, v, [Rect(i, 0, 0, o[0].rows, o[0].cols) for i, o in enumerate(shapes)])
    model.minimize(v.interval)
    solver, status = _solve(model, time_limit_s, seed)
    if status == cp_model.INFEASIBLE:
        need = sum(min(s.rows * s.cols for s in o) for o in shapes)
        raise PackingError(
            f"the {len(shapes)} regions do not pack on the {problem.rows} x {problem.cols} "
            f"PE grid (their smallest rectangles cover {need:,} of {problem.rows * problem.cols:,} "
            "PEs); use more wafers or fewer units per wafer"
        )
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if hint is None:
            raise PackingError(
                f"no floorplan of the {len(shapes)} regions on the {problem.rows} x "
                f"{problem.cols} PE grid found within {time_limit_s} deterministic s; "
                "raise the time limit or use more wafers"
            )
        interval, latency = evaluate(usable, hint)
        return Floorplan(tuple(hint), interval, latency, "HINT")
    phase1 = _read(solver, v)
    proved = status == cp_model.OPTIMAL
    best_interval = evaluate(usable, phase1)[0]
    model.add(v.interval <= best_interval)
    latency_var = _add_latency(usable, model, v)
    model.clear_objective()
    model.minimize(latency_var)
    _hint(usable, model, v, phase1)
    solver, status = _solve(model, time_limit_s, seed)
    rects = _read(solver, v) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else phase1
    proved = proved and status == cp_model.OPTIMAL
    interval, latency_ticks = evaluate(usable, rects)
    return Floorplan(tuple(rects), interval, latency_ticks, "OPTIMAL" if proved else "FEASIBLE")
