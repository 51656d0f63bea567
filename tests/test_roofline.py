"""Roofline on every zoo model: the predicted total tokens/s never exceeds what the wafers'
FLOPs and SRAM bandwidth allow, counted independently from the costs' totals; and the
physics-only target (no fitted overhead) is never slower than the calibrated one."""

from __future__ import annotations

import pytest

from placer.compiler import compile_result
from placer.cost_model import annotate_costs
from placer.options import CompileOptions
from placer.perf.placement import predicted_round_trip
from placer.targets import load_target
from placer.zoo import ZOO_MODELS


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_total_tokens_per_s_within_the_roofline(name, zoo_model):
    target = load_target("wse3")
    options = CompileOptions.from_flat(context=8192, concurrency=64, objective="max-throughput",
                                       time_limit=1.0, compare=False)
    cost = annotate_costs(zoo_model(name).graph, target, options.workload)
    plan = compile_result(cost, options).plan
    total = plan.performance.tokens_per_s_total
    assert total > 0
    for wafer in plan.wafers:  # every token passes every wafer
        units = [cost.unit(u) for u in wafer.units]
        flops = sum(u.decode.flops for u in units)                # per token of one sequence
        streamed = sum(u.decode.activation_bytes for u in units)  # activations and KV reads per token
        assert total * flops <= target.peak_flops * (1 + 1e-9)
        assert total * streamed <= target.sram_bandwidth_bytes_per_s * (1 + 1e-9)
    # wse3-physics is the bound a deployment could approach: the same placement is at least as
    # fast without the calibrated overheads
    physics = load_target("wse3-physics")
    assignment = dict(plan.assignment)
    batch = plan.performance.micro_batch
    assert predicted_round_trip(cost, physics, assignment, batch) <= \
        predicted_round_trip(cost, target, assignment, batch)
    assert predicted_round_trip(cost, physics, assignment, batch) < plan.performance.round_trip_s
