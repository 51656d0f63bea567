"""Every zoo model compiles on wse3 with ``--objective min-wafers``.

Oracles: the weight-only lower bound ``ceil(weight bytes / usable SRAM)``; at layer granularity
the unit DAG is a chain, so the fewest wafers is what first-fit packing of the units in order
gives (a segment that fits stays fitting when shortened, so extending each wafer as far as it
goes is optimal), computed here from the per-unit costs and the memory rule of
``placer.solver.problem`` (weights + resident KV + the largest activation buffer). Units of a
layer never go backwards, and no unit-DAG edge goes to an earlier wafer.
"""

from __future__ import annotations

import math

import pytest

from placer.compiler import compile_result
from placer.costs import ModelCost
from placer.targets import load_target
from placer.workload import Workload
from placer.zoo import ZOO_MODELS

TARGET = load_target("wse3")
WORKLOAD = Workload()  # the compile defaults: context 8192, prompt 1024, one sequence


def _first_fit_wafers(cost: ModelCost, capacity: int) -> int:
    """Fewest wafers for a chain of units: extend each wafer while its memory fits."""
    wafers, fixed, buffer = 1, 0, 0
    for u in cost.units:
        size = u.weight_bytes + u.constant_bytes + u.kv_bytes(WORKLOAD.context_tokens)
        act = u.activation_out_bytes_per_token * (WORKLOAD.prompt_tokens + WORKLOAD.concurrency)
        assert size + act <= capacity, f"unit {u.name} does not fit a wafer alone"
        if fixed + size + max(buffer, act) > capacity:
            wafers, fixed, buffer = wafers + 1, 0, 0
        fixed, buffer = fixed + size, max(buffer, act)
    return wafers


def _check_order(result) -> None:
    plan, cost = result.plan, result.cost
    wafer = dict(plan.assignment)
    assert set(wafer) == {u.name for u in cost.units}
    assert sorted(set(wafer.values())) == list(range(len(plan.wafers)))  # every wafer used
    for e in cost.edges:
        assert wafer[e.src] <= wafer[e.dst], f"{e.src} -> {e.dst} goes backwards"
    last: dict[int, int] = {}
    for u in cost.units:  # units of a layer, in unit order, on non-decreasing wafers
        if u.layer >= 0:
            assert wafer[u.name] >= last.get(u.layer, 0), f"{u.name} goes back within its layer"
            last[u.layer] = wafer[u.name]


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_model_compiles_on_the_fewest_wafers(name: str, zoo_model) -> None:
    result = compile_result(zoo_model(name), target="wse3", objective="min-wafers", compare=False)
    plan, cost = result.plan, result.cost
    capacity = math.floor(TARGET.sram_bytes * (1 - TARGET.default_reserve))
    assert plan.solver.status in ("OPTIMAL", "FEASIBLE")
    assert plan.model.weight_bytes == cost.weight_bytes > 0
    bound = math.ceil(cost.weight_bytes / capacity)
    assert len(plan.wafers) >= bound
    assert len(plan.wafers) == _first_fit_wafers(cost, capacity)
    for w in plan.wafers:
        assert w.memory.weights + w.memory.kv + w.memory.activations <= capacity
    _check_order(result)


@pytest.mark.parametrize("name", ["gpt-oss-120b", "mixtral-8x7b"])
def test_zoo_moe_model_compiles_at_expert_granularity(name: str, zoo_model) -> None:
    layered = compile_result(zoo_model(name), target="wse3", objective="min-wafers", compare=False)
    result = compile_result(zoo_model(name, "expert"), target="wse3", objective="min-wafers",
                            granularity="expert", compare=False)
    assert any(".experts." in u.name for u in result.cost.units)
    assert result.cost.weight_bytes == layered.cost.weight_bytes
    # Finer units can only pack as tightly or tighter, never below the weight bound.
    capacity = math.floor(TARGET.sram_bytes * (1 - TARGET.default_reserve))
    bound = math.ceil(result.cost.weight_bytes / capacity)
    assert bound <= len(result.plan.wafers) <= len(layered.plan.wafers)
    _check_order(result)
