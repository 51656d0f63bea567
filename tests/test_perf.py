"""Performance model: formulas checked against hand calculations from the target's constants,
the collectives against ``placer.ir.mesh_physics`` (the emulator's), and the integer model
against the float model (a property test)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from placer.costs import Collective, NodeCost
from placer.ir import mesh_physics as mp
from placer.options import CompileOptions
from placer.perf import (
    TICK_S,
    fabric_cycles,
    predict_performance,
    prefill_chunk,
    step_seconds,
    swap_in_seconds,
    unit_decode_seconds,
)
from placer.perf.placement import place
from placer.solver.problem import build_problem, evaluate
from placer.targets import load_target
from tests.solver.factories import llama_cost


def test_fabric_is_the_emulators_collectives_latency_once_per_step():
    t = load_target("wse3")
    g, r = Collective.gemv(4096, 1024, 2), Collective.row_allreduce(1, 4)
    gemv = mp.gemv_collective_cycles(762, 1172, 6 * 2, 1 * 2, 1, 4)  # ceil(4096/762), ceil(1024/1172)
    row = mp.allreduce_cycles(1172, mp.row_tile_bytes(1, 1, 762, 4), 1, 4)
    cost = NodeCost(collectives=(g,) * 5 + (r,) * 4)
    assert fabric_cycles(cost, t) == 5 * gemv + 4 * row
    # a micro-batch of 64 pays the latency once; only the tiles (64 x as large) stream longer
    gemv64 = mp.gemv_collective_cycles(762, 1172, 64 * 12, 64 * 2, 1, 4)
    assert fabric_cycles(cost, t, rows=64) == 5 * gemv64 + 4 * mp.allreduce_cycles(
        1172, mp.row_tile_bytes(64, 1, 762, 4), 1, 4)
    assert fabric_cycles(cost, t, rows=64) < 2 * fabric_cycles(cost, t)
    # GEMVs sharing an input (fused QKV) share one broadcast
    q, k = Collective.gemv(4096, 4096, 2, "x"), Collective.gemv(4096, 1024, 2, "x")
    shared = NodeCost(collectives=(q, k))
    bq = mp.gemv_collective_cycles(762, 1172, 12, 8, 1, 4)
    bk = mp.gemv_collective_cycles(762, 1172, 12, 2, 1, 4, broadcast=False)
    assert fabric_cycles(shared, t) == bq + bk
    # one whole-wafer collective is on the order of a microsecond at 1.1 GHz: decode is hop-bound
    assert 0.5e-6 < gemv / t.clock_hz < 3e-6


def test_unit_step_compute_or_memory_bound_plus_fabric_and_batching():
    t = load_target("wse3")
    compute_bound = NodeCost(flops=10**13, weight_read_bytes=10**6)
    assert step_seconds(compute_bound, t) == pytest.approx(10**13 / (762 * 1172 * 15.9 * 1.1e9))
    assert step_seconds(compute_bound, t, rows=4) == pytest.approx(4 * step_seconds(compute_bound, t))
    memory_bound = NodeCost(flops=1, weight_read_bytes=21 * 10**12,
                            collectives=(Collective.gemv(8, 8, 2),) * 2)
    fabric = fabric_cycles(memory_bound, t) / t.clock_hz
    assert step_seconds(memory_bound, t) == pytest.approx(1e-3 + fabric)
    # weights are read once per step: 8 rows cost the same SRAM time, not 8x
    fabric8 = fabric_cycles(memory_bound, t, rows=8) / t.clock_hz
    assert step_seconds(memory_bound, t, rows=8) == pytest.approx(1e-3 + fabric8)


def test_moe_weight_reads_add_up_over_the_batch_to_the_stored_weights():
    from dataclasses import replace

    t = load_target("wse3")
    unit = llama_cost("llama-8b", layers=1).units[1]
    expert = replace(unit, decode=replace(unit.decode, flops=0, activation_bytes=0, kv_read_bytes=0,
                                          collectives=(), weight_read_bytes=unit.weight_bytes // 8))
    one, four, many = (unit_decode_seconds(expert, t, b) for b in (1, 4, 64))
    assert four == pytest.approx(4 * one)
    assert many == pytest.approx(unit.weight_bytes / t.sram_bandwidth_bytes_per_s)


def test_pipeline_formulas():
    t = load_target("wse3-physics", {"hop_overhead_s": 2e-5})  # a small per-hop overhead: a stage binds
    stages, chunks, boundary = [1e-4, 3e-4, 2e-4], [1e-2, 2e-2, 1e-2], [16384, 16384]
    # a hop: the link's latency plus the target's per-hop overhead
    alpha, bw = t.io_latency_s + t.hop_overhead_s, t.io_bandwidth_bytes_per_s
    assert t.hop_overhead_s > 0
    r = sum(stages) + 3 * alpha + 2 * 16384 / bw
    one = predict_performance(t, stages, chunks, boundary, 1, 1024, chunk_tokens=1024)
    assert one.round_trip_s == pytest.approx(r) and one.time_per_output_token_s == pytest.approx(r)
    assert one.bottleneck == "round-trip" and one.micro_batches_in_flight == 1
    assert one.sequences_to_fill_pipeline == math.ceil(r / 3e-4)
    many = predict_performance(t, stages, chunks, boundary, 5, 1024, chunk_tokens=1024)
    assert many.time_per_output_token_s == pytest.approx(max(r, 5 * 3e-4)) and many.bottleneck == "stage"
    assert many.tokens_per_s_total == pytest.approx(5 / many.time_per_output_token_s)
    assert many.tokens_per_s_per_user == pytest.approx(1 / many.time_per_output_token_s)
    # 6 sequences in micro-batches of 3: two in flight, each boundary carries 3 tokens per step
    batched = predict_performance(t, stages, chunks, boundary, 6, 1024, batch=3, chunk_tokens=1024)
    r3 = sum(stages) + 3 * alpha + 2 * 3 * 16384 / bw
    assert batched.micro_batches_in_flight == 2
    assert batched.time_per_output_token_s == pytest.approx(max(r3, 2 * 3e-4))
    assert batched.tokens_per_s_total == pytest.approx(6 / batched.time_per_output_token_s)
    # TTFT: one chunk of the whole prompt through three wafers and two hops, plus the return hop
    ttft = sum(chunks) + 2 * (alpha + 16384 * 1024 / bw) + alpha
    assert one.ttft_s == pytest.approx(ttft)
    four = predict_performance(t, stages, chunks, boundary, 1, 4096, chunk_tokens=1024)
    assert four.ttft_s == pytest.approx(ttft + 3 * 2e-2)  # three more chunks behind the slowest wafer


def test_parked_sequences_rotate_and_pay_their_swaps():
    t = load_target("wse3")
    stages, kv = [1e-3, 1e-3], [1_000_000_000, 1_000_000_000]
    resident = predict_performance(t, stages, [1e-3] * 2, [16384], 4, 16, batch=2, concurrency=4,
                                   kv_bytes_per_wafer=kv, decode_tokens=100)
    rotating = predict_performance(t, stages, [1e-3] * 2, [16384], 4, 16, batch=2, concurrency=8,
                                   kv_bytes_per_wafer=kv, decode_tokens=100)
    tpot, swap = resident.time_per_output_token_s, swap_in_seconds(t, kv)
    assert rotating.time_per_output_token_s == pytest.approx(tpot)
    assert rotating.tokens_per_s_total == pytest.approx(4 * 100 / (100 * tpot + swap))
    assert rotating.tokens_per_s_per_user_mean == pytest.approx(rotating.tokens_per_s_total / 8)
    assert rotating.tokens_per_s_per_user_min <= rotating.tokens_per_s_per_user_mean
    assert rotating.throughput_bound == "SRAM capacity"
    assert rotating.swap_bytes_per_s_per_wafer == pytest.approx(rotating.tokens_per_s_total / 100 * 1e9)
    assert resident.tokens_per_s_per_user_mean == resident.tokens_per_s_per_user


def test_swap_in_uses_each_wafers_own_link():
    t = load_target("wse3")
    assert swap_in_seconds(t, [0, 0]) == 0.0
    assert swap_in_seconds(t, [3e9, 1.5e9]) == pytest.approx(t.io_latency_s + t.hop_overhead_s + 3e9 / 150e9)


def test_prefill_chunk_gives_every_pe_row_a_token():
    assert prefill_chunk(load_target("wse3"), 96_000) == 1024
    assert prefill_chunk(load_target("wse3"), 100) == 100
    assert prefill_chunk(load_target("wse-mini"), 96_000) == 16


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=st.integers(1, 10), context=st.sampled_from([0, 64, 4096, 65536]),
       concurrency=st.integers(1, 40), data=st.data())
def test_integer_model_is_the_float_model_rounded(layers, context, concurrency, data):
    """The solver's evaluation of a random assignment agrees with the plan's float model within
    the rounding of each unit, edge and hop to 0.1 ns ticks (each term at most half a tick,
    counted once per micro-batch in flight)."""
    cost = llama_cost("llama-8b", layers=layers, context=context)
    target = load_target("wse3")
    n = len(cost.units)
    wafers = data.draw(st.integers(1, min(n, 6)))
    cuts = sorted(data.draw(st.sets(st.integers(1, n - 1), min_size=wafers - 1, max_size=wafers - 1))) \
        if wafers > 1 else []
    assignment = [sum(u >= c for c in cuts) for u in range(n)]
    resident = data.draw(st.integers(1, concurrency))
    options = CompileOptions.from_flat(context=context, concurrency=concurrency, max_wafers=8)
    problem = build_problem(cost, target, options)
    ev = evaluate(problem, assignment, resident)
    assume(ev.feasible)
    perf = place(cost, target, options.workload, assignment, resident, ev.batch).performance
    m = perf.micro_batches_in_flight
    assert m == -(-resident // ev.batch)
    slack = m * (n + len(cost.edges) + wafers + 1) * TICK_S
    assert abs(ev.tpot * TICK_S - perf.time_per_output_token_s) <= slack
    assert abs(ev.round_trip * TICK_S - perf.round_trip_s) <= slack
    assert abs(ev.max_stage * TICK_S - perf.max_stage_s) <= slack
