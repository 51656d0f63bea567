"""Mesh kernels: each takes ``(wafer, node, args)`` and returns the node's outputs, moving data
only through the wafer's shifts and collectives. ``MESH_KERNELS`` maps op kinds to them.

Layouts: elementwise ops use a block distribution of the flattened (broadcast) tensor;
reductions, softmax and norms put rows over grid rows and the reduced axis over grid columns
(local reduce, then an all-reduce along the row); MatMul/Gemm use ``linalg``'s GEMV layout,
Cannon for weight GEMMs with more than one row, and for attention over the KV cache the GEMV
layout per KV head group on its band of grid rows (``attend``, ``linalg.band_gemv``: K^T tiled
as head_dim x seq over the band, V as seq x head_dim).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from placer.backends.kernels import KERNELS
from placer.backends.kernels.nn import attention_operands
from placer.backends.kernels.reduce import reduce_axes
from placer.backends.mesh import collectives, linalg
from placer.backends.mesh.grid import Wafer
from placer.backends.mesh.tiling import (
    per_pe_bytes,
    tile_flat,
    tile_matrix,
    tile_rows,
    tile_vector_rows,
    untile_flat,
)
from placer.backends.reference import to_compute
from placer.ir import mesh_physics
from placer.ir.attrs import AttentionAttrs, AxisAttrs, GemmAttrs, NormAttrs, ReduceAttrs
from placer.ir.graph import Node
from placer.ir.op_semantics import flops_per_element, is_free_view
from placer.ir.ops import ELEMENTWISE, OpKind

MeshKernel = Callable[[Wafer, Node, list], tuple]



def _buffer_bytes(wafer: Wafer, *arrays: np.ndarray) -> int:
    return sum(per_pe_bytes(a.size, a.dtype.itemsize, wafer.spec.pes) for a in arrays)


def elementwise(wafer: Wafer, node: Node, args: list) -> tuple:
    """Block-distribute the broadcast operands, apply the op to every PE's tile at once."""
    present = [np.asarray(a) for a in args if a is not None]
    shape = np.broadcast_shapes(*(a.shape for a in present))
    R, C = wafer.spec.rows, wafer.spec.cols
    # Scalars such as Clip's bounds stay scalars: they are in every PE's registers.
    tiles = [a if a is None or np.ndim(a) == 0 else
             tile_flat(a if a.shape == shape else np.broadcast_to(a, shape), R, C) for a in args]
    with np.errstate(all="ignore"):  # padding elements (zeros) may divide by zero; discarded
        out_tile = KERNELS[node.op](node, *tiles)
    n = tiles[0].shape[2] if tiles[0] is not None and np.ndim(tiles[0]) == 3 else 1
    numel = int(np.prod(shape, dtype=np.int64))
    with wafer.buffers(operands=sum(per_pe_bytes(numel, a.dtype.itemsize, wafer.spec.pes) for a in present),
                       result=per_pe_bytes(numel, np.asarray(out_tile).dtype.itemsize, wafer.spec.pes)):
        wafer.compute(0 if is_free_view(node.op) else n * flops_per_element(node.op))
    return (untile_flat(np.asarray(out_tile), shape),)


