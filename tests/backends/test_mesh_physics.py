"""``placer.ir.mesh_physics`` (the performance model's cycle counts) against the emulator's
collectives, run on one emulated line of PEs: the full wse2 and wse3 grid lengths, odd and
prime lengths. Values are checked against numpy sums."""

from __future__ import annotations

import numpy as np
import pytest

from placer.backends.mesh import MeshSpec, StatsObserver, Wafer, collectives, linalg
from placer.backends.mesh.tiling import tile_matrix
from placer.ir import mesh_physics as mp
from placer.ir import op_semantics
from placer.ir.ops import OpKind

# wse2 757 x 996, wse3 762 x 1172; odd and prime lengths.
LENGTHS = [1, 2, 3, 4, 5, 7, 13, 16, 31, 97, 101, 757, 762, 996, 1172]


def line_wafer(k: int, hop: int = 1, link: int = 4) -> tuple[Wafer, StatsObserver]:
    obs = StatsObserver()
    return Wafer(MeshSpec(k, 1, 1 << 20, 16.0, hop, link, 1e9), "w", [obs]), obs


@pytest.mark.parametrize("k", LENGTHS)
@pytest.mark.parametrize("hop,tile", [(1, 4), (1, 96), (2, 40)])
def test_line_reduce_cycles_equal_the_emulated_reduction(k: int, hop: int, tile: int) -> None:
    wafer, obs = line_wafer(k, hop)
    x = np.random.default_rng(k).standard_normal((k, 1, tile // 4)).astype(np.float32)
    with wafer.kernel("r"):
        out = collectives.reduce(wafer, x, 0)
    np.testing.assert_allclose(out, x.sum(0), rtol=1e-5, atol=1e-5)
    assert obs.stats[("w", "r")].cycles == mp.reduce_cycles(k, tile, hop, 4)


@pytest.mark.parametrize("k", LENGTHS)
def test_broadcast_and_allreduce_cycles_equal_the_emulator(k: int) -> None:
    wafer, obs = line_wafer(k)
    x = np.random.default_rng(k).standard_normal((k, 1, 3)).astype(np.float32)
    with wafer.kernel("b"):
        b = collectives.broadcast(wafer, x[:1, 0], 0, k)
    np.testing.assert_array_equal(b, np.broadcast_to(x[:1, 0], (k, 1, 3)))
    assert obs.stats[("w", "b")].cycles == mp.broadcast_cycles(k, 12, 1, 4)
    with wafer.kernel("a"):
        a = collectives.all_reduce(wafer, x, 0)
    np.testing.assert_allclose(a, np.broadcast_to(x.sum(0), (k, 1, 3)), rtol=1e-5, atol=1e-5)
    assert obs.stats[("w", "a")].cycles == mp.allreduce_cycles(k, 12, 1, 4)


@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 5), (7, 2), (13, 4), (16, 16)])
def test_gemv_collective_cycles_equal_the_emulated_gemv(rows: int, cols: int) -> None:
    obs = StatsObserver()
    wafer = Wafer(MeshSpec(rows, cols, 1 << 20, 16.0, 1, 4, 1e9), "w", [obs])
    rng = np.random.default_rng(rows * cols)
    k, n = 3 * rows + 2, 2 * cols + 1
    x = rng.standard_normal((1, 1, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    with wafer.kernel("g"):
        y = linalg.gemv(wafer, x, tile_matrix(w[None], rows, cols), n)
    np.testing.assert_allclose(y[0], x[0] @ w, rtol=1e-5, atol=1e-5)
    kt, nt = -(-k // rows), -(-n // cols)
    s = obs.stats[("w", "g")]
    assert s.comm_cycles == mp.gemv_collective_cycles(rows, cols, 4 * kt, 4 * nt, 1, 4)


def test_one_choice_of_groups_on_a_prime_line() -> None:
    # 757 PEs (the wse2 grid's rows) is prime: the two-level scheme must not need a divisor.
    assert mp.reduce_groups(757, 4, 1, 4) > 1
    assert mp.reduce_cycles(757, 0, 1, 4) < 2 * 756


def test_op_semantics_cover_the_mesh_kernels() -> None:
    assert op_semantics.flops_per_element(OpKind.EXP) == op_semantics.TRANSCENDENTAL_FLOPS
    assert op_semantics.row_statistics(OpKind.SOFTMAX) == 2
    assert op_semantics.row_statistics(OpKind.RMS_NORM) == 1
    assert op_semantics.is_free_view(OpKind.RESHAPE) and not op_semantics.is_free_view(OpKind.TRANSPOSE)


@pytest.mark.parametrize("rows,cols", [(757, 996), (762, 1172)])
def test_full_grid_gemv_and_row_allreduce_equal_the_model(rows: int, cols: int) -> None:
    """The wse2 and wse3 grids: one element per PE, so the emulation stays cheap."""
    obs = StatsObserver()
    wafer = Wafer(MeshSpec(rows, cols, 1 << 20, 16.0, 1, 4, 1e9), "w", [obs])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, rows)).astype(np.float32)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    with wafer.kernel("g"):
        y = linalg.gemv(wafer, x, tile_matrix(w[None], rows, cols), cols)
    np.testing.assert_allclose(y[0], x[0].astype(np.float64) @ w, rtol=1e-4, atol=1e-3)
    assert obs.stats[("w", "g")].comm_cycles == mp.gemv_collective_cycles(rows, cols, 4, 4, 1, 4)
    stats = rng.standard_normal((rows, cols, 1)).astype(np.float32)
    with wafer.kernel("a"):
        out = collectives.all_reduce(wafer, stats, 1)
    np.testing.assert_allclose(out[:, 0], stats.astype(np.float64).sum(1), rtol=1e-4, atol=1e-3)
    assert obs.stats[("w", "a")].cycles == mp.allreduce_cycles(cols, 4, 1, 4)


def test_centre_rooted_streamed_collectives_beat_the_end_rooted_chain() -> None:
    for k in (757, 762, 996, 1172):
        chain_from_end = (k - 1) * 2 + 1  # one hop and one add per PE, then a 4-byte stream
        assert 2 * mp.reduce_cycles(k, 4, 1, 4) < chain_from_end
        assert mp.broadcast_cycles(k, 4, 1, 4) == (k // 2) * 1 + 1
        # The all-reduce streams its tile once: less than a reduce plus a broadcast.
        assert mp.allreduce_cycles(k, 40, 1, 4) == (mp.reduce_cycles(k, 40, 1, 4)
                                                    + mp.broadcast_cycles(k, 40, 1, 4) - 10)


def test_sibling_gemvs_share_one_broadcast_and_a_batch_pays_latency_once() -> None:
    rows, cols, k, n, batch = 7, 5, 20, 9, 8
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, batch, k)).astype(np.float32)
    w1, w2 = (rng.standard_normal((k, n)).astype(np.float32) for _ in range(2))
    obs = StatsObserver()
    wafer = Wafer(MeshSpec(rows, cols, 1 << 20, 16.0, 1, 4, 1e9), "w", [obs])
    with wafer.kernel("q"):
        y1 = linalg.gemv(wafer, x, tile_matrix(w1[None], rows, cols), n)
    with wafer.kernel("k"):
        y2 = linalg.gemv(wafer, x, tile_matrix(w2[None], rows, cols), n, broadcast=False)
    np.testing.assert_allclose(y1[0], x[0] @ w1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y2[0], x[0] @ w2, rtol=1e-5, atol=1e-5)
    tin, tout = mp.gemv_tile_bytes(batch, k, n, rows, cols, 4)
    assert obs.stats[("w", "q")].comm_cycles == mp.gemv_collective_cycles(rows, cols, tin, tout, 1, 4)
    assert obs.stats[("w", "k")].comm_cycles == mp.reduce_cycles(rows, tout, 1, 4)
    assert obs.stats[("w", "k")].hops == cols * mp.reduce_hops(rows, mp.reduce_groups(rows, tout, 1, 4))
    # B rows in one collective: the head latency once, the stream B times.
    one_in, one_out = mp.gemv_tile_bytes(1, k, n, rows, cols, 4)
    single = mp.gemv_collective_cycles(rows, cols, one_in, one_out, 1, 4)
    batched = mp.gemv_collective_cycles(rows, cols, tin, tout, 1, 4)
    assert batched - single == mp.stream_cycles(tin, 4) - mp.stream_cycles(one_in, 4) + \
        mp.stream_cycles(tout, 4) - mp.stream_cycles(one_out, 4)


@pytest.mark.parametrize("rows,cols,m,k,n", [(1, 1, 3, 4, 5), (2, 2, 5, 3, 4), (5, 7, 9, 11, 6),
                                              (4, 4, 64, 64, 64), (3, 3, 2, 1, 2)])
def test_cannon_cycles_equal_the_emulated_cannon(rows: int, cols: int, m: int, k: int, n: int) -> None:
    obs = StatsObserver()
    wafer = Wafer(MeshSpec(rows, cols, 1 << 20, 15.9, 1, 4, 1e9), "w", [obs])
    rng = np.random.default_rng(m * k * n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    with wafer.kernel("c"):
        y = linalg.cannon(wafer, a, b)
    np.testing.assert_allclose(y, a @ b, rtol=1e-5, atol=1e-5)
    p = min(rows, cols)
    assert obs.stats[("w", "c")].cycles == mp.cannon_gemm_cycles(m, k, n, p, 4, 1, 4, 15.9)
