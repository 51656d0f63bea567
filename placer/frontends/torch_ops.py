"""The aten -> OpKind table of the torch frontend: one lowering function per aten overload.

Each lowering receives the ``Lowerer`` (see ``placer.frontends.torch``), the fx node, and the
node's arguments bound to the op schema by name; it returns the IR value (or a tuple of values
for multi-output ops). Types come from torch's own ``node.meta["val"]``. Strings from torch
stop here: everything after this table dispatches on ``OpKind``.

Ops whose result is an unchanged view or a no-op in inference (``dropout``, ``clone``,
``to.device``, full slices) alias their input and emit no node. High-level ops are kept:
``linear`` becomes GEMM with ``trans_b`` (weights stay direct operands of the contraction),
``scaled_dot_product_attention`` becomes ATTENTION, ``embedding`` GATHER, ``layer_norm`` and
``rms_norm`` their normalizations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from placer.ir.attrs import (
    ArgMaxAttrs,
    AttentionAttrs,
    AxisAttrs,
    ConstantOfShapeAttrs,
    GeluAttrs,
    GemmAttrs,
    NormAttrs,
    ReduceAttrs,
    ShapeAttrs,
    SplitAttrs,
    SqueezeAttrs,
    TopKAttrs,
    TransposeAttrs,
    TriluAttrs,
)
from placer.ir.dtypes import DType
from placer.ir.ops import OpKind
from placer.ir.symbolic import dim_prod
from placer.ir.types import TensorType

INT64_MAX = 2**63 - 1
# A created tensor of at most this many elements with a static shape is stored inline.
INLINE_FILL_LIMIT = 4096

Lowering = Callable[[Any, Any, dict[str, Any]], Any]


# ----------------------------------------------------------------------------- elementwise

def _binary(kind: OpKind, *, negate: bool = False, swap: bool = False) -> Lowering:
    """``kind(self, other)``; comparisons compute in torch's promoted dtype."""

    def lower(cx: Any, node: Any, a: dict[str, Any]) -> str:
        out = cx.out_type(node)
        x, y = a["self"], a["other"]
        dtype = out.dtype if out.dtype is not DType.BOOL else cx.result_dtype(x, y)
        xv, yv = cx.operand(x, dtype), cx.operand(y, dtype)
        alpha = a.get("alpha", 1)
        if alpha is not None and alpha != 1:
            yv = cx.emit(OpKind.MUL, [yv, cx.operand(alpha, dtype)], cx.type_of(yv), hint="alpha")
        if swap:
            xv, yv = yv, xv
        if negate:
            eq = cx.emit(OpKind.EQUAL, [xv, yv], out, hint="eq")
            return cx.emit(OpKind.NOT, [eq], out)
        return cx.emit(kind, [xv, yv], out)

    return lower


def _unary(kind: OpKind) -> Lowering:
    def lower(cx: Any, node: Any, a: dict[str, Any]) -> str:
        out = cx.out_type(node)
        x = cx.tensor(a["self"])
        if out.dtype.is_float and cx.type_of(x).dtype != out.dtype:
            x = cx.cast(x, out.dtype)
        return cx.emit(kind, [x], out)

    return lower


