"""Baselines: how popular tools would split the same units, scored by the same cost model.

* ``uniform`` (vLLM's pipeline split, ``get_pp_indices``): equal decoder layers per stage, the
  remainder to the stages before the last; units outside layers follow their neighbours.
  Memory is not considered.
* ``greedy`` (Hugging Face Accelerate ``infer_auto_device_map``): fill each wafer in order with
  the units' weights and buffers up to its memory, then move to the next. The KV cache is not
  counted (Accelerate sizes parameters and buffers only). When a wafer count is required
  (``--wafers N``) and filling uses fewer, each wafer's weights are capped at their share, as
  Accelerate's ``device_map="balanced"`` does.
* ``deepspeed`` (DeepSpeed ``partition_method="parameters"``): contiguous stages that balance
  the parameter count (``partition_balanced``: the smallest max-stage sum). Memory is not
  considered.

Each baseline gives an assignment per wafer count; the count is swept over what the problem
allows and the best one by the problem's own ranking is kept (its resident sequences are the
most that fit). A baseline can fail: the reason is reported, as a real deployment would fail.
"""

from __future__ import annotations

from collections.abc import Callable

from placer.solver.problem import Evaluation, Problem, best_evaluation, rank_key

BASELINES = ("uniform", "greedy", "deepspeed")


def split_uniform(problem: Problem, wafers: int) -> list[int] | None:
    layers = sorted({layer for layer in problem.layers if layer >= 0})
    if len(layers) < wafers:
        return None
    per = [len(layers) // wafers] * wafers
    for i in range(2, len(layers) % wafers + 2):
        per[-i % wafers] += 1
    stage_of: dict[int, int] = {}
    pos = 0
    for stage, count in enumerate(per):
        for layer in layers[pos:pos + count]:
            stage_of[layer] = stage
        pos += count
    out: list[int] = []
    seen_layer = False
    for layer in problem.layers:
        if layer >= 0:
            seen_layer = True
            out.append(stage_of[layer])
        else:
            out.append(wafers - 1 if seen_layer else 0)
    return out


def split_greedy(problem: Problem, wafers: int, limit: int | None = None) -> list[int] | None:
    """Fill each wafer in order up to its capacity (or ``limit`` bytes of weights, Accelerate's
    balanced map) and move to the next."""
    out: list[int] = []
    w, load, buffer = 0, 0, 0
    for u in range(problem.n):
        size = problem.weight_bytes[u]
        full = load + size + max(buffer, problem.act_bytes[u]) > problem.capacity or \
            (limit is not None and load + size > limit)
        if full and load > 0:
            w, load, buffer = w + 1, 0, 0
        out.append(w)
        load += size
        buffer = max(buffer, problem.act_bytes[u])
    return out if max(out) + 1 <= wafers else None


def split_greedy_balanced(problem: Problem, wafers: int) -> list[int] | None:
    """Accelerate's ``device_map="balanced"`` (``get_balanced_memory``) when exactly ``wafers`` are
    required: each wafer takes about its share of the weights plus the largest unit (the buffer
    Accelerate adds), so that filling in order uses every wafer; None when it does not."""
    total = sum(problem.weight_bytes)
    share = -(-total // wafers)
    for limit in (share + max(problem.weight_bytes, default=0), share):
        out = split_greedy(problem, wafers, limit)
        if out is not None and max(out) + 1 == wafers:
            return out
    return None


def split_parameters(problem: Problem, wafers: int) -> list[int] | None:
    weights = [max(0, p) for p in problem.parameters]
    if problem.n < wafers:
        return None

    def parts(limit: int) -> list[int] | None:
        out, w, load = [], 0, 0
        for x in weights:
            if load + x > limit and load > 0:
                w, load = w + 1, 0
            out.append(w)
            load += x
        return out if w < wafers else None

    lo, hi = max(weights, default=0), sum(weights)
    while lo < hi:
        mid = (lo + hi) // 2
        if parts(mid) is None:
            lo = mid + 1
        else:
            hi = mid
    out = parts(lo)
    if out is None:
        return None
    # DeepSpeed uses every stage: split the largest stages if the balance left some empty.
    while max(out) + 1 < wafers:
        counts = [out.count(w) for w in range(max(out) + 1)]
        w = counts.index(max(counts))
        members = [u for u, a in enumerate(out) if a == w]
        second = set(members[len(members) // 2:])
        out = [a + 1 if a > w or u in second else a for u, a in enumerate(out)]
    return out


SPLITTERS: dict[str, Callable[[Problem, int], list[int] | None]] = {
    "uniform": split_uniform,
    "greedy": split_greedy,
    "deepspeed": split_parameters,
}


def run_baseline(problem: Problem, name: str) -> tuple[list[int] | None, Evaluation]:
    """The baseline's best assignment over the allowed wafer counts, and its evaluation."""
    split = SPLITTERS[name]
    best: tuple[list[int], Evaluation] | None = None
    first_failure: Evaluation | None = None
    counts = range(problem.min_wafers, problem.max_wafers + 1)
    if name == "greedy":
        counts = range(problem.max_wafers, problem.max_wafers + 1)  # greedy picks its own count
    for wafers in counts:
        assignment = split(problem, wafers)
        if name == "greedy" and problem.min_wafers > 1 and assignment is not None and \
                max(assignment) + 1 < problem.min_wafers:
            # a required wafer count (--wafers N): Accelerate balances the memory over the devices
            assignment = split_greedy_balanced(problem, problem.min_wafers)
        if assignment is None:
            continue
        ev = best_evaluation(problem, assignment)
        if not ev.feasible:
            first_failure = first_failure or ev
            continue
        if best is None or rank_key(problem, ev) < rank_key(problem, best[1]):
            best = (assignment, ev)
    if best is not None:
        return best
    if first_failure is not None:
        return None, first_failure
    return None, Evaluation(False, f"no {name} split fits {problem.min_wafers}..{problem.max_wafers} wafers")
