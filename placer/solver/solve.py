"""Solve a ``Problem`` with any method: CP-SAT (default), the exact DP, or a baseline.

Every method keeps as many of the ``concurrency`` sequences resident as fit (the rest are
parked in the external KV store and rotate through it), then optimises the objective at that
resident count, timed at that count's micro-batch (``Problem.timed``). CP-SAT and the DP find
the largest feasible resident count by bisection (feasibility only shrinks as more sequences
stay resident). Batched decode is why no objective parks a sequence that fits: a stage step
serves its whole micro-batch at nearly the latency of one sequence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from placer.solver.baselines import BASELINES, SPLITTERS, run_baseline
from placer.solver.bounds import objective_lower_bound
from placer.solver.cpsat import solve_cpsat
from placer.solver.dp import DPBudgetExceeded, dp_work, fill_first_fit, solve_contiguous
from placer.solver.problem import Evaluation, Objective, Problem, evaluate

SOLVERS = ("cp-sat", "dp", *BASELINES)
_DP_MAX_WORK = 3_000_000
# Generated DP states (deterministic): fronts of many small units (expert groups) can hold
# millions of Pareto states; past this the hint comes from first fit and the baselines.
_DP_MAX_STATES = 400_000


@dataclass(frozen=True)
class Solution:
    """A method's answer. ``seconds`` is wall time, for report.md only (never in plan.json)."""

    method: str
    status: str                      # OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN
    assignment: tuple[int, ...] | None
    evaluation: Evaluation
    objective: int | None
    bound: int | None
    seconds: float

    @property
    def feasible(self) -> bool:
        return self.assignment is not None and self.evaluation.feasible

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        return max(0.0, (self.objective - self.bound) / max(1, abs(self.objective)))


def _run_dp(problem: Problem, resident: int) -> tuple[tuple[list[int], Evaluation] | None, bool]:
    """(the DP's answer, whether the DP ran to completion within its work budgets)."""
    if dp_work(problem, resident) > _DP_MAX_WORK:
        return None, False
    try:
        return solve_contiguous(problem, resident, max_states=_DP_MAX_STATES), True
    except DPBudgetExceeded:
        return None, False


def _hint(problem: Problem, resident: int) -> tuple[list[int], Evaluation, bool] | None:
    """A feasible assignment at ``resident``: (assignment, evaluation, optimal over contiguous)."""
    found, completed = _run_dp(problem, resident)
    if completed:
        if found is not None:
            return found[0], found[1], True
        if problem.is_chain:
            return None
    best: tuple[list[int], Evaluation, bool] | None = None
    fill = fill_first_fit(problem, resident)
    candidates: list[list[int] | None] = [fill] if fill is not None else []
    # the baselines' splits too, so that CP-SAT starts no worse than any of them
    top = problem.max_wafers
    if fill is not None and problem.objective is Objective.MIN_WAFERS:
        top = max(fill) + 1
    for split in SPLITTERS.values():
        for wafers in range(problem.min_wafers, top + 1):
            candidates.append(split(problem, wafers))
    for assignment in candidates:
        if assignment is None:
            continue
        ev = evaluate(problem, assignment, resident)
        if ev.feasible and (best is None or ev.objective < best[1].objective):
            best = (list(assignment), ev, False)
    return best


