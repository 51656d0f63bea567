"""Cycle counts of the collectives the mesh emulator runs, in pure integers.

Both the emulator (``placer.backends.mesh``) and the performance model (``placer.perf``) call
these functions, so that the two agree exactly on every collective. No numpy, no placer
imports: only the target's per-wafer constants.

Units: ``k`` PEs on a line, ``tile_bytes`` the bytes each PE sends per step (they grow with
the micro-batch), ``cycles_per_hop`` the fabric latency of one hop, ``link_bytes_per_cycle``
the bytes a link carries per cycle (one 32-bit wavelet on the WSE).

Algorithms (today's, unchanged in this version):

* reduce to the end of a line of ``k`` PEs: a chain, ``(k - 1) x (hop + 1)`` cycles (one hop
  and one add per PE), or WaferLLM's two-level scheme (chains inside ``g = round(sqrt(k))``
  groups of ``s = ceil(k / g)`` PEs, then a chain across the group roots, ``s`` hops apart):
  ``(s - 1) x (hop + 1) + (g - 1) x (s x hop + 1)``; the cheaper of the two
  (``reduce_groups``). The tile streams behind the head once: ``+ stream_cycles(tile)``.
* broadcast from the end of a line: ``(k - 1) x hop + stream_cycles(tile)``.
* all-reduce: a reduce, then a broadcast back.
* GEMV collective: the input broadcast along a grid row (``cols`` PEs), the partial sums
  reduced along a grid column (``rows`` PEs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MeshConstants:
    """The per-wafer figures the cycle counts need (duck-typed from a ``Target``)."""

    rows: int
    cols: int
    cycles_per_hop: int
    link_bytes_per_cycle: int
    clock_hz: float
    flops_per_cycle_per_pe: float
    sram_bytes_per_pe: int

    @staticmethod
    def from_target(target: Any) -> MeshConstants:
        """From any object with ``placer.targets.Target``'s field names."""
        return MeshConstants(int(target.mesh_rows), int(target.mesh_cols), int(target.cycles_per_hop),
                             int(target.link_bytes_per_cycle), float(target.clock_hz),
                             float(target.flops_per_cycle_per_pe), int(target.pe_sram_bytes))


def stream_cycles(nbytes: int, link_bytes_per_cycle: int) -> int:
    """Cycles for ``nbytes`` to stream over one link behind the head wavelet."""
    return -(-max(0, nbytes) // link_bytes_per_cycle)


def _chain_head(k: int, cycles_per_hop: int) -> int:
    return (k - 1) * (cycles_per_hop + 1)


def _two_level_head(k: int, groups: int, cycles_per_hop: int) -> int:
    s = -(-k // groups)
    return (s - 1) * (cycles_per_hop + 1) + (groups - 1) * (s * cycles_per_hop + 1)


def reduce_groups(k: int, tile_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    """Groups of the reduction over a line of ``k`` PEs: 1 (a chain) or the two-level
    scheme's ``round(sqrt(k))`` groups of ``ceil(k / g)`` PEs, whichever has the lower head
    latency (the stream is the same for both)."""
    if k <= 2:
        return 1
    g = max(1, round(math.sqrt(k)))
    if g > 1 and _two_level_head(k, g, cycles_per_hop) < _chain_head(k, cycles_per_hop):
        return g
    return 1


def reduce_head_cycles(k: int, groups: int, cycles_per_hop: int) -> int:
    """Head latency of a reduction over ``k`` PEs with ``groups`` groups (1: a chain)."""
    if k <= 1:
        return 0
    return _chain_head(k, cycles_per_hop) if groups <= 1 else _two_level_head(k, groups, cycles_per_hop)


def reduce_cycles(k: int, tile_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    """Cycles of a reduction of one tile per PE over a line of ``k`` PEs, to its root."""
    if k <= 1:
        return 0
    g = reduce_groups(k, tile_bytes, cycles_per_hop, link_bytes_per_cycle)
    return reduce_head_cycles(k, g, cycles_per_hop) + stream_cycles(tile_bytes, link_bytes_per_cycle)


def broadcast_cycles(k: int, tile_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    """Cycles of a broadcast of one tile from the root to all ``k`` PEs of a line (routers
    forward and deliver each wavelet in one pass: no PE work on the way)."""
    if k <= 1:
        return 0
    return (k - 1) * cycles_per_hop + stream_cycles(tile_bytes, link_bytes_per_cycle)


def allreduce_cycles(k: int, tile_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    """Cycles of an all-reduce over a line of ``k`` PEs: reduce to the root, broadcast back."""
    return (reduce_cycles(k, tile_bytes, cycles_per_hop, link_bytes_per_cycle)
            + broadcast_cycles(k, tile_bytes, cycles_per_hop, link_bytes_per_cycle))


def gemv_collective_cycles(rows: int, cols: int, in_tile_bytes: int, out_tile_bytes: int,
                           cycles_per_hop: int, link_bytes_per_cycle: int, broadcast: bool = True) -> int:
    """Fabric cycles of one GEMV on a ``rows`` x ``cols`` grid: the input tiles broadcast along
    each grid row (``cols`` PEs), the partial sums reduced down each grid column (``rows``
    PEs). ``broadcast=False``: the input is already on every PE (a fused sibling broadcast it)."""
    bcast = broadcast_cycles(cols, in_tile_bytes, cycles_per_hop, link_bytes_per_cycle) if broadcast else 0
    return bcast + reduce_cycles(rows, out_tile_bytes, cycles_per_hop, link_bytes_per_cycle)
