"""onnxruntime's own ops in ONNX files: converters keyed by (domain, op type).

The ops of onnxruntime-genai's model builder and of onnxruntime's transformer optimizer
(``docs/ContribOperators.md`` of onnxruntime):

* IR ops of their own: MatMulNBits and GatherBlockQuantized (block-quantized weights: the
  packed tensor is typed with its logical shape, ``[K, N]`` or ``[rows, cols]``, as UINT4/UINT8
  with its exact stored bytes; block scales and zero points are ``QUANTIZATION`` weights),
  GroupQueryAttention, MultiHeadAttention, com.microsoft RotaryEmbedding (inputs x,
  position_ids, cos_cache, sin_cache: not the opset-23 op), FastGelu, QuickGelu, BiasGelu;
* expanded into IR ops with the same arithmetic: SimplifiedLayerNormalization is an RMSNorm;
  SkipSimplifiedLayerNormalization and SkipLayerNormalization are the residual Add (plus the
  optional bias) followed by RMSNorm / LayerNorm, whose sum is output 3. The residual add
  ends a layer and the norm starts the next one, so placement units cut between them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from placer.ir import attrs as A
from placer.ir.dtypes import DType
from placer.ir.graph import Node, Weight
from placer.ir.ops import OpKind
from placer.ir.types import TensorType

if TYPE_CHECKING:
    from placer.frontends.onnx import _Importer

Converted = tuple[A.Attrs, list[str], list[str]]
MS = "com.microsoft"


def _stored(imp: _Importer, name: str, value: str, what: str) -> Weight:
    w = imp.weights.get(value)
    if w is None:
        raise imp.fail(f"node {name!r}: {what} %{value} must be an initializer (placer reads its "
                       "size from the file)")
    return w


def _retype(imp: _Importer, value: str, dtype: DType, shape: tuple[int, ...], nbytes: int) -> None:
    """Give a stored tensor its logical type, keeping its stored bytes and data as stored."""
    w = imp.weights[value]
    imp.weights[value] = Weight(w.name, TensorType(dtype, shape), nbytes, w.role, w.location, w.data)


def _reshape_stored(imp: _Importer, value: str, shape: tuple[int, ...], name: str, what: str) -> None:
    w = imp.weights[value]
    if w.numel != _prod(shape):
        raise imp.fail(f"node {name!r}: {what} %{value} has {w.numel} elements, expected {shape}")
    data = w.data.reshape(shape) if w.data is not None else None
    imp.weights[value] = Weight(w.name, TensorType(w.type.dtype, shape), w.nbytes, w.role, w.location, data)


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def _bits(imp: _Importer, name: str, a: dict) -> int:
    bits = int(a.get("bits", 4))
    if bits not in (4, 8):
        raise imp.fail(f"node {name!r}: {bits}-bit weights are not supported (4 or 8 bits)")
    return bits


def _matmul_nbits(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    k, n, block = int(a["K"]), int(a["N"]), int(a["block_size"])
    bits = _bits(imp, name, a)
    if len(ins) > 4 and ins[4]:
        raise imp.fail(f"node {name!r}: MatMulNBits with g_idx (act-order) is not supported; "
                       "re-quantize without act-order")
    blocks = -(-k // block)
    b = _stored(imp, name, ins[1], "the packed weight")
    if ins[1] not in imp.retyped:
        if b.nbytes != n * blocks * block * bits // 8:
            raise imp.fail(f"node {name!r}: packed weight %{ins[1]} has {b.nbytes} bytes, expected "
                           f"N * blocks * block_size * bits / 8 = {n * blocks * block * bits // 8}")
        # Typed as the [K, N] matrix it stands for; its data stays the stored bytes.
        _retype(imp, ins[1], DType.UINT4 if bits == 4 else DType.UINT8, (k, n), b.nbytes)
        _stored(imp, name, ins[2], "the scales")
        _reshape_stored(imp, ins[2], (n, blocks), name, "scales")
        if len(ins) > 3 and ins[3]:
            zp = _stored(imp, name, ins[3], "the zero points")
            if zp.type.dtype.is_float:
                _reshape_stored(imp, ins[3], (n, blocks), name, "zero points")
            else:
                _retype(imp, ins[3], DType.UINT4 if bits == 4 else DType.UINT8, (n, blocks), zp.nbytes)
        imp.retyped.add(ins[1])
    attrs = A.MatMulNBitsAttrs(k, n, bits, block, int(a.get("accuracy_level", 0)))
    return attrs, ins, outs


def _gather_block_quantized(imp: _Importer, name: str, a: dict, ins: list[str],
                            outs: list[str]) -> Converted:
    bits = _bits(imp, name, a)
    block = int(a.get("block_size", 128))
    data = _stored(imp, name, ins[0], "the quantized table")
    packed = data.type.dtype is DType.UINT8 and bits == 4
    signed = data.type.dtype is DType.INT4
    rank = data.type.rank
    gather_axis = int(a.get("gather_axis", 0)) % max(rank, 1)
    quantize_axis = int(a.get("quantize_axis", 1)) % max(rank, 1)
    if packed and quantize_axis != rank - 1:
        raise imp.fail(f"node {name!r}: uint8-packed GatherBlockQuantized must quantize the last axis")
    if ins[0] not in imp.retyped:
        shape = data.type.static_shape
        if packed:
            shape = shape[:-1] + (shape[-1] * 2,)
            _retype(imp, ins[0], DType.UINT4, shape, data.nbytes)
        if len(ins) > 3 and ins[3]:
            zp = _stored(imp, name, ins[3], "the zero points")
            if zp.type.dtype is DType.UINT8 and bits == 4:
                zshape = zp.type.static_shape
                _retype(imp, ins[3], DType.UINT4, zshape[:-1] + (zshape[-1] * 2,), zp.nbytes)
        imp.retyped.add(ins[0])
    attrs = A.GatherBlockQuantizedAttrs(gather_axis, quantize_axis, block, bits, packed, signed)
    return attrs, ins, outs


def _group_query_attention(imp: _Importer, name: str, a: dict, ins: list[str],
                           outs: list[str]) -> Converted:
    if int(a.get("qk_output", 0)):
        raise imp.fail(f"node {name!r}: GroupQueryAttention qk_output is not supported")
    attrs = A.GroupQueryAttentionAttrs(
        int(a["num_heads"]), int(a["kv_num_heads"]), float(a.get("scale", 0.0)),
        float(a.get("softcap", 0.0)), int(a.get("local_window_size", -1)), bool(a.get("do_rotary", 0)),
        bool(a.get("rotary_interleaved", 0)), bool(a.get("smooth_softmax", 0)))
    return attrs, ins, outs


def _multi_head_attention(imp: _Importer, name: str, a: dict, ins: list[str],
                          outs: list[str]) -> Converted:
    if len(ins) > 8 and any(ins[8:]):
        raise imp.fail(f"node {name!r}: MultiHeadAttention inputs past_sequence_length and "
                       "cache_indirection (decoder-masked beam search) are not supported")
    attrs = A.MultiHeadAttentionAttrs(int(a["num_heads"]), float(a.get("scale", 0.0)),
                                      bool(a.get("unidirectional", 0)),
                                      float(a.get("mask_filter_value", -10000.0)))
    return attrs, ins, outs


def _rotary(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    if int(a.get("is_packed_batching", 0)):
        raise imp.fail(f"node {name!r}: RotaryEmbedding with is_packed_batching is not supported")
    attrs = A.MsRotaryAttrs(bool(a.get("interleaved", 0)), int(a.get("num_heads", 0)),
                            int(a.get("rotary_embedding_dim", 0)), float(a.get("scale", 1.0)))
    return attrs, ins, outs


def _quick_gelu(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.QuickGeluAttrs(float(a.get("alpha", 1.702))), ins, outs


def _plain(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str]) -> Converted:
    return A.NoAttrs(), ins, outs


def _norm_attrs(a: dict) -> A.NormAttrs:
    return A.NormAttrs(int(a.get("axis", -1)), float(a.get("epsilon", 1e-5)), int(a.get("stash_type", 1)))


def _unused_outputs(imp: _Importer, name: str, op: str, outs: list[str], keep: set[int]) -> None:
    for i, o in enumerate(outs):
        if o and i not in keep and o in imp.used_values:
            raise imp.fail(f"node {name!r}: output {i} of {op} (%{o}) is read by another node; "
                           "placer supports its outputs " + ", ".join(map(str, sorted(keep))))


Expander = Callable[["_Importer", str, dict, list[str], list[str], str], None]


def _simplified_layer_norm(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str],
                           scope: str) -> None:
    _unused_outputs(imp, name, "SimplifiedLayerNormalization", outs, {0})
    imp.nodes.append(Node(name, OpKind.RMS_NORM, tuple(ins[:2]), (outs[0],), _norm_attrs(a), scope))


def _skip_norm(kind: OpKind, op: str) -> Expander:
    """input + skip (+ bias) -> output 3, then the norm of it -> output 0."""
    def expand(imp: _Importer, name: str, a: dict, ins: list[str], outs: list[str], scope: str) -> None:
        _unused_outputs(imp, name, op, outs, {0, 3})
        ins = ins + [""] * 5
        simplified = kind is OpKind.RMS_NORM
        bias = ins[3] if simplified else ins[4]
        total = outs[3] if len(outs) > 3 and outs[3] else f"{name}/input_skip_bias_sum"
        first = f"{name}/skip_sum" if bias else total
        imp.nodes.append(Node(imp.fresh_name(f"{name}/skip_add"), OpKind.ADD, (ins[0], ins[1]), (first,),
                              A.NoAttrs(), scope))
        if bias:
            imp.nodes.append(Node(imp.fresh_name(f"{name}/bias_add"), OpKind.ADD, (first, bias), (total,),
                                  A.NoAttrs(), scope))
        norm_ins = (total, ins[2]) if simplified else tuple(x for x in (total, ins[2], ins[3]) if x)
        imp.nodes.append(Node(name, kind, norm_ins, (outs[0],),
                              A.NormAttrs(-1, float(a.get("epsilon", 1e-12)), 1), scope))
    return expand


# (domain, op type) -> (op kind, converter); the default domain's table is in ``onnx.py``.
CONTRIB_OPS: dict[tuple[str, str], tuple[OpKind, Callable[..., Converted]]] = {
    (MS, "MatMulNBits"): (OpKind.MATMUL_NBITS, _matmul_nbits),
    (MS, "GatherBlockQuantized"): (OpKind.GATHER_BLOCK_QUANTIZED, _gather_block_quantized),
    (MS, "GroupQueryAttention"): (OpKind.GROUP_QUERY_ATTENTION, _group_query_attention),
    (MS, "MultiHeadAttention"): (OpKind.MULTI_HEAD_ATTENTION, _multi_head_attention),
    (MS, "RotaryEmbedding"): (OpKind.MS_ROTARY_EMBEDDING, _rotary),
    (MS, "FastGelu"): (OpKind.FAST_GELU, _plain),
    (MS, "QuickGelu"): (OpKind.QUICK_GELU, _quick_gelu),
    (MS, "BiasGelu"): (OpKind.BIAS_GELU, _plain),
}

# Ops imported as several IR nodes (one expander appends them all).
CONTRIB_EXPANDERS: dict[tuple[str, str], Expander] = {
    ("", "SimplifiedLayerNormalization"): _simplified_layer_norm,
    (MS, "SimplifiedLayerNormalization"): _simplified_layer_norm,
    (MS, "SkipSimplifiedLayerNormalization"): _skip_norm(OpKind.RMS_NORM, "SkipSimplifiedLayerNormalization"),
    (MS, "SkipLayerNormalization"): _skip_norm(OpKind.LAYER_NORM, "SkipLayerNormalization"),
}


def contrib_op_names() -> list[str]:
    """``domain.Op`` names of the ops above, for messages and docs."""
    return sorted(f"{d or 'ai.onnx'}.{o}" for d, o in (*CONTRIB_OPS, *CONTRIB_EXPANDERS))


__all__ = ["CONTRIB_EXPANDERS", "CONTRIB_OPS", "contrib_op_names"]
