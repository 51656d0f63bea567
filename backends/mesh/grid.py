"""A wafer: a rows x cols grid of PEs with an SRAM ledger, a neighbour-only fabric and observers.

Per-PE state is a numpy array whose two leading axes are [rows, cols]. The only ways data moves
are ``shift`` (every PE passes its tile to a neighbour, optionally cyclically along an embedded
ring) and ``send`` (a line of PEs passes tiles one hop along an axis); both count hops (tile
transfers over one link) and link bytes exactly. Collectives and kernels are built on them.

``Wafer.region`` cuts a rectangle of PEs out of a wafer as a ``Wafer`` of its own (its spec's
rows and cols are the rectangle's, its ledger a window of the wafer's): every kernel and
collective runs on it unchanged, spanning only the rectangle's rows and columns (``--layout
regions``, where each unit owns a rectangle). ``route`` moves a value between two rectangles
of one wafer along the fabric.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from placer.backends.mesh.ledger import SramLedger
from placer.backends.mesh.tiling import MatrixTiles
from placer.ir import mesh_physics


@dataclass(frozen=True)
class MeshSpec:
    """The per-wafer figures the emulator needs (a subset of ``placer.targets.Target``)."""

    rows: int
    cols: int
    pe_sram_bytes: int
    flops_per_cycle_per_pe: float
    cycles_per_hop: int
    link_bytes_per_cycle: int
    clock_hz: float

    @staticmethod
    def from_target(target: Any, rows: int | None = None, cols: int | None = None) -> MeshSpec:
        """From any object with the Target's field names; ``rows``/``cols`` override the grid."""
        return MeshSpec(rows or target.mesh_rows, cols or target.mesh_cols, target.pe_sram_bytes,
                        target.flops_per_cycle_per_pe, target.cycles_per_hop,
                        target.link_bytes_per_cycle, target.clock_hz)

    @property
    def pes(self) -> int:
        return self.rows * self.cols


class Observer(Protocol):
    def on_kernel(self, wafer: str, kernel: str) -> None: ...
    def on_compute(self, wafer: str, kernel: str, cycles: int) -> None: ...
    def on_transfer(self, wafer: str, kernel: str, hops: int, link_bytes: int, cycles: int) -> None: ...
    def on_memory(self, wafer: str, kernel: str, pe_bytes: int) -> None: ...


def ring_hops(n: int) -> int:
    """Physical hops of one cyclic shift along an interleaved ring of ``n`` PEs
    (0, 2, 4, ..., 5, 3, 1): two edges of 1 hop, ``n - 2`` edges of 2 hops."""
    return 0 if n <= 1 else 2 * n - 2


