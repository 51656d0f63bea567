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


class _Search:
    """One ``solve`` call's search. The DP and the hint at a resident count are computed once
    and remembered (the bisection's last probe and the final solve ask for the same count);
    the memo lives with this object, so nothing outlives the call."""

    def __init__(self, problem: Problem, method: str, time_limit_s: float, seed: int) -> None:
        self.problem, self.method, self.time_limit_s, self.seed = problem, method, time_limit_s, seed
        self._dp: dict[int, tuple[tuple[list[int], Evaluation] | None, bool]] = {}
        self._hints: dict[int, tuple[list[int], Evaluation, bool] | None] = {}
        self._answers: dict[int, tuple[str, list[int] | None, Evaluation | None, int | None, int | None]] = {}
        self._fills: dict[int, list[int] | None] = {}

    def run_dp(self, resident: int) -> tuple[tuple[list[int], Evaluation] | None, bool]:
        """(the DP's answer, whether the DP ran to completion within its work budgets)."""
        if resident not in self._dp:
            problem = self.problem
            if dp_work(problem, resident) > _DP_MAX_WORK:
                self._dp[resident] = (None, False)
            else:
                try:
                    self._dp[resident] = (solve_contiguous(problem, resident, max_states=_DP_MAX_STATES,
                                                           wafer_cap=self._wafer_cap(resident)), True)
                except DPBudgetExceeded:
                    self._dp[resident] = (None, False)
        found, completed = self._dp[resident]
        # callers may keep the assignment: hand out a copy, never the remembered list
        return (None if found is None else (list(found[0]), found[1])), completed

    def _first_fit(self, resident: int) -> list[int] | None:
        """The first-fit fill at ``resident`` when it is feasible (remembered), else None."""
        if resident not in self._fills:
            fill = fill_first_fit(self.problem, resident)
            ok = fill is not None and evaluate(self.problem, fill, resident).feasible
            self._fills[resident] = fill if ok else None
        return self._fills[resident]

    def _wafer_cap(self, resident: int) -> int | None:
        """Under ``min-wafers`` (fewer wafers always win), the wafers of a feasible first-fit
        fill bound the optimum's: the DP need not look past them. None: no bound known."""
        problem = self.problem
        if problem.objective is not Objective.MIN_WAFERS or problem.pins:
            return None
        fill = self._first_fit(resident)
        return None if fill is None else max(fill) + 1

    def hint(self, resident: int) -> tuple[list[int], Evaluation, bool] | None:
        """A feasible assignment at ``resident``: (assignment, evaluation, optimal over contiguous)."""
        if resident not in self._hints:
            self._hints[resident] = self._compute_hint(resident)
        found = self._hints[resident]
        return None if found is None else (list(found[0]), found[1], found[2])

    def _compute_hint(self, resident: int) -> tuple[list[int], Evaluation, bool] | None:
        problem = self.problem
        found, completed = self.run_dp(resident)
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

    def solve_at(self, resident: int,
                 ) -> tuple[str, list[int] | None, Evaluation | None, int | None, int | None]:
        """(status, assignment, evaluation, objective, bound) of the method at one resident count
        (remembered: CP-SAT with a fixed seed and deterministic time answers the same again)."""
        if resident not in self._answers:
            self._answers[resident] = self._compute_answer(resident)
        status, assignment, ev, objective, bound = self._answers[resident]
        return status, None if assignment is None else list(assignment), ev, objective, bound

    def _compute_answer(self, resident: int,
                        ) -> tuple[str, list[int] | None, Evaluation | None, int | None, int | None]:
        problem, method = self.problem, self.method
        hint = self.hint(resident)
        exact_dp = hint is not None and hint[2] and problem.is_chain
        if method == "dp" or (method == "cp-sat" and problem.is_chain and hint is None
                              and self.run_dp(resident)[1]):
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
        result = solve_cpsat(problem, resident, wafers, hint[0] if hint else None, self.time_limit_s,
                             self.seed)
        if hint is not None and result.objective is not None and result.objective > hint[1].objective:
            # Never answer worse than the hint. The model admits the hint, so an "OPTIMAL" worse than
            # it is a solver defect (cpsat.py, google/or-tools#5293): trust the analytic bound only.
            bound = objective_lower_bound(problem, resident)
            return "FEASIBLE", hint[0], hint[1], hint[1].objective, min(bound, hint[1].objective)
        if result.assignment is None:
            if hint is not None:  # the search found nothing better in its budget: keep the hint
                return "FEASIBLE", hint[0], hint[1], hint[1].objective, \
                    objective_lower_bound(problem, resident)
            return result.status, None, None, None, result.bound
        assignment = list(result.assignment)
        ev = evaluate(problem, assignment, resident)
        if not ev.feasible or ev.objective != result.objective:
            raise AssertionError(f"CP-SAT solution disagrees with the evaluator: {ev.reason or ev.objective} "
                                 f"vs {result.objective}")
        bound = max(result.bound or 0, objective_lower_bound(problem, resident))
        return result.status, assignment, ev, result.objective, min(bound, result.objective)

    def max_resident(self) -> int:
        """The most resident sequences any placement allows (0 if not even one)."""
        problem = self.problem
        kv_total = sum(problem.kv_bytes)
        room = problem.max_wafers * problem.capacity - sum(problem.sizes(0))
        hi = min(problem.concurrency, max(0, room // kv_total)) if kv_total else problem.concurrency
        if problem.max_tpot_ticks is None and not kv_total:  # nothing grows with the resident count
            return hi if self.feasible(hi) else 0
        lo = 0
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.feasible(mid):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def feasible(self, resident: int) -> bool:
        # A feasible first-fit fill answers a bisection probe without the DP: only the final
        # count needs the optimum (same answer, one DP run instead of one per probe).
        if resident not in self._hints and self._first_fit(resident) is not None:
            return True
        if self.hint(resident) is not None:
            return True
        if self.method == "dp" or (self.problem.is_chain and self.run_dp(resident)[1]):
            return False
        return self.solve_at(resident)[1] is not None


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
    search = _Search(problem, method, time_limit_s, seed)
    top = search.max_resident()
    if top < 1:
        return Solution(method, "INFEASIBLE", None, Evaluation(False, "no placement fits"), None, None,
                        time.perf_counter() - start)
    best: tuple[str, list[int], Evaluation, int | None, int | None] | None = None
    status, assignment, ev, objective, bound = search.solve_at(top)
    if assignment is not None and ev is not None:
        best = (status, assignment, ev, objective, bound)
    if best is None:
        return Solution(method, "INFEASIBLE", None, Evaluation(False, "no placement fits"), None, None,
                        time.perf_counter() - start)
    status, assignment, ev, objective, bound = best
    return Solution(method, status, tuple(assignment), ev, objective, bound, time.perf_counter() - start)
