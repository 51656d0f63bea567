"""The float model of a placed pipeline: time per token, throughput, TTFT, swaps, cost.

Formulas in the package docstring; the pipeline and memory terms are ``placer.perf.formulas``,
shared with the solver's integer model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from placer.perf import formulas as f
from placer.targets import Target

BOUNDS = ("compute", "SRAM bandwidth", "fabric latency", "I/O", "SRAM capacity")


@dataclass(frozen=True)
class StageParts:
    """One wafer's decode step split by what it waits for (seconds): ``compute`` and
    ``memory`` (SRAM traffic) overlap, the unit pays the larger; ``fabric`` (collectives) adds."""

    compute: float = 0.0
    memory: float = 0.0
    fabric: float = 0.0
    overhead: float = 0.0   # fitted fixed costs per step (issue 10; 0 on a -physics target)

    @property
    def seconds(self) -> float:
        """``max(compute, memory) + fabric + overhead``."""
        return max(self.compute, self.memory) + self.fabric + self.overhead

    def __add__(self, other: StageParts) -> StageParts:
        return StageParts(self.compute + other.compute, self.memory + other.memory,
                          self.fabric + other.fabric, self.overhead + other.overhead)


@dataclass(frozen=True)
class Performance:
    """Predicted behaviour of a placed model; every field says its unit."""

    time_per_output_token_s: float     # of a resident sequence
    ttft_s: float
    tokens_per_s_per_user: float       # of a resident sequence: 1 / TPOT
    tokens_per_s_total: float          # every user, swaps of parked sequences charged
    sequences_to_fill_pipeline: int
    round_trip_s: float
    max_stage_s: float
    bottleneck: str                    # the TPOT term that binds: "round-trip", "stage" or "io"
    micro_batch: int = 1               # sequences per stage step
    micro_batches_in_flight: int = 1
    tokens_per_s_per_user_mean: float = 0.0   # over all users, resident or parked
    tokens_per_s_per_user_min: float = 0.0
    tokens_per_s_per_wafer: float = 0.0
    prefill_chunk_tokens: int = 1
    throughput_bound: str = ""         # one of BOUNDS: what stops total tokens/s from growing
    swap_bytes_per_s_per_wafer: float = 0.0   # KV swap traffic of the busiest wafer, each direction
    usd_per_million_tokens: float = 0.0       # 0 when the target has no cost_per_hour


def swap_in_seconds(target: Target, kv_bytes_per_wafer: Sequence[int]) -> float:
    """Seconds to bring one parked sequence's KV back into SRAM: each wafer loads its share
    over its own I/O, in parallel (``hop_latency_s + max_w KV_w / io_bandwidth``)."""
    if not any(kv_bytes_per_wafer):
        return 0.0
    return target.hop_latency_s + max(kv_bytes_per_wafer) / target.io_bandwidth_bytes_per_s


def prefill_chunks(prompt_tokens: int, chunk_tokens: int) -> int:
    """Chunks of one prompt: ``C = ceil(prompt / chunk)`` (at least one)."""
    return -(-max(1, prompt_tokens) // max(1, chunk_tokens))


def prefill_wafer_seconds(target: Target, chunk_seconds: Sequence[float], prompt_tokens: int,
                          chunk_tokens: int, chunk_intervals: Sequence[float] | None = None) -> float:
    """Wafer-seconds one whole prompt's prefill occupies: wafer w is busy from its first chunk's
    arrival to its last chunk's departure, ``P_w + (C - 1) x I_w`` over the target's
    ``prefill_utilisation`` (``P_w`` one chunk's latency through the wafer, the chunk time
    TTFT charges; ``I_w`` its interval between chunks, ``chunk_intervals``, = ``P_w`` on a
    whole-layout wafer, whose sum is then ``sum_w C x P_w``). Pipelining overlaps the wafers
    in time, not the work: each wafer is still busy for its C chunks."""
    chunks = prefill_chunks(prompt_tokens, chunk_tokens)
    intervals = chunk_seconds if chunk_intervals is None else chunk_intervals
    busy = sum(p + (chunks - 1) * i for p, i in zip(chunk_seconds, intervals, strict=True))
    return busy / target.prefill_utilisation


def usd_per_million_input_tokens(target: Target, chunk_seconds: Sequence[float], prompt_tokens: int,
                                 chunk_tokens: int, chunk_intervals: Sequence[float] | None = None) -> float:
    """$ per million prompt tokens: a prompt is charged the wafer time of its prefill
    (``prefill_wafer_seconds`` x ``cost_per_hour`` / 3600, ``cost_per_hour`` being $ per
    wafer-hour as in ``usd_per_million_tokens``), shared by its ``prompt_tokens``; 0 when the
    target has no cost."""
    if not target.cost_per_hour or prompt_tokens <= 0:
        return 0.0
    wafer_seconds = prefill_wafer_seconds(target, chunk_seconds, prompt_tokens, chunk_tokens, chunk_intervals)
    return wafer_seconds * target.cost_per_hour / 3600 / prompt_tokens * 1e6


def usd_per_request(usd_per_million_input: float, prompt_tokens: int, usd_per_million_output: float,
                    output_tokens: int) -> float:
    """$ of one request: its prompt's prefill plus ``output_tokens`` decoded tokens."""
    return (usd_per_million_input * prompt_tokens + usd_per_million_output * output_tokens) / 1e6