class Wafer:
    """One emulated wafer. ``resident`` holds placed tiles (weights, KV) by name."""

    def __init__(self, spec: MeshSpec, name: str = "wafer0", observers: list[Observer] | None = None, *,
                 ledger: SramLedger | None = None, origin: tuple[int, int] = (0, 0)) -> None:
        self.spec = spec
        self.name = name
        self.ledger = ledger or SramLedger(spec.rows, spec.cols, spec.pe_sram_bytes, name)
        self.origin = origin  # top-left PE on the physical wafer (a region's corner)
        self.regions: list[Wafer] = []
        self.observers: list[Observer] = list(observers or [])
        self.resident: dict[Any, np.ndarray | MatrixTiles | None] = {}  # None: placed, but not tiled
        self.label = "idle"
        # Per execution: a decode step runs its weight MatMuls as B-row GEMVs (``decode``);
        # values already broadcast along the grid rows by a GEMV (``broadcast_inputs``) are
        # not broadcast again by a sibling GEMV reading them (fused QKV, gate/up).
        self.decode = False
        self.broadcast_inputs: set[str] = set()
        # Norms fused into the GEMVs they feed (``placer.ir.norm_fusion``; the executor sets
        # them), and per execution the statistics a fused norm left for its GEMVs, by the
        # name of its output (``placer.backends.mesh.ops.FusedNorm``).
        self.fused_norms: frozenset[str] = frozenset()
        self.pending_norms: dict[str, Any] = {}
        self.cycles = 0  # every cycle charged so far (the executor attributes them to units)

    # --- regions ----------------------------------------------------------------------------
    def region(self, row: int, col: int, rows: int, cols: int) -> Wafer:
        """The ``rows x cols`` PEs with top-left PE (``row``, ``col``) as a wafer of their own:
        same name and observers (its events count for this wafer), a window of this wafer's
        ledger, its own resident tiles and cycle count. One object per rectangle.

        Raises:
            ValueError: the rectangle is empty or leaves the grid.
        """
        if rows < 1 or cols < 1 or row < 0 or col < 0 or row + rows > self.spec.rows \
                or col + cols > self.spec.cols:
            raise ValueError(f"rectangle at (row {row}, col {col}) of {rows} x {cols} PEs does not lie "
                             f"inside {self.name}'s {self.spec.rows} x {self.spec.cols} grid")
        for r in self.regions:
            if r.origin == (row, col) and (r.spec.rows, r.spec.cols) == (rows, cols):
                return r
        sub = Wafer(dataclasses.replace(self.spec, rows=rows, cols=cols), self.name, self.observers,
                    ledger=self.ledger.window(row, col, rows, cols), origin=(row, col))
        self.regions.append(sub)
        return sub

    @property
    def centre(self) -> tuple[int, int]:
        """The PE a region's incoming and outgoing activations enter and leave by: (row +
        rows // 2, col + cols // 2) on the wafer, the floorplanner's centre
        (``placer.floorplan.problem.Rect.centre``)."""
        return self.origin[0] + self.spec.rows // 2, self.origin[1] + self.spec.cols // 2

    @property
    def peak_pe_bytes(self) -> int:
        """The highest per-PE SRAM use seen on this wafer or any of its regions."""
        return max([self.ledger.peak, *(r.ledger.peak for r in self.regions)])

    def route(self, nbytes: int, src: Wafer, dst: Wafer) -> int:
        """Stream ``nbytes`` from region ``src``'s centre to region ``dst``'s over the fabric,
        dimension-ordered (along the row, then along the column), one neighbour hop per link
        crossed: charges kernel ``region-link`` on this wafer's observers with the hops and
        link bytes, and returns the cycles (the head's hops plus the stream of the bytes behind
        it), which are not added to this wafer's ``cycles``: the caller places the transfer in
        time."""
        (r0, c0), (r1, c1) = src.centre, dst.centre
        distance = abs(c1 - c0) + abs(r1 - r0)
        cycles = self.transfer_cycles(distance, nbytes)
        with self.kernel("region-link"):
            for o in self.observers:
                o.on_transfer(self.name, self.label, distance, distance * nbytes, cycles)
        return cycles

    # --- accounting -------------------------------------------------------------------------
    @contextlib.contextmanager
    def kernel(self, label: str) -> Iterator[None]:
        """Tag the events inside with ``label`` (one call of that kernel)."""
        previous, self.label = self.label, label
        self.ledger.reset_scope()
        for o in self.observers:
            o.on_kernel(self.name, label)
        try:
            yield
        finally:
            for o in self.observers:
                o.on_memory(self.name, label, self.ledger.peak_in_scope)
            self.label = previous

    def compute(self, flops_per_pe: float | np.ndarray) -> int:
        """Charge the busiest PE's arithmetic: ceil(max flops / flops per cycle) cycles
        (``mesh_physics.compute_cycles``); returns them."""
        flops = float(np.max(flops_per_pe)) if np.size(flops_per_pe) else 0.0
        cycles = mesh_physics.compute_cycles(flops, self.spec.flops_per_cycle_per_pe)
        self.cycles += cycles
        for o in self.observers:
            o.on_compute(self.name, self.label, cycles)
        return cycles

    def transfer_cycles(self, distance: int, tile_bytes: int) -> int:
        """Cycles for a tile to cross ``distance`` hops, streamed behind its head."""
        return (distance * self.spec.cycles_per_hop
                + mesh_physics.stream_cycles(tile_bytes, self.spec.link_bytes_per_cycle))

    def charge(self, hops: int, link_bytes: int, cycles: int) -> None:
        self.cycles += cycles
        for o in self.observers:
            o.on_transfer(self.name, self.label, hops, link_bytes, cycles)

    # --- buffers ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def buffers(self, **bytes_per_pe: int | np.ndarray) -> Iterator[None]:
        """Allocate transient tiles for the duration of a kernel (checked against SRAM)."""
        names = []
        try:
            for key, nbytes in bytes_per_pe.items():
                name = f"buffer:{self.label}:{key}"
                self.ledger.allocate(name, nbytes)
                names.append(name)
            yield
        finally:
            for name in names:
                if self.ledger.holds(name):
                    self.ledger.free(name)

    # --- data movement ----------------------------------------------------------------------
    def shift(self, state: np.ndarray, axis: int, step: int = 1, *, cyclic: bool = False,
              lines: np.ndarray | None = None, account: bool = True, cycles: bool = True) -> np.ndarray:
        """Every PE passes its tile ``step`` (+1 or -1) neighbours along ``axis`` (0 rows, 1 cols).

        Non-cyclic: tiles leaving the grid are dropped and vacated PEs get zeros (1 hop each).
        Cyclic: the line is an interleaved ring (at most 2 hops per shift, ``ring_hops``).
        ``lines``: a boolean mask over the other axis choosing which lines shift.
        ``cycles=False``: count hops and bytes only (the caller charges the schedule's cycles).
        """
        n = state.shape[axis]
        tile_bytes = int(np.prod(state.shape[2:], dtype=np.int64)) * state.dtype.itemsize
        if cyclic:
            moved = np.roll(state, -step, axis=axis)
        else:
            moved = np.zeros_like(state)
            src = [slice(None)] * state.ndim
            dst = [slice(None)] * state.ndim
            src[axis] = slice(0, n - 1) if step > 0 else slice(1, n)
            dst[axis] = slice(1, n) if step > 0 else slice(0, n - 1)
            moved[tuple(dst)] = state[tuple(src)]
        count_lines = state.shape[1 - axis]
        if lines is not None:
            other = [slice(None)] * state.ndim
            keep = np.asarray(lines, dtype=bool)
            mask_shape = [1] * state.ndim
            mask_shape[1 - axis] = keep.size
            moved = np.where(keep.reshape(mask_shape), moved, state)
            count_lines = int(keep.sum())
            del other
        if account:
            per_line = ring_hops(n) if cyclic else n - 1
            self.charge(per_line * count_lines, per_line * count_lines * tile_bytes,
                        self.transfer_cycles(2 if cyclic and n > 2 else 1, tile_bytes) if cycles else 0)
        return moved

    def send(self, tiles: np.ndarray, count: int, distance: int = 1) -> np.ndarray:
        """``count`` PEs each pass their tile (together ``tiles``) ``distance`` hops along a line;
        the data is returned unchanged for the receivers. One hop per tile per link crossed.
        Cycles are charged by the collective that pipelines these sends."""
        tile_bytes = tiles.nbytes // max(count, 1)
        self.charge(count * distance, count * distance * tile_bytes, 0)
        return tiles
