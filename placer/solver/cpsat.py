"""CP-SAT model of the placement problem at a fixed resident-sequence count.

Order encoding: ``y[u][w] = 1`` iff unit u sits on wafer ``>= w`` (``y[u][0] = 1``,
``y[u][w+1] -> y[u][w]``); unit u is on wafer w iff ``y[u][w] - y[u][w+1] = 1``. An edge
``u -> v`` is ``y[u][w] <= y[v][w]`` for every w (never back to an earlier wafer), and the
edge crosses the boundary after wafer b iff ``y[v][b+1] - y[u][b+1] = 1``; all linear.
``used[w]`` is the maximum of ``y`` over the sink units (wafers are used in order); a used
wafer holds at least one unit. Per wafer: SRAM ``sum size_u x[u][w] + buffer_w <= capacity``
(``buffer_w >= act_u x[u][w]``), stage
ticks ``<= m``; ``T >= R``, ``T >= S x m``, ``T >= S x B_b``; ``T <= floor`` if given. A
redundant cut ``m >= ceil(D / k)`` when exactly k wafers are used tightens the bound.

Unit domains are narrowed before the model is built: a unit sits on a wafer no earlier than
its ancestors' total size needs, no later than its descendants' size allows, and between the
pins of its ancestors and descendants.

Search is deterministic: fixed ``random_seed``, ``interleave_search`` (the subsolvers run in a
fixed order in batches), a limit in deterministic time only (no wall-clock limit, so the answer
never depends on the machine's speed or load; wall time does), and the hint (the DP's,
first-fit's or a baseline's assignment) always given.

OR-Tools 9.15 presolve bug, worked around with ``presolve_inclusion_work_limit = 0``: the
presolve step that ``presolve_inclusion_work_limit`` gates (``ProcessAtMostOneAndLinear`` and
the inclusion detections; upstream issue google/or-tools#5293, open) removes feasible
solutions from this model, after which the search proves a worse value "OPTIMAL". On the
Llama-3.1-8B min-latency problem (context 8192, 8 sequences) it returned a 3-wafer plan at
3.6x the time per token of the feasible 8-wafer hint; the hint satisfies every constraint of
the exported model (checked constraint by constraint) and solves with presolve off or with
this one presolve family off. ``tests/solver/test_cpsat_model.py`` holds an 8-unit chain that
reproduces it. Turning the family off also made these solves about 10x faster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from placer.errors import UserError
from placer.perf import formulas as f
from placer.solver.problem import Objective, Problem

_CLOSURE_MAX_UNITS = 40_000  # reachability as a packed bit matrix (n^2 / 8 bytes) up to this size


@dataclass(frozen=True)
class CpResult:
    status: str                 # OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN
    assignment: tuple[int, ...] | None
    objective: int | None
    bound: int | None
    deterministic_time: float


def _closure_sizes(problem: Problem, sizes: list[int]) -> tuple[list[int], list[int]]:
    """Total size of each unit plus its ancestors, and plus its descendants (bit-packed
    reachability, one row per unit; rows are OR-ed along the edges in topological order)."""
    n = problem.n
    if n > _CLOSURE_MAX_UNITS:
        return sizes[:], sizes[:]
    words = (n + 63) // 64
    weights = np.asarray(sizes, dtype=np.float64)

    def sums(edges: list[tuple[int, int]]) -> list[int]:
        reach = np.zeros((n, words), dtype=np.uint64)
        bit = (np.arange(n) % 64).astype(np.uint64)
        reach[np.arange(n), np.arange(n) // 64] = np.left_shift(np.uint64(1), bit)
        for src, dst in edges:
            reach[dst] |= reach[src]
        out = np.empty(n)
        for start in range(0, n, 1024):
            bits = np.unpackbits(reach[start:start + 1024].view(np.uint8), axis=1, bitorder="little")[:, :n]
            out[start:start + 1024] = bits @ weights
        return [int(round(x)) for x in out]

    forward = [(e.src, e.dst) for e in problem.edges]
    backward = [(e.dst, e.src) for e in sorted(problem.edges, key=lambda e: (-e.dst, -e.src))]
    return sums(forward), sums(backward)


def unit_domains(problem: Problem, resident: int, wafers: int) -> list[tuple[int, int]] | None:
    """``(lo, hi)`` wafer range of each unit, or None when some range is empty."""
    sizes = problem.sizes(resident)
    up, down = _closure_sizes(problem, sizes)
    cap = problem.capacity
    lo = [max(0, math.ceil(up[u] / cap) - 1) for u in range(problem.n)]
    hi = [wafers - math.ceil(down[u] / cap) for u in range(problem.n)]
    for u, w in problem.pins:
        lo[u], hi[u] = max(lo[u], w), min(hi[u], w)
    for e in problem.edges:  # topological order: forward for lo, backward for hi
        lo[e.dst] = max(lo[e.dst], lo[e.src])
    for e in reversed(problem.edges):
        hi[e.src] = min(hi[e.src], hi[e.dst])
    if any(a > b for a, b in zip(lo, hi)):
        return None
    return list(zip(lo, hi))


def solver_parameters(solver: cp_model.CpSolver, time_limit_s: float, seed: int) -> None:
    """Deterministic search settings (see the module docstring)."""
    params = solver.parameters
    params.random_seed = seed
    params.interleave_search = True
    params.num_workers = 8
    params.max_deterministic_time = max(0.01, time_limit_s)
    params.presolve_inclusion_work_limit = 0  # google/or-tools#5293: see the module docstring
    # The max-SAT "core" subsolver can run for minutes of wall time on one deterministic-time
    # chunk (113 s for 1.4 deterministic s on the 8-unit Llama chain without a hint, after the
    # others had proved the optimum); without a wall-clock limit that is the solve time.
    params.ignore_subsolvers.append("core")


def _past_int64(p: Problem, wafers: int, m_flight: int, detail: str) -> UserError:
    return UserError(
        f"the placement problem is past CP-SAT's 64-bit integer range ({detail}): the units' steps sum "
        f"to {p.total_ticks / 1e10:.3g} s per token ({p.total_ticks:,} ticks of 0.1 ns) over up to "
        f"{wafers} wafers and {m_flight} micro-batch(es) in flight; check the target's speed fields "
        f"(--set clock_hz, sram_bandwidth_bytes_per_s, kernel_overhead_cycles, ...), lower --concurrency, "
        f"or use --solver dp")


def solve_cpsat(problem: Problem, resident: int, wafers: int, hint: list[int] | None,
                time_limit_s: float, seed: int) -> CpResult:
    """Optimise the placement at ``resident`` sequences on at most ``wafers`` wafers.

    Raises:
        UserError: a model whose bounds or objective do not fit CP-SAT's int64 (times of days per
            token on a slow target with many micro-batches): named, not an OR-Tools traceback.
    """
    p = problem.timed(resident)
    m_flight = p.micro_batches(resident)
    try:
        return _solve_cpsat(p, resident, wafers, hint, time_limit_s, seed)
    except (TypeError, OverflowError) as e:  # pybind11 refuses a domain bound past int64
        if "Domain" not in str(e) and "int" not in str(e):
            raise
        raise _past_int64(p, max(1, min(wafers, p.n)), m_flight, "a variable's bound") from None
    except _ModelInvalid as e:
        raise _past_int64(p, max(1, min(wafers, p.n)), m_flight, str(e)) from None


class _ModelInvalid(Exception):
    pass


def _solve_cpsat(p: Problem, resident: int, wafers: int, hint: list[int] | None,
                 time_limit_s: float, seed: int) -> CpResult:
    m_flight = p.micro_batches(resident)
    K = max(1, min(wafers, p.n))
    domains = unit_domains(p, resident, K) if p.min_wafers <= K else None  # K < n: too few units
    if domains is None:
        return CpResult("INFEASIBLE", None, None, None, 0.0)
    model = cp_model.CpModel()
    one = model.new_constant(1)
    zero = model.new_constant(0)
    y: list[list[cp_model.IntVar]] = []
    for u, (lo, hi) in enumerate(domains):
        row = [one if w <= lo else zero if w > hi else model.new_bool_var(f"y{u}_{w}") for w in range(K + 1)]
        row[K] = zero
        for w in range(lo + 1, hi):
            model.add_implication(row[w + 1], row[w])
        y.append(row)
    for e in p.edges:
        lo, hi = domains[e.dst][0], domains[e.src][1]
        for w in range(lo + 1, hi + 1):
            model.add_implication(y[e.src][w], y[e.dst][w])
    succs = {e.src for e in p.edges}
    sinks = [u for u in range(p.n) if u not in succs]
    used = [one] + [model.new_bool_var(f"used{w}") for w in range(1, K)] + [zero]
    sizes = p.sizes(resident)
    stage_max = model.new_int_var(0, p.total_ticks, "max_stage")
    for w in range(K):
        if w >= 1:  # used[] is monotone because y[] is
            model.add_max_equality(used[w], [y[s][w] for s in sinks])
        members = [u for u in range(p.n) if domains[u][0] <= w <= domains[u][1]]
        on = {u: y[u][w] - y[u][w + 1] for u in members}
        acts = {p.act_bytes[u] for u in members}
        if len(acts) <= 1:  # one buffer size: a used wafer pays it
            buffer = max(acts, default=0) * used[w]
        else:
            buffer = model.new_int_var(0, max(acts), f"buffer{w}")
            for u in members:
                if p.act_bytes[u] > min(acts):
                    model.add(buffer >= p.act_bytes[u] * on[u])
            model.add(buffer >= min(acts) * used[w])
        model.add(f.wafer_bytes(sum(p.weight_bytes[u] * on[u] for u in members),
                                sum(p.kv_bytes[u] * on[u] for u in members), resident, buffer)
                  <= p.capacity * used[w])
        model.add(sum(p.ticks[u] * on[u] for u in members) <= stage_max)
        model.add(sum(on[u] for u in members) >= 1).only_enforce_if(used[w])  # used[0] is constant 1
    if p.min_wafers > 1:
        for w in range(min(p.min_wafers, K)):
            model.add(used[w] == 1)
    lower = max(p.min_wafers, math.ceil(sum(sizes) / p.capacity)) if p.capacity > 0 else K
    n_used = model.new_int_var(min(lower, K), K, "wafers")
    model.add(n_used == sum(used[:K]))
    exactly = [used[k - 1] - used[k] for k in range(1, K + 1)]  # 1 iff exactly k wafers
    for k in range(1, K + 1):
        model.add(stage_max >= math.ceil(p.total_ticks / k) * exactly[k - 1])
    need_time = p.objective is not Objective.MIN_WAFERS or p.max_tpot_ticks is not None
    tpot = None
    if need_time:
        boundaries = []
        for b in range(K - 1):
            terms = [e.ticks * (y[e.dst][b + 1] - y[e.src][b + 1]) for e in p.edges if e.ticks
                     and domains[e.src][0] <= b < domains[e.dst][1]]
            bvar = model.new_int_var(0, sum(e.ticks for e in p.edges), f"io{b}")
            model.add(bvar == sum(terms))
            boundaries.append(bvar)
        upper = m_flight * (p.total_ticks + sum(e.ticks for e in p.edges)) + p.total_ticks + \
            K * p.hop_ticks + sum(e.ticks for e in p.edges) * K
        if p.max_tpot_ticks is not None:
            upper = min(upper, p.max_tpot_ticks)
        tpot = model.new_int_var(0, max(0, upper), "tpot")
        # T >= every term of formulas.tpot; the busiest boundary's term, one per boundary
        trip = f.round_trip(p.total_ticks, sum(boundaries), n_used, p.hop_ticks, p.host_ticks)
        for name, term in f.tpot_terms(trip, stage_max, 0, m_flight):
            if name != "io":
                model.add(tpot >= term)
        for bvar in boundaries:
            model.add(tpot >= dict(f.tpot_terms(trip, stage_max, bvar, m_flight))["io"])
        for k in range(1, K + 1):
            model.add(tpot >= m_flight * math.ceil(p.total_ticks / k) * exactly[k - 1])
    if p.objective is Objective.MIN_WAFERS:
        model.minimize(n_used * (p.total_ticks + 1) + stage_max)
    elif p.objective is Objective.MIN_COST:
        assert tpot is not None
        wafer_ticks = model.new_int_var(0, K * max(0, upper), "wafer_ticks")
        model.add_multiplication_equality(wafer_ticks, [n_used, tpot])
        model.minimize(wafer_ticks * (p.max_wafers + 1) + n_used)
    else:
        assert tpot is not None
        model.minimize(tpot * (p.max_wafers + 1) + n_used)
    if hint is not None and max(hint) < K:
        for u, w_u in enumerate(hint):
            for w in range(1, K):
                if y[u][w] is not one and y[u][w] is not zero:
                    model.add_hint(y[u][w], 1 if w_u >= w else 0)
        n_hint = max(hint) + 1
        for w in range(1, K):
            model.add_hint(used[w], 1 if w < n_hint else 0)
    solver = cp_model.CpSolver()
    solver_parameters(solver, time_limit_s, seed)
    status = solver.solve(model)
    name = solver.status_name(status)
    if status == cp_model.MODEL_INVALID:  # only an int64 overflow of the objective or a sum here
        why = model.validate()
        raise _ModelInvalid("the objective overflows" if "objective" in why else "a linear sum overflows")
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return CpResult(name, None, None, None, solver.deterministic_time)
    assignment = tuple(sum(solver.value(y[u][w]) for w in range(1, K)) for u in range(p.n))
    return CpResult(name, assignment, round(solver.objective_value), math.ceil(solver.best_objective_bound
                    - 1e-6), solver.deterministic_time)
