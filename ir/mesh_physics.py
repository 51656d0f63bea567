"""Cycle counts of the collectives the mesh emulator runs, in pure integers.

Both the emulator (``placer.backends.mesh``) and the performance model (``placer.perf``) call
these functions, so the two agree exactly on every collective (tests run the emulator on one
line of the full wse2 and wse3 grids and on odd and prime lengths). No numpy, no placer
imports: only the target's per-wafer constants.

Units: ``k`` PEs on a line; ``tile_bytes`` the bytes each PE sends (they grow with the
micro-batch: ``gemv_tile_bytes``); ``cycles_per_hop`` the fabric latency of one hop;
``link_bytes_per_cycle`` what a link carries per cycle (one 32-bit wavelet on the WSE). A
PE adds an incoming wavelet to its own in one cycle.

Algorithms (the best known ones for a 2-D mesh of PEs with wavelet-level flow control):

* **Streamed.** Every collective moves its tile as a stream of wavelets: a PE forwards or
  combines each wavelet as it arrives, so consecutive hops overlap and a collective costs its
  head latency plus the stream once (``stream_cycles``), not hops x (hop + add + stream).
  An all-reduce streams its result back while the reduction is still arriving: one stream.
* **Rooted at the centre of the line** (root ``r = (k - 1) // 2``): both halves reduce
  towards the root at the same time and a broadcast leaves it in both directions, which
  halves the distance the head travels (WaferLLM roots its collectives at the line's end).
* **Two-level reduction on each half** (WaferLLM's scheme): a half of ``m`` PEs is cut into
  ``g`` groups of ``s = ceil(m / g)`` PEs counted from the root outwards (the farthest group
  may be shorter); a chain inside each group (one hop and one add per PE) runs in parallel,
  then the group roots, ``s`` hops apart, chain towards the root (the routers relay the
  ``s - 1`` PEs in between without waking them). ``reduce_groups`` picks the ``g`` with the
  lowest head latency (the fewest groups among ties: fewer routing colours); ``g = 1`` is a
  plain chain. Head of a half, up to its nearest group root (``L = s_far`` the farthest group's
  length): ``(m - 1)(hop + 1)`` for ``g = 1``, else
  ``max((L - 1)(hop + 1) + s hop, (s - 1)(hop + 1)) + 1 + (g - 2)(s hop + 1)``; then one hop
  to the root, which adds the earlier half (1 cycle), then the later (1 cycle).
* **Broadcast**: the root's routers multicast each wavelet both ways in one pass:
  ``ceil((k - 1) / 2) x hop + stream``.
* **GEMV collective**: the input chunk of grid row ``y`` starts on the row's centre PE and is
  broadcast along the row (``cols`` PEs); each PE multiplies its weight tile; the partial sums
  are reduced down each grid column (``rows`` PEs) to the centre row. The reduction cannot
  start before a PE has the whole input chunk (each partial sum needs all of it), so the
  two streams are paid one after the other. GEMVs that read the same input (fused QKV,
  gate/up) share one broadcast (``broadcast=False`` for the siblings); their reductions stay
  separate collectives because the emulator runs them as separate MatMul nodes (fusing them
  into one stream would save one head latency per sibling; not done).
* **Norm fused into the GEMVs it feeds** (``placer.ir.norm_fusion`` finds them;
  ``norm_statistic_cycles``, ``fused_norm_extra_cycles``): a norm read only by GEMVs commutes
  with them (``y @ W = inv ((x gamma) @ W - mean (gamma @ W)) + beta @ W``), so the GEMVs start
  on the un-normalised ``x gamma`` at once. Beside the first GEMV's collective, each grid row's
  centre PE (which holds the row's input chunk) sums its chunk (and its squares): the partial
  statistics reduce down the centre column to the centre PE and are multicast along the centre
  row, where the GEMVs' reduction roots are: ``reduce_cycles(rows, s) + broadcast_cycles(cols,
  s)`` with ``s`` the statistics' tile (4-byte fp32 sums: one per normalised row, two for
  LayerNorm). The two paths leave the same PEs at once on different routing colours, so the
  norm costs only the part of its path longer than the GEMV's collective (0 on every zoo
  layer: its tile is smaller), plus the scaling of each output at the root (compute). The
  row all-reduce that preceded the GEMV's broadcast is gone. Siblings (k, v; up) find the
  statistics at their roots already. Not fused: a prefill chunk of several rows (its GEMMs
  may run by Cannon, which has no reduction root); a norm with any other reader.
* **Attention per KV head group** (``kv_bands``, ``attention_gemv_cycles``): an attention's
  QK^T and P @ V run as GEMVs over the KV cache, one per KV head group: the ``g`` query heads
  of a group share the group's K and V tiles, so they are the ``g`` rows of one GEMV on them
  (GQA; ``g = 1`` without it). The ``G`` groups go to ``bands = min(G, rows)`` bands of
  ``rows // bands`` grid rows each (``ceil(G / bands)`` groups per band, the sequences of a
  micro-batch stacked on the same band), each band a GEMV of its own beside the others: the
  query (probabilities) chunks broadcast along the band's rows (``cols`` PEs), the partial
  sums reduce down the band's columns (``rows // bands`` PEs, not the whole column). QK^T
  tiles K^T as ``d / band_rows`` x ``keys / cols`` per PE, P @ V tiles V as ``keys /
  band_rows`` x ``d / cols``.
* **Softmax sum after P @ V**: P @ V runs on the un-normalised ``e = exp(s - max)`` (the max
  all-reduce stays: it keeps ``e <= 1``); each grid row's centre PE, which holds its chunk of
  ``e``, sums it, and the sums of a band reduce down its centre column and multicast along its
  centre row to the P @ V roots beside P @ V's own collective (``norm_statistic_cycles`` on the
  band, one fp32 sum per query row; only the part longer than the GEMV is paid:
  ``fused_norm_extra_cycles``), where each output is divided by its row's sum. The softmax's
  sum all-reduce before P @ V is gone. Not fused in a prefill chunk of several rows (as norms)
  nor when the probabilities are an output (``qk_matmul_output_mode`` 3). A decomposed
  attention's Softmax feeding its P @ V MatMul directly (``placer.ir.norm_fusion``) fuses its
  sum the same way on the whole grid (``norm_statistic_cycles`` beside that GEMV); its K/V are
  already repeated per query head in the graph, so it is not grouped.
* **Cannon GEMM** (``cannon_gemm_cycles``): on the ``p x p`` subgrid, a skew of
  ``p - 1`` rounds of cyclic shifts on interleaved rings (at most 2 hops per shift), then ``p``
  local tile GEMMs; A shifts along x while B shifts along y (different links: concurrently),
  and each step's shift is double-buffered behind the step's GEMM.
* **Prefill GEMM** ``[m, K] x [K, N]`` with a stored weight (``prefill_gemm``): the cheaper of
  Cannon and an ``m``-row GEMV on the weight's resident tiles (the chunk's rows stream through
  one broadcast and one reduction, the local multiply ``2 m ceil(K / rows) ceil(N / cols)``
  FLOPs per PE), ties to the GEMV. Cannon pays ``p - 1`` latency-bound shifts of small tiles
  and moves the weights; the GEMV keeps them where they are, so at the chunk sizes placer
  plans (``placer.perf.prefill_chunk``: about ``mesh_rows`` tokens) the GEMV wins on every
  zoo layer (Llama-3.1-8B's ``[1024, 4096] x [4096, 14336]`` on wse3: 20,771 vs 89,827
  cycles); Cannon only wins on bandwidth for chunks longer than ``K N / (K + N)`` rows.

* **Relayout** (Transpose, Concat, Slice, Expand, ... of activations; ``relayout_cycles``): every
  PE holding a piece of the output moves its tile to the new home PE, one neighbour exchange:
  ``hop + stream(ceil(bytes / holders))`` with ``holders = min(elements, PEs)``.
* **Route** (an embedding gather from a resident table; ``route_cycles``): each selected row
  travels from the PE that holds it to the PE that needs it, all rows at once, charged at the
  longest route: ``(rows + cols - 2) x hop + stream(row bytes)``.

Not done, and why: a K-ary tree with more than two levels (WaferLLM's K-tree) saves little
once the halves are two-level and costs routing colours (24 per PE, shared with the rest of
the layer); bandwidth-optimal reduce-scatter/all-gather pays only for tiles of thousands of
wavelets, while decode tiles are a few wavelets.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MeshConstants:
    """The per-wafer figures the cycle counts need (duck-typed from a ``Target``)."""

    rows: int
    cols: int
    cycles_per_hop: int
    link_bytes_per_cycle: int
    clock_hz: float
    flops_per_cycle_per_pe: float
    sram_bytes_per_pe: int

    @staticmethod
    def from_target(target: Any) -> MeshConstants:
        """From any object with ``placer.targets.Target``'s field names."""
        return MeshConstants(int(target.mesh_rows), int(target.mesh_cols), int(target.cycles_per_hop),
                             int(target.link_bytes_per_cycle), float(target.clock_hz),
                             float(target.flops_per_cycle_per_pe), int(target.pe_sram_bytes))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def stream_cycles(nbytes: int, link_bytes_per_cycle: int) -> int:
    """Cycles for ``nbytes`` to stream over one link behind the head wavelet."""
    return ceil_div(max(0, nbytes), link_bytes_per_cycle)


