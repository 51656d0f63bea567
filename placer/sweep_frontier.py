"""The Pareto frontier of a sweep: tokens/s per user (interactivity) against tokens/s per wafer
(throughput per unit of hardware), both to be maximised.

A point is on the frontier when no other point is at least as good on both axes and better on
one. Points with equal coordinates are all on it (none is better than the others).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

X = "tokens_per_s_per_user"
Y = "tokens_per_s_per_wafer"


def pareto_indices(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points (maximising both coordinates), ascending.

    O(n log n): visit points by descending x; within one x only the largest y can survive, and
    only if it beats every y seen at a larger x.
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    keep: list[int] = []
    best_y = float("-inf")   # the largest y among points of strictly larger x
    i = 0
    while i < len(order):
        x = points[order[i]][0]
        j = i
        while j < len(order) and points[order[j]][0] == x:
            j += 1
        group_max = points[order[i]][1]            # sorted by -y within the group
        if group_max > best_y:
            keep.extend(k for k in order[i:j] if points[k][1] == group_max)
        best_y = max(best_y, group_max)
        i = j
    return sorted(keep)


def frontier_flags(rows: Sequence[Mapping[str, Any]],
                   group: Callable[[Mapping[str, Any]], str] | None = None) -> list[bool]:
    """For each row: is it on the frontier (of its group, when ``group`` is given)?

    Only rows with ``status == "ok"`` take part."""
    flags = [False] * len(rows)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r.get("status") == "ok":
            groups.setdefault(group(r) if group else "", []).append(i)
    for members in groups.values():
        for k in pareto_indices([(float(rows[i][X]), float(rows[i][Y])) for i in members]):
            flags[members[k]] = True
    return flags
