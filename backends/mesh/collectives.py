"""Collectives along one grid axis, built from neighbour sends.

Cycle model (HARDWARE.md): a chain over k PEs is pipelined, each hop adds its latency plus one
cycle for the add, and the tile streams behind the head once:
``(k - 1) * (cycles_per_hop + 1) + ceil(tile_bytes / link_bytes_per_cycle)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from placer.backends.mesh.grid import Wafer

Op = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _line(state: np.ndarray, axis: int, i: int | slice) -> np.ndarray:
    return state[i] if axis == 0 else state[:, i]


def _stream(wafer: Wafer, tile_bytes: int) -> int:
    return math.ceil(tile_bytes / wafer.spec.link_bytes_per_cycle)


def chain_reduce(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add) -> np.ndarray:
    """Reduce ``state`` [rows, cols, ...] along grid ``axis`` with a chain: PE 0 sends to PE 1,
    which combines and sends on. Returns the result held by the last PE of each line
    (the grid axis removed). Hops: (n - 1) per line."""
    n = state.shape[axis]
    lines = state.shape[1 - axis]
    acc = _line(state, axis, 0)
    for i in range(1, n):
        acc = op(wafer.send(acc, lines), _line(state, axis, i))
    tile_bytes = acc.nbytes // max(lines, 1)
    wafer.charge(0, 0, (n - 1) * (wafer.spec.cycles_per_hop + 1) + _stream(wafer, tile_bytes))
    return acc


def two_level_reduce(wafer: Wafer, state: np.ndarray, axis: int, groups: int, op: Op = np.add) -> np.ndarray:
    """WaferLLM's two-level reduction: chains inside ``groups`` groups of s = n / groups PEs run in
    parallel, then a chain across the group roots (s hops apart). Hops per line:
    groups * (s - 1) + (groups - 1) * s. Requires n divisible by groups."""
    n = state.shape[axis]
    if n % groups:
        raise ValueError(f"two-level reduce: {n} PEs do not split into {groups} groups")
    s = n // groups
    lines = state.shape[1 - axis]
    grouped = state.reshape((groups, s) + state.shape[1:]) if axis == 0 else \
        state.reshape((state.shape[0], groups, s) + state.shape[2:])
    # Inner chains, all groups at once: the group axis is just more lines.
    acc = grouped[:, 0] if axis == 0 else grouped[:, :, 0]
    for i in range(1, s):
        nxt = grouped[:, i] if axis == 0 else grouped[:, :, i]
        acc = op(wafer.send(acc, lines * groups), nxt)
    roots = acc  # [groups, lines, ...] (axis 0) or [lines, groups, ...] (axis 1)
    total = roots[0] if axis == 0 else roots[:, 0]
    for g in range(1, groups):
        total = op(wafer.send(total, lines, distance=s), roots[g] if axis == 0 else roots[:, g])
    tile_bytes = total.nbytes // max(lines, 1)
    hop = wafer.spec.cycles_per_hop
    wafer.charge(0, 0, (s - 1) * (hop + 1) + (groups - 1) * (s * hop + 1) + _stream(wafer, tile_bytes))
    return total


def default_groups(n: int) -> int:
    """Two-level groups for a reduction over ``n`` PEs: about sqrt(n), dividing n."""
    g = int(math.isqrt(n))
    while g > 1 and n % g:
        g -= 1
    return g


def reduce_groups(n: int, cycles_per_hop: int) -> int:
    """Groups of the cheaper reduction over ``n`` PEs (head latency, as the performance model
    counts it): 1 for a chain, ``default_groups(n)`` when the two-level scheme is faster."""
    g = default_groups(n)
    if g <= 1:
        return 1
    s = n // g
    chain = (n - 1) * (cycles_per_hop + 1)
    two_level = (s - 1) * (cycles_per_hop + 1) + (g - 1) * (s * cycles_per_hop + 1)
    return g if two_level < chain else 1


def reduce(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add,
           groups: int | None = None) -> np.ndarray:
    """Reduce along grid ``axis`` with a chain or the two-level scheme, whichever is faster
    (``groups`` forces one: 1 is a chain)."""
    n = state.shape[axis]
    g = reduce_groups(n, wafer.spec.cycles_per_hop) if groups is None else groups
    return two_level_reduce(wafer, state, axis, g, op) if g > 1 else chain_reduce(wafer, state, axis, op)


def broadcast(wafer: Wafer, value: np.ndarray, axis: int, n: int) -> np.ndarray:
    """Chain-broadcast ``value`` (one tile per line, lines on the leading axis) from PE 0 of each
    line to all ``n`` PEs along ``axis``; returns a [rows, cols, ...] read-only view.
    Hops: (n - 1) per line."""
    lines = value.shape[0]
    tile_bytes = value.nbytes // max(lines, 1)
    # n - 1 relays of every line's tile, one hop each (what n - 1 ``send`` calls would count).
    wafer.charge(lines * (n - 1), lines * (n - 1) * tile_bytes,
                 (n - 1) * wafer.spec.cycles_per_hop + _stream(wafer, tile_bytes))
    return np.broadcast_to(np.expand_dims(value, axis), value.shape[:0] + (
        (n,) + value.shape if axis == 0 else (value.shape[0], n) + value.shape[1:]))


def all_reduce(wafer: Wafer, state: np.ndarray, axis: int, op: Op = np.add) -> np.ndarray:
    """Reduce along ``axis`` (chain or two-level, the faster) then broadcast back: every PE of
    a line gets the result."""
    reduced = reduce(wafer, state, axis, op)
    return broadcast(wafer, reduced, axis, state.shape[axis])
