"""What a unit costs on an ``rows x cols`` rectangle of PEs: per-PE SRAM bytes, time, colours.

This is the one place that prices a rectangle; the floorplanner only compares the numbers.

Per-PE bytes of a region (its units share the rectangle and run one after the other):

* code reserve ``ceil(default_reserve x pe_sram_bytes)`` (code and routing tables), once;
* each weight GEMV ``[K, N]`` tiled as the mesh backend tiles it (K over rows, N over
  columns): ``ceil(ceil(K / rows) x ceil(N / cols) x b)`` with ``b`` the unit's bytes per
  parameter; the unit's other parameters (norm vectors, biases, embedding tables) and its
  stored constants spread evenly: ``ceil(ceil(P_rest / pes) x b) + ceil(constants / pes)``;
* each KV cache of each of the ``kv_sequences`` sequences held on the rectangle (every resident
  sequence: with several micro-batches in flight each keeps its KV on every wafer), ``K^T``-like:
  its bytes per token over rows, its tokens (``min(context, window)``) over columns:
  ``ceil(bytes_per_token / rows) x ceil(tokens / cols)``;
* buffers, the largest over the region's GEMVs: ``batch x 4 x (ceil(K / rows) + ceil(N /
  cols))`` bytes (the input chunk and the fp32 partial sums of one micro-batch).

Time: ``unit_seconds_on_rectangle`` asks the performance model (``placer.perf``) for the
unit's decode time on a target whose grid is the rectangle (its PEs' share of the wafer's
SRAM bandwidth and compute, its rows and columns for every broadcast and reduction), so the
floorplan and the whole-wafer layout share one time formula. Region ticks are the sum of its
units' ``ceil(seconds x clock_hz)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from placer import perf
from placer.costs import UnitCost
from placer.floorplan.colours import region_colours
from placer.floorplan.problem import Shape
from placer.targets import Target

BUFFER_ELEMENT_BYTES = 4  # fp32 input chunks and partial sums

TimeOf = Callable[[UnitCost, Target, int, int, int], float]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def region_target(target: Target, rows: int, cols: int) -> Target:
    """``target`` cut down to a ``rows x cols`` rectangle of its PEs (bandwidth and SRAM scale
    with the PE count; per-PE figures, links and clock stay)."""
    share = rows * cols / target.pes
    return dataclasses.replace(
        target,
        mesh_rows=rows,
        mesh_cols=cols,
        sram_bytes=rows * cols * target.pe_sram_bytes,
        sram_bandwidth_bytes_per_s=target.sram_bandwidth_bytes_per_s * share,
    )


def unit_seconds_on_rectangle(unit: UnitCost, target: Target, rows: int, cols: int, batch: int = 1) -> float:
    """Seconds of one decode step of a micro-batch of ``batch`` sequences through ``unit`` on
    ``rows x cols`` PEs (the performance model's formula on the rectangle)."""
    return perf.unit_decode_seconds(unit, region_target(target, rows, cols), batch)


def unit_prefill_seconds_on_rectangle(unit: UnitCost, target: Target, rows: int, cols: int, chunk: int,
                                      prompt: int) -> float:
    """Seconds of one prefill chunk of ``chunk`` prompt tokens through ``unit`` on ``rows x cols``
    PEs (``perf.unit_prefill_chunk_seconds`` on the rectangle)."""
    return perf.unit_prefill_chunk_seconds(unit, region_target(target, rows, cols), chunk, prompt)


def code_reserve_bytes(target: Target) -> int:
    return math.ceil(target.default_reserve * target.pe_sram_bytes)


def unit_pe_bytes(unit: UnitCost, rows: int, cols: int, context_tokens: int, batch: int) -> int:
    """Bytes of ``unit``'s weights, constants and the KV of ``batch`` sequences on the busiest
    PE of the rectangle."""
    pes = rows * cols
    wb, params = unit.weight_bytes, max(1, unit.parameters)  # bytes per parameter: wb / params

    def stored(elements: int) -> int:
        return -(-elements * wb // params) if unit.parameters else 0

    gemv_params = sum(k * n for k, n in unit.matmul_shapes)
    gemv = sum(stored(_cdiv(k, rows) * _cdiv(n, cols)) for k, n in unit.matmul_shapes)
    rest = stored(_cdiv(max(0, unit.parameters - gemv_params), pes))
    constants = _cdiv(unit.constant_bytes, pes)
    kv = batch * sum(
        _cdiv(c.bytes_per_token, rows)
        * _cdiv(min(context_tokens, c.window) if c.window else context_tokens, cols)
        for c in unit.kv
    )
    return gemv + rest + constants + kv


def buffer_pe_bytes(unit: UnitCost, rows: int, cols: int, batch: int) -> int:
    """Buffer bytes on a PE for the unit's largest GEMV (or its output spread, if none)."""
    per = [_cdiv(k, rows) + _cdiv(n, cols) for k, n in unit.matmul_shapes]
    if not per:
        return batch * _cdiv(unit.activation_out_bytes_per_token, rows * cols)
    return batch * BUFFER_ELEMENT_BYTES * max(per)


def region_pe_bytes(
    units: Sequence[UnitCost], target: Target, rows: int, cols: int, context_tokens: int, batch: int,
    kv_sequences: int | None = None,
) -> int:
    """Per-PE bytes of a region: reserve once, every unit's tiles with the KV of
    ``kv_sequences`` sequences (default ``batch``), the largest buffer of a micro-batch of
    ``batch``."""
    kv = batch if kv_sequences is None else max(batch, kv_sequences)
    return (
        code_reserve_bytes(target)
        + sum(unit_pe_bytes(u, rows, cols, context_tokens, kv) for u in units)
        + max((buffer_pe_bytes(u, rows, cols, batch) for u in units), default=0)
    )


def price_shape(
    units: Sequence[UnitCost],
    target: Target,
    rows: int,
    cols: int,
    context_tokens: int,
    batch: int,
    time_of: TimeOf = unit_seconds_on_rectangle,
    kv_sequences: int | None = None,
) -> Shape:
    """The candidate ``Shape`` of a region of ``units`` on ``rows x cols`` PEs (a step of a
    micro-batch of ``batch``, the KV of ``kv_sequences`` held; see ``region_pe_bytes``)."""
    ticks = region_ticks(units, target, rows, cols, batch, time_of)
    tile = max(
        (_cdiv(n, cols) * BUFFER_ELEMENT_BYTES * batch for u in units for _, n in u.matmul_shapes),
        default=BUFFER_ELEMENT_BYTES * batch,
    )
    colours = region_colours(
        rows,
        cols,
        any(u.decode.gemv_collectives for u in units),
        any(u.decode.row_collectives for u in units),
        tile,
        target.cycles_per_hop,
        target.link_bytes_per_cycle,
    )
    return Shape(
        rows, cols, region_pe_bytes(units, target, rows, cols, context_tokens, batch, kv_sequences), ticks,
        colours
    )


def region_ticks(units: Sequence[UnitCost], target: Target, rows: int, cols: int, batch: int,
                 time_of: TimeOf = unit_seconds_on_rectangle) -> int:
    """A region's step in ticks: the sum of its units' ``ceil(seconds x clock_hz)``."""
    return sum(math.ceil(time_of(u, target, rows, cols, batch) * target.clock_hz - 1e-9) for u in units)


def band_counts(regions: int, rows: int, cols: int) -> list[int]:
    """Numbers of horizontal bands worth offering: around ``sqrt(regions x rows / cols)``
    (square-ish rectangles), from a quarter of it to twice it, always including 1 band for a
    handful of regions."""
    centre = math.sqrt(max(1, regions) * rows / cols)
    counts = {max(1, min(rows, round(centre * f))) for f in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)}
    return sorted(counts)


def candidate_shapes(
    units: Sequence[UnitCost],
    target: Target,
    context_tokens: int,
    batch: int,
    regions: int,
    max_widths: int = 24,
    time_of: TimeOf = unit_seconds_on_rectangle,
    rows: int | None = None,
    cols: int | None = None,
    kv_sequences: int | None = None,
) -> tuple[Shape, ...]:
    """Shapes offered to a region on the ``rows x cols`` grid (default: the target's).

    Heights are the band heights ``rows // b`` of ``band_counts``; for each, widths from the
    narrowest that fits the PE's SRAM to three times the average band share
    ``b x cols / regions``, every width when they are at most ``max_widths``, else a
    geometric ladder of ``max_widths`` plus widths from 0.8 to 1.24 times the share in 2 % steps.
    When no height fits, the whole grid is offered alone (so that an infeasible answer can
    name the bytes per PE the unit would need on it).
    """
    R, C = rows or target.mesh_rows, cols or target.mesh_cols
    limit = target.pe_sram_bytes
    shapes: list[Shape] = []
    for b in band_counts(regions, R, C):
        h = R // b
        if region_pe_bytes(units, target, h, C, context_tokens, batch, kv_sequences) > limit:
            continue
        lo, hi = 1, C  # bytes never grow with the width: bisect the narrowest that fits
        while lo < hi:
            mid = (lo + hi) // 2
            if region_pe_bytes(units, target, h, mid, context_tokens, batch, kv_sequences) <= limit:
                hi = mid
            else:
                lo = mid + 1
        share = b * C / max(1, regions)
        top = min(C, max(lo, math.ceil(3 * share)))
        if top - lo + 1 <= max_widths:
            widths = set(range(lo, top + 1))
        else:
            ratio = (top / lo) ** (1 / (max_widths - 1))
            widths = {min(top, round(lo * ratio**j)) for j in range(max_widths)} | {lo, top}
            # Widths near the average share, where most regions of a balanced layout fall, in
            # steps of 2 % (every width when the share is small).
            widths |= {w for k in range(-10, 13) if lo <= (w := round(share * (1 + k / 50))) <= top}
        shapes.extend(
            price_shape(units, target, h, w, context_tokens, batch, time_of, kv_sequences)
            for w in sorted(widths)
        )
    if not shapes:
        shapes.append(price_shape(units, target, R, C, context_tokens, batch, time_of, kv_sequences))
    return tuple(shapes)