def root(k: int) -> int:
    """Index of the root of a line of ``k`` PEs: its centre."""
    return (k - 1) // 2


def halves(k: int) -> tuple[int, int]:
    """PEs on each side of the root: (below it, above it); the second is never smaller."""
    r = root(k)
    return r, max(0, k - 1 - r)


def group_sizes(m: int, groups: int) -> tuple[int, int, int]:
    """(groups that are not empty, PEs per group, PEs of the farthest group) of a half of ``m``."""
    s = ceil_div(m, max(1, groups))
    g = ceil_div(m, s)
    return g, s, m - (g - 1) * s


def half_ready_cycles(m: int, groups: int, cycles_per_hop: int) -> int:
    """Cycles until a half of ``m`` PEs has its partial sum on its PE next to the root."""
    g, s, far = group_sizes(m, groups)
    hop = cycles_per_hop
    if g == 1:
        return (m - 1) * (hop + 1)
    return max((far - 1) * (hop + 1) + s * hop, (s - 1) * (hop + 1)) + 1 + (g - 2) * (s * hop + 1)


def reduce_head_cycles(k: int, groups: int, cycles_per_hop: int) -> int:
    """Head latency of a reduction over ``k`` PEs to the centre, ``groups`` groups per half."""
    below, above = halves(k)
    if above == 0:
        return 0
    late = half_ready_cycles(above, groups, cycles_per_hop) + cycles_per_hop
    if below == 0:
        return late + 1
    early = half_ready_cycles(below, groups, cycles_per_hop) + cycles_per_hop
    early, late = min(early, late), max(early, late)
    return max(early + 1, late) + 1


