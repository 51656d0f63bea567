"""MatMul on the mesh: GEMV (tile multiply + reduction down grid columns) and Cannon GEMM.

Layout (WaferLLM): PE (y, x) holds weight tile W[y*Kt:(y+1)*Kt, x*Nt:(x+1)*Nt]; input chunk y
starts on the centre PE of grid row y and is broadcast along the row. Each PE multiplies
locally, then the partial sums are reduced along grid axis 0 to the centre row, with the
scheme and groups of ``placer.ir.mesh_physics.reduce_groups``. A batched decode step runs
B-row GEMVs: the chunks of all B sequences travel in one stream, so the collective's latency
is paid once per step. Closed forms (tests check them):

- GEMV hops: R*(C-1) (input broadcast) + C*reduce_hops(R, g) (``mesh_physics.reduce_hops``).
- Cannon GEMM on the P x P subgrid, P = min(R, C), interleaved rings (``ring_hops``):
  skew 2 * (2P-2) * P(P-1)/2 and P-1 steps of two shifts of P lines: 6 * P * (P-1)**2 hops;
  cycles ``mesh_physics.cannon_gemm_cycles``.
"""

from __future__ import annotations

import numpy as np

from placer.backends.mesh import collectives
from placer.backends.mesh.grid import Wafer
from placer.backends.mesh.tiling import MatrixTiles, ceil_div, pad_to, tile_vector_rows
from placer.ir import mesh_physics


def _accum(dtype: np.dtype) -> np.dtype:
    # fp16 and narrower accumulate in fp32, as the PEs' FMAC does.
    dt = np.dtype(dtype)
    return np.dtype(np.float32) if dt.itemsize < 4 and dt.kind == "f" else dt


# Elements of weight tiles converted to the accumulation type at a time (a block of grid
# rows): the block stays in cache between its conversion and its tile products.
_BLOCK_ELEMENTS = 1 << 19


