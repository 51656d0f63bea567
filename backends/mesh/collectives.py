"""Collectives along one grid axis, built from neighbour sends.

The algorithm, its choice of groups and its cycle count are those of
``placer.ir.mesh_physics`` (the performance model uses the same functions): a chain or
WaferLLM's two-level reduction (chains inside groups of ``ceil(n / g)`` PEs, then a chain
across the group roots), and a broadcast in one pass of the routers. Hops and link bytes are
counted by the sends themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from placer.backends.mesh.grid import Wafer
from placer.ir import mesh_physics

Op = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _line(state: np.ndarray, axis: int, i: int | slice) -> np.ndarray:
    return state[i] if axis == 0 else state[:, i]


def _tile_bytes(acc: np.ndarray, lines: int) -> int:
    return acc.nbytes // max(lines, 1)


def chain_reduce(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add) -> np.ndarray:
    """Reduce ``state`` [rows, cols, ...] along grid ``axis`` with a chain: PE 0 sends to PE 1,
    which combines and sends on. Returns the result held by the last PE of each line
    (the grid axis removed). Hops: (n - 1) per line."""
    return two_level_reduce(wafer, state, axis, 1, op)


def two_level_reduce(wafer: Wafer, state: np.ndarray, axis: int, groups: int, op: Op = np.add) -> np.ndarray:
    """WaferLLM's two-level reduction: chains inside ``groups`` groups of s = ceil(n / groups)
    PEs (the last group may be shorter) run in parallel, then a chain across the group roots
    (s hops apart). Hops per line: (n - g) + (g - 1) * s, g the non-empty groups."""
    n = state.shape[axis]
    lines = state.shape[1 - axis]
    line = np.moveaxis(state, axis, 0)                     # [n, lines, ...]
    s = -(-n // max(groups, 1))
    g = -(-n // s)
    if g * s > n:                                          # pad the last group; padding never combines
        line = np.concatenate([line, np.zeros((g * s - n,) + line.shape[1:], line.dtype)])
    grouped = line.reshape((g, s) + line.shape[1:])        # [g, s, lines, ...]
    size = np.full(g, s)
    size[-1] = n - (g - 1) * s
    # Inner chains, all groups at once: PE i of every group that has one combines.
    acc = grouped[:, 0]
    for i in range(1, s):
        live = size > i
        sent = wafer.send(acc[live], int(live.sum()) * lines)
        if live.all():
            acc = op(sent, grouped[:, i])
        else:
            acc = acc.copy()
            acc[live] = op(sent, grouped[live, i])
    total = acc[0]
    for j in range(1, g):
        total = op(wafer.send(total, lines, distance=s), acc[j])
    head = mesh_physics.reduce_head_cycles(n, g, wafer.spec.cycles_per_hop)
    wafer.charge(0, 0, head + mesh_physics.stream_cycles(_tile_bytes(total, lines),
                                                         wafer.spec.link_bytes_per_cycle))
    return total


def reduce_groups(n: int, tile_bytes: int, wafer: Wafer) -> int:
    """Groups of the reduction over ``n`` PEs (``mesh_physics.reduce_groups``)."""
    spec = wafer.spec
    return mesh_physics.reduce_groups(n, tile_bytes, spec.cycles_per_hop, spec.link_bytes_per_cycle)


def reduce(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add,
           groups: int | None = None) -> np.ndarray:
    """Reduce along grid ``axis`` with the scheme ``mesh_physics.reduce_groups`` chooses
    (``groups`` forces one: 1 is a chain)."""
    n = state.shape[axis]
    if n <= 1:
        return _line(state, axis, 0)
    tile = int(np.prod(state.shape[2:], dtype=np.int64)) * state.dtype.itemsize
    g = reduce_groups(n, tile, wafer) if groups is None else groups
    return two_level_reduce(wafer, state, axis, g, op)


def broadcast(wafer: Wafer, value: np.ndarray, axis: int, n: int) -> np.ndarray:
    """Broadcast ``value`` (one tile per line, lines on the leading axis) from the root of each
    line to all ``n`` PEs along ``axis``; returns a [rows, cols, ...] read-only view.
    Hops: (n - 1) per line."""
    lines = value.shape[0]
    tile_bytes = _tile_bytes(value, lines)
    # n - 1 relays of every line's tile, one hop each (what n - 1 ``send`` calls would count).
    wafer.charge(lines * (n - 1), lines * (n - 1) * tile_bytes,
                 mesh_physics.broadcast_cycles(n, tile_bytes, wafer.spec.cycles_per_hop,
                                               wafer.spec.link_bytes_per_cycle))
    return np.broadcast_to(np.expand_dims(value, axis), value.shape[:0] + (
        (n,) + value.shape if axis == 0 else (value.shape[0], n) + value.shape[1:]))


def all_reduce(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add) -> np.ndarray:
    """Reduce along ``axis`` then broadcast back: every PE of a line gets the result."""
    reduced = reduce(wafer, state, axis, op)
    return broadcast(wafer, reduced, axis, state.shape[axis])
