"""Pricing a unit on a rectangle: tiles divide with ceil, time is the performance model's on the
rectangle, colours follow the documented model."""

from __future__ import annotations

import dataclasses

from placer import perf
from placer.costs import Collective, KVCost, NodeCost, UnitCost
from placer.floorplan.colours import path_colours, region_colours
from placer.floorplan.pricing import (
    candidate_shapes,
    code_reserve_bytes,
    price_shape,
    region_pe_bytes,
    region_target,
    unit_pe_bytes,
)
from placer.ir.graph import UnitKind
from placer.ir.mesh_physics import reduce_groups
from placer.targets import load_target

WSE3 = load_target("wse3")


def _unit(**changes) -> UnitCost:
    base = UnitCost(
        name="layers.0",
        kind=UnitKind.LAYER,
        layer=0,
        parameters=10 * 7 + 5 * 3 + 4,
        weight_bytes=2 * (10 * 7 + 5 * 3 + 4),
        constant_bytes=9,
        kv=(KVCost("k", 6, 0), KVCost("v", 6, 4)),
        decode=NodeCost(
            flops=1000,
            weight_read_bytes=178,
            activation_bytes=40,
            collectives=(Collective.gemv(10, 7, 2), Collective.gemv(5, 3, 2), Collective.row_allreduce(1, 4)),
        ),
        prefill=NodeCost(),
        activation_out_bytes_per_token=20,
        matmul_shapes=((10, 7), (5, 3)),
    )
    return dataclasses.replace(base, **changes)


def test_tiles_divide_with_ceil_not_average():
    u = _unit()
    # On 3 x 2 PEs: [10, 7] -> ceil(10/3) x ceil(7/2) = 4 x 4 elements, [5, 3] -> 2 x 2, at 2 B;
    # 4 other parameters over 6 PEs -> 1 element = 2 B; 9 constant bytes -> 2 B; KV at context
    # 10, batch 2: k: ceil(6/3) x ceil(10/2) = 10 B, v (window 4): 2 x 2 = 4 B, per sequence.
    assert unit_pe_bytes(u, 3, 2, context_tokens=10, batch=2) == 2 * 16 + 2 * 4 + 2 + 2 + 2 * (10 + 4)
    average = (u.weight_bytes + u.constant_bytes + 2 * u.kv_bytes(10)) / 6
    assert unit_pe_bytes(u, 3, 2, 10, 2) > average
    # Buffers: the larger GEMV's input chunk and partial sums, fp32, per sequence; reserve once.
    assert region_pe_bytes([u], WSE3, 3, 2, 10, 2) == (
        code_reserve_bytes(WSE3) + unit_pe_bytes(u, 3, 2, 10, 2) + 2 * 4 * (4 + 4)
    )
    assert code_reserve_bytes(WSE3) == 2458  # 5 % of 49,152 B, rounded up


def test_time_is_the_performance_model_on_the_rectangle():
    u = _unit()
    sub = region_target(WSE3, 40, 50)
    assert sub.pes == 2000 and sub.peak_flops == 2000 * WSE3.flops_per_cycle_per_pe * WSE3.clock_hz
    assert abs(sub.sram_bandwidth_bytes_per_s - WSE3.sram_bandwidth_bytes_per_s * 2000 / WSE3.pes) < 1
    shape = price_shape([u, u], WSE3, 40, 50, 10, 1)
    one = perf.unit_decode_seconds(u, sub) * WSE3.clock_hz
    assert shape.ticks == 2 * -(-one // 1)


def test_candidates_fit_the_pe_and_include_the_narrowest_strip():
    u = _unit(
        parameters=4096 * 4096,
        weight_bytes=2 * 4096 * 4096,
        matmul_shapes=((4096, 4096),),
        kv=(),
        constant_bytes=0,
    )
    shapes = candidate_shapes([u], WSE3, 8192, 1, regions=34)
    assert shapes and all(s.pe_bytes <= WSE3.pe_sram_bytes for s in shapes)
    full = [s for s in shapes if s.rows == WSE3.mesh_rows]
    narrowest = min(s.cols for s in full)
    assert region_pe_bytes([u], WSE3, WSE3.mesh_rows, narrowest - 1, 8192, 1) > WSE3.pe_sram_bytes


def test_a_unit_too_big_for_the_wafer_offers_the_whole_grid_only():
    mini = load_target("wse-mini")
    u = _unit(parameters=10**8, weight_bytes=2 * 10**8, matmul_shapes=((10**4, 10**4),))
    (shape,) = candidate_shapes([u], mini, 8192, 1, regions=1)
    assert (shape.rows, shape.cols) == (16, 16) and shape.pe_bytes > mini.pe_sram_bytes


def test_colour_model():
    # A GEMV region: the row broadcast (1) plus the column reduction (chain 1, two-level 2) plus
    # a row all-reduce's reduction along the row (1 or 2); one-PE lines need none.
    def groups(k: int) -> int:
        return 1 if reduce_groups(k, 4, 1, 4) <= 1 else 2

    assert region_colours(1, 1, True, True, 4, 1, 4) == 0
    assert region_colours(762, 30, True, True, 4, 1, 4) == 1 + groups(762) + groups(30)
    assert region_colours(762, 30, True, False, 4, 1, 4) == 1 + groups(762)
    assert groups(762) == 2 and groups(2) == 1
    # Data path: a chain alternates 2 colours; one value read by every layer needs a third.
    assert path_colours([(0, 1), (1, 2), (2, 3)]) == 2
    assert path_colours([(0, 1), (1, 2), (2, 3), (1, 3)]) == 2  # streams 0 and 2 never meet
    assert path_colours([(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)]) == 3
    assert path_colours([]) == 0
    # Routed experts: the router multicasts on one colour; the combine region receives every
    # expert's answer, so each expert answers on its own colour.
    assert path_colours([(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)]) == 4