def _rows_layout(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Move ``axes`` last and flatten to [M, K]; returns the matrix and the kept dims."""
    keep = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, keep + list(axes))
    kept_shape = tuple(x.shape[a] for a in keep)
    k = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    return moved.reshape(int(np.prod(kept_shape, dtype=np.int64)), k), kept_shape


def _row_reduce(wafer: Wafer, t: np.ndarray, op: str, all_reduce: bool) -> np.ndarray:
    """Local reduction of [R, C, Mt, Kt] tiles, then a reduction (or all-reduce) along grid
    rows (axis 1). The local arithmetic is charged by the caller (the op's FLOPs per element)."""
    local = t.sum(axis=3) if op == "sum" else t.max(axis=3)
    combine = np.add if op == "sum" else np.maximum
    if all_reduce:
        return collectives.all_reduce(wafer, local, 1, combine)[..., None]  # [R, C, Mt, 1]
    return collectives.reduce(wafer, local, 1, combine)                   # [R, Mt]


def reduction(wafer: Wafer, node: Node, args: list) -> tuple:
    x, axes_in = args[0], (args[1] if len(args) > 1 else None)
    axes = reduce_axes(node, x, axes_in)
    if axes == ():
        return (x,)
    axes = tuple(range(x.ndim)) if axes is None else axes
    mat, kept = _rows_layout(x, axes)
    R, C = wafer.spec.rows, wafer.spec.cols
    is_max = node.op is OpKind.REDUCE_MAX
    t = tile_rows(mat, R, C, -np.inf if is_max else 0)
    with wafer.buffers(tiles=_buffer_bytes(wafer, mat)):
        wafer.compute(flops_per_element(node.op) * t.shape[2] * t.shape[3])
        red = _row_reduce(wafer, t, "max" if is_max else "sum", False)
    out = red.reshape(-1)[: mat.shape[0]]
    if node.op is OpKind.REDUCE_MEAN:
        out = out / mat.shape[1]
    out = out.reshape(kept).astype(x.dtype)
    if node.attrs_as(ReduceAttrs).keepdims:
        out = out.reshape(tuple(1 if a in axes else x.shape[a] for a in range(x.ndim)))
    return (out,)


def softmax_rows(wafer: Wafer, mat: np.ndarray, normalise: bool = True) -> np.ndarray:
    """Softmax over the last axis of [M, K] with two all-reduces (max, sum) along grid rows.
    ``normalise=False``: ``exp(x - max)`` after the max all-reduce only (attention divides by
    the sums after P @ V, ``attend``)."""
    R, C = wafer.spec.rows, wafer.spec.cols
    t = tile_rows(mat, R, C, -np.inf)
    with wafer.buffers(tiles=2 * _buffer_bytes(wafer, mat)):
        wafer.compute(flops_per_element(OpKind.SOFTMAX) * t.shape[2] * t.shape[3])
        m = _row_reduce(wafer, t, "max", True)
        m = np.where(np.isneginf(m), 0, m)
        p = np.exp(t - m)
        if normalise:
            s = _row_reduce(wafer, p, "sum", True)
            p = p / np.where(s == 0, 1, s)
    return p.transpose(0, 2, 1, 3).reshape(R * t.shape[2], C * t.shape[3])[: mat.shape[0], : mat.shape[1]]


class SoftmaxSums:
    """What a softmax fused into its P @ V (``placer.ir.norm_fusion``) leaves for that MatMul:
    its probabilities are un-normalised; the MatMul sums each row beside its collective and
    divides at its roots (``_softmax_sums``)."""


def softmax(wafer: Wafer, node: Node, args: list) -> tuple:
    """Softmax with two row all-reduces; one fused into the P @ V it feeds (a decode step, or
    one query row) does the max all-reduce only and leaves ``exp(x - max)`` (``SoftmaxSums``)."""
    x = args[0]
    axis = node.attrs_as(AxisAttrs).axis % x.ndim
    fuse = node.name in wafer.fused_norms and (wafer.decode or x.ndim < 2 or x.shape[-2] == 1)
    mat, kept = _rows_layout(x, (axis,))
    p = softmax_rows(wafer, mat, normalise=not fuse).reshape(kept + (x.shape[axis],))
    if fuse:
        wafer.pending_norms[node.outputs[0]] = SoftmaxSums()
    return (np.moveaxis(p, -1, axis).astype(x.dtype),)


def _softmax_sums(wafer: Wafer, a: np.ndarray) -> tuple[np.ndarray, int]:
    """The row sums of ``a`` [nb, M, K] (un-normalised probabilities entering P @ V): each grid
    row's centre PE sums its chunk of every row, the sums reduce down the centre column and are
    multicast along the centre row (``collectives.statistic_path``); returns the fp32 sums
    [nb, M] and the path's cycles (charged beside the GEMV, ``linalg.gemv``'s ``beside``)."""
    chunks = tile_vector_rows(a.astype(np.float32), wafer.spec.rows)   # [R, nb, M, Kt]
    state = chunks.sum(axis=-1).reshape(chunks.shape[0], 1, -1)
    sums, cycles = collectives.statistic_path(wafer, state)
    return sums.reshape(a.shape[:2]), cycles


def _divided(wafer: Wafer, out: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """P @ V's result [nb, M, N] divided by its rows' sums at the reduction roots (one divide
    per output element of a root's tile)."""
    wafer.compute(out.shape[0] * out.shape[1] * -(-out.shape[2] // wafer.spec.cols))
    return (out.astype(np.float32) / np.where(sums == 0, 1, sums)[..., None]).astype(out.dtype, copy=False)


@dataclass(frozen=True)
class FusedNorm:
    """What a fused norm (``placer.ir.norm_fusion``) leaves for the GEMVs reading its output:
    per normalised row its mean (0 for RMSNorm) and inverse std, its scale and bias, and the
    cycles of its statistics' path (charged beside the first GEMV, ``linalg.gemv``)."""

    mean: np.ndarray   # [M]
    inv: np.ndarray    # [M]
    scale: np.ndarray  # [K]
    bias: np.ndarray | None
    cycles: int
    centred: bool

    def finish(self, wafer: Wafer, partial: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The GEMV's result at its reduction roots: ``partial = (x scale) @ b`` [M, N] scaled
        by ``inv`` (and corrected for the mean and the bias: ``scale @ b`` and ``bias @ b`` are
        constants of the weights), one multiply (three) per output element of a root's tile."""
        out: np.ndarray = partial.astype(np.float32)
        bf = b.astype(np.float32)
        if self.centred:
            out = out - self.mean[:, None] * (self.scale @ bf)[None, :]
        out = out * self.inv[:, None]
        if self.bias is not None:
            out = out + (self.bias @ bf)[None, :]
        per_pe = out.shape[0] * -(-out.shape[1] // wafer.spec.cols)
        wafer.compute(per_pe * (3 if self.centred or self.bias is not None else 1))
        return out.astype(partial.dtype, copy=False)


def _fused_normalization(wafer: Wafer, node: Node, x: np.ndarray, scale: np.ndarray,
                         bias: np.ndarray | None) -> tuple:
    """A norm read only by GEMVs (``placer.ir.norm_fusion``): the GEMVs run on ``x scale``;
    the statistics (sum and sum of squares for LayerNorm, sum of squares for RMSNorm) of each
    grid row's input chunk reduce down the centre column and are multicast along the centre
    row to the GEMVs' roots (``collectives.statistic_path``), which scale the results
    (``FusedNorm.finish``)."""
    k = x.shape[-1]
    mat = x.astype(np.float32).reshape(-1, k)
    R, C = wafer.spec.rows, wafer.spec.cols
    centred = node.op is OpKind.LAYER_NORM
    chunks = tile_vector_rows(mat[None], R)[:, 0]                     # [R, M, Kt]: row y's chunk
    parts = ([chunks.sum(axis=-1)] if centred else []) + [(chunks * chunks).sum(axis=-1)]
    state = np.stack(parts, axis=-1)[:, None]                         # [R, 1, M, stats]
    with wafer.buffers(tiles=2 * _buffer_bytes(wafer, mat)):
        sums, cycles = collectives.statistic_path(wafer, state)       # [M, stats]
        wafer.compute(flops_per_element(node.op) * -(-mat.shape[0] // R) * -(-k // C))
    mean = sums[:, 0] / k if centred else np.zeros(mat.shape[0], np.float32)
    var = sums[:, -1] / k - (mean * mean if centred else 0)
    inv = (1 / np.sqrt(np.maximum(var, 0) + node.attrs_as(NormAttrs).epsilon)).astype(np.float32)
    sc = np.broadcast_to(np.asarray(scale, np.float32).reshape(-1), (k,))
    bi = None if bias is None else np.broadcast_to(np.asarray(bias, np.float32).reshape(-1), (k,))
    wafer.pending_norms[node.outputs[0]] = FusedNorm(mean, inv, sc, bi, cycles, centred)
    y = (mat * sc).reshape(x.shape).astype(x.dtype)
    stats_shape = x.shape[:-1] + (1,)
    return y, mean.reshape(stats_shape), inv.reshape(stats_shape)


def normalization(wafer: Wafer, node: Node, args: list) -> tuple:
    """LayerNorm (mean, variance) and RMSNorm (mean square): all-reduces along grid rows; a
    norm fused into the GEMVs it feeds runs ``_fused_normalization`` instead (a decode step,
    or one row: a prefill chunk's GEMMs may run by Cannon)."""
    x, scale = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    if node.name in wafer.fused_norms and (wafer.decode or x.size <= x.shape[-1]):
        return _fused_normalization(wafer, node, x, scale, bias)
    axis = node.attrs_as(NormAttrs).axis % x.ndim
    axes = tuple(range(axis, x.ndim))
    mat, kept = _rows_layout(x.astype(np.float32), axes)
    k = mat.shape[1]
    R, C = wafer.spec.rows, wafer.spec.cols
    t = tile_rows(mat, R, C)
    with wafer.buffers(tiles=2 * _buffer_bytes(wafer, mat)):
        if node.op is OpKind.LAYER_NORM:
            mean = _row_reduce(wafer, t, "sum", True) / k
            centered = np.where(tile_rows(np.ones_like(mat), R, C) > 0, t - mean, 0)
            var = _row_reduce(wafer, centered * centered, "sum", True) / k
        else:
            mean = np.zeros((R, C, t.shape[2], 1), np.float32)
            centered = t
            var = _row_reduce(wafer, t * t, "sum", True) / k
        inv = 1 / np.sqrt(var + node.attrs_as(NormAttrs).epsilon)
        wafer.compute(flops_per_element(node.op) * t.shape[2] * t.shape[3])
    normed = (centered * inv).transpose(0, 2, 1, 3).reshape(R * t.shape[2], C * t.shape[3])
    normed = normed[: mat.shape[0], :k]
    y = normed.reshape(x.shape).astype(x.dtype) * scale
    if bias is not None:
        y = y + bias
    stats_shape = x.shape[:axis] + (1,) * len(axes)
    first = lambda a: a[:, 0, :, 0].reshape(-1)[: mat.shape[0]].reshape(stats_shape)  # noqa: E731
    return y.astype(x.dtype), first(mean), first(inv)


def _stack_batch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
    return a3, b3, batch


def matmul_array(wafer: Wafer, a: np.ndarray, b: np.ndarray, weight: str = "",
                 input_key: str = "") -> np.ndarray:
    """``a @ b`` on the mesh. A 2-D ``b`` (a weight) uses its resident GEMV tiles: a GEMV for
    one row and, in a decode step (``wafer.decode``), a B-row GEMV for a micro-batch of B
    sequences; for the rows of a prefill, Cannon or a GEMV of those rows on the resident tiles,
    whichever ``mesh_physics.prefill_gemm`` finds cheaper (the performance model's choice).
    ``input_key`` names ``a``: GEMVs of one decode step that read the same value share its
    broadcast (fused QKV, gate/up). A batched ``b`` (K^T or V of attention) is tiled per head
    in the GEMV layout: the KV cache tiled as (dim / R) x (seq / C) per PE."""
    R, C = wafer.spec.rows, wafer.spec.cols
    if a.ndim == 1 or b.ndim == 1:
        a2 = a[None] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        out = matmul_array(wafer, a2, b2, weight, input_key)
        if b.ndim == 1:
            out = out[..., 0]
        if a.ndim == 1:
            out = out[..., 0, :] if b.ndim > 1 else out[..., 0]
        return out
    if b.ndim == 2:
        rows = int(np.prod(a.shape[:-1], dtype=np.int64))
        flat = a.reshape(rows, a.shape[-1])
        spec = wafer.spec
        sums_pending = bool(input_key) and isinstance(wafer.pending_norms.get(input_key), SoftmaxSums)
        if rows > 1 and not wafer.decode and not sums_pending and mesh_physics.prefill_gemm(
                rows, b.shape[0], b.shape[1], R, C, flat.dtype.itemsize, spec.cycles_per_hop,
                spec.link_bytes_per_cycle, spec.flops_per_cycle_per_pe)[0] == "cannon":
            out = linalg.cannon(wafer, flat, b)
        else:
            tiles = wafer.resident.get((weight, "gemv")) if weight else None
            if tiles is None:
                tiles = tile_matrix(b[None], R, C)
            shared = bool(input_key) and input_key in wafer.broadcast_inputs
            norm = wafer.pending_norms.get(input_key) if input_key else None
            if isinstance(norm, SoftmaxSums):
                sums, cycles = _softmax_sums(wafer, flat[None])
                out = linalg.gemv(wafer, flat[None], tiles, b.shape[1], beside=cycles)
                out = _divided(wafer, out, sums)[0]
            else:
                out = linalg.gemv(wafer, flat[None], tiles, b.shape[1], broadcast=not shared,
                                  beside=norm.cycles if norm is not None and not shared else 0)[0]
            if isinstance(norm, FusedNorm):
                out = norm.finish(wafer, out, b)
            if input_key:
                wafer.broadcast_inputs.add(input_key)
        return out.reshape(a.shape[:-1] + (b.shape[1],))
    a3, b3, batch = _stack_batch(a, b)
    tiles = tile_matrix(b3, R, C)
    fused = isinstance(wafer.pending_norms.get(input_key) if input_key else None, SoftmaxSums)
    with wafer.buffers(kv_tiles=tiles[0, 0].nbytes):
        if fused:  # P @ V on un-normalised probabilities: their sums beside it
            sums, cycles = _softmax_sums(wafer, a3)
            out = _divided(wafer, linalg.gemv(wafer, a3, tiles, b3.shape[2], beside=cycles), sums)
        else:
            out = linalg.gemv(wafer, a3, tiles, b3.shape[2])
    return out.reshape(batch + out.shape[1:])


def matmul(wafer: Wafer, node: Node, args: list) -> tuple:
    return (matmul_array(wafer, args[0], args[1], node.inputs[1], node.inputs[0]),)


def gemm(wafer: Wafer, node: Node, args: list) -> tuple:
    at = node.attrs_as(GemmAttrs)
    a, b = args[0], args[1]
    c = args[2] if len(args) > 2 else None
    a = a.T if at.trans_a else a
    weight = node.inputs[1] if not at.trans_b else node.inputs[1] + ":T"
    y = matmul_array(wafer, a, b.T if at.trans_b else b, weight, "" if at.trans_a else node.inputs[0])
    if at.alpha != 1.0:
        y = at.alpha * y
    if c is not None:
        y = y + (at.beta * c if at.beta != 1.0 else c)
        wafer.compute(per_pe_bytes(y.size, 1, wafer.spec.pes))
    return (np.asarray(y).astype(a.dtype, copy=False),)


def attend(wafer: Wafer, node: Node, qs: np.ndarray, ks: np.ndarray, v: np.ndarray, bias: np.ndarray,
           groups: int, rank3: bool, dtype: np.dtype, sinks: np.ndarray | None = None) -> tuple:
    """(Y, qk output) of attention over the KV cache (``kernels.nn.attention_operands``' q, k,
    v: heads first, K/V repeated per query head) on the mesh, per KV head group
    (``mesh_physics``: "Attention per KV head group"): QK^T and P @ V as ``linalg.band_gemv``
    on the group's un-repeated K and V, its query heads the rows of one GEMV; the softmax's max
    all-reduce on the mesh; and, in a decode step or for one row, P @ V on ``exp(s - max)``
    with the row sums carried beside its reduction and each output divided at its root
    ("Softmax sum after P @ V"; with sinks, the sink column's term joins its row's sum). The
    same softmax, bias, softcap, sinks and masked rows as ``kernels.nn.attention_result``."""
    at = node.attrs_as(AttentionAttrs)
    nb, heads, sq, d = qs.shape
    groups = max(1, min(groups, heads))
    g = heads // groups
    kg, vg = ks[:, ::g], v[:, ::g]                            # one copy per KV head group
    qk, _ = linalg.band_gemv(wafer, qs.reshape(nb, groups, g * sq, d), np.swapaxes(kg, 2, 3))
    qk = qk.reshape(nb, heads, sq, -1)
    if at.softcap > 0:
        qk = np.tanh(qk / at.softcap) * at.softcap
    scores = qk + bias
    mode_out = scores.copy() if at.qk_matmul_output_mode == 2 else qk
    keys = scores.shape[-1]
    fuse = (wafer.decode or nb * sq == 1) and at.qk_matmul_output_mode != 3 and keys > 1
    if sinks is not None:
        column = np.broadcast_to(np.asarray(sinks, scores.dtype).reshape(1, -1, 1, 1),
                                 scores.shape[:-1] + (1,))
        scores = np.concatenate([scores, column], axis=-1)
    e = softmax_rows(wafer, scores.reshape(-1, scores.shape[-1]), normalise=not fuse).reshape(scores.shape)
    sink_e = e[..., keys] if sinks is not None else None
    probs = np.where(np.isneginf(np.max(bias, axis=-1, keepdims=True)), 0, e[..., :keys]).astype(dtype)
    if at.qk_matmul_output_mode == 3:
        mode_out = probs
    y, sums = linalg.band_gemv(wafer, probs.reshape(nb, groups, g * sq, keys), vg, sums=fuse)
    y = y.reshape(nb, heads, sq, -1)
    if sums is not None:  # at the roots: one divide per output element of a root's tile
        total = sums.reshape(nb, heads, sq) + (sink_e if sink_e is not None else 0)
        y = (y.astype(np.float32) / np.where(total == 0, 1, total)[..., None]).astype(y.dtype, copy=False)
        _, _, per = mesh_physics.kv_bands(wafer.spec.rows, groups)
        wafer.compute(per * nb * g * sq * -(-y.shape[-1] // wafer.spec.cols))
    if rank3:
        y = y.transpose(0, 2, 1, 3).reshape(nb, sq, -1)
    return y.astype(dtype, copy=False), mode_out.astype(dtype)


def attention(wafer: Wafer, node: Node, args: list) -> tuple:
    """Attention over the KV cache on the mesh (``attend``)."""
    q = args[0]
    qs, ks, v, bias, present_k, present_v = attention_operands(node, *args[:7])
    sinks = args[7] if len(args) > 7 else None
    at = node.attrs_as(AttentionAttrs)
    four_d = present_k is not None and present_k.ndim == 4
    groups = present_k.shape[1] if four_d else (at.kv_num_heads or qs.shape[1])
    y, mode_out = attend(wafer, node, qs, ks, v, bias, groups, q.ndim == 3, q.dtype, sinks)
    return y, present_k, present_v, mode_out


def rotary(wafer: Wafer, node: Node, args: list) -> tuple:
    """Rotation pairs of a head sit on the same PE (the head dimension is never split), so the
    rotation is local (``op_semantics``: 3 FLOPs per rotated element), no fabric traffic."""
    out = KERNELS[OpKind.ROTARY_EMBEDDING](node, *args)
    wafer.compute(flops_per_element(OpKind.ROTARY_EMBEDDING) * per_pe_bytes(out.size, 1, wafer.spec.pes))
    return (out,)


def gather(wafer: Wafer, node: Node, args: list) -> tuple:
    """Embedding gather: each selected row travels from the PE holding it to the PE that needs
    it; routes are at most (R - 1) + (C - 1) hops (charged at that bound)."""
    # A table may come as stored (a streamed weight, see ``MeshExecutor._fetch``): its picked
    # rows are converted to the compute type, as the whole table would have been.
    out = to_compute(KERNELS[OpKind.GATHER](node, *args))
    data, idx = args
    if (node.inputs[0], "table") not in wafer.resident:
        return (out,)  # not an embedding table: index arithmetic, see HOST_OPS
    rows = int(np.asarray(idx).size)
    row_bytes = out.nbytes // max(rows, 1)
    spec = wafer.spec
    dist = spec.rows + spec.cols - 2
    if rows:
        wafer.charge(rows * dist, rows * dist * row_bytes,
                     mesh_physics.route_cycles(spec.rows, spec.cols, row_bytes, spec.cycles_per_hop,
                                               spec.link_bytes_per_cycle))
    return (out,)


MESH_KERNELS: dict[OpKind, MeshKernel] = {
    **{k: elementwise for k in ELEMENTWISE},
    OpKind.MATMUL: matmul, OpKind.GEMM: gemm,
    OpKind.REDUCE_MEAN: reduction, OpKind.REDUCE_SUM: reduction, OpKind.REDUCE_MAX: reduction,
    OpKind.SOFTMAX: softmax, OpKind.LAYER_NORM: normalization, OpKind.RMS_NORM: normalization,
    OpKind.ATTENTION: attention, OpKind.ROTARY_EMBEDDING: rotary, OpKind.GATHER: gather,
}

# onnxruntime's contrib ops (their kernels build on the ones above).
from placer.backends.mesh.contrib_ops import CONTRIB_MESH_KERNELS  # noqa: E402

MESH_KERNELS.update(CONTRIB_MESH_KERNELS)