def _solve_at(problem: Problem, resident: int, method: str, time_limit_s: float, seed: int,
              ) -> tuple[str, list[int] | None, Evaluation | None, int | None, int | None]:
    """(status, assignment, evaluation, objective, bound) of one method at one resident count."""
    hint = _hint(problem, resident)
    exact_dp = hint is not None and hint[2] and problem.is_chain
    if method == "dp" or (method == "cp-sat" and problem.is_chain and hint is None
                          and _run_dp(problem, resident)[1]):
        if hint is None:
            return "INFEASIBLE", None, None, None, None
        return ("OPTIMAL" if exact_dp else "FEASIBLE"), hint[0], hint[1], hint[1].objective, \
            hint[1].objective if exact_dp else None
    wafers = problem.max_wafers
    timed = problem.timed(resident)
    if hint is not None and not problem.exact_wafers:
        ev = hint[1]
        if problem.objective is Objective.MIN_WAFERS:
            wafers = min(wafers, ev.wafers)
        elif problem.objective is Objective.MIN_COST:  # N x T <= the hint's, and T >= D + N x hop
            cheapest = max(1, timed.total_ticks + timed.hop_ticks)
            wafers = min(wafers, max(ev.wafers, ev.wafers * ev.tpot // cheapest))
        elif timed.hop_ticks > 0:
            wafers = min(wafers, max(ev.wafers, (ev.tpot - timed.total_ticks) // timed.hop_ticks))
    result = solve_cpsat(problem, resident, wafers, hint[0] if hint else None, time_limit_s, seed)
    if hint is not None and result.objective is not None and result.objective > hint[1].objective:
        # Never answer worse than the hint. The model admits the hint, so an "OPTIMAL" worse than
        # it is a solver defect (cpsat.py, google/or-tools#5293): trust the analytic bound only.
        bound = objective_lower_bound(problem, resident)
        return "FEASIBLE", hint[0], hint[1], hint[1].objective, min(bound, hint[1].objective)
    if result.assignment is None:
        if hint is not None:  # the search found nothing better in its budget: keep the hint
            return "FEASIBLE", hint[0], hint[1], hint[1].objective, objective_lower_bound(problem, resident)
        return result.status, None, None, None, result.bound
    assignment = list(result.assignment)
    ev = evaluate(problem, assignment, resident)
    if not ev.feasible or ev.objective != result.objective:
        raise AssertionError(f"CP-SAT solution disagrees with the evaluator: {ev.reason or ev.objective} "
                             f"vs {result.objective}")
    bound = max(result.bound or 0, objective_lower_bound(problem, resident))
    return result.status, assignment, ev, result.objective, min(bound, result.objective)


def _max_resident(problem: Problem, method: str, time_limit_s: float, seed: int) -> int:
    """The most resident sequences any placement allows (0 if not even one)."""
    kv_total = sum(problem.kv_bytes)
    room = problem.max_wafers * problem.capacity - sum(problem.sizes(0))
    hi = min(problem.concurrency, max(0, room // kv_total)) if kv_total else problem.concurrency
    if problem.max_tpot_ticks is None and not kv_total:  # nothing grows with the resident count
        return hi if _feasible(problem, hi, method, time_limit_s, seed) else 0
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _feasible(problem, mid, method, time_limit_s, seed):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _feasible(problem: Problem, resident: int, method: str, time_limit_s: float, seed: int) -> bool:
    if _hint(problem, resident) is not None:
        return True
    if method == "dp" or (problem.is_chain and _run_dp(problem, resident)[1]):
        return False
    return _solve_at(problem, resident, method, time_limit_s, seed)[1] is not None


def solve(problem: Problem, method: str = "cp-sat", time_limit_s: float = 10.0, seed: int = 0) -> Solution:
    """Solve with ``method`` (one of ``SOLVERS``); infeasibility is a Solution, not an error."""
    start = time.perf_counter()
    if method in BASELINES:
        base, base_ev = run_baseline(problem, method)
        status = "FEASIBLE" if base is not None else "INFEASIBLE"
        return Solution(method, status, None if base is None else tuple(base), base_ev,
                        base_ev.objective if base else None, None, time.perf_counter() - start)
    if method not in SOLVERS:
        raise ValueError(method)
    top = _max_resident(problem, method, time_limit_s, seed)
    if top < 1:
        return Solution(method, "INFEASIBLE", None, Evaluation(False, "no placement fits"), None, None,
                        time.perf_counter() - start)
    best: tuple[str, list[int], Evaluation, int | None, int | None] | None = None
    status, assignment, ev, objective, bound = _solve_at(problem, top, method, time_limit_s, seed)
    if assignment is not None and ev is not None:
        best = (status, assignment, ev, objective, bound)
    if best is None:
        return Solution(method, "INFEASIBLE", None, Evaluation(False, "no placement fits"), None, None,
                        time.perf_counter() - start)
    status, assignment, ev, objective, bound = best
    return Solution(method, status, tuple(assignment), ev, objective, bound, time.perf_counter() - start)
