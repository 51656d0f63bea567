"""Lower bounds and the one-line explanation of an infeasible problem.

The explanation names the binding constraint, the largest unit against a wafer's capacity,
the fewest wafers that could hold the model, and the option to change.
"""

from __future__ import annotations

import dataclasses
import math

from placer.perf import formulas as f
from placer.solver.dp import fill_first_fit, solve_contiguous
from placer.solver.problem import TICK_S, Objective, Problem


def fewest_wafers(problem: Problem, resident: int = 1) -> tuple[int, int]:
    """Bounds ``(lower, upper)`` on the fewest wafers that hold the units with ``resident``
    sequences: total bytes over capacity, and first-fit in topological order (optimal on chains)."""
    total = sum(problem.sizes(resident))
    lower = max(1, math.ceil(total / problem.capacity)) if problem.capacity > 0 else problem.n
    free = dataclasses.replace(problem, max_wafers=max(problem.n, 1), min_wafers=1, pins=())
    fill = fill_first_fit(free, resident)
    upper = max(fill) + 1 if fill is not None else problem.n
    if problem.is_chain and fill is not None:
        lower = upper
    return lower, max(lower, upper)


def objective_lower_bound(problem: Problem, resident: int) -> int:
    """A bound no placement at ``resident`` sequences can beat: at least ``N_lb`` wafers (bytes
    over capacity), a stage of at least ``D / N`` and the longest unit, a round trip of at least
    ``D + N x hop``."""
    p = problem.timed(resident)
    lower, _ = fewest_wafers(p, resident)
    lower = max(lower, p.min_wafers)
    longest = max(p.ticks, default=0)
    if p.objective is Objective.MIN_WAFERS:  # more wafers than `lower` cost more than any stage
        return lower * (p.total_ticks + 1) + max(longest, math.ceil(p.total_ticks / lower))
    stage = max(longest, math.ceil(p.total_ticks / p.max_wafers))
    trip = f.round_trip(p.total_ticks, 0, lower, p.hop_ticks, p.host_ticks)
    tpot = f.tpot(trip, stage, 0, p.micro_batches(resident))
    if p.objective is Objective.MIN_COST:
        return lower * tpot * (p.max_wafers + 1) + lower
    return tpot * (p.max_wafers + 1) + lower


def _gb(x: int) -> str:
    return f"{x / 1e9:.3f} GB"


def explain_infeasible(problem: Problem, sram_bytes: int, reserve: float, heuristic: str = "") -> str:
    """Why no placement exists, in one line. ``heuristic``: the baseline solver (greedy, uniform,
    deepspeed) that found none, and why; it does not search every placement, so unless memory or
    the wafer count rules every placement out the line says that one solver failed."""
    p = problem.timed(1)
    sizes = [p.alone(u, 1) for u in range(p.n)]
    big = max(range(p.n), key=lambda u: (sizes[u], -u))
    cap = p.capacity
    largest = (f"largest unit {p.names[big]} needs {_gb(sizes[big])} (weights {_gb(p.weight_bytes[big])}, "
               f"KV of one sequence {_gb(p.kv_bytes[big])}, buffers {_gb(p.act_bytes[big])}) "
               f"against {_gb(cap)} per wafer "
               f"({_gb(sram_bytes)} SRAM less the {reserve:g} reserve)")
    fewest, most = fewest_wafers(p)
    fit = f"the fewest wafers that could fit is {fewest}" + ("" if most == fewest else f" to {most}")
    if sizes[big] > cap:
        return (f"infeasible: SRAM per wafer binds: {largest}; {fit} only once that unit fits; change "
                f"--weights-dtype/--kv-dtype, lower --context or --reserve, or use --granularity block")
    if p.min_wafers > p.n:
        return (f"infeasible: --wafers {p.min_wafers} needs at least as many units but the model has "
                f"{p.n}; {largest}; use fewer --wafers or a finer --granularity")
    if fewest > p.max_wafers:
        return (f"infeasible: too few wafers: the model needs {_gb(sum(sizes))} with one sequence, "
                f"{fit} but at most {p.max_wafers} are allowed; {largest}; raise --max-wafers/--wafers "
                f"(and --set wafers=N beyond the target's count) or lower --context/--weights-dtype")
    if heuristic:
        return (f"infeasible: {heuristic}; it tries one placement rule, not every placement (a placement "
                f"may still exist in {p.max_wafers} wafers: {fit}); try --solver cp-sat or dp")
    if p.max_tpot_ticks is not None:
        return _explain_floor(p, largest, fit)
    if p.pins:
        return (f"infeasible: the pins leave no valid placement (memory or DAG order); {largest}; "
                f"{fit}; change --pin")
    return f"infeasible: SRAM and DAG order leave no placement in {p.max_wafers} wafers; {largest}; {fit}"


def _explain_floor(p: Problem, largest: str, fit: str) -> str:
    free = dataclasses.replace(p, max_tpot_ticks=None, objective=Objective.MIN_LATENCY)
    found = solve_contiguous(free, 1) if p.n <= 4096 else None
    tpot_s = p.max_tpot_ticks * TICK_S if p.max_tpot_ticks else 0.0
    floor_tps = 1 / tpot_s if tpot_s else math.inf
    if found is None:
        return f"infeasible: no placement meets --min-tokens-per-s-per-user {floor_tps:.4g}; {largest}; {fit}"
    ev = found[1]
    terms = {
        "compute and SRAM time of the units": p.total_ticks,
        f"I/O hop latency ({ev.wafers} hops)": ev.wafers * p.hop_ticks,
        f"I/O transfer of {max(ev.boundary_bytes, default=0):,} bytes per token per boundary":
            sum(ev.boundary_ticks),
        "the slowest stage": ev.max_stage,
    }
    name = max(terms, key=lambda k: terms[k])
    return (f"infeasible: the per-user floor of {floor_tps:.4g} tokens/s needs <= "
            f"{tpot_s:.4g} s per token but the best placement takes "
            f"{ev.tpot * TICK_S:.4g} s, dominated by {name} ({terms[name] * TICK_S:.4g} s); {largest}; "
            f"{fit}; lower --min-tokens-per-s-per-user" + (" or raise the target's "
            "io_bandwidth_bytes_per_s (--set)" if name.startswith("I/O") else ""))
