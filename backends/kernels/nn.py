"""Softmax, LayerNormalization, RMSNormalization, RotaryEmbedding and Attention (ONNX opset 23)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from placer.ir.attrs import AttentionAttrs, AxisAttrs, NormAttrs, RotaryAttrs
from placer.ir.graph import Node
from placer.ir.ops import OpKind


def softmax_array(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isneginf(m), 0, m)
    e = np.exp(x - m)
    s = np.sum(e, axis=axis, keepdims=True)
    return (e / np.where(s == 0, 1, s)).astype(x.dtype, copy=False)


def softmax(node: Node, x: np.ndarray) -> np.ndarray:
    return softmax_array(x, node.attrs_as(AxisAttrs).axis)


def _norm_axes(node: Node, x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(node.attrs_as(NormAttrs).axis % x.ndim, x.ndim))


def layer_norm(node: Node, x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None = None):  # noqa: ANN201
    axes = _norm_axes(node, x)
    xf = x.astype(np.float32) if node.attrs_as(NormAttrs).stash_type == 1 else x
    mean = xf.mean(axis=axes, keepdims=True)
    var = ((xf - mean) ** 2).mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(var + node.attrs_as(NormAttrs).epsilon)
    y = ((xf - mean) * inv).astype(x.dtype) * scale
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype), mean, inv


def rms_norm(node: Node, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    axes = _norm_axes(node, x)
    xf = x.astype(np.float32) if node.attrs_as(NormAttrs).stash_type == 1 else x
    inv = 1 / np.sqrt((xf * xf).mean(axis=axes, keepdims=True) + node.attrs_as(NormAttrs).epsilon)
    return ((xf * inv).astype(x.dtype) * scale).astype(x.dtype)


def rotary(node: Node, x: np.ndarray, cos: np.ndarray, sin: np.ndarray,
           position_ids: np.ndarray | None = None) -> np.ndarray:
    at = node.attrs_as(RotaryAttrs)
    shape = x.shape
    # Work in [batch, seq, heads, head_dim].
    if x.ndim == 4:
        x = np.transpose(x, (0, 2, 1, 3))
    else:
        x = x.reshape(shape[0], shape[1], at.num_heads, shape[2] // at.num_heads)
    rot = at.rotary_embedding_dim or x.shape[3]
    if position_ids is not None:
        cos, sin = cos[position_ids], sin[position_ids]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    xr, keep = x[..., :rot], x[..., rot:]
    if at.interleaved:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    else:
        x1, x2 = xr[..., : rot // 2], xr[..., rot // 2:]
    real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
    if at.interleaved:
        xr = np.stack([real, imag], axis=-1).reshape(xr.shape)
    else:
        xr = np.concatenate([real, imag], axis=-1)
    out = np.concatenate([xr, keep], axis=-1).astype(x.dtype)
    return out.reshape(shape) if len(shape) == 3 else np.transpose(out, (0, 2, 1, 3))


def _to_heads(x: np.ndarray, heads: int) -> np.ndarray:
    b, s, h = x.shape
    return x.reshape(b, s, heads, h // heads).transpose(0, 2, 1, 3)


def attention_operands(node: Node, q: np.ndarray, k: np.ndarray, v: np.ndarray,  # noqa: ANN201
                       mask: np.ndarray | None = None, past_k: np.ndarray | None = None,
                       past_v: np.ndarray | None = None, nonpad: np.ndarray | None = None):
    """Heads-first q, k, v (KV heads repeated for GQA, scaled by sqrt(scale) each), the additive
    bias, and the present K/V. Shared by the reference kernel and the mesh attention."""
    at = node.attrs_as(AttentionAttrs)
    if q.ndim == 3:
        q, k, v = _to_heads(q, at.q_num_heads), _to_heads(k, at.kv_num_heads), _to_heads(v, at.kv_num_heads)
    if past_k is not None:
        k = np.concatenate([past_k, k], axis=2)
        v = np.concatenate([past_v, v], axis=2)
    present_k, present_v = k, v
    sq, skv = q.shape[2], k.shape[2]
    scale = at.scale if at.scale is not None else 1 / np.sqrt(q.shape[3])
    s = q.dtype.type(np.sqrt(scale))
    neg, zero = q.dtype.type(-np.inf), q.dtype.type(0)
    bias = np.zeros((sq, skv), dtype=q.dtype)
    if mask is not None:
        if mask.shape[-1] < skv:
            pad = [(0, 0)] * (mask.ndim - 1) + [(0, skv - mask.shape[-1])]
            mask = np.pad(mask, pad, constant_values=False if mask.dtype == np.bool_ else -np.inf)
        if mask.dtype == np.bool_:
            mask = np.where(mask, zero, neg)
        bias = bias + mask
    offset: int | np.ndarray = past_k.shape[2] if past_k is not None else 0
    i, j = np.arange(sq)[:, None], np.arange(skv)[None, :]
    if past_k is None and nonpad is not None:
        # External (static) cache: each batch's causal frontier is its own valid length.
        offset = (np.asarray(nonpad).reshape(-1) - sq).reshape(-1, 1, 1, 1)
    if at.is_causal:
        bias = bias + np.where(j <= i + offset, zero, neg)
    if at.window:      # keys j with p - j < window, p = i + offset the query's position
        bias = bias + np.where(i + offset - j < at.window, zero, neg)
    if at.right_window >= 0:
        bias = bias + np.where(j - (i + offset) <= at.right_window, zero, neg)
    if nonpad is not None:
        pad_bias = np.where(np.arange(skv) < nonpad[:, None], 0, -np.inf).astype(q.dtype)
        bias = bias + pad_bias.reshape(-1, 1, 1, skv)
    if q.shape[1] != k.shape[1]:
        rep = q.shape[1] // k.shape[1]
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    return q * s, k * s, v, bias, present_k, present_v


def attention_result(node: Node, qk: np.ndarray, bias: np.ndarray, probs_fn, matmul_fn,  # noqa: ANN001, ANN201
                     v: np.ndarray, rank3: bool, dtype: np.dtype, sinks: np.ndarray | None = None):
    """From raw scores ``qk`` to (Y, qk output): softcap, bias, softmax, masked rows, P @ V.

    ``sinks`` [heads]: per-head logits that join each softmax row as one more column whose
    value is zero (the column takes probability mass and is then dropped)."""
    at = node.attrs_as(AttentionAttrs)
    if at.softcap > 0:
        qk = np.tanh(qk / at.softcap) * at.softcap
    scores = qk + bias
    mode_out = scores.copy() if at.qk_matmul_output_mode == 2 else qk
    if sinks is not None:
        column = np.broadcast_to(np.asarray(sinks, scores.dtype).reshape(1, -1, 1, 1),
                                 scores.shape[:-1] + (1,))
        probs = probs_fn(np.concatenate([scores, column], axis=-1))[..., :-1]
    else:
        probs = probs_fn(scores)
    probs = np.where(np.isneginf(np.max(bias, axis=-1, keepdims=True)), 0, probs).astype(dtype)
    if at.qk_matmul_output_mode == 3:
        mode_out = probs
    y = matmul_fn(probs, v)
    if rank3:
        y = y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)
    return y, mode_out.astype(dtype)


def attention(node: Node, q: np.ndarray, k: np.ndarray, v_in: np.ndarray,  # noqa: ANN201
              *rest: np.ndarray | None):
    """ONNX Attention; an optional input 7 holds per-head sink logits."""
    qs, ks, v, bias, present_k, present_v = attention_operands(node, q, k, v_in, *rest[:4])
    qk = np.matmul(qs, np.swapaxes(ks, 2, 3))
    sinks = rest[4] if len(rest) > 4 else None  # input 7
    y, mode_out = attention_result(node, qk, bias, softmax_array, np.matmul, v, q.ndim == 3, q.dtype, sinks)
    return y, present_k, present_v, mode_out


KERNELS: dict[OpKind, Callable[..., Any]] = {
    OpKind.SOFTMAX: softmax, OpKind.LAYER_NORM: layer_norm, OpKind.RMS_NORM: rms_norm,
    OpKind.ROTARY_EMBEDDING: rotary, OpKind.ATTENTION: attention,
}
