"""One unit on a whole-wafer layout: a decode step of a micro-batch, a prefill chunk, buffers.

See the package docstring for the formulas. The fabric cycles of every collective come from
``placer.ir.mesh_physics``, the functions the mesh emulator runs, so the two agree exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from placer.costs import ModelCost, NodeCost, UnitCost
from placer.ir import mesh_physics as mp
from placer.perf.pipeline import StageParts
from placer.targets import Target

_Key = tuple[str, int, int, int, str, bool, str, int, int, bool]


def _collectives(cost: NodeCost) -> Iterator[tuple[_Key, int]]:
    """``((kind, in_elements, out_elements, element_bytes, input_key, matrix, feeds, heads,
    groups, sums), count)`` of ``cost``'s collectives (``placer.costs.Collective``, per token of
    one sequence), alike ones together."""
    return iter(Counter((c.kind.value, c.in_elements, c.out_elements, c.element_bytes, c.input_key, c.matrix,
                         c.feeds, c.heads, c.groups, c.sums) for c in cost.collectives).items())


def _cannon(target: Target, rows: int, n_in: int, n_out: int, size: int) -> int | None:
    """Cycles of a prefill GEMM of ``rows`` rows when ``mesh_physics.prefill_gemm`` runs it by
    Cannon (compute included), else None (it stays a ``rows``-row GEMV)."""
    algorithm, cycles = mp.prefill_gemm(rows, n_in, n_out, target.mesh_rows, target.mesh_cols, size,
                                        target.cycles_per_hop, target.link_bytes_per_cycle,
                                        target.flops_per_cycle_per_pe)
    return cycles if algorithm == "cannon" else None


def fabric_cycles(cost: NodeCost, target: Target, rows: int = 1, prefill: bool = False) -> int:
    """Fabric cycles of ``cost``'s collectives for ``rows`` rows at once (a micro-batch of
    ``rows`` sequences, or a prefill chunk of ``rows`` tokens): the latency once, the tiles
    ``rows`` times as large. GEMVs that share an ``input_key`` share one broadcast. A norm's
    row all-reduces that feed GEMVs (``Collective.feeds``; ``placer.ir.norm_fusion``) run beside
    the first such GEMV's collective (``mesh_physics.fused_norm_extra_cycles``: each of the
    ``rows`` normalised rows sends one fp32 statistic per all-reduce), except in a prefill
    chunk of several rows, where they stay row all-reduces. Attention GEMVs (``Collective.heads``)
    run per KV head group on bands of grid rows (``mesh_physics.attention_gemv_cycles``), P @ V
    with the softmax's sums beside it (a row all-reduce in a prefill chunk of several rows).
    With ``prefill``, a weight GEMM
    that ``mesh_physics.prefill_gemm`` runs by Cannon is left out here (``step_parts`` charges
    its Cannon cycles, compute included)."""
    r, c = target.mesh_rows, target.mesh_cols
    hop, link = target.cycles_per_hop, target.link_bytes_per_cycle
    total = 0
    seen: set[str] = set()
    fuse = not prefill or rows <= 1
    gemv_keys = {x.input_key for x in cost.collectives if x.kind.value == "gemv" and x.input_key}
    # fused norm statistics per fed value: bytes of one PE's tile of them
    stats: dict[str, int] = {}
    groups = tuple(_collectives(cost))   # grouped once: a MoE unit has ~1,600 descriptors
    for (kind, n_in, _, _, _, _, feeds, _, _, _), count in groups:
        if fuse and feeds in gemv_keys and kind == "row-allreduce" and count > 0:
            stats[feeds] = stats.get(feeds, 0) + count * n_in * rows * mp.STAT_BYTES
    for (kind, n_in, n_out, size, key, matrix, feeds, heads, kv_groups, sums), count in groups:
        if count <= 0 or (kind == "row-allreduce" and feeds in stats):
            continue
        if prefill and matrix and rows > 1 and _cannon(target, rows, n_in, n_out, size) is not None:
            continue
        if heads:  # attention over the KV cache, per KV head group on its band of grid rows
            total += count * mp.attention_gemv_cycles(r, c, heads, kv_groups, n_in // heads, n_out // heads,
                                                      rows, size, hop, link, sums and fuse)
            if sums and not fuse:  # a prefill chunk: the softmax's sum is a row all-reduce before P @ V
                tile = mp.row_tile_bytes(heads * rows, 1, r, size)
                total += count * mp.allreduce_cycles(c, tile, hop, link)
        elif kind == "gemv":
            in_tile, out_tile = mp.gemv_tile_bytes(rows, n_in, n_out, r, c, size)
            full = mp.gemv_collective_cycles(r, c, in_tile, out_tile, hop, link)
            if not key:
                total += count * full
                continue
            shared = mp.gemv_collective_cycles(r, c, in_tile, out_tile, hop, link, broadcast=False)
            total += (count - 1) * shared + (shared if key in seen else full)
            if key in stats and key not in seen:
                statistic = mp.norm_statistic_cycles(r, c, stats[key], hop, link)
                total += mp.fused_norm_extra_cycles(statistic, full)
            seen.add(key)
        elif kind == "relayout":
            total += count * mp.relayout_cycles(n_in * rows, n_in * rows * size, r * c, hop, link)
        elif kind == "route":  # the rows of every sequence travel at once
            total += count * mp.route_cycles(r, c, n_in * size, hop, link)
        else:
            # one statistic per normalised row (heads x tokens x sequences), spread over grid rows
            total += count * mp.allreduce_cycles(c, mp.row_tile_bytes(n_in * rows, 1, r, size), hop, link)
    return total


def step_parts(cost: NodeCost, target: Target, rows: int = 1, share: float = 1.0,
               weight_cap: int | None = None, prefill: bool = False) -> StageParts:
    """``cost`` run on ``rows`` rows in one step, split into compute, SRAM, fabric and overhead
    seconds.

    ``share``: the fraction of ``cost``'s FLOPs, activation and KV bytes per row (1 for a decode
    cost, which is per token; ``1 / prompt`` for a prefill cost of the whole prompt). Weights
    are read once per step; with ``weight_cap`` (the unit's stored weights) the per-token
    expected reads of a MoE unit add up over the rows, to at most the cap. ``prefill``: the
    rows are a prompt chunk, whose weight GEMMs run as ``mesh_physics.prefill_gemm`` chooses
    (decode micro-batches always run GEMVs on the resident tiles)."""
    reads = cost.weight_read_bytes
    if weight_cap is not None:
        reads = min(reads * rows, max(weight_cap, reads))
    streamed = reads + (cost.activation_bytes + cost.kv_read_bytes) * share * rows
    flops = cost.flops * share * rows
    cannon = 0
    if prefill and rows > 1:  # weight GEMMs run by Cannon: their cycles, their FLOPs included
        for (kind, n_in, n_out, size, _key, matrix, *_), count in _collectives(cost):
            cycles = _cannon(target, rows, n_in, n_out, size) if kind == "gemv" and matrix else None
            if cycles is not None:
                cannon += count * cycles
                flops -= count * 2 * n_in * n_out * rows
    return StageParts(compute=max(0.0, flops) / target.peak_flops,
                      memory=streamed / target.sram_bandwidth_bytes_per_s,
                      fabric=(fabric_cycles(cost, target, rows, prefill) + cannon) / target.clock_hz,
                      overhead=overhead_seconds(cost, target))


def overhead_seconds(cost: NodeCost, target: Target) -> float:
    """Fixed overheads of one step of ``cost`` (issue 10; fitted by ``placer calibrate``, 0 on a
    ``-physics`` target): ``kernel_overhead_cycles`` per kernel, ``collective_overhead_cycles``
    per collective, once per step whatever its rows. The host's time per token enters the round
    trip and the TTFT overheads ``ttft_seconds``; nothing else depends on the overhead fields."""
    kernels = getattr(cost, "kernels", 0)
    collectives = cost.gemv_collectives + cost.row_collectives
    return (kernels * target.kernel_overhead_cycles
            + collectives * target.collective_overhead_cycles) / target.clock_hz


def step_seconds(cost: NodeCost, target: Target, rows: int = 1, share: float = 1.0,
                 weight_cap: int | None = None, prefill: bool = False) -> float:
    """Seconds of ``step_parts``: ``max(compute, SRAM) + fabric + overhead``."""
    return step_parts(cost, target, rows, share, weight_cap, prefill).seconds


def decode_key(unit: UnitCost) -> tuple[object, int]:
    """What a unit's decode step depends on (its decode cost and stored bytes): units with equal
    keys (the alike layers of a model) have equal ``unit_decode_parts`` and are priced once."""
    return unit.decode, unit.weight_bytes + unit.constant_bytes


def unit_decode_parts(unit: UnitCost, target: Target, batch: int = 1) -> StageParts:
    return step_parts(unit.decode, target, batch, 1.0, unit.weight_bytes + unit.constant_bytes)


def unit_decode_seconds(unit: UnitCost, target: Target, batch: int = 1) -> float:
    """Seconds of one decode step of a micro-batch of ``batch`` sequences through ``unit``."""
    return unit_decode_parts(unit, target, batch).seconds


def unit_prefill_chunk_seconds(unit: UnitCost, target: Target, chunk: int, prompt: int) -> float:
    """Seconds of one prefill chunk of ``chunk`` prompt tokens through ``unit`` (the unit's
    prefill cost is for the whole ``prompt``; a chunk does ``1 / prompt`` of its work per token,
    reads the weights once and pays every collective's latency once)."""
    return step_seconds(unit.prefill, target, chunk, 1.0 / max(1, prompt), prefill=True)


def decode_seconds_by_unit(cost: ModelCost, target: Target, batch: int = 1) -> dict[str, float]:
    """Per-unit decode seconds at ``batch`` (what ``placer run``'s predicted column compares)."""
    return {u.name: unit_decode_seconds(u, target, batch) for u in cost.units}


def prefill_chunk(target: Target, prompt_tokens: int) -> int:
    """Prompt tokens per prefill chunk on whole-layout wafers: the smallest power of two >=
    ``mesh_rows`` (every PE row holds at least one token of a chunk), at most the prompt."""
    return max(1, min(prompt_tokens, 1 << max(0, target.mesh_rows - 1).bit_length()))


def prefill_chunk_ladder(target: Target, prompt_tokens: int) -> tuple[int, ...]:
    """Every power of two up to ``prefill_chunk(target, prompt)``: the chunk sizes a plan with
    wafers laid out in regions chooses from (``placement.place``)."""
    top = prefill_chunk(target, prompt_tokens)
    return tuple(1 << k for k in range(top.bit_length()) if 1 << k <= top)


def activation_buffer_bytes(unit: UnitCost, chunk_tokens: int, concurrency: int) -> int:
    """The unit's activation buffer: its output for one prefill chunk plus one token of every
    sequence in flight."""
    return unit.activation_out_bytes_per_token * (chunk_tokens + concurrency)