def ttft_seconds(target: Target, chunk_seconds: Sequence[float], boundary_bytes_per_token: Sequence[int],
                 prompt_tokens: int, chunk_tokens: int, decode_round_trip: float,
                 chunk_intervals: Sequence[float] | None = None) -> float:
    """Time to first token: the prompt in ``C = ceil(prompt / chunk)`` chunks pipelined
    through the wafers, ``sum_w P_w + sum_b H_b + (C - 1) x max(max_w I_w, max_b H_b) +
    hop_latency_s + request_overhead_s`` (``P_w`` one chunk's latency through wafer w and
    ``I_w`` its interval between chunks, both over the target's ``prefill_utilisation``:
    ``I_w = P_w`` on a whole-layout wafer, which takes the next chunk when one has left; under
    regions the floorplan's spatial pipeline, ``chunk_intervals``; ``H_b = hop_latency_s +
    chunk x B_b / io_bandwidth`` one chunk across boundary b); never below one decode round
    trip."""
    alpha, bw = target.hop_latency_s, target.io_bandwidth_bytes_per_s
    latencies = [p / target.prefill_utilisation for p in chunk_seconds]
    intervals = latencies if chunk_intervals is None else [
        i / target.prefill_utilisation for i in chunk_intervals]
    chunks = prefill_chunks(prompt_tokens, chunk_tokens)
    hops = [alpha + chunk_tokens * b / bw for b in boundary_bytes_per_token]
    slowest = max([*intervals, *hops], default=0.0)
    pipeline = sum(latencies) + sum(hops) + (chunks - 1) * slowest + alpha
    return max(pipeline, decode_round_trip) + target.request_overhead_s


def _bound(term: str, stage_parts: Sequence[StageParts], interval_parts: Sequence[StageParts], slowest: int,
           io_s: float) -> str:
    if term == "io":
        return "I/O"
    parts = interval_parts[slowest] if term == "stage" else sum(stage_parts, StageParts())
    named = {"compute": parts.compute if parts.compute >= parts.memory else 0.0,
             "SRAM bandwidth": parts.memory if parts.memory > parts.compute else 0.0,
             "fabric latency": parts.fabric, "I/O": io_s if term == "round-trip" else 0.0}
    return max(named, key=lambda k: named[k])


