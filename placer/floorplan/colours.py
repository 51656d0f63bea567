"""The routing-colour model of a floorplan: which collectives need how many colours, and where
a colour may be reused.

A colour is a virtual channel: a route through the fabric's routers, fixed when the wafer is
loaded (the WSE-3 has 24). A route may not change colour on the way, and two routes of one
colour may not share a link. The model:

* Inside a region (its own collectives; the routes stay inside its rectangle):

  - a GEMV broadcasts each input tile along its grid row: 1 colour, shared by every GEMV and
    broadcast of the region (they run one after the other and have the same route pattern);
  - it reduces the partial sums down each grid column: 1 colour for a chain, 2 for the
    two-level scheme (the chains inside the groups, and the chain across the group roots);
  - a row all-reduce (norm statistics, softmax max and sum) reduces along the row (1 or 2
    colours as above) and broadcasts back along it on the GEMV broadcast colour.

  The algorithm, and so the count, is ``placer.ir.mesh_physics.reduce_groups``' choice for the
  line length (the rectangle's rows for column reductions, its columns for row reductions).
  Regions are disjoint rectangles, so every region reuses the same colours.

* Between regions (the data path): each region's output is one multicast stream to all its
  consumers, on one colour. The stream's route crosses other regions' rectangles, so path
  colours are reserved on the whole wafer (no region may use them for its own collectives).
  Two streams need different colours when one region touches both (it sends one and
  receives the other, or receives both). Colours are given greedily in data-path order, so a
  chain of layers needs 2 (alternating) and a chain with one value read by every layer
  (position ids) needs 3.

A floorplan is routable when, for every region, its own colours plus the path colours are at
most the target's count.
"""

from __future__ import annotations

from collections.abc import Iterable

from placer.ir.mesh_physics import reduce_groups


def _reduce_colours(k: int, tile_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    if k <= 1:
        return 0
    return 1 if reduce_groups(k, tile_bytes, cycles_per_hop, link_bytes_per_cycle) <= 1 else 2


def region_colours(
    rows: int,
    cols: int,
    gemvs: bool,
    row_reductions: bool,
    tile_bytes: int,
    cycles_per_hop: int,
    link_bytes_per_cycle: int,
) -> int:
    """Colours of one region's own collectives on a ``rows x cols`` rectangle.

    Args:
        gemvs: the region runs GEMV collectives (broadcast along rows, reduce down columns).
        row_reductions: it runs all-reduces along rows (norms, softmax).
        tile_bytes: bytes per PE per step of the reductions (their algorithm may depend on it).
    """
    broadcast = 1 if (gemvs or row_reductions) and cols > 1 else 0
    column = _reduce_colours(rows, tile_bytes, cycles_per_hop, link_bytes_per_cycle) if gemvs else 0
    row = _reduce_colours(cols, tile_bytes, cycles_per_hop, link_bytes_per_cycle) if row_reductions else 0
    return broadcast + column + row


def path_colours(links: Iterable[tuple[int, int]]) -> int:
    """Colours of the data path between regions (``(src, dst)`` region indices, ``src < dst``)."""
    consumers: dict[int, set[int]] = {}
    for src, dst in links:
        if src != dst:
            consumers.setdefault(src, set()).add(dst)
    touching: dict[int, set[int]] = {}  # region -> streams (named by source) it sends or receives
    for src, dsts in consumers.items():
        touching.setdefault(src, set()).add(src)
        for d in dsts:
            touching.setdefault(d, set()).add(src)
    colour: dict[int, int] = {}
    for stream in sorted(consumers):
        taken = {colour[s] for r in {stream} | consumers[stream] for s in touching[r] if s in colour}
        colour[stream] = next(c for c in range(len(taken) + 1) if c not in taken)
    return max(colour.values(), default=-1) + 1