@functools.lru_cache(maxsize=4096)
def _best_groups(k: int, cycles_per_hop: int) -> int:
    _, above = halves(k)
    return min(range(1, max(1, above) + 1), key=lambda g: (reduce_head_cycles(k, g, cycles_per_hop), g))


def reduce_groups(k: int, tile_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    """Groups per half of the reduction over a line of ``k`` PEs (1: a chain): the fewest
    with the lowest head latency (the stream is the same for every choice)."""
    return _best_groups(k, cycles_per_hop)


def reduce_hops(k: int, groups: int) -> int:
    """Link crossings of one tile's reduction over ``k`` PEs with ``groups`` groups per half."""
    total = 0
    for m in halves(k):
        if m:
            g, s, _ = group_sizes(m, groups)
            total += (m - g) + (g - 1) * s + 1
    return total


def reduce_cycles(k: int, tile_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    """Cycles of a reduction of one tile per PE over a line of ``k`` PEs, to its centre."""
    if k <= 1:
        return 0
    g = reduce_groups(k, tile_bytes, cycles_per_hop, link_bytes_per_cycle)
    return reduce_head_cycles(k, g, cycles_per_hop) + stream_cycles(tile_bytes, link_bytes_per_cycle)


def broadcast_head_cycles(k: int, cycles_per_hop: int) -> int:
    """Head latency of a broadcast from the centre of ``k`` PEs (multicast both ways)."""
    return halves(k)[1] * cycles_per_hop


def broadcast_cycles(k: int, tile_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    """Cycles of a broadcast of one tile from the centre to all ``k`` PEs of a line."""
    if k <= 1:
        return 0
    return broadcast_head_cycles(k, cycles_per_hop) + stream_cycles(tile_bytes, link_bytes_per_cycle)


@functools.lru_cache(maxsize=4096)  # a pure function of integers, asked for the same lines often
def allreduce_cycles(k: int, tile_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    """Cycles of an all-reduce over a line of ``k`` PEs: reduce to the centre and stream the
    result back as it arrives (one stream)."""
    if k <= 1:
        return 0
    g = reduce_groups(k, tile_bytes, cycles_per_hop, link_bytes_per_cycle)
    return (reduce_head_cycles(k, g, cycles_per_hop) + broadcast_head_cycles(k, cycles_per_hop)
            + stream_cycles(tile_bytes, link_bytes_per_cycle))


def gemv_tile_bytes(batch: int, k: int, n: int, rows: int, cols: int, element_bytes: int) -> tuple[int, int]:
    """(input, output) tile bytes of a ``batch``-row GEMV [batch, k] x [k, n] on the grid:
    ``batch`` chunks of ``ceil(k / rows)`` in, ``batch`` partial sums of ``ceil(n / cols)`` out."""
    return batch * ceil_div(k, rows) * element_bytes, batch * ceil_div(n, cols) * element_bytes


def row_tile_bytes(data_rows: int, values_per_row: int, grid_rows: int, element_bytes: int) -> int:
    """Bytes each PE sends in a row all-reduce of ``values_per_row`` statistics of each of
    ``data_rows`` rows (heads x tokens x sequences): the rows are spread over the grid rows, so
    a PE's line reduces the statistics of ``ceil(data_rows / grid_rows)`` rows."""
    return ceil_div(data_rows, grid_rows) * values_per_row * element_bytes


@functools.lru_cache(maxsize=4096)  # a pure function of integers, asked for the same grids often
def gemv_collective_cycles(rows: int, cols: int, in_tile_bytes: int, out_tile_bytes: int,
                           cycles_per_hop: int, link_bytes_per_cycle: int, broadcast: bool = True) -> int:
    """Fabric cycles of one GEMV on a ``rows`` x ``cols`` grid: the input tiles broadcast along
    each grid row (``cols`` PEs), the partial sums reduced down each grid column (``rows``
    PEs). ``broadcast=False``: the input is already on every PE (a fused sibling broadcast it)."""
    bcast = broadcast_cycles(cols, in_tile_bytes, cycles_per_hop, link_bytes_per_cycle) if broadcast else 0
    return bcast + reduce_cycles(rows, out_tile_bytes, cycles_per_hop, link_bytes_per_cycle)


def norm_statistic_cycles(rows: int, cols: int, stat_tile_bytes: int, cycles_per_hop: int,
                          link_bytes_per_cycle: int) -> int:
    """Cycles of a fused norm's statistics: reduced down the centre column (``rows`` PEs) to
    the centre PE, multicast along the centre row (``cols`` PEs) to the GEMVs' roots."""
    return (reduce_cycles(rows, stat_tile_bytes, cycles_per_hop, link_bytes_per_cycle)
            + broadcast_cycles(cols, stat_tile_bytes, cycles_per_hop, link_bytes_per_cycle))


def fused_norm_extra_cycles(statistic_cycles: int, gemv_cycles: int) -> int:
    """Fabric cycles a fused norm adds to the first GEMV it feeds: its statistics' path runs
    beside the GEMV's collective (``gemv_cycles``), so only the part longer than it."""
    return max(0, statistic_cycles - gemv_cycles)


STAT_BYTES = 4
"""Bytes of one norm statistic on the fabric (PEs accumulate sums in fp32)."""


def kv_bands(rows: int, groups: int) -> tuple[int, int, int]:
    """(bands, grid rows per band, KV head groups per band) of an attention with ``groups`` KV
    head groups on a grid of ``rows`` rows: one band per group, at most one per grid row."""
    bands = max(1, min(groups, rows))
    return bands, rows // bands, ceil_div(max(1, groups), bands)


@functools.lru_cache(maxsize=4096)  # a pure function of integers; a model has few attention shapes
def attention_gemv_cycles(rows: int, cols: int, heads: int, groups: int, k: int, n: int, m: int,
                          element_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int,
                          sums: bool = False) -> int:
    """Fabric cycles of an attention GEMV (QK^T: ``k = d``, ``n`` keys; P @ V: ``k`` keys,
    ``n = d``) of ``heads`` query heads in ``groups`` KV head groups, ``m`` query rows per head
    (sequences of a micro-batch x queries), per KV group on its band (``kv_bands``): the band's
    GEMV has ``groups per band x heads / groups x m`` rows. ``sums``: the softmax's row sums
    travel beside it (P @ V on un-normalised scores; ``norm_statistic_cycles`` on the band)."""
    _, band_rows, per = kv_bands(rows, groups)
    band_m = per * max(1, heads // max(1, groups)) * m
    in_tile, out_tile = gemv_tile_bytes(band_m, k, n, band_rows, cols, element_bytes)
    cycles = gemv_collective_cycles(band_rows, cols, in_tile, out_tile, cycles_per_hop, link_bytes_per_cycle)
    if sums:
        statistic = norm_statistic_cycles(band_rows, cols, band_m * STAT_BYTES, cycles_per_hop,
                                          link_bytes_per_cycle)
        cycles += fused_norm_extra_cycles(statistic, cycles)
    return cycles


def ring_shift_hops(p: int) -> int:
    """Longest hop of one cyclic shift along an interleaved ring of ``p`` PEs."""
    return 0 if p <= 1 else (1 if p == 2 else 2)


def cannon_tiles(m: int, k: int, n: int, p: int) -> tuple[int, int, int]:
    """(mt, kt, nt): each PE's tiles of A [m, k] and B [k, n] on a ``p x p`` grid."""
    return ceil_div(m, p), ceil_div(k, p), ceil_div(n, p)


def cannon_gemm_cycles(m: int, k: int, n: int, p: int, element_bytes: int, cycles_per_hop: int,
                       link_bytes_per_cycle: int, flops_per_cycle_per_pe: float) -> int:
    """Cycles of C = A [m, k] @ B [k, n] by Cannon's algorithm on a ``p x p`` grid.

    Per PE: A tiles of ``mt x kt`` and B tiles of ``kt x nt`` elements of ``element_bytes``;
    one shift = ``ring_shift_hops(p) x hop + stream(max(A tile, B tile))`` (A along x and B
    along y at once); one step = ``ceil(2 mt kt nt / flops_per_cycle_per_pe)``. Skew: ``p - 1``
    shifts; then ``p`` steps, the ``p - 1`` shifts between them hidden behind the GEMMs where
    the GEMM is longer: ``(p - 1) shift + (p - 1) max(step, shift) + step``.
    """
    if p <= 0 or m <= 0 or n <= 0:
        return 0
    mt, kt, nt = cannon_tiles(m, k, n, p)
    step = compute_cycles(2 * mt * kt * nt, flops_per_cycle_per_pe)
    if p == 1:
        return step
    shift = cannon_shift_cycles(p, mt * kt * element_bytes, kt * nt * element_bytes, cycles_per_hop,
                                link_bytes_per_cycle)
    return (p - 1) * shift + (p - 1) * max(step, shift) + step


def gemv_gemm_cycles(m: int, k: int, n: int, rows: int, cols: int, element_bytes: int,
                     cycles_per_hop: int, link_bytes_per_cycle: int, flops_per_cycle_per_pe: float) -> int:
    """Cycles of ``[m, K] x [K, N]`` as an ``m``-row GEMV on the resident weight tiles: the
    collective plus the local multiply of each PE's tile."""
    in_tile, out_tile = gemv_tile_bytes(m, k, n, rows, cols, element_bytes)
    local = compute_cycles(2 * m * ceil_div(k, rows) * ceil_div(n, cols), flops_per_cycle_per_pe)
    return gemv_collective_cycles(rows, cols, in_tile, out_tile, cycles_per_hop, link_bytes_per_cycle) + local


@functools.lru_cache(maxsize=4096)  # a pure function of integers; a model asks for few shapes
def prefill_gemm(m: int, k: int, n: int, rows: int, cols: int, element_bytes: int, cycles_per_hop: int,
                 link_bytes_per_cycle: int, flops_per_cycle_per_pe: float) -> tuple[str, int]:
    """(``"cannon"`` or ``"gemv"``, cycles) of a prefill GEMM ``[m, K] x [K, N]`` with a stored
    weight: the cheaper algorithm (ties: the GEMV), compute included. The emulator runs the
    algorithm this names; the performance model charges its cycles."""
    gemv = gemv_gemm_cycles(m, k, n, rows, cols, element_bytes, cycles_per_hop, link_bytes_per_cycle,
                            flops_per_cycle_per_pe)
    if m <= 1:
        return "gemv", gemv
    cannon = cannon_gemm_cycles(m, k, n, min(rows, cols), element_bytes, cycles_per_hop,
                                link_bytes_per_cycle, flops_per_cycle_per_pe)
    return ("cannon", cannon) if cannon < gemv else ("gemv", gemv)


def cannon_shift_cycles(p: int, a_tile_bytes: int, b_tile_bytes: int, cycles_per_hop: int,
                        link_bytes_per_cycle: int) -> int:
    """One Cannon shift: A along x and B along y at once, on interleaved rings."""
    return (ring_shift_hops(p) * cycles_per_hop
            + stream_cycles(max(a_tile_bytes, b_tile_bytes), link_bytes_per_cycle))


def relayout_cycles(elements: int, nbytes: int, pes: int, cycles_per_hop: int,
                    link_bytes_per_cycle: int) -> int:
    """Cycles of a relayout of ``elements`` elements (``nbytes`` bytes) spread over at most
    ``pes`` PEs: one neighbour exchange of every holder's tile."""
    holders = min(elements, pes)
    if holders <= 0:
        return 0
    return cycles_per_hop + stream_cycles(ceil_div(nbytes, holders), link_bytes_per_cycle)


def route_cycles(rows: int, cols: int, row_bytes: int, cycles_per_hop: int, link_bytes_per_cycle: int) -> int:
    """Cycles of rows gathered from a resident table on a ``rows x cols`` grid: every row on
    its own route, the longest ``rows + cols - 2`` hops."""
    return (rows + cols - 2) * cycles_per_hop + stream_cycles(row_bytes, link_bytes_per_cycle)


def compute_cycles(flops: float, flops_per_cycle_per_pe: float) -> int:
    """Cycles of ``flops`` on one PE (``ceil``)."""
    return math.ceil(flops / flops_per_cycle_per_pe) if flops > 0 else 0
