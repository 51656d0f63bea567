"""Per-PE SRAM ledger: named tiles (weights, KV, buffers) checked against each PE's SRAM."""

from __future__ import annotations

import numpy as np


class SramOverflowError(MemoryError):
    """A tile does not fit in a PE's SRAM. ``tensor`` and ``pe`` (row, col) name the culprit."""

    def __init__(self, tensor: str, pe: tuple[int, int], need: int, used: int, capacity: int,
                 wafer: str = "") -> None:
        self.tensor, self.pe = tensor, pe
        where = f"{wafer} " if wafer else ""
        super().__init__(
            f"tensor {tensor!r} needs {need} B on {where}PE (row {pe[0]}, col {pe[1]}), which already "
            f"holds {used} B of its {capacity} B SRAM; spread it over more PEs or wafers")


class SramLedger:
    """What each PE holds, by tile name. ``allocate`` raises rather than silently spilling.

    ``window`` gives the ledger of a rectangle of these PEs: its ``used`` is a view of this
    one's, so tiles entered on a rectangle (a unit's region) and on the whole wafer add up on
    the PEs they share, and overflow is reported at the PE's wafer coordinates."""

    def __init__(self, rows: int, cols: int, capacity: int, wafer: str = "", *,
                 used: np.ndarray | None = None, origin: tuple[int, int] = (0, 0)) -> None:
        self.rows, self.cols, self.capacity, self.wafer = rows, cols, capacity, wafer
        self.used = np.zeros((rows, cols), dtype=np.int64) if used is None else used
        self.origin = origin
        self.tiles: dict[str, np.ndarray | int] = {}
        self.peak = 0
        self.peak_in_scope = 0  # highest per-PE use since the last ``reset_scope``

    def allocate(self, name: str, bytes_per_pe: np.ndarray | int) -> None:
        """Add tile ``name`` (bytes on each PE: a scalar or a [rows, cols] array)."""
        if name in self.tiles:
            self.free(name)
        need = np.broadcast_to(np.asarray(bytes_per_pe, dtype=np.int64), self.used.shape)
        total = self.used + need
        over = total > self.capacity
        if over.any():
            r, c = np.unravel_index(int(np.argmax(over)), over.shape)
            pe = (int(r) + self.origin[0], int(c) + self.origin[1])
            raise SramOverflowError(name, pe, int(need[r, c]), int(self.used[r, c]), self.capacity,
                                    self.wafer)
        self.used[...] = total  # in place: a window writes through to its wafer's ledger
        self.tiles[name] = bytes_per_pe if np.ndim(bytes_per_pe) == 0 else np.asarray(bytes_per_pe)
        self.peak = max(self.peak, int(total.max()))
        self.peak_in_scope = max(self.peak_in_scope, int(total.max()))

    def free(self, name: str) -> None:
        self.used -= np.asarray(self.tiles.pop(name), dtype=np.int64)

    def holds(self, name: str) -> bool:
        return name in self.tiles

    @property
    def max_used(self) -> int:
        return int(self.used.max())

    def window(self, row: int, col: int, rows: int, cols: int) -> SramLedger:
        """The ledger of the ``rows x cols`` PEs with top-left PE (``row``, ``col``)."""
        return SramLedger(rows, cols, self.capacity, self.wafer,
                          used=self.used[row:row + rows, col:col + cols],
                          origin=(self.origin[0] + row, self.origin[1] + col))

    def reset_scope(self) -> None:
        self.peak_in_scope = self.max_used
