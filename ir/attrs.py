"""Typed attributes, one frozen dataclass per op kind that has any.

``ATTRIBUTES[kind]`` gives the class; ops without attributes use ``NoAttrs``. Serialization
and the verifier rely on this table, so every field is a JSON-friendly type: int, float, str,
bool, tuples of those, or ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from placer.ir.dtypes import DType
from placer.ir.ops import OpKind


@dataclass(frozen=True)
class Attrs:
    """Base of every op's attribute class, so ``Node.attrs`` has one static type.

    Read a field through ``Node.attrs_as(SomeAttrs)``, which narrows and checks the class.
    """


@dataclass(frozen=True)
class NoAttrs(Attrs):
    pass


@dataclass(frozen=True)
class GemmAttrs(Attrs):
    alpha: float = 1.0
    beta: float = 1.0
    trans_a: bool = False
    trans_b: bool = False


@dataclass(frozen=True)
class CastAttrs(Attrs):
    to: DType = DType.FLOAT32
    saturate: bool = True


@dataclass(frozen=True)
class ClipAttrs(Attrs):
    """Bounds come as optional inputs (min, max); nothing here."""


@dataclass(frozen=True)
class GeluAttrs(Attrs):
    approximate: str = "none"  # "none" or "tanh"


@dataclass(frozen=True)
class AxisAttrs(Attrs):
    """Softmax, Concat, Gather, Flatten, Split's axis and similar single-axis ops."""

    axis: int = -1


@dataclass(frozen=True)
class SplitAttrs(Attrs):
    """Sizes come from the optional ``split`` input or ``num_outputs`` equal chunks."""

    axis: int = 0
    num_outputs: int | None = None


@dataclass(frozen=True)
class NormAttrs(Attrs):
    """LayerNormalization and RMSNormalization: normalize over axes ``axis..rank-1``."""

    axis: int = -1
    epsilon: float = 1e-5
    stash_type: int = 1


@dataclass(frozen=True)
class ReduceAttrs(Attrs):
    """Axes come from the optional ``axes`` input (opset >= 18) or here (older opsets)."""

    axes: tuple[int, ...] | None = None
    keepdims: bool = True
    noop_with_empty_axes: bool = False


@dataclass(frozen=True)
class ArgMaxAttrs(Attrs):
    axis: int = 0
    keepdims: bool = True
    select_last_index: bool = False


@dataclass(frozen=True)
class TopKAttrs(Attrs):
    axis: int = -1
    largest: bool = True
    sorted: bool = True


@dataclass(frozen=True)
class ReshapeAttrs(Attrs):
    allowzero: bool = False


@dataclass(frozen=True)
class TransposeAttrs(Attrs):
    perm: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SqueezeAttrs(Attrs):
    """Axes come from the optional ``axes`` input (opset >= 13) or here."""

    axes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class GatherNDAttrs(Attrs):
    batch_dims: int = 0


@dataclass(frozen=True)
class ScatterNDAttrs(Attrs):
    reduction: str = "none"


@dataclass(frozen=True)
class TriluAttrs(Attrs):
    upper: bool = True


@dataclass(frozen=True)
class ShapeAttrs(Attrs):
    start: int = 0
    end: int | None = None


@dataclass(frozen=True)
class ConstantOfShapeAttrs(Attrs):
    value: float | int = 0.0
    dtype: DType = DType.FLOAT32


@dataclass(frozen=True)
class CumSumAttrs(Attrs):
    """ONNX CumSum; the axis comes as an input."""

    exclusive: bool = False
    reverse: bool = False


@dataclass(frozen=True)
class RotaryAttrs(Attrs):
    """ONNX RotaryEmbedding (opset 23)."""

    interleaved: bool = False
    num_heads: int = 0
    rotary_embedding_dim: int = 0


@dataclass(frozen=True)
class AttentionAttrs(Attrs):
    """ONNX Attention (opset 23-25). ``window`` is placer's own: a sliding-window layer attends
    to at most this many tokens ending at the query's own position p (keys j with
    p - j < window; 0 = unlimited), as HF's ``sliding_window``. An optional input 7 (after
    ONNX's seven inputs) holds per-head sink logits [q_num_heads]: one extra softmax column
    per head whose value row is zero (gpt-oss)."""

    is_causal: bool = False
    kv_num_heads: int = 0
    q_num_heads: int = 0
    qk_matmul_output_mode: int = 0
    scale: float | None = None
    softcap: float = 0.0
    softmax_precision: int | None = None
    window: int = 0
    # ONNX Attention-24 ``right_window_size``: a query at position p also attends keys up to
    # p + right_window (-1 = unbounded). ONNX ``left_window_size`` L >= 0 is ``window = L + 1``.
    right_window: int = -1


@dataclass(frozen=True)
class IsInfAttrs(Attrs):
    detect_negative: bool = True
    detect_positive: bool = True


@dataclass(frozen=True)
class MatMulNBitsAttrs(Attrs):
    """com.microsoft MatMulNBits: ``A [..., K] @ W [K, N]`` with W stored transposed as
    ``[N, ceil(K / block_size), block_size * bits / 8]`` bytes (low bits first), one scale per
    block of K and optional zero points (default ``2 ** (bits - 1)``)."""

    k: int = 0
    n: int = 0
    bits: int = 4
    block_size: int = 32
    accuracy_level: int = 0


