"""Exact dynamic programme over contiguous splits of the units' topological order, and the
first-fit fill that gives every search a feasible starting point.

On a chain (every edge ``i -> i+1``) every valid assignment is a contiguous split, so
``solve_contiguous`` is exact: the oracle CP-SAT is tested against. On a DAG it is exact over
contiguous splits of the given topological order only (a heuristic and a hint).

The DP keeps, for each prefix ``[0, j)`` split into ``k`` wafers, the Pareto front of
``(max stage ticks, sum of boundary I/O ticks, max boundary I/O ticks)``; every objective is
non-decreasing in all three, so dropping dominated states keeps the optimum.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate

from placer.perf import formulas as f
from placer.solver.problem import Evaluation, Problem, evaluate, objective_value

_State = tuple[int, int, int, int, int, int]  # max stage, sum B, max B, parent i, parent k, parent idx


def cut_ticks(problem: Problem) -> list[int]:
    """``cut[p]``: I/O ticks of the edges crossing a boundary placed before unit ``p``."""
    diff = [0] * (problem.n + 1)
    for e in problem.edges:
        diff[e.src + 1] += e.ticks
        diff[e.dst + 1] -= e.ticks
    return list(accumulate(diff))[: problem.n]


def dp_work(problem: Problem, resident: int) -> int:
    """Rough count of DP transitions, to decide whether the DP is worth running."""
    sizes = problem.sizes(resident)
    work, lo, load = 0, 0, 0
    for j in range(problem.n):
        load += sizes[j]
        while load > problem.capacity and lo <= j:
            load -= sizes[lo]
            lo += 1
        work += (j - lo + 1) * problem.max_wafers
    return work


class _Staircase:
    """The lower-left envelope of points ``(x, y)``: answers "is some point <= (x, y) in both?"
    in O(log n). ``xs`` ascend and ``ys`` strictly descend (kept negated, ``nys``, ascending, so
    that both are bisected directly)."""

    def __init__(self) -> None:
        self.xs: list[int] = []
        self.nys: list[int] = []

    def dominates(self, x: int, y: int) -> bool:
        i = bisect_right(self.xs, x) - 1
        return i >= 0 and -self.nys[i] <= y

    def add(self, x: int, y: int) -> None:
        i = bisect_left(self.xs, x)
        # the points (x', y') with x' >= x and y' >= y that the new one dominates: the run
        # from i while y' >= y (ys fall along xs), found by bisection
        j = max(i, bisect_right(self.nys, -y, lo=i))
        self.xs[i:j] = [x]
        self.nys[i:j] = [-y]


def _prune(states: list[_State]) -> list[_State]:
    """The Pareto front of ``(max stage, sum B, max B)``: sorted by the first key, a state is
    dominated exactly when an earlier kept state is no worse in the other two (a staircase
    query), so the sweep is O(n log n) instead of comparing every pair."""
    states.sort()
    kept: list[_State] = []
    stairs = _Staircase()
    for s in states:
        if not stairs.dominates(s[1], s[2]):
            kept.append(s)
            stairs.add(s[1], s[2])
    return kept


def _prune_across(found: dict[int, list[_State]]) -> dict[int, list[_State]]:
    """Prune each wafer count's front, then drop states dominated by a kept state on fewer
    wafers (same sweep: earlier fronts' states are inserted, this front's are queried)."""
    kept: dict[int, list[_State]] = {}
    seen: list[_State] = []
    for k in sorted(found):
        states = _prune(found[k])
        # Sort seen states before equal candidates (flag 0 < 1): an equal state dominates.
        events = sorted([(s[:3], 0, s) for s in seen] + [(s[:3], 1, s) for s in states])
        stairs = _Staircase()
        mine: list[_State] = []
        for key, is_candidate, s in events:
            if not is_candidate:
                stairs.add(key[1], key[2])
            elif not stairs.dominates(key[1], key[2]):
                mine.append(s)
        seen.extend(mine)
        if mine:
            kept[k] = mine
    return kept


class DPBudgetExceeded(Exception):
    """The DP's Pareto fronts grew past ``max_states`` transitions (many small units with
    distinct costs, e.g. expert groups): the caller falls back to heuristics and CP-SAT."""


def solve_contiguous(problem: Problem, resident: int, max_states: int | None = None,
                     wafer_cap: int | None = None) -> tuple[list[int], Evaluation] | None:
    """The best contiguous split at ``resident`` sequences, or None when none is feasible.

    ``wafer_cap``: consider at most this many wafers (the caller knows the optimum uses no
    more, e.g. ``min-wafers`` with a feasible split on that many).

    Raises:
        DPBudgetExceeded: more than ``max_states`` states were generated (a count, not a time,
            so the outcome does not depend on the machine).
    """
    p = problem.timed(resident)
    n, cap, limit = p.n, p.capacity, p.max_tpot_ticks
    top = p.max_wafers if wafer_cap is None else max(p.min_wafers, min(p.max_wafers, wafer_cap))
    if n == 0:
        return None
    m_flight = p.micro_batches(resident)
    sizes = p.sizes(resident)
    size_prefix = [0, *accumulate(sizes)]
    tick_prefix = [0, *accumulate(p.ticks)]
    cut = cut_ticks(p)
    pin = dict(p.pins)
    fixed = p.total_ticks
    cross_k = not p.pins and p.min_wafers == 1
    fronts: list[dict[int, list[_State]]] = [{} for _ in range(n + 1)]
    fronts[0][0] = [(0, 0, 0, -1, -1, -1)]
    generated = 0
    for j in range(1, n + 1):
        found: dict[int, list[_State]] = {}
        seg_pin, seg_act = -1, 0
        for i in range(j - 1, -1, -1):
            seg_act = max(seg_act, p.act_bytes[i])
            if size_prefix[j] - size_prefix[i] + seg_act > cap:
                break
            if i in pin:
                if seg_pin not in (-1, pin[i]):
                    break
                seg_pin = pin[i]
            seg = tick_prefix[j] - tick_prefix[i]
            if limit is not None and m_flight * seg > limit:
                break
            for k_prev, states in fronts[i].items():
                if k_prev + 1 > top or (seg_pin >= 0 and seg_pin != k_prev):
                    continue
                b = cut[i] if i else 0
                for idx, (m, sb, mb, *_rest) in enumerate(states):
                    new = (max(m, seg), sb + b, max(mb, b), i, k_prev, idx)
                    if limit is not None and (
                            m_flight * new[2] > limit
                            or f.round_trip(fixed, new[1], k_prev + 1, p.hop_ticks, p.host_ticks) > limit):
                        continue
                    found.setdefault(k_prev + 1, []).append(new)
                    generated += 1
            if max_states is not None and generated > max_states:
                raise DPBudgetExceeded(f"more than {max_states} DP states")
        if cross_k:  # a state on fewer wafers that is no worse dominates (objectives grow with k)
            found = _prune_across(found)
        fronts[j] = {k: _prune(v) for k, v in found.items()}
    best: tuple[int, int, int] | None = None
    for k in range(p.min_wafers, top + 1):
        for idx, _ in enumerate(fronts[n].get(k, ())):
            ev_key = _score(p, fronts[n][k][idx], k, resident)
            if ev_key is not None and (best is None or ev_key < best[0]):
                best = (ev_key, k, idx)
    if best is None:
        return None
    assignment = [0] * n
    j, k, idx = n, best[1], best[2]
    while j > 0:
        state = fronts[j][k][idx]
        for u in range(state[3], j):
            assignment[u] = k - 1
        j, k, idx = state[3], state[4], state[5]
    ev = evaluate(p, assignment, resident)
    return (assignment, ev) if ev.feasible else None


def _score(p: Problem, state: _State, k: int, resident: int) -> int | None:
    m, sb, mb = state[0], state[1], state[2]
    trip = f.round_trip(p.total_ticks, sb, k, p.hop_ticks, p.host_ticks)
    tpot = f.tpot(trip, m, mb, p.micro_batches(resident))
    if p.max_tpot_ticks is not None and tpot > p.max_tpot_ticks:
        return None
    return objective_value(p, k, m, tpot)


def fill_first_fit(problem: Problem, resident: int, wafers: int | None = None) -> list[int] | None:
    """Fill wafers in topological order up to capacity (``resident`` sequences' KV counted),
    honouring pins; then split the largest pin-free wafers until ``wafers`` are used."""
    p = problem
    pin = dict(p.pins)
    sizes = p.sizes(resident)
    assignment: list[int] = []
    w, load, buffer = 0, 0, 0
    for u in range(p.n):
        if p.alone(u, resident) > p.capacity:
            return None
        target = pin.get(u)
        if target is not None and target < w:
            return None
        if load + sizes[u] + max(buffer, p.act_bytes[u]) > p.capacity or (target is not None and target > w):
            w, load, buffer = w + 1, 0, 0
            if target is not None and target != w:
                return None
        assignment.append(w)
        load += sizes[u]
        buffer = max(buffer, p.act_bytes[u])
    want = wafers if wafers is not None else p.min_wafers
    while max(assignment, default=-1) + 1 < want:
        split = _split_largest(assignment, set(pin))
        if split is None:
            return None
        assignment = split
    return assignment


def _split_largest(assignment: list[int], pinned: set[int]) -> list[int] | None:
    """Split the wafer with the most units (none of them pinned) in two halves."""
    groups: dict[int, list[int]] = {}
    for u, w in enumerate(assignment):
        groups.setdefault(w, []).append(u)
    candidates = [w for w, us in groups.items() if len(us) > 1 and not pinned & set(us)]
    if not candidates:
        return None
    w = max(candidates, key=lambda c: (len(groups[c]), -c))
    members = groups[w]
    second = set(members[len(members) // 2:])
    return [a + 1 if a > w or u in second else a for u, a in enumerate(assignment)]