def lower_rsqrt(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    root = cx.emit(OpKind.SQRT, [cx.operand(a["self"], out.dtype)], out, hint="sqrt")
    return cx.emit(OpKind.RECIPROCAL, [root], out)


def lower_pow(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    return cx.emit(OpKind.POW, [cx.operand(a["self"], out.dtype), cx.operand(a["exponent"], out.dtype)], out)


def lower_where(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    cond = cx.operand(a["condition"], DType.BOOL)
    return cx.emit(OpKind.WHERE, [cond, cx.operand(a["self"], out.dtype), cx.operand(a["other"], out.dtype)],
                   out)


def lower_masked_fill(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    mask = cx.operand(a["mask"], DType.BOOL)
    fill, x = cx.operand(a["value"], out.dtype), cx.operand(a["self"], out.dtype)
    return cx.emit(OpKind.WHERE, [mask, fill, x], out)


def lower_clamp(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    lo, hi = a.get("min"), a.get("max")
    return cx.emit(OpKind.CLIP, [cx.operand(a["self"], out.dtype),
                                 "" if lo is None else cx.operand(lo, out.dtype),
                                 "" if hi is None else cx.operand(hi, out.dtype)], out)


def lower_gelu(cx: Any, node: Any, a: dict[str, Any]) -> str:
    return cx.emit(OpKind.GELU, [cx.tensor(a["self"])], cx.out_type(node),
                   GeluAttrs(approximate=a.get("approximate", "none")))


def lower_cast(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """``to.dtype``, ``to.dtype_layout``, ``_to_copy``, ``type_as``: a cast, or nothing."""
    return cx.cast(cx.tensor(a["self"]), cx.out_type(node).dtype, name=True)


def lower_alias(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """Ops that are the identity in inference: dropout, clone, contiguous, to.device, detach."""
    first = next(iter(a.values()))
    return cx.tensor(first)


# ----------------------------------------------------------------------------- contractions

def lower_linear(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """``y = x @ W.T + b`` as GEMM(trans_b) on the weight itself; leading dims flattened."""
    out = cx.out_type(node)
    x, w = cx.tensor(a["input"]), cx.tensor(a["weight"])
    bias = "" if a.get("bias") is None else cx.operand(a["bias"], out.dtype)
    xt, wt = cx.type_of(x), cx.type_of(w)
    if wt.rank != 2 or xt.rank < 1:
        cx.unsupported(node, f"linear with a {wt.rank}-D weight and a {xt.rank}-D input")
    attrs = GemmAttrs(trans_b=True)
    if xt.rank == 2:
        return cx.emit(OpKind.GEMM, [x, w, bias], out, attrs)
    k, n = wt.shape[1], wt.shape[0]
    rows = dim_prod(xt.shape[:-1])
    flat = cx.emit(OpKind.RESHAPE, [x, cx.ints([-1, k])], TensorType(xt.dtype, (rows, k)), hint="flat")
    y = cx.emit(OpKind.GEMM, [flat, w, bias], TensorType(out.dtype, (rows, n)), attrs, hint="gemm")
    lead = cx.emit(OpKind.SHAPE, [x], TensorType(DType.INT64, (xt.rank - 1,)), ShapeAttrs(0, -1), hint="lead")
    shape = cx.emit(OpKind.CONCAT, [lead, cx.ints([n])], TensorType(DType.INT64, (xt.rank,)), AxisAttrs(0),
                    hint="shape")
    return cx.emit(OpKind.RESHAPE, [y, shape], out)


def lower_matmul(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """``matmul``, ``mm``, ``bmm``: numpy matmul semantics, as ONNX MatMul."""
    out = cx.out_type(node)
    other = a.get("other", a.get("mat2"))
    return cx.emit(OpKind.MATMUL, [cx.operand(a["self"], out.dtype), cx.operand(other, out.dtype)], out)


def lower_addmm(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    attrs = GemmAttrs(alpha=float(a.get("alpha", 1)), beta=float(a.get("beta", 1)))
    bias = cx.operand(a["self"], out.dtype)
    return cx.emit(OpKind.GEMM, [cx.tensor(a["mat1"]), cx.tensor(a["mat2"]), bias], out, attrs)


def lower_sdpa(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """``scaled_dot_product_attention`` -> ATTENTION (ONNX Attention, 4-D inputs, heads from shapes).

    A boolean mask means "may attend" and a float mask is added to the scores, in both."""
    out = cx.out_type(node)
    q, k, v = (cx.operand(a[n], out.dtype) for n in ("query", "key", "value"))
    mask = a.get("attn_mask")
    mask_v = "" if mask is None else cx.tensor(mask)
    if cx.type_of(q).rank != 4:
        cx.unsupported(node, "scaled_dot_product_attention on inputs that are not 4-D")
    scale = a.get("scale")
    attrs = AttentionAttrs(is_causal=bool(a.get("is_causal", False)),
                           scale=None if scale is None else float(scale))
    return cx.emit(OpKind.ATTENTION, [q, k, v, mask_v], out, attrs)


def lower_embedding(cx: Any, node: Any, a: dict[str, Any]) -> str:
    return cx.emit(OpKind.GATHER, [cx.tensor(a["weight"]), cx.tensor(a["indices"])], cx.out_type(node),
                   AxisAttrs(0))


# ----------------------------------------------------------------------------- normalization

def _scale_or_ones(cx: Any, value: Any, shape: tuple[int, ...], dtype: DType) -> str:
    if value is not None:
        return cx.operand(value, dtype)
    return cx.filled(TensorType(dtype, tuple(shape)), 1.0)


def lower_layer_norm(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    shape = tuple(a["normalized_shape"])
    scale = _scale_or_ones(cx, a.get("weight"), shape, out.dtype)
    bias = "" if a.get("bias") is None else cx.operand(a["bias"], out.dtype)
    attrs = NormAttrs(axis=-len(shape), epsilon=float(a.get("eps", 1e-5)))
    return cx.emit(OpKind.LAYER_NORM, [cx.tensor(a["input"]), scale, bias], out, attrs)


def lower_rms_norm(cx: Any, node: Any, a: dict[str, Any]) -> str:
    import torch

    out = cx.out_type(node)
    shape = tuple(a["normalized_shape"])
    eps = a.get("eps")
    if eps is None:
        eps = torch.finfo(node.meta["val"].dtype).eps
    scale = _scale_or_ones(cx, a.get("weight"), shape, out.dtype)
    attrs = NormAttrs(axis=-len(shape), epsilon=float(eps))
    return cx.emit(OpKind.RMS_NORM, [cx.tensor(a["input"]), scale], out, attrs)


def lower_softmax(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    return cx.emit(OpKind.SOFTMAX, [cx.operand(a["self"], out.dtype)], out, AxisAttrs(int(a["dim"])))


# ----------------------------------------------------------------------------- reductions

def _reduce(kind: OpKind) -> Lowering:
    def lower(cx: Any, node: Any, a: dict[str, Any]) -> str:
        out = cx.out_type(node)
        dims = a.get("dim")
        axes = tuple(int(d) for d in dims) if dims else None
        keep = bool(a.get("keepdim", False))
        return cx.emit(kind, [cx.operand(a["self"], out.dtype)], out, ReduceAttrs(axes=axes, keepdims=keep))

    return lower


def lower_argmax(cx: Any, node: Any, a: dict[str, Any]) -> str:
    x = cx.tensor(a["self"])
    dim = a.get("dim")
    if dim is None:
        x = cx.emit(OpKind.RESHAPE, [x, cx.ints([-1])], cx.type_of(x).with_shape((cx.type_of(x).numel,)),
                    hint="flat")
        dim = 0
    return cx.emit(OpKind.ARG_MAX, [x], cx.out_type(node), ArgMaxAttrs(axis=int(dim),
                                                                       keepdims=bool(a.get("keepdim"))))


def lower_topk(cx: Any, node: Any, a: dict[str, Any]) -> tuple[str, ...]:
    values, indices = cx.out_types(node)
    attrs = TopKAttrs(axis=int(a.get("dim", -1)), largest=bool(a.get("largest", True)),
                      sorted=bool(a.get("sorted", True)))
    k = cx.dim_value(cx.dim(a["k"]))
    return cx.emit_multi(OpKind.TOP_K, [cx.tensor(a["self"]), k], [values, indices], attrs)


def lower_cumsum(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """``cumsum(x, dim)`` -> CUM_SUM (ONNX CumSum: the axis is a scalar input)."""
    out = cx.out_type(node)
    x = cx.operand(a["self"], out.dtype)
    axis = int(a["dim"]) % max(cx.type_of(x).rank, 1)
    return cx.emit(OpKind.CUM_SUM, [x, cx.dim_value(axis, scalar=True)], out)


def lower_diff(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """``diff(x, n=1, dim, prepend, append)`` = concat, then later slice minus earlier slice."""
    if int(a.get("n", 1)) != 1:
        cx.unsupported(node, "diff with n != 1")
    out = cx.out_type(node)
    parts = [a.get("prepend"), a["self"], a.get("append")]
    vals = [cx.operand(p, out.dtype) for p in parts if p is not None]
    dim = int(a.get("dim", -1))
    rank = cx.type_of(vals[0]).rank
    dim %= rank
    full = vals[0]
    if len(vals) > 1:
        length = sum((cx.type_of(v).shape[dim] for v in vals[1:]), cx.type_of(vals[0]).shape[dim])
        shape = list(cx.type_of(vals[0]).shape)
        shape[dim] = length
        full = cx.emit(OpKind.CONCAT, vals, TensorType(out.dtype, tuple(shape)), AxisAttrs(dim), hint="cat")
    later = cx.slice(full, dim, 1, INT64_MAX, 1, out, hint="later")
    earlier = cx.slice(full, dim, 0, -1, 1, out, hint="earlier")
    return cx.emit(OpKind.SUB, [later, earlier], out)


# ----------------------------------------------------------------------------- layout

def lower_reshape(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    if cx.type_of(x).shape == out.shape:
        return x
    return cx.emit(OpKind.RESHAPE, [x, cx.reshape_target(out.shape)], out)


def lower_expand(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    xt = cx.type_of(x)
    if xt.shape == out.shape:
        return x
    # ONNX Expand broadcasts both ways: 1 keeps the input's dimension.
    pad = out.rank - xt.rank
    target = [1 if i >= pad and xt.shape[i - pad] == d else d for i, d in enumerate(out.shape)]
    return cx.emit(OpKind.EXPAND, [x, cx.shape_value(tuple(target))], out)


def lower_transpose(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    rank = cx.type_of(x).rank
    if "dims" in a:
        perm = [int(d) % rank for d in a["dims"]]
    elif "dim0" in a:
        perm = list(range(rank))
        d0, d1 = int(a["dim0"]) % rank, int(a["dim1"]) % rank
        perm[d0], perm[d1] = perm[d1], perm[d0]
    else:  # t()
        perm = list(reversed(range(rank)))
    if perm == sorted(perm):
        return x
    return cx.emit(OpKind.TRANSPOSE, [x], out, TransposeAttrs(tuple(perm)))


def lower_unsqueeze(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    axis = int(a["dim"]) % out.rank
    return cx.emit(OpKind.UNSQUEEZE, [cx.tensor(a["self"])], out, SqueezeAttrs((axis,)))


def lower_squeeze(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """torch drops only the requested dims that are 1; others are left alone (no error)."""
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    xt = cx.type_of(x)
    dims = a.get("dim")
    if dims is None:
        dims = range(xt.rank)
    elif isinstance(dims, int):
        dims = [dims]
    axes = tuple(sorted({int(d) % max(xt.rank, 1) for d in dims if xt.rank and xt.shape[int(d)] == 1}))
    if not axes:
        return x
    return cx.emit(OpKind.SQUEEZE, [x], out, SqueezeAttrs(axes))


def lower_cat(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    vals = [cx.operand(t, out.dtype) for t in a["tensors"]]
    # torch still accepts legacy empty 1-D tensors in cat; they contribute nothing.
    vals = [v for v in vals if not (cx.type_of(v).rank == 1 and cx.type_of(v).shape[0] == 0)] or vals[:1]
    if len(vals) == 1:
        return vals[0]
    return cx.emit(OpKind.CONCAT, vals, out, AxisAttrs(int(a.get("dim", 0)) % out.rank))


def lower_split(cx: Any, node: Any, a: dict[str, Any]) -> tuple[str, ...]:
    """``split``, ``split_with_sizes``, ``chunk``: sizes from torch's own output shapes."""
    outs = cx.out_types(node)
    x = cx.tensor(a["self"])
    axis = int(a.get("dim", 0)) % cx.type_of(x).rank
    sizes = [t.shape[axis] for t in outs]
    if len(outs) == 1:
        return (x,)
    if all(isinstance(s, int) for s in sizes):
        return cx.emit_multi(OpKind.SPLIT, [x, cx.ints(sizes)], outs, SplitAttrs(axis=axis))
    if all(s == sizes[0] for s in sizes):
        return cx.emit_multi(OpKind.SPLIT, [x], outs, SplitAttrs(axis=axis, num_outputs=len(outs)))
    return cx.emit_multi(OpKind.SPLIT, [x, cx.shape_value(tuple(sizes))], outs, SplitAttrs(axis=axis))


def lower_unbind(cx: Any, node: Any, a: dict[str, Any]) -> tuple[str, ...]:
    outs = cx.out_types(node)
    x = cx.tensor(a["self"])
    xt = cx.type_of(x)
    axis = int(a.get("dim", 0)) % xt.rank
    pieces = [t.with_shape(t.shape[:axis] + (1,) + t.shape[axis:]) for t in outs]
    ones = cx.ints([1] * len(outs))
    split = cx.emit_multi(OpKind.SPLIT, [x, ones], pieces, SplitAttrs(axis=axis), hint="split")
    return tuple(cx.emit(OpKind.SQUEEZE, [p], t, SqueezeAttrs((axis,)), hint="unbind")
                 for p, t in zip(split, outs))


def lower_slice(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    if cx.type_of(x).shape == out.shape:
        return x  # torch.export emits many full slices
    start = a.get("start")
    end = a.get("end")
    return cx.slice(x, int(a.get("dim", 0)), 0 if start is None else start,
                    INT64_MAX if end is None else end, int(a.get("step", 1)), out, name=True)


def lower_narrow(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    dim = int(a["dim"]) % cx.type_of(x).rank
    start = cx.dim(a["start"])
    return cx.slice(x, dim, a["start"], start + cx.dim(a["length"]), 1, out, name=True)


def lower_select(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    index = cx.dim_value(cx.dim(a["index"]), scalar=True)
    axis = int(a["dim"]) % cx.type_of(x).rank
    return cx.emit(OpKind.GATHER, [x, index], out, AxisAttrs(axis))


def lower_index_select(cx: Any, node: Any, a: dict[str, Any]) -> str:
    x = cx.tensor(a["self"])
    axis = int(a["dim"]) % cx.type_of(x).rank
    return cx.emit(OpKind.GATHER, [x, cx.tensor(a["index"])], cx.out_type(node), AxisAttrs(axis))


def lower_gather(cx: Any, node: Any, a: dict[str, Any]) -> str:
    x = cx.tensor(a["self"])
    axis = int(a["dim"]) % cx.type_of(x).rank
    return cx.emit(OpKind.GATHER_ELEMENTS, [x, cx.tensor(a["index"])], cx.out_type(node), AxisAttrs(axis))


def lower_index(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """Advanced indexing ``x[i0, i1, ...]``: one index is GATHER on its axis; several leading
    indices are broadcast, stacked and used by GATHER_ND."""
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    xt = cx.type_of(x)
    indices = list(a["indices"])
    while indices and indices[-1] is None:
        indices.pop()
    present = [i for i, t in enumerate(indices) if t is not None]
    if len(present) == 1:
        axis = present[0]
        idx = cx.tensor(indices[axis])
        if cx.type_of(idx).dtype is DType.BOOL:
            cx.unsupported(node, "boolean-mask indexing (its output shape depends on the data)")
        return cx.emit(OpKind.GATHER, [x, idx], out, AxisAttrs(axis))
    if present != list(range(len(present))):
        cx.unsupported(node, "advanced indexing with an index after a skipped (None) dimension")
    k = len(present)
    batch = out.shape[: out.rank - (xt.rank - k)]
    parts = []
    for t in indices:
        v = cx.operand(t, DType.INT64)
        vt = cx.type_of(v)
        if vt.shape != batch:
            pad = len(batch) - vt.rank
            target = [1 if i >= pad and vt.shape[i - pad] == d else d for i, d in enumerate(batch)]
            v = cx.emit(OpKind.EXPAND, [v, cx.shape_value(tuple(target))], vt.with_shape(batch), hint="bcast")
        parts.append(cx.emit(OpKind.UNSQUEEZE, [v], vt.with_shape(batch + (1,)), SqueezeAttrs((len(batch),)),
                             hint="idx"))
    stacked = cx.emit(OpKind.CONCAT, parts, TensorType(DType.INT64, batch + (k,)), AxisAttrs(len(batch)),
                      hint="stack")
    return cx.emit(OpKind.GATHER_ND, [x, stacked], out)


def lower_repeat_interleave(cx: Any, node: Any, a: dict[str, Any]) -> str:
    """``repeat_interleave(x, r, dim)``: unsqueeze after ``dim``, expand to r, merge."""
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    xt = cx.type_of(x)
    if a.get("dim") is None or not isinstance(a["repeats"], int):
        cx.unsupported(node, "repeat_interleave without dim or with tensor repeats")
    dim, r = int(a["dim"]) % xt.rank, int(a["repeats"])
    shape = xt.shape[: dim + 1] + (1,) + xt.shape[dim + 1:]
    u = cx.emit(OpKind.UNSQUEEZE, [x], xt.with_shape(shape), SqueezeAttrs((dim + 1,)), hint="u")
    target = [1] * len(shape)
    target[dim + 1] = r
    wide = shape[: dim + 1] + (r,) + shape[dim + 2:]
    e = cx.emit(OpKind.EXPAND, [u, cx.ints(target)], xt.with_shape(wide), hint="e")
    return cx.emit(OpKind.RESHAPE, [e, cx.reshape_target(out.shape)], out)


def lower_repeat(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    x = cx.tensor(a["self"])
    xt = cx.type_of(x)
    reps = [cx.dim(r) for r in a["repeats"]]
    extra = len(reps) - xt.rank
    if extra > 0:
        x = cx.emit(OpKind.UNSQUEEZE, [x], xt.with_shape((1,) * extra + xt.shape),
                    SqueezeAttrs(tuple(range(extra))), hint="u")
    return cx.emit(OpKind.TILE, [x, cx.shape_value(tuple(reps))], out)


def lower_trilu(upper: bool) -> Lowering:
    def lower(cx: Any, node: Any, a: dict[str, Any]) -> str:
        k = cx.dim_value(cx.dim(a.get("diagonal", 0)), scalar=True)
        return cx.emit(OpKind.TRILU, [cx.tensor(a["self"]), k], cx.out_type(node), TriluAttrs(upper=upper))

    return lower


# ----------------------------------------------------------------------------- creation

def lower_arange(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    start, end, step = a.get("start", 0), a["end"], a.get("step", 1)
    vals = [cx.operand(v, out.dtype, scalar=True) for v in (start, end, step)]
    return cx.emit(OpKind.RANGE, vals, out)


def _filled_with(value: float | None, *, from_arg: str = "") -> Lowering:
    def lower(cx: Any, node: Any, a: dict[str, Any]) -> str:
        v = a[from_arg] if from_arg else value
        if not isinstance(v, (int, float, bool)):
            cx.unsupported(node, "a fill value that is not a Python number")
        return cx.filled(cx.out_type(node), v, name=True)

    return lower


def lower_scalar_tensor(cx: Any, node: Any, a: dict[str, Any]) -> str:
    out = cx.out_type(node)
    return cx.operand(a["s"], out.dtype)


def lower_skip(cx: Any, node: Any, a: dict[str, Any]) -> None:
    """Assertions and symbolic-integer bookkeeping: nothing to compute."""
    return None


_SKIP = (
    "aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten._assert_async.msg",
    "aten.sym_constrain_range_for_size.default", "aten.sym_constrain_range.default",
    "aten._assert_async.default", "aten.sym_size.int", "aten.sym_numel.default", "aten.sym_stride.int",
    "aten.sym_storage_offset.default",
)
_ALIAS = (
    "aten.dropout.default", "aten.clone.default", "aten.contiguous.default", "aten.alias.default",
    "aten.detach.default", "aten.detach_.default", "aten.lift_fresh_copy.default", "aten.to.device",
    "aten.feature_dropout.default", "aten.alpha_dropout.default", "aten.view_as.default",
)

ATEN_OPS: dict[str, Lowering] = {
    **{name: lower_skip for name in _SKIP},
    **{name: lower_alias for name in _ALIAS},
    # elementwise binary
    "aten.add.Tensor": _binary(OpKind.ADD), "aten.add.Scalar": _binary(OpKind.ADD),
    "aten.sub.Tensor": _binary(OpKind.SUB), "aten.sub.Scalar": _binary(OpKind.SUB),
    "aten.rsub.Scalar": _binary(OpKind.SUB, swap=True), "aten.rsub.Tensor": _binary(OpKind.SUB, swap=True),
    "aten.mul.Tensor": _binary(OpKind.MUL), "aten.mul.Scalar": _binary(OpKind.MUL),
    "aten.div.Tensor": _binary(OpKind.DIV), "aten.div.Scalar": _binary(OpKind.DIV),
    "aten.div_.Tensor": _binary(OpKind.DIV), "aten.mul_.Tensor": _binary(OpKind.MUL),
    "aten.add_.Tensor": _binary(OpKind.ADD),
    "aten.maximum.default": _binary(OpKind.MAX), "aten.minimum.default": _binary(OpKind.MIN),
    "aten.eq.Tensor": _binary(OpKind.EQUAL), "aten.eq.Scalar": _binary(OpKind.EQUAL),
    "aten.ne.Tensor": _binary(OpKind.EQUAL, negate=True),
    "aten.ne.Scalar": _binary(OpKind.EQUAL, negate=True),
    "aten.lt.Tensor": _binary(OpKind.LESS), "aten.lt.Scalar": _binary(OpKind.LESS),
    "aten.le.Tensor": _binary(OpKind.LESS_OR_EQUAL), "aten.le.Scalar": _binary(OpKind.LESS_OR_EQUAL),
    "aten.gt.Tensor": _binary(OpKind.GREATER), "aten.gt.Scalar": _binary(OpKind.GREATER),
    "aten.ge.Tensor": _binary(OpKind.GREATER_OR_EQUAL), "aten.ge.Scalar": _binary(OpKind.GREATER_OR_EQUAL),
    "aten.__and__.Tensor": _binary(OpKind.AND), "aten.bitwise_and.Tensor": _binary(OpKind.AND),
    "aten.logical_and.default": _binary(OpKind.AND),
    "aten.__or__.Tensor": _binary(OpKind.OR), "aten.bitwise_or.Tensor": _binary(OpKind.OR),
    "aten.logical_or.default": _binary(OpKind.OR),
    "aten.pow.Tensor_Scalar": lower_pow, "aten.pow.Tensor_Tensor": lower_pow,
    "aten.pow.Scalar": lower_pow,
    "aten.where.self": lower_where, "aten.where.ScalarOther": lower_where,
    "aten.where.ScalarSelf": lower_where, "aten.where.Scalar": lower_where,
    "aten.masked_fill.Scalar": lower_masked_fill, "aten.masked_fill.Tensor": lower_masked_fill,
    "aten.clamp.default": lower_clamp, "aten.clamp.Tensor": lower_clamp,
    "aten.clamp_min.default": lower_clamp, "aten.clamp_max.default": lower_clamp,
    # elementwise unary
    "aten.neg.default": _unary(OpKind.NEG), "aten.abs.default": _unary(OpKind.ABS),
    "aten.sqrt.default": _unary(OpKind.SQRT), "aten.rsqrt.default": lower_rsqrt,
    "aten.reciprocal.default": _unary(OpKind.RECIPROCAL), "aten.exp.default": _unary(OpKind.EXP),
    "aten.log.default": _unary(OpKind.LOG), "aten.tanh.default": _unary(OpKind.TANH),
    "aten.sigmoid.default": _unary(OpKind.SIGMOID), "aten.erf.default": _unary(OpKind.ERF),
    "aten.relu.default": _unary(OpKind.RELU), "aten.silu.default": _unary(OpKind.SILU),
    "aten.cos.default": _unary(OpKind.COS), "aten.sin.default": _unary(OpKind.SIN),
    "aten.isnan.default": _unary(OpKind.IS_NAN), "aten.isinf.default": _unary(OpKind.IS_INF),
    "aten.logical_not.default": _unary(OpKind.NOT), "aten.bitwise_not.default": _unary(OpKind.NOT),
    "aten.gelu.default": lower_gelu,
    "aten.to.dtype": lower_cast, "aten.to.dtype_layout": lower_cast, "aten._to_copy.default": lower_cast,
    "aten.type_as.default": lower_cast,
    # contractions, attention, embedding
    "aten.linear.default": lower_linear, "aten.matmul.default": lower_matmul,
    "aten.mm.default": lower_matmul, "aten.bmm.default": lower_matmul, "aten.addmm.default": lower_addmm,
    "aten.scaled_dot_product_attention.default": lower_sdpa, "aten.embedding.default": lower_embedding,
    # normalization
    "aten.layer_norm.default": lower_layer_norm, "aten.rms_norm.default": lower_rms_norm,
    "aten.softmax.int": lower_softmax, "aten._softmax.default": lower_softmax,
    "aten._safe_softmax.default": lower_softmax,
    # reductions and scans
    "aten.mean.dim": _reduce(OpKind.REDUCE_MEAN), "aten.mean.default": _reduce(OpKind.REDUCE_MEAN),
    "aten.sum.dim_IntList": _reduce(OpKind.REDUCE_SUM), "aten.sum.default": _reduce(OpKind.REDUCE_SUM),
    "aten.amax.default": _reduce(OpKind.REDUCE_MAX), "aten.argmax.default": lower_argmax,
    "aten.topk.default": lower_topk, "aten.cumsum.default": lower_cumsum, "aten.diff.default": lower_diff,
    # layout and indexing
    "aten.view.default": lower_reshape, "aten.reshape.default": lower_reshape,
    "aten._unsafe_view.default": lower_reshape, "aten.flatten.using_ints": lower_reshape,
    "aten.unflatten.int": lower_reshape,
    "aten.expand.default": lower_expand, "aten.expand_as.default": lower_expand,
    "aten.transpose.int": lower_transpose, "aten.permute.default": lower_transpose,
    "aten.t.default": lower_transpose,
    "aten.unsqueeze.default": lower_unsqueeze, "aten.squeeze.dim": lower_squeeze,
    "aten.squeeze.dims": lower_squeeze, "aten.squeeze.default": lower_squeeze,
    "aten.cat.default": lower_cat, "aten.concat.default": lower_cat,
    "aten.split.Tensor": lower_split, "aten.split_with_sizes.default": lower_split,
    "aten.chunk.default": lower_split, "aten.unbind.int": lower_unbind,
    "aten.slice.Tensor": lower_slice, "aten.narrow.default": lower_narrow, "aten.select.int": lower_select,
    "aten.index.Tensor": lower_index, "aten.index_select.default": lower_index_select,
    "aten.gather.default": lower_gather,
    "aten.repeat_interleave.self_int": lower_repeat_interleave, "aten.repeat.default": lower_repeat,
    "aten.tril.default": lower_trilu(False), "aten.triu.default": lower_trilu(True),
    # creation
    "aten.arange.default": lower_arange, "aten.arange.start": lower_arange,
    "aten.arange.start_step": lower_arange,
    "aten.zeros.default": _filled_with(0), "aten.ones.default": _filled_with(1),
    "aten.new_zeros.default": _filled_with(0), "aten.new_ones.default": _filled_with(1),
    "aten.zeros_like.default": _filled_with(0), "aten.ones_like.default": _filled_with(1),
    "aten.empty.memory_format": _filled_with(0), "aten.new_empty.default": _filled_with(0),
    "aten.empty_like.default": _filled_with(0),
    "aten.full.default": _filled_with(None, from_arg="fill_value"),
    "aten.new_full.default": _filled_with(None, from_arg="fill_value"),
    "aten.full_like.default": _filled_with(None, from_arg="fill_value"),
    "aten.scalar_tensor.default": lower_scalar_tensor,
}


def constant_of_shape_attrs(value: float | int | bool, dtype: DType) -> ConstantOfShapeAttrs:
    return ConstantOfShapeAttrs(value=float(value) if dtype.is_float else int(value), dtype=dtype)
