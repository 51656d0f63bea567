"""Performance model: formulas checked against hand calculations from the target's constants."""

from __future__ import annotations

import math

import pytest

from placer.costs import Collective, NodeCost
from placer.ir import mesh_physics
from placer.perf import (
    collective_seconds,
    node_cost_seconds,
    predict_performance,
    reduce_cycles,
    swap_in_seconds,
)
from placer.targets import load_target


@pytest.mark.parametrize("k, hop", [(1, 1), (2, 1), (16, 1), (762, 1), (1172, 2), (100, 3)])
def test_reduce_cycles_is_the_emulators_allreduce(k, hop):
    # placer.ir.mesh_physics is checked against the emulated collectives in
    # tests/backends/test_mesh_physics.py; the model must use exactly those counts.
    assert reduce_cycles(k, hop) == mesh_physics.allreduce_cycles(k, 0, hop, 1)


def test_unit_time_compute_or_memory_bound_plus_fabric():
    t = load_target("wse3")
    compute_bound = NodeCost(flops=10**13, weight_read_bytes=10**6)
    assert node_cost_seconds(compute_bound, t) == pytest.approx(10**13 / (762 * 1172 * 15.9 * 1.1e9))
    memory_bound = NodeCost(flops=1, weight_read_bytes=21 * 10**12,
                            collectives=(Collective.gemv(8, 8, 2),) * 2)
    assert node_cost_seconds(memory_bound, t) == pytest.approx(1e-3 + 2 * collective_seconds(t))
    # one 762-PE reduction at 1.1 GHz is on the order of a microsecond: decode is hop-bound
    assert 0.5e-6 < collective_seconds(t) < 3e-6


def test_pipeline_formulas():
    t = load_target("wse3")
    stages, prefill, boundary = [1e-4, 3e-4, 2e-4], [1e-2, 2e-2, 1e-2], [16384, 16384]
    alpha, bw = t.io_latency_s, t.io_bandwidth_bytes_per_s
    r = sum(stages) + 3 * alpha + 2 * 16384 / bw
    one = predict_performance(t, stages, prefill, boundary, 1, 1024)
    assert one.round_trip_s == pytest.approx(r) and one.time_per_output_token_s == pytest.approx(r)
    assert one.bottleneck == "round-trip"
    assert one.sequences_to_fill_pipeline == math.ceil(r / 3e-4)
    many = predict_performance(t, stages, prefill, boundary, 5, 1024)
    assert many.time_per_output_token_s == pytest.approx(max(r, 5 * 3e-4)) and many.bottleneck == "stage"
    assert many.tokens_per_s_total == pytest.approx(5 / many.time_per_output_token_s)
    assert many.tokens_per_s_per_user == pytest.approx(1 / many.time_per_output_token_s)
    ttft = (3 + 3 - 1) * 2e-2 / 3 + 2 * (alpha + 16384 * 1024 / 3 / bw) + alpha
    assert one.ttft_s == pytest.approx(ttft)


def test_swap_in_uses_each_wafers_own_link():
    t = load_target("wse3")
    assert swap_in_seconds(t, [0, 0]) == 0.0
    assert swap_in_seconds(t, [3e9, 1.5e9]) == pytest.approx(t.io_latency_s + 3e9 / 150e9)


def test_gemv_and_row_collectives_on_wse3_by_hand():
    """Hand-derived cycle counts on the 762 x 1172 grid, 1 cycle per hop (ir.mesh_physics).

    GEMV: reduce down a column of 762 PEs to its centre (PE 380): halves of 380 and 381 PEs,
    each in 17 groups of 23 (the farthest of 12 and 13). Half of 381: max(12 x 2 + 23,
    22 x 2) + 1 + 15 x (23 + 1) = 408, one hop to the root -> 409; half of 380: 406 -> 407;
    the root adds both: max(407 + 1, 409) + 1 = 410; plus the input broadcast from the row's
    centre over 1172 PEs: 586 -> 996. Row all-reduce over 1172 PEs: halves of 585 and 586 in
    20 groups of 30 (farthest 15 and 16): 617 + 1 and 619 + 1, root max(619, 620) + 1 = 621,
    plus the broadcast back 586 -> 1207.
    """
    from placer.costs import Collective, NodeCost
    from placer.perf import node_cost_seconds
    from placer.targets import load_target

    t = load_target("wse3")
    g, r = Collective.gemv(8, 8, 2), Collective.row_allreduce(1, 2)
    gemv = NodeCost(collectives=(g,))
    row = NodeCost(collectives=(r,))
    assert node_cost_seconds(gemv, t) == pytest.approx(996 / t.clock_hz)
    assert node_cost_seconds(row, t) == pytest.approx(1207 / t.clock_hz)
    both = NodeCost(collectives=(g,) * 5 + (r,) * 4)
    assert node_cost_seconds(both, t) == pytest.approx((5 * 996 + 4 * 1207) / t.clock_hz)
