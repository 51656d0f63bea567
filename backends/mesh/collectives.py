"""Collectives along one grid axis, built from neighbour sends, with their timing emulated.

The algorithms are those of ``placer.ir.mesh_physics`` (its docstring has the physics):
reductions to the centre of the line, each half a chain or a two-level reduction with the
groups ``mesh_physics.reduce_groups`` chooses; broadcasts multicast from the centre; every
collective streamed (head latency plus the tile's stream once). The cycles charged here are
not taken from the closed forms: each send carries the ready time of its data (``hop`` per
link crossed, one cycle per add at the PE that combines), and a collective charges the time
its head reaches the last PE plus the stream. Tests check the result against the closed
forms that the performance model uses, on full-grid and prime line lengths.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from placer.backends.mesh.grid import Wafer
from placer.ir import mesh_physics

Op = Callable[[np.ndarray, np.ndarray], np.ndarray]
ADD_CYCLES = 1  # a PE combines an incoming wavelet with its own in one cycle


def _tile_bytes(state: np.ndarray, first_tile_axis: int) -> int:
    return int(np.prod(state.shape[first_tile_axis:], dtype=np.int64)) * state.dtype.itemsize


def _reduce_half(wafer: Wafer, half: np.ndarray, groups: int, op: Op) -> tuple[np.ndarray, int]:
    """Reduce ``half`` [m, lines, ...] (index 0 next to the root) into its PE next to the
    root; returns the partial sum and the cycle its head arrives at the root."""
    m, lines = half.shape[0], half.shape[1]
    hop = wafer.spec.cycles_per_hop
    g, s, _ = mesh_physics.group_sizes(m, groups)
    if g * s > m:  # pad the farthest group; padding is never combined
        half = np.concatenate([half, np.zeros((g * s - m,) + half.shape[1:], half.dtype)])
    grouped = half.reshape((g, s) + half.shape[1:])       # [group, offset from its root, lines, ...]
    size = np.full(g, s)
    size[-1] = m - (g - 1) * s
    # Inner chains, all groups at once, from each group's far end towards its root.
    acc = np.zeros_like(grouped[:, 0])
    ready = np.zeros(g, dtype=np.int64)
    started = np.zeros(g, dtype=bool)
    for o in range(s - 1, -1, -1):
        here = size > o
        cont = here & started
        if cont.any():
            # Groups are ordered and only the last may be short, so the groups at work form
            # a prefix: a slice, not a mask (no gathered copies of the partial sums).
            c = int(cont.sum())
            sel = slice(0, c) if cont[:c].all() else cont
            sent = wafer.send(acc[sel], c * lines)
            acc[sel] = op(sent, grouped[sel, o])
            ready[sel] += hop + ADD_CYCLES
        fresh = here & ~started
        if fresh.any():
            acc[fresh] = grouped[fresh, o]
        started |= here
    # Chain across the group roots, s hops apart, towards the root.
    total, t = acc[g - 1], int(ready[g - 1])
    for j in range(g - 2, -1, -1):
        total = op(wafer.send(total, lines, distance=s), acc[j])
        t = max(t + s * hop, int(ready[j])) + ADD_CYCLES
    return wafer.send(total, lines), t + hop


def reduce_timed(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add,
                 groups: int | None = None) -> tuple[np.ndarray, int]:
    """Reduce ``state`` [rows, cols, ...] along grid ``axis`` to the centre PE of each line;
    returns the result (the grid axis removed) and the head latency in cycles (nothing is
    charged). ``groups`` forces the groups per half (1: chains)."""
    n = state.shape[axis]
    line = np.moveaxis(state, axis, 0)                     # [n, lines, ...]
    if n <= 1:
        return line[0], 0
    g = groups or mesh_physics.reduce_groups(n, _tile_bytes(state, 2), wafer.spec.cycles_per_hop,
                                             wafer.spec.link_bytes_per_cycle)
    r = mesh_physics.root(n)
    arrivals = [_reduce_half(wafer, line[r + 1:], g, op)]
    if r > 0:
        arrivals.append(_reduce_half(wafer, line[r - 1::-1], g, op))
    value, t = line[r], 0
    for partial, arrival in sorted(arrivals, key=lambda a: a[1]):
        value = op(value, partial)
        t = max(t, arrival) + ADD_CYCLES
    return value, t


def reduce(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add,
           groups: int | None = None) -> np.ndarray:
    """Reduce along grid ``axis`` to the centre of each line (``reduce_timed``), charging the
    head latency plus the stream of one tile."""
    value, head = reduce_timed(wafer, state, axis, op, groups)
    if state.shape[axis] > 1:
        wafer.charge(0, 0, head + mesh_physics.stream_cycles(_tile_bytes(state, 2),
                                                             wafer.spec.link_bytes_per_cycle))
    return value


def chain_reduce(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add) -> np.ndarray:
    """A reduction with a plain chain on each half of the line."""
    return reduce(wafer, state, axis, op, groups=1)


def two_level_reduce(wafer: Wafer, state: np.ndarray, axis: int, groups: int, op: Op = np.add) -> np.ndarray:
    """A reduction with ``groups`` groups on each half of the line."""
    return reduce(wafer, state, axis, op, groups=groups)


def _multicast(wafer: Wafer, value: np.ndarray, axis: int, n: int) -> tuple[np.ndarray, int]:
    """Every line's tile (lines on ``value``'s leading axis) from the centre PE to all ``n``
    PEs along ``axis``: the routers forward and deliver each wavelet in one pass, so the head
    reaches the PE d hops away after d hops. Returns the view and the head latency."""
    lines = value.shape[0]
    tile = value.nbytes // max(lines, 1)
    r = mesh_physics.root(n)
    wafer.charge(lines * (n - 1), lines * (n - 1) * tile, 0)  # one link crossing per receiving PE
    head = max(r, n - 1 - r) * wafer.spec.cycles_per_hop
    shape = (n,) + value.shape if axis == 0 else (value.shape[0], n) + value.shape[1:]
    return np.broadcast_to(np.expand_dims(value, axis), shape), head


def broadcast(wafer: Wafer, value: np.ndarray, axis: int, n: int, *, charge: bool = True) -> np.ndarray:
    """Broadcast ``value`` from the centre of each line to its ``n`` PEs along ``axis``; returns
    a [rows, cols, ...] read-only view. ``charge=False``: the tiles are already there (a fused
    sibling GEMV broadcast the same input); nothing moves."""
    if n <= 1 or not charge:
        shape = (n,) + value.shape if axis == 0 else (value.shape[0], n) + value.shape[1:]
        return np.broadcast_to(np.expand_dims(value, axis), shape)
    view, head = _multicast(wafer, value, axis, n)
    tile = value.nbytes // max(value.shape[0], 1)
    wafer.charge(0, 0, head + mesh_physics.stream_cycles(tile, wafer.spec.link_bytes_per_cycle))
    return view


def all_reduce(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add) -> np.ndarray:
    """Reduce to the centre of each line and stream the result back as it arrives: every PE
    of the line gets it. The reduction charges its head and the stream; the way back adds
    only its head (its wavelets follow the reduction's)."""
    n = state.shape[axis]
    value = reduce(wafer, state, axis, op)
    if n <= 1:
        return np.expand_dims(value, axis)
    view, back = _multicast(wafer, value, axis, n)
    wafer.charge(0, 0, back)
    return view


def statistic_path(wafer: Wafer, state: np.ndarray, every_line: bool = False) -> tuple[np.ndarray, int]:
    """A fused norm's statistics (``mesh_physics.norm_statistic_cycles``): ``state`` [rows, 1,
    ...] on the centre column reduced to its centre PE, then multicast along the centre row to
    every column. Returns the sums and the cycles of the path (head latencies plus both
    streams), which are not charged here: the path runs beside the GEMV the norm feeds
    (``linalg.gemv``'s ``beside``). ``every_line``: ``state`` [rows, lines, ...] holds several
    such lines side by side (the bands of ``linalg.band_gemv``), each reduced and multicast
    along its own centre row at once; the sums of every line are returned ([lines, ...])."""
    n = state.shape[0]
    value, head = reduce_timed(wafer, state, 0)           # [1, ...]
    tile = _tile_bytes(state, 2)
    link = wafer.spec.link_bytes_per_cycle
    cycles = head + mesh_physics.stream_cycles(tile, link) if n > 1 else 0
    if wafer.spec.cols > 1:
        _, back = _multicast(wafer, value, 1, wafer.spec.cols)
        cycles += back + mesh_physics.stream_cycles(tile, link)
    return (value if every_line else value[0]), cycles
