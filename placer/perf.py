"""Performance model: what a placed model will do on the target, from the target's constants.

Every constant comes from ``placer.targets.Target``; nothing here is calibrated by hand.

Per unit, on a whole-wafer layout (every unit spread over the wafer's full PE grid, as in
published wafer-scale LLM work; a wafer runs its units one after the other):

* compute ``t_c = flops / (mesh_rows x mesh_cols x flops_per_cycle_per_pe x clock_hz)``
* SRAM traffic ``t_m = (weight_read_bytes + activation_bytes + kv_read_bytes) / sram_bandwidth_bytes_per_s``
  (compute and SRAM streaming overlap on a dataflow PE, so the unit pays ``max(t_c, t_m)``)
* fabric: a reduction over a line of ``k`` PEs costs, as a chain, ``(k - 1) x (cycles_per_hop
  + 1)`` cycles (one hop and one add per PE); the two-level scheme (chains inside
  ``g = round(sqrt(k))`` groups, then a chain across the group roots) costs
  ``(k/g - 1) x (cycles_per_hop + 1) + (g - 1) x (k/g x cycles_per_hop + 1)`` cycles; the
  cheaper of the two is used. A broadcast over ``k`` PEs costs ``(k - 1) x cycles_per_hop``.
  A GEMV collective (``NodeCost.gemv_collectives``: weight GEMVs, attention's QK^T and P @ V)
  broadcasts the input along a grid row (``mesh_cols`` PEs) and reduces the partial sums
  along a grid column (``mesh_rows`` PEs); a row all-reduce (``NodeCost.row_collectives``:
  norm statistics, softmax max and sum) reduces along a grid row and broadcasts back along it.
  ``t_f = (gemv_collectives x (reduce(mesh_rows) + broadcast(mesh_cols)) + row_collectives x
  (reduce(mesh_cols) + broadcast(mesh_cols))) / clock_hz``.
* unit decode time ``t_u = max(t_c, t_m) + t_f``; prefill time of the whole prompt likewise
  from the unit's prefill cost.

Across wafers (pipeline parallelism, N wafers, stage time ``t_w = sum of t_u on wafer w``):

* one I/O hop across boundary ``b`` per token: ``t_hop_b = io_latency_s + B_b / io_bandwidth``
  where ``B_b`` is the activation bytes per token crossing the boundary (edges that skip a
  wafer are relayed through it); the last hop returns the sampled token id to the first wafer
  (latency only).
* decode round trip ``R = sum_w t_w + N x io_latency_s + sum_b B_b / io_bandwidth``
* with ``S`` resident sequences interleaved, time per output token
  ``TPOT = max(R, S x max_w t_w, S x max_b B_b / io_bandwidth)`` (the last term: a boundary
  must carry every resident sequence's activation once per token; I/O is full duplex)
* tokens/s per user ``1 / TPOT``; in total ``S / TPOT``
* sequences needed to keep every stage busy ``ceil(R / max_w t_w)``
* time to first token with the prompt cut into ``C = N`` chunks pipelined through the wafers:
  ``TTFT = (N + C - 1) x max_w P_w / C + sum_b (io_latency_s + B_b x prompt / C / io_bandwidth)
  + io_latency_s`` where ``P_w`` is the prefill time of wafer w's units for the whole prompt.
* swap-in of a parked sequence: each wafer reloads its share of the sequence's KV over its own
  I/O in parallel: ``io_latency_s + max_w KV_w / io_bandwidth``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from placer.costs import ModelCost, NodeCost, UnitCost
from placer.ir import mesh_physics
from placer.targets import Target


def reduction_cycles(k: int, cycles_per_hop: int) -> int:
    """Cycles of one reduction over a line of ``k`` PEs (``placer.ir.mesh_physics``)."""
    return mesh_physics.reduce_cycles(k, 0, cycles_per_hop, 1)


def reduce_cycles(k: int, cycles_per_hop: int) -> int:
    """Cycles of one all-reduce (reduce + broadcast) over a line of ``k`` PEs."""
    return mesh_physics.allreduce_cycles(k, 0, cycles_per_hop, 1)


def collective_seconds(target: Target) -> float:
    """Seconds of one GEMV collective: the input broadcast along a grid row (``mesh_cols``
    PEs), the partial sums reduced along a grid column (``mesh_rows`` PEs)."""
    cycles = mesh_physics.gemv_collective_cycles(target.mesh_rows, target.mesh_cols, 0, 0,
                                                 target.cycles_per_hop, target.link_bytes_per_cycle)
    return cycles / target.clock_hz


def row_collective_seconds(target: Target) -> float:
    """Seconds of one all-reduce along a grid row (``mesh_cols`` PEs): norms, softmax."""
    return reduce_cycles(target.mesh_cols, target.cycles_per_hop) / target.clock_hz


def node_cost_seconds(cost: NodeCost, target: Target) -> float:
    """On-wafer seconds of one ``NodeCost`` on a whole-wafer layout."""
    compute = cost.flops / target.peak_flops
    memory = cost.memory_bytes / target.sram_bandwidth_bytes_per_s
    return (max(compute, memory) + cost.gemv_collectives * collective_seconds(target)
            + cost.row_collectives * row_collective_seconds(target) + overhead_seconds(cost, target))


def overhead_seconds(cost: NodeCost, target: Target) -> float:
    """Fixed overheads of one step of ``cost`` (issue 10; fitted by ``placer calibrate``, 0 on a
    ``-physics`` target): ``kernel_overhead_cycles`` per kernel, ``collective_overhead_cycles``
    per collective. The host's time per token and the TTFT overheads enter in
    ``predict_performance``; nothing else in the model depends on the overhead fields."""
    kernels = cost.kernels
    collectives = cost.gemv_collectives + cost.row_collectives
    return (kernels * target.kernel_overhead_cycles
            + collectives * target.collective_overhead_cycles) / target.clock_hz


def unit_decode_seconds(unit: UnitCost, target: Target) -> float:
    """Seconds one decode step of one sequence spends in ``unit``."""
    return node_cost_seconds(unit.decode, target)


def unit_prefill_seconds(unit: UnitCost, target: Target) -> float:
    """Seconds the whole prompt of one sequence spends in ``unit``."""
    return node_cost_seconds(unit.prefill, target)


def decode_seconds_by_unit(cost: ModelCost, target: Target) -> dict[str, float]:
    """Per-unit decode seconds, keyed by unit name (what the mesh emulator compares against)."""
    return {u.name: unit_decode_seconds(u, target) for u in cost.units}


@dataclass(frozen=True)
class Performance:
    """Predicted behaviour of a placed model; every field says its unit."""

    time_per_output_token_s: float
    ttft_s: float
    tokens_per_s_per_user: float
    tokens_per_s_total: float
    sequences_to_fill_pipeline: int
    round_trip_s: float
    max_stage_s: float
    bottleneck: str  # "round-trip", "stage" or "io": the term of TPOT that binds


def predict_performance(target: Target, stage_seconds: Sequence[float], prefill_seconds: Sequence[float],
                        boundary_bytes_per_token: Sequence[int], resident_sequences: int,
                        prompt_tokens: int) -> Performance:
    """Apply the pipeline formulas of the module docstring.

    Args:
        stage_seconds: decode seconds of each wafer's units (one sequence, one token).
        prefill_seconds: prefill seconds of each wafer's units (one sequence, whole prompt).
        boundary_bytes_per_token: activation bytes per token crossing each of the N - 1
            boundaries between consecutive wafers.
        resident_sequences: sequences decoded in turn (their KV is in SRAM); at least 1.
    """
    n = len(stage_seconds)
    bw, alpha = target.io_bandwidth_bytes_per_s, target.io_latency_s
    s = max(1, resident_sequences)
    max_stage = max(stage_seconds) if stage_seconds else 0.0
    io_total = sum(boundary_bytes_per_token) / bw
    io_max = max(boundary_bytes_per_token, default=0) / bw
    round_trip = sum(stage_seconds) + n * alpha + io_total + target.host_overhead_s_per_token
    terms = {"round-trip": round_trip, "stage": s * max_stage, "io": s * io_max}
    tpot = max(terms.values())
    bottleneck = next(k for k, v in terms.items() if v == tpot)
    chunks = max(1, n)
    prompt_hops = sum(alpha + b * prompt_tokens / chunks / bw for b in boundary_bytes_per_token)
    prefill = max(prefill_seconds, default=0.0) / target.prefill_utilisation
    ttft = (n + chunks - 1) * prefill / chunks + prompt_hops + alpha + target.request_overhead_s
    fill = math.ceil(round_trip / max_stage - 1e-12) if max_stage > 0 else 1
    return Performance(
        time_per_output_token_s=tpot,
        ttft_s=ttft,
        tokens_per_s_per_user=1.0 / tpot if tpot > 0 else math.inf,
        tokens_per_s_total=s / tpot if tpot > 0 else math.inf,
        sequences_to_fill_pipeline=max(1, fill),
        round_trip_s=round_trip,
        max_stage_s=max_stage,
        bottleneck=bottleneck,
    )


def swap_in_seconds(target: Target, kv_bytes_per_wafer: Sequence[int]) -> float:
    """Seconds to bring one parked sequence's KV back into SRAM (wafers load in parallel)."""
    if not any(kv_bytes_per_wafer):
        return 0.0
    return target.io_latency_s + max(kv_bytes_per_wafer) / target.io_bandwidth_bytes_per_s