@dataclass(frozen=True)
class GatherBlockQuantizedAttrs(Attrs):
    """com.microsoft GatherBlockQuantized: gather rows of a block-quantized table."""

    gather_axis: int = 0
    quantize_axis: int = 1
    block_size: int = 128
    bits: int = 4
    # placer's own: the table is uint8 bytes holding two 4-bit values each (along the last
    # axis), rather than ONNX INT4/UINT4 elements; ``signed``: INT4 storage (zero point 0).
    packed: bool = True
    signed: bool = False


@dataclass(frozen=True)
class GroupQueryAttentionAttrs(Attrs):
    """com.microsoft GroupQueryAttention: 3-D Q/K/V (or packed QKV in Q), past/present KV in
    [batch, kv_heads, seq, head], causal over ``seqlens_k + 1`` keys, rotary inside."""

    num_heads: int = 0
    kv_num_heads: int = 0
    scale: float = 0.0  # 0: 1 / sqrt(head_size)
    softcap: float = 0.0
    local_window_size: int = -1
    do_rotary: bool = False
    rotary_interleaved: bool = False
    smooth_softmax: bool = False


@dataclass(frozen=True)
class MultiHeadAttentionAttrs(Attrs):
    """com.microsoft MultiHeadAttention (3-D Q/K/V, optional bias, masks, past/present KV)."""

    num_heads: int = 0
    scale: float = 0.0  # 0: 1 / sqrt(head_size)
    unidirectional: bool = False
    mask_filter_value: float = -10000.0


@dataclass(frozen=True)
class MsRotaryAttrs(Attrs):
    """com.microsoft RotaryEmbedding (inputs: x, position_ids, cos_cache, sin_cache)."""

    interleaved: bool = False
    num_heads: int = 0
    rotary_embedding_dim: int = 0
    scale: float = 1.0


@dataclass(frozen=True)
class QuickGeluAttrs(Attrs):
    alpha: float = 1.702


ATTRIBUTES: dict[OpKind, type[Attrs]] = {
    OpKind.GEMM: GemmAttrs,
    OpKind.CAST: CastAttrs,
    OpKind.GELU: GeluAttrs,
    OpKind.SOFTMAX: AxisAttrs,
    OpKind.CONCAT: AxisAttrs,
    OpKind.GATHER: AxisAttrs,
    OpKind.GATHER_ELEMENTS: AxisAttrs,
    OpKind.FLATTEN: AxisAttrs,
    OpKind.ONE_HOT: AxisAttrs,
    OpKind.SPLIT: SplitAttrs,
    OpKind.LAYER_NORM: NormAttrs,
    OpKind.RMS_NORM: NormAttrs,
    OpKind.REDUCE_MEAN: ReduceAttrs,
    OpKind.REDUCE_SUM: ReduceAttrs,
    OpKind.REDUCE_MAX: ReduceAttrs,
    OpKind.ARG_MAX: ArgMaxAttrs,
    OpKind.TOP_K: TopKAttrs,
    OpKind.RESHAPE: ReshapeAttrs,
    OpKind.TRANSPOSE: TransposeAttrs,
    OpKind.SQUEEZE: SqueezeAttrs,
    OpKind.UNSQUEEZE: SqueezeAttrs,
    OpKind.GATHER_ND: GatherNDAttrs,
    OpKind.SCATTER_ND: ScatterNDAttrs,
    OpKind.TRILU: TriluAttrs,
    OpKind.SHAPE: ShapeAttrs,
    OpKind.CONSTANT_OF_SHAPE: ConstantOfShapeAttrs,
    OpKind.ROTARY_EMBEDDING: RotaryAttrs,
    OpKind.CUM_SUM: CumSumAttrs,
    OpKind.ATTENTION: AttentionAttrs,
    OpKind.IS_INF: IsInfAttrs,
    OpKind.MATMUL_NBITS: MatMulNBitsAttrs,
    OpKind.GATHER_BLOCK_QUANTIZED: GatherBlockQuantizedAttrs,
    OpKind.GROUP_QUERY_ATTENTION: GroupQueryAttentionAttrs,
    OpKind.MULTI_HEAD_ATTENTION: MultiHeadAttentionAttrs,
    OpKind.MS_ROTARY_EMBEDDING: MsRotaryAttrs,
    OpKind.QUICK_GELU: QuickGeluAttrs,
}


def attrs_class(kind: OpKind) -> type[Attrs]:
    return ATTRIBUTES.get(kind, NoAttrs)


def attrs_to_dict(attrs: Attrs) -> dict[str, object]:
    """Only fields that differ from their defaults, for compact text and JSON."""
    out: dict[str, object] = {}
    for f in fields(attrs):
        v = getattr(attrs, f.name)
        if v != f.default:
            out[f.name] = v.value if isinstance(v, DType) else (list(v) if isinstance(v, tuple) else v)
    return out


def attrs_from_dict(kind: OpKind, data: dict[str, object]) -> Attrs:
    cls = attrs_class(kind)
    kwargs: dict[str, object] = {}
    types = {f.name: f.type for f in fields(cls)}
    for k, v in data.items():
        if k not in types:
            raise ValueError(f"op {kind.value} has no attribute {k!r}")
        if "DType" in str(types[k]):
            v = DType(v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)
