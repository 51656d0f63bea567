"""MatMul on the mesh: GEMV (tile multiply + reduction along grid rows) and Cannon GEMM.

Layout (WaferLLM): PE (y, x) holds weight tile W[y*Kt:(y+1)*Kt, x*Nt:(x+1)*Nt]; input chunk y
enters row y at column 0 and is chain-broadcast along the row. Each PE multiplies locally,
then partial sums are reduced along grid rows (axis 0) with the scheme and groups of
``placer.ir.mesh_physics.reduce_groups`` (a chain or WaferLLM's two-level groups).
Closed forms on an R x C grid (tests check them):

- GEMV hops: R*(C-1) (input broadcast) + C*(R-1) (chain reduction), or with g groups of
  s = ceil(R/g) rows R*(C-1) + C*((R-g) + (g-1)*s).
- Cannon GEMM on the P x P subgrid, P = min(R, C), interleaved rings (``ring_hops``):
  skew 2 * (2P-2) * P(P-1)/2 and P-1 steps of two shifts of P lines: 6 * P * (P-1)**2 hops.
"""

from __future__ import annotations

import numpy as np

from placer.backends.mesh import collectives
from placer.backends.mesh.grid import Wafer
from placer.backends.mesh.tiling import ceil_div, pad_to, tile_vector_rows


def _accum(dtype: np.dtype) -> np.dtype:
    # fp16 and narrower accumulate in fp32, as the PEs' FMAC does.
    dt = np.dtype(dtype)
    return np.dtype(np.float32) if dt.itemsize < 4 and dt.kind == "f" else dt


def gemv(wafer: Wafer, a: np.ndarray, b_tiles: np.ndarray, n: int, *,
         groups: int | None = None) -> np.ndarray:
    """``a`` [batch, M, K] times the tiled ``b_tiles`` [R, C, batch or 1, Kt, Nt]; returns
    [batch, M, n]. The reduction runs along grid rows: a chain (``groups`` 1), two-level
    (``groups`` > 1) or, by default, whichever of the two is faster on R rows."""
    R, C = wafer.spec.rows, wafer.spec.cols
    nb, m, _ = a.shape
    kt, nt = b_tiles.shape[3], b_tiles.shape[4]
    acc = _accum(a.dtype)
    chunks = tile_vector_rows(a.astype(acc, copy=False), R)              # [R, nb, M, Kt]
    row_inputs = collectives.broadcast(wafer, chunks, 1, C)            # [R, C, nb, M, Kt]
    wafer.compute(2 * nb * m * kt * nt)
    partial = np.matmul(row_inputs, b_tiles.astype(acc, copy=False))   # [R, C, nb, M, Nt]
    reduced = collectives.reduce(wafer, partial, 0, groups=groups)    # [C, nb, M, Nt]
    out = reduced.transpose(1, 2, 0, 3).reshape(nb, m, C * nt)[:, :, :n]
    return out.astype(a.dtype, copy=False)


def cannon(wafer: Wafer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` [M, K] @ ``b`` [K, N] by Cannon's algorithm on the P x P subgrid, P = min(R, C):
    skew A along rows and B along columns, then P local tile GEMMs with cyclic shifts of A
    along x and B along y on interleaved rings (at most 2 hops per shift)."""
    P = min(wafer.spec.rows, wafer.spec.cols)
    m, k = a.shape
    n = b.shape[1]
    acc = _accum(a.dtype)
    mt, kt, nt = ceil_div(m, P), ceil_div(k, P), ceil_div(n, P)
    A = pad_to(pad_to(a.astype(acc), 0, mt * P), 1, kt * P).reshape(P, mt, P, kt).transpose(0, 2, 1, 3)
    B = pad_to(pad_to(b.astype(acc), 0, kt * P), 1, nt * P).reshape(P, kt, P, nt).transpose(0, 2, 1, 3)
    idx = np.arange(P)
    # Skew: row i of A moves i places left, column j of B moves j places up, one shift a round.
    for s in range(1, P):
        A = wafer.shift(A, 1, cyclic=True, lines=idx >= s)
        B = wafer.shift(B, 0, cyclic=True, lines=idx >= s)
    out = np.zeros((P, P, mt, nt), dtype=acc)
    for step in range(P):
        wafer.compute(2 * mt * kt * nt)
        out += np.matmul(A, B)
        if step < P - 1:
            A = wafer.shift(A, 1, cyclic=True)
            B = wafer.shift(B, 0, cyclic=True)
    return out.transpose(0, 2, 1, 3).reshape(P * mt, P * nt)[:m, :n].astype(a.dtype, copy=False)


def gemv_hops(R: int, C: int, groups: int = 1) -> int:
    """Input broadcast R*(C-1) plus, on each of C columns, a chain (R-1 hops) or a two-level
    reduction of g groups of s = ceil(R/g) PEs (R-g inner hops and (g-1) root sends of s hops)."""
    if groups <= 1 or R <= 1:
        return R * (C - 1) + C * max(R - 1, 0)
    s = -(-R // groups)
    g = -(-R // s)
    return R * (C - 1) + C * ((R - g) + (g - 1) * s)


def cannon_hops(R: int, C: int) -> int:
    P = min(R, C)
    return 6 * P * (P - 1) ** 2

