"""Distribute logical tensors over the PE grid and back (zero padding to whole tiles)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pad_to(x: np.ndarray, axis: int, size: int, value: float = 0) -> np.ndarray:
    extra = size - x.shape[axis]
    if extra <= 0:
        return x
    if x.dtype.kind in "fc" or np.isfinite(value):
        # A filled buffer and one copy: several times faster than np.pad on small tiles.
        shape = list(x.shape)
        shape[axis] = size
        # np.zeros takes pages the kernel has zeroed: no fill pass over a large buffer.
        out = np.zeros(shape, x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
        out[(slice(None),) * (axis % x.ndim) + (slice(0, x.shape[axis]),)] = x
        return out
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, extra)
    return np.pad(x, pad, constant_values=value)


def tile_matrix(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[batch, K, N] -> [rows, cols, batch, Kt, Nt]: PE (y, x) holds x[:, y*Kt:(y+1)*Kt, x*Nt:(x+1)*Nt]
    (zero padded). Copied one grid row at a time (``MatrixTiles.block``), with no padded copy."""
    return MatrixTiles(x, rows, cols).block(0, rows)


@dataclass(frozen=True)
class MatrixTiles:
    """The tiles of ``tile_matrix(matrix, rows, cols)``, cut from ``matrix`` [batch, K, N] a
    block of grid rows at a time (``block``) instead of held as one padded 5-D copy: a
    resident weight's tiles cost no host memory beyond its stored matrix, and a kernel
    converts each block to its compute type while the block is in cache. ``shape``, ``ndim``
    and ``dtype`` are those of the array ``tile_matrix`` returns; ``np.asarray`` gives it."""

    matrix: np.ndarray
    rows: int
    cols: int

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        nb, k, n = self.matrix.shape
        return self.rows, self.cols, nb, ceil_div(k, self.rows), ceil_div(n, self.cols)

    @property
    def ndim(self) -> int:
        return 5

    @property
    def dtype(self) -> np.dtype:
        return self.matrix.dtype

    def block(self, r0: int, r1: int, dtype: np.dtype | type | None = None, *,
              out: np.ndarray | None = None) -> np.ndarray:
        """Grid rows ``r0:r1`` of the tiles, [r1 - r0, cols, batch, Kt, Nt], C-contiguous, in
        ``dtype`` (default the matrix's); equal to ``tile_matrix(...)[r0:r1].astype(dtype)``.
        ``out``: a buffer of at least ``r1 - r0`` grid rows, zero wherever no tile of this
        matrix has data (zeroed once, then filled again block after block: fresh pages would
        cost a zeroing pass each); the result is its leading rows."""
        _, _, nb, kt, nt = self.shape
        k, n = self.matrix.shape[1:]
        if out is None:
            out = np.zeros((r1 - r0, self.cols, nb, kt, nt), dtype or self.matrix.dtype)
        out = out[:r1 - r0]
        whole = n // nt if nt else 0  # grid columns whose tiles are complete (the last may be partial)
        for j, y in enumerate(range(r0, r1)):
            rows = self.matrix[:, min(y * kt, k):min((y + 1) * kt, k)]  # [nb, kk, N]
            kk = rows.shape[1]
            out[j, :whole, :, :kk] = rows[:, :, :whole * nt].reshape(nb, kk, whole, nt).transpose(2, 0, 1, 3)
            if whole < self.cols:
                out[j, whole, :, :kk, :n - whole * nt] = rows[:, :, whole * nt:]
            if kk < kt:  # the padding rows of the last grid rows
                out[j, :, :, kk:] = 0
        return out

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        return self.block(0, self.rows, dtype)


def tile_vector_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """[batch, M, K] -> [rows, batch, M, Kt]: row y gets chunk y of K (before the row broadcast)."""
    nb, m, k = x.shape
    kt = ceil_div(k, rows)
    x = pad_to(x, 2, kt * rows)
    return np.ascontiguousarray(x.reshape(nb, m, rows, kt).transpose(2, 0, 1, 3))


def tile_flat(x: np.ndarray, rows: int, cols: int, fill: float = 0) -> np.ndarray:
    """Any tensor -> [rows, cols, n]: a block distribution of its flattened elements."""
    flat = x.reshape(-1)
    n = ceil_div(max(flat.size, 1), rows * cols)
    return pad_to(flat, 0, n * rows * cols, fill).reshape(rows, cols, n)


def untile_flat(t: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    size = int(np.prod(shape, dtype=np.int64))
    return t.reshape(-1)[:size].reshape(shape)


def tile_rows(x: np.ndarray, rows: int, cols: int, fill: float = 0) -> np.ndarray:
    """[M, K] -> [rows, cols, Mt, Kt]: M over grid rows, the reduced axis K over grid columns."""
    m, k = x.shape
    mt, kt = ceil_div(max(m, 1), rows), ceil_div(max(k, 1), cols)
    x = pad_to(pad_to(x, 0, mt * rows, fill), 1, kt * cols, fill)
    return x.reshape(rows, mt, cols, kt).transpose(0, 2, 1, 3)


def untile_rows(t: np.ndarray, m: int, k: int) -> np.ndarray:
    """Inverse of ``tile_rows`` (for results that keep the reduced axis)."""
    rows, cols, mt, kt = t.shape
    return t.transpose(0, 2, 1, 3).reshape(rows * mt, cols * kt)[:m, :k]


def per_pe_bytes(numel: int, itemsize: int, pes: int) -> int:
    """Bytes on each PE of a tensor spread evenly over ``pes`` PEs."""
    return ceil_div(numel, pes) * itemsize
