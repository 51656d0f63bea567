"""The pipeline and memory formulas, written once for any number type.

Each function uses only ``+``, ``*`` by an integer and ``max``/comparisons, so the float model
(seconds, bytes), the solver's integer model (ticks) and CP-SAT's linear expressions are built
from the same definitions: the integer model is the float model with every unit and edge time
rounded to ticks. ``placer.perf.pipeline`` (float) and ``placer.solver`` (integer) call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

N = TypeVar("N", int, float, Any)

TICK_S = 1e-10  # the solver's integer time unit: 0.1 ns


def to_ticks(seconds: float) -> int:
    """Seconds as the solver's integer ticks (rounded to the nearest)."""
    return round(seconds / TICK_S)


def wafer_bytes(weights: N, kv_per_sequence: N, resident: int, buffer: N) -> N:
    """SRAM one wafer needs: its units' weights and constants, the KV of every resident
    sequence, and the largest activation buffer of its units (they run one after another)."""
    return weights + kv_per_sequence * resident + buffer


def sequences_that_fit(capacity: int, weights: int, buffer: int, kv_per_sequence: int, cap: int) -> int:
    """The most resident sequences (<= ``cap``) one wafer holds beside its weights and buffer."""
    room = capacity - weights - buffer
    if room < 0:
        return 0
    return cap if kv_per_sequence <= 0 else min(cap, room // kv_per_sequence)


def micro_batches(resident: int, batch: int) -> int:
    """Micro-batches in flight: ``ceil(resident / batch)``."""
    return -(-max(1, resident) // max(1, batch))


def round_trip(stage_sum: N, boundary_sum: N, wafers: N, hop: N, host: N = 0) -> N:
    """One micro-batch through every wafer and back: ``sum_w t_w + N x hop + sum_b I_b + host``
    (the last hop returns the sampled tokens to the first wafer; ``host``: the target's
    ``host_overhead_s_per_token``, 0 on a ``-physics`` target)."""
    return stage_sum + wafers * hop + boundary_sum + host


def tpot_terms(trip: N, max_stage: N, max_boundary: N, in_flight: int) -> tuple[tuple[str, N], ...]:
    """The lower bounds on the time per output token, by name: the round trip, every stage
    serving each of the ``in_flight`` micro-batches once, every boundary carrying them once."""
    return (("round-trip", trip), ("stage", max_stage * in_flight), ("io", max_boundary * in_flight))


def tpot(trip: N, max_stage: N, max_boundary: N, in_flight: int) -> N:
    """Time per output token: the largest of ``tpot_terms``."""
    return max(v for _, v in tpot_terms(trip, max_stage, max_boundary, in_flight))


def binding_term(trip: N, max_stage: N, max_boundary: N, in_flight: int) -> str:
    terms = tpot_terms(trip, max_stage, max_boundary, in_flight)
    top = max(v for _, v in terms)
    return next(k for k, v in terms if v == top)


def batch_for(resident: int, wafers: int) -> int:
    """Sequences per micro-batch at ``resident`` sequences on a pipeline of ``wafers`` stages:
    ``min(resident, wafers)`` micro-batches keep every stage busy, each of
    ``ceil(resident / micro-batches)`` sequences."""
    s = max(1, resident)
    return -(-s // max(1, min(s, wafers)))


def boundary_bytes(assignment: Sequence[int], edges: Sequence[tuple[int, int, int]],
                   wafers: int) -> list[int]:
    """Bytes per token crossing each of the ``wafers - 1`` boundaries: every ``(src, dst,
    bytes)`` edge crosses each boundary between its wafers (relayed through the ones between),
    whichever way it points (a hand-made ``placer run`` assignment may send one backwards)."""
    out = [0] * max(0, wafers - 1)
    for src, dst, nbytes in edges:
        a, b = sorted((assignment[src], assignment[dst]))
        for i in range(a, b):
            out[i] += nbytes
    return out
