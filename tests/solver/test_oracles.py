"""CP-SAT against independent oracles: the exact DP on chains, brute force on small DAGs, and
every baseline (never better than CP-SAT). Problems are drawn by hypothesis (derandomized)."""

from __future__ import annotations

import dataclasses
import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from placer.solver.dp import solve_contiguous
from placer.solver.problem import Objective, Problem, evaluate, rank_key
from placer.solver.solve import solve
from tests.solver.factories import random_problem

FAST = settings(derandomize=True, deadline=None, max_examples=60, database=None)
OBJECTIVES = st.sampled_from(list(Objective))


def brute_force(problem: Problem):
    """The best (assignment, evaluation) over every assignment and resident count."""
    best = None
    for assignment in itertools.product(range(problem.max_wafers), repeat=problem.n):
        for s in range(1, problem.concurrency + 1):
            ev = evaluate(problem, assignment, s)
            if ev.feasible and (best is None or rank_key(problem, ev) < rank_key(problem, best[1])):
                best = (assignment, ev)
    return best


def _draw(seed: int, n: int, chain: bool, objective: Objective, concurrency: int, wafers: int,
          exact: bool, floor: bool) -> Problem:
    return random_problem(random.Random(seed), n, chain=chain, objective=objective, concurrency=concurrency,
                          max_wafers=wafers, exact=exact, floor=floor)


@FAST
@given(seed=st.integers(0, 10**6), n=st.integers(1, 9), objective=OBJECTIVES, concurrency=st.integers(1, 4),
       wafers=st.integers(1, 4), exact=st.booleans(), floor=st.booleans())
def test_dp_is_exact_on_chains(seed, n, objective, concurrency, wafers, exact, floor):
    p = _draw(seed, min(n, 6), True, objective, concurrency, min(wafers, 3), exact, floor)
    expected = brute_force(p)
    got = None
    for s in range(p.concurrency, 0, -1):
        found = solve_contiguous(p, s)
        if found and (got is None or rank_key(p, found[1]) < rank_key(p, got[1])):
            got = found
    assert (got is None) == (expected is None)
    if expected:
        assert rank_key(p, got[1]) == rank_key(p, expected[1])


@FAST
@given(seed=st.integers(0, 10**6), n=st.integers(1, 14), objective=OBJECTIVES, concurrency=st.integers(1, 4),
       wafers=st.integers(1, 5), exact=st.booleans(), floor=st.booleans())
def test_cpsat_equals_dp_on_chains(seed, n, objective, concurrency, wafers, exact, floor):
    p = _draw(seed, n, True, objective, concurrency, wafers, exact, floor)
    cp = solve(p, "cp-sat", time_limit_s=5.0)
    dp = solve(p, "dp")
    assert cp.feasible == dp.feasible
    if dp.feasible:
        assert cp.status == "OPTIMAL"
        assert rank_key(p, cp.evaluation) == rank_key(p, dp.evaluation)
        assert evaluate(p, cp.assignment, cp.evaluation.resident) == cp.evaluation


@FAST
@given(seed=st.integers(0, 10**6), n=st.integers(2, 6), objective=OBJECTIVES, concurrency=st.integers(1, 3),
       wafers=st.integers(1, 3), exact=st.booleans(), floor=st.booleans())
def test_cpsat_equals_brute_force_on_dags(seed, n, objective, concurrency, wafers, exact, floor):
    p = _draw(seed, n, False, objective, concurrency, wafers, exact, floor)
    expected = brute_force(p)
    cp = solve(p, "cp-sat", time_limit_s=5.0)
    assert cp.feasible == (expected is not None)
    if expected:
        assert cp.status == "OPTIMAL"
        assert rank_key(p, cp.evaluation) == rank_key(p, expected[1])


@FAST
@given(seed=st.integers(0, 10**6), n=st.integers(2, 16), chain=st.booleans(), objective=OBJECTIVES,
       concurrency=st.integers(1, 6), wafers=st.integers(1, 6))
def test_cpsat_never_worse_than_a_baseline(seed, n, chain, objective, concurrency, wafers):
    p = _draw(seed, n, chain, objective, concurrency, wafers, False, False)
    # give baselines their layer structure: two units per layer
    p = dataclasses.replace(p, layers=tuple(i // 2 for i in range(n)))
    cp = solve(p, "cp-sat", time_limit_s=5.0)
    for method in ("dp", "greedy", "uniform", "deepspeed"):
        other = solve(p, method)
        if other.feasible:
            assert cp.feasible, method
            assert rank_key(p, cp.evaluation) <= rank_key(p, other.evaluation), method
