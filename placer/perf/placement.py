"""A whole assignment through the model: per-wafer memory, I/O, stage times and performance.

What the plan and the report show; the solver's integer image of the same terms is
``placer.solver.problem`` (built from ``formulas``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from placer.costs import ModelCost
from placer.perf import formulas as f
from placer.perf.disagg import buffer_chunk_tokens
from placer.perf.pipeline import Performance, StageParts, predict_performance, ttft_seconds
from placer.perf.regions import RegionTimes
from placer.perf.unit import (
    activation_buffer_bytes,
    decode_key,
    prefill_chunk,
    prefill_chunk_ladder,
    unit_decode_parts,
    unit_decode_seconds,
    unit_prefill_chunk_seconds,
)
from placer.targets import Target
from placer.workload import Workload


@dataclass(frozen=True)
class WaferFigures:
    """One wafer of a placement (bytes; seconds of one step of the plan's micro-batch)."""

    units: tuple[int, ...]
    weights: int
    kv_per_sequence: int
    buffer: int
    stage_seconds: float
    prefill_chunk_seconds: float     # one chunk through the wafer (its latency under regions)
    parts: StageParts
    prefill_interval_seconds: float | None = None   # between chunks, under regions only


@dataclass(frozen=True)
class Placement:
    wafers: tuple[WaferFigures, ...]
    boundary_bytes: tuple[int, ...]   # per token of one sequence, each of the N - 1 boundaries
    performance: Performance
    chunk_tokens: int


def decode_tokens(workload: Workload) -> int:
    """Tokens a sequence decodes per residency: what a request generates, ``context - prompt``."""
    return max(1, workload.context_tokens - workload.prompt_tokens)


def place(cost: ModelCost, target: Target, workload: Workload, assignment: Sequence[int], resident: int,
          batch: int, regions: Sequence[RegionTimes | None] = (),
          disaggregated: bool = False) -> Placement:
    """The float model of ``assignment`` with ``resident`` sequences in micro-batches of ``batch``.

    ``regions``: per wafer, its floorplan's times (``placer.perf.regions.RegionTimes``) when the
    wafer is laid out in regions, else None (whole layout: latency = interval = the sum of its
    units' steps on the full grid, and likewise for a prefill chunk). A regions wafer's
    ``stage_seconds`` is its latency, the throughput term uses its interval, TTFT its prefill
    chunk's latency and interval, and the throughput bound its regions' parts. ``disaggregated``:
    prefill runs elsewhere (``placer.perf.disagg``), so the buffers hold no prefill chunk.
    """
    n = max(assignment) + 1
    units = cost.units
    laid = list(regions) + [None] * (n - len(regions))
    full = prefill_chunk(target, workload.prompt_tokens)
    buffered = buffer_chunk_tokens(target, workload.prompt_tokens, disaggregated)
    groups: list[list[int]] = [[] for _ in range(n)]
    for u, w in enumerate(assignment):
        groups[w].append(u)
    # Alike units (the layers of a model) cost the same: each distinct decode and prefill cost
    # is priced once (a MoE unit's costs hold ~1,600 collectives: pricing dominates hashing).
    decode_of: dict[tuple[object, int], StageParts] = {}
    prefill_of: dict[tuple[object, int], float] = {}

    def decode_parts(u: int) -> StageParts:
        key = decode_key(units[u])
        if key not in decode_of:
            decode_of[key] = unit_decode_parts(units[u], target, batch)
        return decode_of[key]

    def prefill_seconds(u: int, chunk: int) -> float:
        key = (units[u].prefill, chunk)
        if key not in prefill_of:
            prefill_of[key] = unit_prefill_chunk_seconds(units[u], target, chunk, workload.prompt_tokens)
        return prefill_of[key]

    def prefill_figures(chunk: int) -> tuple[list[float], list[float]]:
        """Each wafer's (latency, interval) of one prefill chunk of ``chunk`` tokens."""
        out = [(sum(prefill_seconds(u, chunk) for u in g),) * 2 if x is None else x.prefill_at(chunk)
               for g, x in zip(groups, laid)]
        return [a for a, _ in out], [b for _, b in out]

    wafers = []
    for g in groups:
        unit_parts = [decode_parts(u) for u in g]
        parts = sum(unit_parts, StageParts())
        wafers.append(WaferFigures(
            units=tuple(g),
            weights=sum(units[u].weight_bytes + units[u].constant_bytes for u in g),
            kv_per_sequence=sum(units[u].kv_bytes(workload.context_tokens) for u in g),
            buffer=max(activation_buffer_bytes(units[u], buffered, workload.concurrency) for u in g),
            stage_seconds=sum(p.seconds for p in unit_parts),
            prefill_chunk_seconds=0.0,
            parts=parts))
    index = {u.name: i for i, u in enumerate(units)}
    boundary = f.boundary_bytes(assignment, [(index[e.src], index[e.dst], e.bytes_per_token)
                                             for e in cost.edges], n)
    # One prefill chunk for every wafer. On whole wafers the full grid's (every PE row holds a
    # token); once a wafer is a spatial pipeline a smaller chunk fills it sooner, so the chunk is
    # the power of two up to the full grid's with the shortest TTFT (ties to the larger). The
    # activation buffers always hold the full grid's chunk (``buffer_chunk_tokens``). Prefill
    # elsewhere (``disaggregated``) keeps the full grid's: the wafers run no chunk.
    chunk = full
    if not disaggregated and any(x is not None for x in laid):
        def ttft_at(c: int) -> float:
            latency, interval = prefill_figures(c)
            return ttft_seconds(target, latency, boundary, workload.prompt_tokens, c, 0.0, interval)

        chunk = min(prefill_chunk_ladder(target, workload.prompt_tokens), key=lambda c: (ttft_at(c), -c))
    latencies, chunk_intervals = prefill_figures(chunk)
    wafers = [dataclasses.replace(w, prefill_chunk_seconds=p) for w, p in zip(wafers, latencies)]
    intervals = interval_parts = prefill_intervals = None
    if any(x is not None for x in laid):
        interval_parts = [w.parts if x is None else x.interval_parts for w, x in zip(wafers, laid)]
        wafers = [w if x is None else dataclasses.replace(
            w, stage_seconds=x.latency_s, parts=x.parts, prefill_interval_seconds=i)
            for w, x, i in zip(wafers, laid, chunk_intervals)]
        intervals = [w.stage_seconds if x is None else x.interval_s for w, x in zip(wafers, laid)]
        prefill_intervals = chunk_intervals
    if batch == 1 or intervals is not None:
        # Under regions the floorplan is priced at the plan's micro-batch only: TTFT's lower
        # bound is then this round trip (``trip_of_one`` None), an over-estimate when batch > 1.
        one = [w.stage_seconds for w in wafers]
    else:
        one = [sum(unit_decode_seconds(units[u], target, 1) for u in g) for g in groups]
    trip_of_one = f.round_trip(sum(one), sum(b / target.io_bandwidth_bytes_per_s for b in boundary), n,
                               target.hop_latency_s, target.host_overhead_s_per_token)
    perf = predict_performance(
        target, [w.stage_seconds for w in wafers], [w.prefill_chunk_seconds for w in wafers], boundary,
        resident, workload.prompt_tokens, batch=batch, chunk_tokens=chunk, concurrency=workload.concurrency,
        kv_bytes_per_wafer=[w.kv_per_sequence for w in wafers], decode_tokens=decode_tokens(workload),
        stage_parts=[w.parts for w in wafers], trip_of_one=trip_of_one, stage_intervals=intervals,
        interval_parts=interval_parts, prefill_intervals=prefill_intervals)
    return Placement(tuple(wafers), tuple(boundary), perf, chunk)


def predicted_round_trip(cost: ModelCost, target: Target, assignment: Mapping[str, int],
                         batch: int = 1, wafer_seconds: Mapping[int, float] | None = None) -> float:
    """The decode round trip of one micro-batch of ``batch`` sequences under ``assignment``
    (unit name -> wafer; units not named sit on wafer 0): ``placer run``'s predicted step
    (``predicted_step`` with one micro-batch)."""
    return predicted_step(cost, target, assignment, batch, wafer_seconds)


def predicted_step(cost: ModelCost, target: Target, assignment: Mapping[str, int], batch: int = 1,
                   wafer_seconds: Mapping[int, float] | None = None, micro_batches: int = 1,
                   wafer_intervals: Mapping[int, float] | None = None) -> float:
    """The time per output token of ``micro_batches`` micro-batches of ``batch`` sequences each
    in flight under ``assignment``: with one, the round trip; with ``M``, ``formulas.tpot`` of
    that round trip, every wafer's interval and the busiest boundary. ``wafer_seconds`` and
    ``wafer_intervals``: the latency and interval of wafers laid out in regions (their
    floorplan's, ``placer.floorplan.placed_seconds``), in place of the sum of their units' steps
    (a whole-grid wafer's latency and interval)."""
    order = [assignment.get(u.name, 0) for u in cost.units]
    n = max(order, default=0) + 1
    stages = [0.0] * n
    for u, w in zip(cost.units, order):
        stages[w] += unit_decode_seconds(u, target, batch)
    intervals = list(stages)
    for w, seconds in (wafer_seconds or {}).items():
        stages[w] = seconds
    for w, seconds in (wafer_intervals or {}).items():
        intervals[w] = seconds
    index = {u.name: i for i, u in enumerate(cost.units)}
    edges = [(index[e.src], index[e.dst], e.bytes_per_token) for e in cost.edges]
    boundary = f.boundary_bytes(order, edges, n)
    io = [batch * b / target.io_bandwidth_bytes_per_s for b in boundary]
    trip = f.round_trip(sum(stages), sum(io), n, target.hop_latency_s, target.host_overhead_s_per_token)
    if micro_batches <= 1:
        return trip
    return f.tpot(trip, max(intervals), max(io, default=0.0), micro_batches)
