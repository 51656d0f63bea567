"""The mesh emulator: closed-form hop counts, SRAM ledger errors, collectives, kernels vs numpy."""

from __future__ import annotations

import numpy as np
import pytest

from placer.backends.mesh import MeshSpec, SramOverflowError, StatsObserver, Wafer, collectives, linalg
from placer.backends.mesh.host import HOST_OPS
from placer.backends.mesh.ops import MESH_KERNELS
from placer.backends.mesh.tiling import tile_matrix
from placer.ir.ops import OpKind


def make_wafer(rows: int, cols: int, sram: int = 1 << 20) -> tuple[Wafer, StatsObserver]:
    obs = StatsObserver()
    return Wafer(MeshSpec(rows, cols, sram, 16.0, 1, 4, 1e9), "w", [obs]), obs


@pytest.mark.parametrize("rows,cols", [(1, 1), (2, 3), (4, 4), (5, 7), (8, 3)])
def test_gemv_hops_match_closed_form(rows: int, cols: int) -> None:
    wafer, obs = make_wafer(rows, cols)
    rng = np.random.default_rng(0)
    k, n = 3 * rows + 1, 2 * cols + 1
    x = rng.standard_normal((1, 1, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    with wafer.kernel("gemv"):
        y = linalg.gemv(wafer, x, tile_matrix(w[None], rows, cols), n, groups=1)
    np.testing.assert_allclose(y[0], x[0] @ w, rtol=1e-5, atol=1e-5)
    s = obs.stats[("w", "gemv")]
    # Input broadcast along each of R rows (C-1 hops) + chain reduction down each of C columns.
    assert s.hops == rows * (cols - 1) + cols * (rows - 1)
    kt, nt = -(-k // rows), -(-n // cols)
    assert s.link_bytes == 4 * (rows * (cols - 1) * kt + cols * (rows - 1) * nt)


def _half_hops(m: int, groups: int) -> int:
    """Link crossings of one half of a centre-rooted reduction: each of the m - g non-root PEs
    sends one hop inside its group, g - 1 group roots send s hops, the nearest root 1 hop."""
    if m == 0:
        return 0
    s = -(-m // groups)
    g = -(-m // s)
    return (m - g) + (g - 1) * s + 1


@pytest.mark.parametrize("rows,cols,groups", [(4, 3, 2), (12, 2, 3), (16, 5, 4), (13, 3, 2)])
def test_two_level_gemv_hops_match_closed_form(rows: int, cols: int, groups: int) -> None:
    wafer, obs = make_wafer(rows, cols)
    rng = np.random.default_rng(2)
    k, n = 2 * rows + 3, 3 * cols
    x = rng.standard_normal((1, 1, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    with wafer.kernel("gemv"):
        y = linalg.gemv(wafer, x, tile_matrix(w[None], rows, cols), n, groups=groups)
    np.testing.assert_allclose(y[0], x[0] @ w, rtol=1e-5, atol=1e-5)
    # Broadcast R*(C-1); per column, both halves around the centre row (R-1)//2.
    below, above = (rows - 1) // 2, rows - 1 - (rows - 1) // 2
    per_column = _half_hops(below, groups) + _half_hops(above, groups)
    assert obs.stats[("w", "gemv")].hops == rows * (cols - 1) + cols * per_column
    assert obs.stats[("w", "gemv")].hops == linalg.gemv_hops(rows, cols, groups)


def test_default_gemv_reduction_is_the_fastest_choice_of_groups() -> None:
    x = np.ones((1, 1, 64), np.float32)
    w = np.ones((64, 8), np.float32)
    cycles = {}
    for groups in (None, 1, 2, 3, 4):
        wafer, obs = make_wafer(16, 2)
        with wafer.kernel("gemv"):
            linalg.gemv(wafer, x, tile_matrix(w[None], 16, 2), 8, groups=groups)
        cycles[groups] = obs.stats[("w", "gemv")].cycles
    # 16 rows, 1 cycle per hop: halves of 7 and 8 rows; 8 as a chain: 8 * 2 + 1 = 17 cycles
    # of head; in 3 groups of 3: max(1*2 + 3, 2*2) + 1 + (3 + 1) + 1 (hop) + 2 (adds) = 13.
    assert cycles[None] == min(cycles.values())
    assert cycles[1] - cycles[3] == 17 - 13


@pytest.mark.parametrize("rows,cols", [(2, 2), (3, 5), (4, 4), (6, 4)])
def test_cannon_hops_match_closed_form(rows: int, cols: int) -> None:
    wafer, obs = make_wafer(rows, cols)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((7, 9)).astype(np.float32)
    b = rng.standard_normal((9, 5)).astype(np.float32)
    with wafer.kernel("gemm"):
        y = linalg.cannon(wafer, a, b)
    np.testing.assert_allclose(y, a @ b, rtol=1e-5, atol=1e-5)
    p = min(rows, cols)
    ring = 2 * p - 2  # one cyclic shift of a P-line on an interleaved ring
    skew = 2 * ring * sum(range(p))  # row i of A and column i of B move i places
    steps = (p - 1) * 2 * p * ring
    assert obs.stats[("w", "gemm")].hops == skew + steps


def test_two_level_reduce_hops_and_value() -> None:
    wafer, obs = make_wafer(12, 2)
    x = np.arange(12 * 2 * 3, dtype=np.float64).reshape(12, 2, 3)
    with wafer.kernel("r"):
        out = collectives.two_level_reduce(wafer, x, 0, groups=3)
    np.testing.assert_allclose(out, x.sum(0))
    # Root at PE 5; halves of 5 and 6 PEs, each in 3 groups of 2: (5-3) + 2*2 + 1 and
    # (6-3) + 2*2 + 1 link crossings, on each of the 2 columns.
    assert obs.stats[("w", "r")].hops == 2 * (7 + 8)


def test_sram_overflow_names_tensor_and_pe() -> None:
    wafer, _ = make_wafer(2, 3, sram=1000)
    need = np.zeros((2, 3), dtype=np.int64)
    need[1, 2] = 600
    wafer.ledger.allocate("weight:a", 500)
    with pytest.raises(SramOverflowError, match=r"'weight:b'.*row 1, col 2"):
        wafer.ledger.allocate("weight:b", need)
    wafer.ledger.free("weight:a")
    wafer.ledger.allocate("weight:b", need)
    assert wafer.ledger.max_used == 600


def test_every_op_kind_runs_on_the_mesh_or_is_declared_host_side() -> None:
    assert set(MESH_KERNELS) | set(HOST_OPS) == set(OpKind)
    assert not set(MESH_KERNELS) & set(HOST_OPS)


def test_shift_counts_one_hop_per_moving_tile() -> None:
    wafer, obs = make_wafer(3, 4)
    state = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    with wafer.kernel("s"):
        out = wafer.shift(state, 1, +1)
    np.testing.assert_array_equal(out[:, 1:, 0], state[:, :-1, 0])
    assert (out[:, 0] == 0).all()
    assert obs.stats[("w", "s")].hops == 3 * 3


def _padded_tiles(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The tile layout written out with np.pad (the oracle of ``tile_matrix``)."""
    nb, k, n = x.shape
    kt, nt = -(-k // rows), -(-n // cols)
    p = np.pad(x, [(0, 0), (0, kt * rows - k), (0, nt * cols - n)])
    return p.reshape(nb, rows, kt, cols, nt).transpose(1, 3, 0, 2, 4)


@pytest.mark.parametrize("nb,k,n,rows,cols", [(1, 10, 9, 4, 4), (1, 7, 13, 3, 5), (2, 5, 5, 4, 3),
                                              (1, 3, 3, 5, 5), (1, 40, 33, 7, 6)])
def test_matrix_tiles_blocks_equal_the_padded_tiling(nb: int, k: int, n: int, rows: int, cols: int) -> None:
    import ml_dtypes

    from placer.backends.mesh.tiling import MatrixTiles

    rng = np.random.default_rng(1)
    x = rng.standard_normal((nb, k, n)).astype(ml_dtypes.bfloat16)
    ref = _padded_tiles(x, rows, cols)
    assert np.array_equal(tile_matrix(x, rows, cols), ref)
    tiles = MatrixTiles(x, rows, cols)
    assert tiles.shape == ref.shape and np.array_equal(np.asarray(tiles), ref)
    for step in (1, 2, rows):  # one buffer refilled block after block
        buf = np.zeros((step,) + ref.shape[1:], np.float32)
        for r0 in range(0, rows, step):
            got = tiles.block(r0, min(rows, r0 + step), np.float32, out=buf)
            assert np.array_equal(got, ref[r0:r0 + step].astype(np.float32))
    t = MatrixTiles(np.swapaxes(x, 1, 2), cols, rows)  # a transposed view (Gemm's trans_b)
    assert np.array_equal(np.asarray(t), _padded_tiles(np.swapaxes(x, 1, 2), cols, rows))


@pytest.mark.parametrize("block", [1, 40, 1 << 19])  # elements converted at a time: 1 grid row .. all
def test_gemv_on_matrix_tiles_equals_gemv_on_tile_arrays(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import ml_dtypes

    from placer.backends.mesh.tiling import MatrixTiles

    rng = np.random.default_rng(2)
    k, n, rows, cols = 37, 29, 5, 4
    monkeypatch.setattr(linalg, "_BLOCK_ELEMENTS", block)
    x = rng.standard_normal((1, 1, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(ml_dtypes.bfloat16)
    results = []
    for tiles in (tile_matrix(w[None], rows, cols), MatrixTiles(w[None], rows, cols)):
        wafer, obs = make_wafer(rows, cols)
        with wafer.kernel("gemv"):
            results.append((linalg.gemv(wafer, x, tiles, n), obs.stats[("w", "gemv")]))
    (y0, s0), (y1, s1) = results
    assert np.array_equal(y0, y1) and s0 == s1
    np.testing.assert_allclose(y0[0], x[0] @ w.astype(np.float32), rtol=1e-5, atol=1e-5)