def gemv(wafer: Wafer, a: np.ndarray, b_tiles: np.ndarray | MatrixTiles, n: int, *,
         groups: int | None = None, broadcast: bool = True, beside: int = 0) -> np.ndarray:
    """``a`` [batch, M, K] times the tiled ``b_tiles`` [R, C, batch or 1, Kt, Nt] (an array or
    ``MatrixTiles``); returns [batch, M, n]. The reduction runs down grid columns with
    ``groups`` groups per half (default: ``mesh_physics.reduce_groups``). ``broadcast=False``:
    a sibling GEMV already broadcast this input along the rows (fused QKV, gate/up): no fabric
    time for it. ``beside``: cycles of a collective that runs beside this GEMV's broadcast and
    reduction (a fused norm's statistics, ``collectives.statistic_path``): only the part of it
    longer than the fabric cycles this GEMV spends is charged
    (``mesh_physics.fused_norm_extra_cycles``)."""
    R, C = wafer.spec.rows, wafer.spec.cols
    nb, m, _ = a.shape
    tb, kt, nt = b_tiles.shape[2], b_tiles.shape[3], b_tiles.shape[4]
    acc = _accum(a.dtype)
    chunks = tile_vector_rows(a.astype(acc, copy=False), R)              # [R, nb, M, Kt]
    start = wafer.cycles
    row_inputs = collectives.broadcast(wafer, chunks, 1, C, charge=broadcast)  # [R, C, nb, M, Kt]
    fabric = wafer.cycles - start
    wafer.compute(2 * nb * m * kt * nt)
    # Every PE's tile product, a block of grid rows at a time (the same products as one
    # matmul over the grid, without a converted copy of all the tiles).
    partial = np.empty((R, C, max(nb, tb), m, nt), acc)                  # [R, C, nb, M, Nt]
    step = max(1, _BLOCK_ELEMENTS // max(1, C * tb * kt * nt))
    buf = np.zeros((min(step, R), C, tb, kt, nt), acc) if isinstance(b_tiles, MatrixTiles) else None
    for r0 in range(0, R, step):
        r1 = min(R, r0 + step)
        if isinstance(b_tiles, MatrixTiles):
            block = b_tiles.block(r0, r1, acc, out=buf)
        else:
            block = b_tiles[r0:r1].astype(acc, order="C", copy=False)
        np.matmul(row_inputs[r0:r1], block, out=partial[r0:r1])
    start = wafer.cycles
    reduced = collectives.reduce(wafer, partial, 0, groups=groups)    # [C, nb, M, Nt]
    fabric += wafer.cycles - start
    if beside:
        wafer.charge(0, 0, mesh_physics.fused_norm_extra_cycles(beside, fabric))
    out = reduced.transpose(1, 2, 0, 3).reshape(nb, m, C * nt)[:, :, :n]
    return out.astype(a.dtype, copy=False)


def band_gemv(wafer: Wafer, a: np.ndarray, b: np.ndarray, *,
              sums: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """``a`` [nb, G, M, K] @ ``b`` [nb, G, K, N] per KV head group (``nb`` sequences, ``G``
    groups; an attention's QK^T or P @ V over the KV cache, the ``M`` rows the query heads of
    a group that share its K or V tiles), each group's GEMV on its band of grid rows
    (``mesh_physics.kv_bands``; the sequences of a group on the same band, the bands beside
    each other): broadcast along the band's rows, reduction down its columns. Returns the
    [nb, G, M, N] result and, with ``sums``, the sums of each row of ``a`` (fp32 [nb, G, M]):
    each grid row's centre PE sums its chunk, and the band's sums reduce down its centre column
    and multicast along its centre row to the GEMV's roots (``collectives.statistic_path``)
    beside the GEMV; only the part of that path longer than the GEMV's own fabric cycles is
    charged (``mesh_physics.fused_norm_extra_cycles``). Cycles:
    ``mesh_physics.attention_gemv_cycles``."""
    R, C = wafer.spec.rows, wafer.spec.cols
    nb, groups, m, k = a.shape
    n = b.shape[-1]
    bands, rows, per = mesh_physics.kv_bands(R, groups)
    acc = _accum(a.dtype)
    kt, nt, slices = ceil_div(k, rows), ceil_div(n, C), per * nb

    def by_band(x: np.ndarray) -> np.ndarray:  # [nb, G, ...] -> [bands, per * nb, ...], groups padded
        x = pad_to(x.astype(acc, copy=False), 1, bands * per)
        x = x.reshape((nb, bands, per) + x.shape[2:])
        return np.moveaxis(x, 0, 2).reshape((bands, slices) + x.shape[3:])

    ab = pad_to(by_band(a), 3, kt * rows)                                  # [bands, S, M, rows * Kt]
    chunks = ab.reshape(bands, slices, m, rows, kt).transpose(0, 3, 1, 2, 4)
    chunks = chunks.reshape(bands * rows, slices, m, kt)
    bb = pad_to(pad_to(by_band(b), 2, kt * rows), 3, nt * C)              # [bands, S, rows * Kt, C * Nt]
    tiles = np.ascontiguousarray(bb.reshape(bands, slices, rows, kt, C, nt).transpose(0, 2, 4, 1, 3, 5)
                                 ).reshape(bands * rows, C, slices, kt, nt)
    with wafer.buffers(kv_tiles=tiles[0, 0].nbytes):
        start = wafer.cycles
        row_inputs = collectives.broadcast(wafer, chunks, 1, C)            # [bands * rows, C, S, M, Kt]
        fabric = wafer.cycles - start
        wafer.compute(2 * slices * m * kt * nt)
        partial = np.matmul(row_inputs, tiles)                              # [bands * rows, C, S, M, Nt]
        state = partial.reshape(bands, rows, C, slices, m, nt).transpose(1, 0, 2, 3, 4, 5)
        start = wafer.cycles
        reduced = collectives.reduce(wafer, state.reshape(rows, bands * C, slices, m, nt), 0)
        fabric += wafer.cycles - start
        total = None
        if sums:
            local = chunks.astype(np.float32).sum(axis=-1)                  # [bands * rows, S, M]
            state_s = np.ascontiguousarray(local.reshape(bands, rows, slices * m).transpose(1, 0, 2))
            found, cycles = collectives.statistic_path(wafer, state_s, every_line=True)     # [bands, S * M]
            wafer.charge(0, 0, mesh_physics.fused_norm_extra_cycles(cycles, fabric))
            total = _unband(found.reshape(bands, slices, m), nb, per, groups)
    out = reduced.reshape(bands, C, slices, m, nt).transpose(0, 2, 3, 1, 4).reshape(bands, slices, m, C * nt)
    return _unband(out[..., :n], nb, per, groups).astype(a.dtype, copy=False), total


def _unband(x: np.ndarray, nb: int, per: int, groups: int) -> np.ndarray:
    """[bands, per * nb, ...] -> [nb, groups, ...] (``band_gemv``'s layout undone)."""
    bands = x.shape[0]
    x = x.reshape((bands, per, nb) + x.shape[2:])
    return np.moveaxis(x, 2, 0).reshape((nb, bands * per) + x.shape[3:])[:, :groups]


def cannon(wafer: Wafer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` [M, K] @ ``b`` [K, N] by Cannon's algorithm on the P x P subgrid, P = min(R, C):
    skew A along rows and B along columns, then P local tile GEMMs with cyclic shifts of A
    along x and B along y on interleaved rings (at most 2 hops per shift). A and B shift on
    different links at once; a step's shift is double-buffered behind its tile GEMM, so only
    the part of the shift longer than the GEMM is charged."""
    P = min(wafer.spec.rows, wafer.spec.cols)
    m, k = a.shape
    n = b.shape[1]
    acc = _accum(a.dtype)
    mt, kt, nt = mesh_physics.cannon_tiles(m, k, n, P)
    A = pad_to(pad_to(a.astype(acc), 0, mt * P), 1, kt * P).reshape(P, mt, P, kt).transpose(0, 2, 1, 3)
    B = pad_to(pad_to(b.astype(acc), 0, kt * P), 1, nt * P).reshape(P, kt, P, nt).transpose(0, 2, 1, 3)
    idx = np.arange(P)
    hops = mesh_physics.ring_shift_hops(P)

    def shift_cycles() -> int:
        # A along x and B along y at once: the longer of the two transfers.
        return max(wafer.transfer_cycles(hops, A[0, 0].nbytes), wafer.transfer_cycles(hops, B[0, 0].nbytes))

    # Skew: row i of A moves i places left, column j of B moves j places up, one shift a round.
    for s in range(1, P):
        A = wafer.shift(A, 1, cyclic=True, lines=idx >= s, cycles=False)
        B = wafer.shift(B, 0, cyclic=True, lines=idx >= s, cycles=False)
        wafer.charge(0, 0, shift_cycles())
    out = np.zeros((P, P, mt, nt), dtype=acc)
    for step in range(P):
        step_cycles = wafer.compute(2 * mt * kt * nt)
        out += np.matmul(A, B)
        if step < P - 1:
            A = wafer.shift(A, 1, cyclic=True, cycles=False)
            B = wafer.shift(B, 0, cyclic=True, cycles=False)
            wafer.charge(0, 0, max(0, shift_cycles() - step_cycles))
    return out.transpose(0, 2, 1, 3).reshape(P * mt, P * nt)[:m, :n].astype(a.dtype, copy=False)


def gemv_hops(R: int, C: int, groups: int = 1) -> int:
    """Input broadcast R*(C-1) plus, on each of C columns, the reduction's link crossings."""
    return R * (C - 1) + C * mesh_physics.reduce_hops(R, groups)


def cannon_hops(R: int, C: int) -> int:
    P = min(R, C)
    return 6 * P * (P - 1) ** 2


__all__ = ["band_gemv", "cannon", "cannon_hops", "ceil_div", "gemv", "gemv_hops"]
