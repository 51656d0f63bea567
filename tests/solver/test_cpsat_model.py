"""The CP-SAT model agrees with ``evaluate``: its reported objective is the evaluated objective of
its assignment, never worse than the feasible hint it is given, and equal to the exact DP's on
chains. Includes the Llama-3.1-8B instance (shrunk to 8 units) on which OR-Tools 9.15's presolve
proved a 2.5x worse plan "OPTIMAL" (google/or-tools#5293; worked around in cpsat.py)."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from placer.solver.cpsat import solve_cpsat, solver_parameters
from placer.solver.dp import solve_contiguous
from placer.solver.problem import Edge, Objective, Problem, evaluate
from placer.solver.solve import solve
from tests.solver.factories import realistic_problem

FAST = settings(derandomize=True, deadline=None, max_examples=60, database=None)

_LAYER_BYTES = 436_224_000
_KV = 33_554_432


def llama8b_shrunk() -> Problem:
    """Embedding, six decoder layers and the head of Llama-3.1-8B (bf16, 8192 context, 8 sequences,
    wse3), min-latency on at most 6 wafers: the real 34-unit problem cut down while the presolve
    defect still showed (a chain, so the DP is exact)."""
    n_layers = 6
    weights = (1_050_673_152, _LAYER_BYTES + 256, *[_LAYER_BYTES] * (n_layers - 1), 1_050_681_344)
    return Problem(
        names=("embed", *(f"layers.{i}" for i in range(n_layers)), "head"),
        layers=(-1, *range(n_layers), -1),
        parameters=(525_336_576, *[218_112_000] * n_layers, 525_340_672),
        weight_bytes=weights,
        act_bytes=(8_454_144, 24_834_048, *[8_454_144] * (n_layers - 1), 0),
        kv_bytes=(0, *[_KV] * n_layers, 0),
        ticks=(0, *[145_726] * n_layers, 29_727),
        edges=(Edge(0, 1, 8192, 546), Edge(1, 2, 8704, 580),
               *(Edge(i, i + 1, 8192, 546) for i in range(2, n_layers + 1))),
        capacity=41_800_000_000,
        hop_ticks=50_000,
        concurrency=8,
        objective=Objective.MIN_LATENCY,
        max_wafers=6,
    )


def test_llama8b_instance_reaches_the_exact_optimum():
    p = llama8b_shrunk()
    assert p.is_chain
    exact = solve_contiguous(p, 8)
    assert exact is not None
    for hint in (exact[0], None):
        for seed in (0, 1):
            got = solve_cpsat(p, 8, p.max_wafers, hint, 5.0, seed)
            assert got.status == "OPTIMAL"
            assert got.objective == exact[1].objective == evaluate(p, got.assignment, 8).objective
            assert got.bound == got.objective
    sol = solve(p, "cp-sat", time_limit_s=5.0)
    assert (sol.status, sol.objective, sol.bound) == ("OPTIMAL", exact[1].objective, exact[1].objective)


@FAST
@given(seed=st.integers(0, 10**6), n=st.integers(3, 12), chain=st.booleans(),
       objective=st.sampled_from(list(Objective)), resident=st.integers(1, 8), exact=st.booleans(),
       floor=st.sampled_from([None, 2, 3, 6]))
def test_cpsat_objective_is_the_evaluated_one_and_never_worse_than_the_hint(seed, n, chain, objective,
                                                                             resident, exact, floor):
    p = realistic_problem(random.Random(seed), n, chain=chain, objective=objective)
    if exact:  # may ask for more wafers than there are units: then nothing is feasible
        p = dataclasses.replace(p, min_wafers=p.max_wafers)
    if floor is not None:  # a per-user floor at floor/2 times the compute time
        p = dataclasses.replace(p, max_tpot_ticks=p.total_ticks * floor // 2)
    start = solve_contiguous(p, resident)  # exact on chains, a feasible hint on DAGs
    got = solve_cpsat(p, resident, p.max_wafers, start[0] if start else None, 5.0, 0)
    if got.assignment is not None:
        assert evaluate(p, got.assignment, resident).feasible
    if start is None:
        if chain or p.min_wafers > p.n:
            assert got.assignment is None
        return
    assert got.status == "OPTIMAL"
    ev = evaluate(p, got.assignment, resident)
    assert ev.feasible, ev.reason
    assert got.objective == ev.objective
    assert got.bound == got.objective
    assert got.objective <= start[1].objective
    if chain:
        assert got.objective == start[1].objective


def test_exact_wafer_count_above_the_unit_count_is_infeasible_not_a_crash():
    p = realistic_problem(random.Random(1), 4, chain=False, objective=Objective.MIN_LATENCY, max_wafers=6)
    p = dataclasses.replace(p, min_wafers=6)
    assert solve_cpsat(p, 1, 6, None, 5.0, 0).assignment is None
    assert solve(p, "cp-sat", time_limit_s=5.0).status == "INFEASIBLE"


def test_search_limits_are_deterministic_time_only():
    solver = cp_model.CpSolver()
    default_wall = solver.parameters.max_time_in_seconds
    solver_parameters(solver, 3.0, 7)
    params = solver.parameters
    assert params.max_time_in_seconds == default_wall  # no wall-clock limit: answers never depend on speed
    assert params.max_deterministic_time == 3.0 and params.random_seed == 7
    assert params.interleave_search and params.presolve_inclusion_work_limit == 0
