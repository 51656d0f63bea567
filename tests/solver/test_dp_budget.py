"""When the exact DP's Pareto fronts outgrow their (deterministic) state budget, the solver
falls back to first fit and the baselines as CP-SAT's hint and still reaches the DP optimum."""

from __future__ import annotations

import importlib
import random

import pytest

from placer.solver.dp import DPBudgetExceeded, solve_contiguous
from placer.solver.problem import Objective, evaluate, rank_key
from placer.solver.solve import solve
from tests.solver.factories import realistic_problem

# The package re-exports the function ``solve``, which hides the module of the same name.
solve_module = importlib.import_module("placer.solver.solve")


def test_budget_raises_instead_of_running_on():
    p = realistic_problem(random.Random(3), 12, chain=True, objective=Objective.MIN_LATENCY)
    with pytest.raises(DPBudgetExceeded):
        solve_contiguous(p, 1, max_states=5)


@pytest.mark.parametrize("seed", range(6))
def test_cpsat_without_dp_hint_still_matches_the_dp(monkeypatch, seed):
    p = realistic_problem(random.Random(seed), 10, chain=True, objective=Objective.MIN_LATENCY)
    exact = solve(p, "dp")
    monkeypatch.setattr(solve_module, "_DP_MAX_STATES", 3)
    cp = solve(p, "cp-sat", time_limit_s=5.0)
    assert cp.feasible == exact.feasible
    if exact.feasible:
        assert cp.status == "OPTIMAL"
        assert rank_key(p, cp.evaluation) == rank_key(p, exact.evaluation)
        assert evaluate(p, cp.assignment, cp.evaluation.resident) == cp.evaluation