def predict_performance(target: Target, stage_seconds: Sequence[float],
                        prefill_chunk_seconds: Sequence[float], boundary_bytes_per_token: Sequence[int],
                        resident_sequences: int, prompt_tokens: int, *, batch: int = 1,
                        chunk_tokens: int | None = None, concurrency: int | None = None,
                        kv_bytes_per_wafer: Sequence[int] = (), decode_tokens: int = 1,
                        stage_parts: Sequence[StageParts] = (), trip_of_one: float | None = None,
                        stage_intervals: Sequence[float] | None = None,
                        interval_parts: Sequence[StageParts] | None = None,
                        prefill_intervals: Sequence[float] | None = None) -> Performance:
    """Apply the pipeline formulas of the package docstring.

    Args:
        stage_seconds: decode seconds of one micro-batch of ``batch`` sequences on each wafer.
        prefill_chunk_seconds: seconds of one prefill chunk of ``chunk_tokens`` on each wafer.
        boundary_bytes_per_token: bytes per token of one sequence across each of the N - 1
            boundaries between consecutive wafers.
        resident_sequences: sequences whose KV is in SRAM (at least 1).
        concurrency: users served (default: the resident ones); the rest are parked and rotate.
        kv_bytes_per_wafer: KV bytes of one sequence on each wafer (swap traffic).
        decode_tokens: tokens a sequence decodes per residency (the rotation quantum).
        stage_parts: each wafer's step split into compute, SRAM and fabric (names the bound).
        trip_of_one: the decode round trip of a micro-batch of one (TTFT's lower bound;
            default: this round trip).
        stage_intervals: each wafer's interval between micro-batches when it is itself a
            spatial pipeline (``placer.perf.regions``; then ``stage_seconds`` are the wafers'
            latencies); default: ``stage_seconds`` (a wafer takes the next micro-batch when
            the last one has left).
        interval_parts: each wafer's parts of what sets its interval (its slowest region under
            regions); default: ``stage_parts``.
        prefill_intervals: each wafer's interval between prefill chunks (its slowest region's
            chunk under regions; then ``prefill_chunk_seconds`` are the chunk's latencies
            through the wafers); default: ``prefill_chunk_seconds``.
    """
    n = len(stage_seconds)
    bw, alpha = target.io_bandwidth_bytes_per_s, target.hop_latency_s
    s = max(1, resident_sequences)
    users = max(s, concurrency or s)
    m = f.micro_batches(s, batch)
    intervals = stage_seconds if stage_intervals is None else stage_intervals
    max_stage = max(intervals, default=0.0)
    io = [batch * b / bw for b in boundary_bytes_per_token]
    trip = f.round_trip(sum(stage_seconds), sum(io), n, alpha, target.host_overhead_s_per_token)
    tpot = f.tpot(trip, max_stage, max(io, default=0.0), m)
    term = f.binding_term(trip, max_stage, max(io, default=0.0), m)
    per_user = 1.0 / tpot if tpot > 0 else math.inf
    total = s / tpot if tpot > 0 else math.inf
    parked = users - s
    swap_rate = 0.0
    mean = per_user
    if parked > 0:
        # Fair rotation: every user holds a slot for `decode_tokens` tokens, then its KV
        # leaves while the next one's arrives (full duplex: out and in at once).
        q = max(1, decode_tokens)
        swap = swap_in_seconds(target, kv_bytes_per_wafer)
        total = s * q / (q * tpot + swap)
        link_room = min((bw - s / tpot * b for b in boundary_bytes_per_token), default=bw)
        kv_max = max(kv_bytes_per_wafer, default=0)
        if kv_max > 0:
            total = min(total, q * max(0.0, link_room) / kv_max)  # swaps share the boundary links
        swap_rate = total / q * kv_max
        mean = total / users
    slowest = max(range(n), key=lambda w: (intervals[w], -w)) if n else 0
    parts = list(stage_parts) or [StageParts()] * n
    bound = "SRAM capacity" if parked > 0 else _bound(term, parts, parts if interval_parts is None
                                                      else interval_parts, slowest, n * alpha + sum(io))
    if parked > 0 and swap_rate >= bw * (1 - 1e-9):
        bound = "I/O"
    chunk = max(1, min(chunk_tokens or prompt_tokens, prompt_tokens))
    ttft = ttft_seconds(target, prefill_chunk_seconds, boundary_bytes_per_token, prompt_tokens, chunk,
                        trip if trip_of_one is None else trip_of_one, prefill_intervals)
    fill = math.ceil(trip / max_stage - 1e-12) if max_stage > 0 else 1
    cost = getattr(target, "cost_per_hour", 0.0)
    usd = n * cost / 3600 / total * 1e6 if cost and total > 0 else 0.0
    return Performance(
        time_per_output_token_s=tpot, ttft_s=ttft, tokens_per_s_per_user=per_user, tokens_per_s_total=total,
        sequences_to_fill_pipeline=max(1, fill) * batch, round_trip_s=trip, max_stage_s=max_stage,
        bottleneck=term,
        micro_batch=batch, micro_batches_in_flight=m, tokens_per_s_per_user_mean=mean,
        tokens_per_s_per_user_min=mean, tokens_per_s_per_wafer=total / max(1, n), prefill_chunk_tokens=chunk,
        throughput_bound=bound, swap_bytes_per_s_per_wafer=swap_rate, usd_per_million_tokens=usd)
