"""Op kinds of the IR and their categories.

Strings from ONNX or torch stop at the frontends: each frontend has one table mapping its op
names to these kinds. Everything inside placer dispatches on ``OpKind``.
"""

from __future__ import annotations

import enum


class OpKind(enum.Enum):
    # linear algebra
    MATMUL = "matmul"
    GEMM = "gemm"
    # elementwise binary
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    POW = "pow"
    MAX = "max"
    MIN = "min"
    EQUAL = "equal"
    LESS = "less"
    LESS_OR_EQUAL = "less_or_equal"
    GREATER = "greater"
    GREATER_OR_EQUAL = "greater_or_equal"
    AND = "and"
    OR = "or"
    WHERE = "where"
    # elementwise unary
    NEG = "neg"
    ABS = "abs"
    SQRT = "sqrt"
    RECIPROCAL = "reciprocal"
    EXP = "exp"
    LOG = "log"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    ERF = "erf"
    GELU = "gelu"
    RELU = "relu"
    SILU = "silu"
    COS = "cos"
    SIN = "sin"
    NOT = "not"
    IS_NAN = "is_nan"
    IS_INF = "is_inf"
    CAST = "cast"
    IDENTITY = "identity"
    CLIP = "clip"
    # normalization and attention
    SOFTMAX = "softmax"
    LAYER_NORM = "layer_norm"
    RMS_NORM = "rms_norm"
    ROTARY_EMBEDDING = "rotary_embedding"
    ATTENTION = "attention"
    # reductions
    REDUCE_MEAN = "reduce_mean"
    REDUCE_SUM = "reduce_sum"
    REDUCE_MAX = "reduce_max"
    ARG_MAX = "arg_max"
    TOP_K = "top_k"
    # layout and indexing
    RESHAPE = "reshape"
    TRANSPOSE = "transpose"
    CONCAT = "concat"
    SPLIT = "split"
    SLICE = "slice"
    SQUEEZE = "squeeze"
    UNSQUEEZE = "unsqueeze"
    EXPAND = "expand"
    FLATTEN = "flatten"
    TILE = "tile"
    GATHER = "gather"
    GATHER_ND = "gather_nd"
    GATHER_ELEMENTS = "gather_elements"
    SCATTER_ND = "scatter_nd"
    ONE_HOT = "one_hot"
    TRILU = "trilu"
    # shape and constants
    SHAPE = "shape"
    CONSTANT_OF_SHAPE = "constant_of_shape"
    RANGE = "range"
    # scans
    CUM_SUM = "cum_sum"
    # onnxruntime contrib ops (com.microsoft) with no exact default-domain equivalent
    MATMUL_NBITS = "matmul_nbits"
    GATHER_BLOCK_QUANTIZED = "gather_block_quantized"
    GROUP_QUERY_ATTENTION = "group_query_attention"
    MULTI_HEAD_ATTENTION = "multi_head_attention"
    MS_ROTARY_EMBEDDING = "ms_rotary_embedding"
    FAST_GELU = "fast_gelu"
    QUICK_GELU = "quick_gelu"
    BIAS_GELU = "bias_gelu"


ELEMENTWISE_BINARY = frozenset({
    OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.DIV, OpKind.POW, OpKind.MAX, OpKind.MIN,
    OpKind.EQUAL, OpKind.LESS, OpKind.LESS_OR_EQUAL, OpKind.GREATER, OpKind.GREATER_OR_EQUAL,
    OpKind.AND, OpKind.OR,
})
ELEMENTWISE_UNARY = frozenset({
    OpKind.NEG, OpKind.ABS, OpKind.SQRT, OpKind.RECIPROCAL, OpKind.EXP, OpKind.LOG, OpKind.TANH,
    OpKind.SIGMOID, OpKind.ERF, OpKind.GELU, OpKind.RELU, OpKind.SILU, OpKind.COS, OpKind.SIN,
    OpKind.NOT, OpKind.IS_NAN, OpKind.IS_INF, OpKind.CAST, OpKind.IDENTITY, OpKind.CLIP,
})
COMPARISON = frozenset({
    OpKind.EQUAL, OpKind.LESS, OpKind.LESS_OR_EQUAL, OpKind.GREATER, OpKind.GREATER_OR_EQUAL,
    OpKind.AND, OpKind.OR, OpKind.NOT, OpKind.IS_NAN, OpKind.IS_INF,
})
ELEMENTWISE = ELEMENTWISE_BINARY | ELEMENTWISE_UNARY | {OpKind.WHERE}
# MatMulNBits multiplies by a block-quantized [K, N] parameter (the IR types it as [K, N]).
CONTRACTION = frozenset({OpKind.MATMUL, OpKind.GEMM, OpKind.MATMUL_NBITS})
REDUCTION = frozenset({
    OpKind.REDUCE_MEAN, OpKind.REDUCE_SUM, OpKind.REDUCE_MAX, OpKind.ARG_MAX, OpKind.TOP_K,
})
NORMALIZATION = frozenset({OpKind.LAYER_NORM, OpKind.RMS_NORM, OpKind.SOFTMAX})
# Ops that only move or reinterpret data: no arithmetic.
LAYOUT = frozenset({
    OpKind.RESHAPE, OpKind.TRANSPOSE, OpKind.CONCAT, OpKind.SPLIT, OpKind.SLICE, OpKind.SQUEEZE,
    OpKind.UNSQUEEZE, OpKind.EXPAND, OpKind.FLATTEN, OpKind.TILE, OpKind.IDENTITY,
})
INDEXING = frozenset({
    OpKind.GATHER, OpKind.GATHER_ND, OpKind.GATHER_ELEMENTS, OpKind.SCATTER_ND, OpKind.ONE_HOT,
    OpKind.TRILU,
})
# Fused attention ops and the positions of their (K, V, past K, past V) inputs (-1: none).
ATTENTION_INPUTS: dict[OpKind, tuple[int, int, int, int]] = {
    OpKind.ATTENTION: (1, 2, 4, 5),
    OpKind.GROUP_QUERY_ATTENTION: (1, 2, 3, 4),
    OpKind.MULTI_HEAD_ATTENTION: (1, 2, 6, 7),
}
ATTENTION_OPS = frozenset(ATTENTION_INPUTS)
# Elementwise activations of onnxruntime (one output like the first input; BiasGelu and
# FastGelu add an optional bias first).
CONTRIB_ACTIVATIONS = frozenset({OpKind.FAST_GELU, OpKind.QUICK_GELU, OpKind.BIAS_GELU})
# Ops whose outputs are shapes or index arithmetic rather than model activations.
SHAPE_COMPUTATION = frozenset({OpKind.SHAPE, OpKind.CONSTANT_OF_SHAPE, OpKind.RANGE})
