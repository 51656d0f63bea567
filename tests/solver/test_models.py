"""Llama-shaped problems from analytic costs: the 405B weights-only acceptance case and the
70B KV-residency case where the baselines park sequences or fail and CP-SAT does not."""

from __future__ import annotations

import math

import pytest

from placer.compiler import compile_result
from placer.errors import InfeasibleError
from placer.options import CompileOptions
from placer.solver.problem import build_problem
from placer.solver.solve import solve
from placer.targets import load_target
from tests.solver.factories import llama_cost


def test_405b_weights_only_is_optimal_fast():
    cost = llama_cost("llama-405b", context=0)
    assert cost.parameters == 405_853_388_800  # transformers' exact count (RECIPES.md)
    target = load_target("wse3")
    problem = build_problem(cost, target, CompileOptions.from_flat(context=0, reserve=0.0))
    sol = solve(problem, "cp-sat", time_limit_s=10.0)
    assert sol.status == "OPTIMAL" and sol.gap == 0.0
    # oracle: first-fit over the chain is optimal for the wafer count; 6 layers of 6.37 GB per wafer
    layer = cost.units[1].weight_bytes + cost.units[1].activation_out_bytes_per_token * (1024 + 1)
    assert sol.evaluation.wafers == math.ceil(126 / (target.sram_bytes // layer)) == 21


@pytest.fixture(scope="module")
def plans_70b():
    out = {}
    for gran in ("layer", "block"):
        for conc in (1, 4, 9, 16):
            out[gran, conc] = compile_result(llama_cost("llama-70b", granularity=gran), wafers=4,
                                             concurrency=conc, context=8192, objective="min-latency",
                                             time_limit=5.0)
    return out


def test_70b_plan_says_where_kv_fits(plans_70b):
    for (_gran, conc), result in plans_70b.items():
        plan = result.plan
        kv = plan.kv
        assert kv.bytes_per_token == 327_680 and kv.bytes_per_sequence == 327_680 * 8192
        assert kv.resident_sequences + kv.parked_sequences == conc
        for w in plan.wafers:
            assert w.memory.kv == kv.resident_sequences * w.kv_bytes_per_sequence
            assert w.memory.weights + w.memory.kv + w.memory.activations + w.memory.reserved + w.memory.free \
                == plan.target.sram_bytes and w.memory.free >= 0
        # no wafer could keep one more sequence: residency is the most that fits (all wafers share it)
        if kv.parked_sequences:
            assert min(w.sequences_that_fit for w in plan.wafers) == kv.resident_sequences
            assert kv.swap_in_seconds > 0


def test_block_units_keep_more_sequences_than_baselines(plans_70b):
    result = plans_70b["block", 9]
    by = {s.method: s for s in (result.solution, *result.others)}
    assert result.plan.kv.parked_sequences == 0
    assert not by["greedy"].feasible                       # fills a wafer with weights, no room for KV
    assert by["uniform"].feasible and by["uniform"].evaluation.resident < 9   # parks at least one
    assert by["deepspeed"].evaluation.resident < 9
    layer = plans_70b["layer", 9]
    assert layer.plan.kv.parked_sequences > 0              # layer granularity cannot keep all 9 either
    assert by["dp"].evaluation.resident == 9               # the exact DP agrees with CP-SAT
    assert plans_70b["block", 16].plan.kv.parked_sequences == 7


def test_max_throughput_respects_the_floor():
    cost = llama_cost("llama-70b", granularity="layer")
    free = compile_result(cost, wafers=4, concurrency=16, objective="max-throughput", compare=False).plan
    perf, kv = free.performance, free.kv
    # every sequence that fits stays resident, in one micro-batch per wafer (batched decode)
    assert kv.resident_sequences == min(w.sequences_that_fit for w in free.wafers) and kv.parked_sequences
    assert perf.micro_batches_in_flight == 4 and perf.micro_batch == -(-kv.resident_sequences // 4)
    assert perf.tokens_per_s_per_user == pytest.approx(1 / perf.time_per_output_token_s)
    # parked sequences rotate: their swaps cost some of the resident sequences' rate
    assert perf.tokens_per_s_total < kv.resident_sequences / perf.time_per_output_token_s
    assert perf.tokens_per_s_per_user_mean == pytest.approx(perf.tokens_per_s_total / 16)
    floor = 0.95 / perf.round_trip_s
    held = compile_result(cost, wafers=4, concurrency=16, objective="max-throughput",
                          min_tokens_per_s_per_user=floor, compare=False).plan
    assert held.performance.tokens_per_s_per_user >= floor
    with pytest.raises(InfeasibleError, match="per-user floor"):
        compile_result(cost, wafers=4, concurrency=16, objective="max-throughput",
                       min_tokens_per_s_per_user=1.5 / perf.round_trip_s, compare=False)


def test_objectives_differ_as_intended():
    cost = llama_cost("llama-8b", granularity="layer", context=1024)
    target = load_target("wse3")
    few = solve(build_problem(cost, target, CompileOptions.from_flat(context=1024, max_wafers=8)))
    fast = solve(build_problem(cost, target, CompileOptions.from_flat(context=1024, max_wafers=8,
                                                                      objective="min-latency")))
    assert few.evaluation.wafers == 1          # 16 GB fits one wafer
    assert fast.evaluation.tpot <= few.evaluation.tpot
