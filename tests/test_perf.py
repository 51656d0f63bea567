"""Performance model: formulas checked against hand calculations from the target's constants."""

from __future__ import annotations

import math

import pytest

from placer.costs import Collective, NodeCost
from placer.perf import (
    collective_seconds,
    node_cost_seconds,
    predict_performance,
    reduce_cycles,
    swap_in_seconds,
)
from placer.targets import load_target


def _simulate_chain_reduce(k: int, hop: int) -> int:
    """Step a partial sum from the far PE to PE 0: each PE waits for it, adds (1 cycle), sends."""
    t = 0
    for _ in range(k - 1):
        t += hop + 1
    return t


def _simulate_two_level(k: int, hop: int, g: int) -> int:
    per = math.ceil(k / g)
    inside = _simulate_chain_reduce(per, hop)          # all groups in parallel
    across = (g - 1) * (per * hop + 1)                 # roots are `per` hops apart
    return inside + across


@pytest.mark.parametrize("k, hop", [(1, 1), (2, 1), (16, 1), (762, 1), (1172, 2), (100, 3)])
def test_reduce_cycles_is_the_cheaper_scheme_plus_broadcast(k, hop):
    g = max(1, round(math.sqrt(k)))
    best = min(_simulate_chain_reduce(k, hop), _simulate_two_level(k, hop, g)) if k > 1 else 0
    assert reduce_cycles(k, hop) == best + max(0, k - 1) * hop


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
    """Hand-derived cycle counts on the 762 x 1172 grid, 1 cycle per hop.

    GEMV: reduce down a column of 762 PEs, two-level with g = 28 groups of 28:
    27 x 2 + 27 x (28 + 1) = 837 cycles (< chain 761 x 2), plus the input broadcast along a
    row of 1172 PEs: 1171 cycles -> 2008. Row all-reduce over 1172 PEs: g = 34 groups of 35:
    34 x 2 + 33 x 36 = 1256 (< chain 2342), plus broadcast back 1171 -> 2427.
    """
    from placer.costs import Collective, NodeCost
    from placer.perf import node_cost_seconds
    from placer.targets import load_target

    t = load_target("wse3")
    g, r = Collective.gemv(8, 8, 2), Collective.row_allreduce(1, 2)
    gemv = NodeCost(collectives=(g,))
    row = NodeCost(collectives=(r,))
    assert node_cost_seconds(gemv, t) == pytest.approx(2008 / t.clock_hz)
    assert node_cost_seconds(row, t) == pytest.approx(2427 / t.clock_hz)
    both = NodeCost(collectives=(g,) * 5 + (r,) * 4)
    assert node_cost_seconds(both, t) == pytest.approx((5 * 2008 + 4 * 2427) / t.clock_hz)
