"""onnxruntime attention, rotary and GELU ops (``com.microsoft``): reference kernels.

GroupQueryAttention and MultiHeadAttention are brought to the operands of ONNX Attention
(``nn.attention_operands``: heads first, KV heads repeated, an additive bias) and finished by
``nn.attention_result``, so the reference and the mesh kernels share every step but the
matmuls and the softmax.

GroupQueryAttention (onnxruntime's CPU kernel): the keys are ``past_key`` followed by the new
keys; batch b holds ``seqlens_k[b] + 1`` tokens in all, so its past is
``seqlens_k[b] + 1 - seq`` tokens, its query i sits at position ``past_b + i`` and attends the
keys at positions ``<= past_b + i`` (and ``> position - local_window_size`` with a local
window: the last ``local_window_size`` positions). With ``do_rotary`` the new Q and K are
rotated at those positions (or at ``position_ids``) first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from placer.backends.kernels.elementwise import _erf
from placer.backends.kernels.nn import attention_operands, attention_result, rotary, softmax_array
from placer.ir import attrs as A
from placer.ir.graph import Node
from placer.ir.ops import OpKind


def _proxy(node: Node, attrs: A.Attrs, op: OpKind = OpKind.ATTENTION) -> Node:
    return replace(node, op=op, attrs=attrs)


def _heads_first(x: np.ndarray, heads: int) -> np.ndarray:
    b, s, h = x.shape
    return x.reshape(b, s, heads, h // heads).transpose(0, 2, 1, 3)


def _opt(args: tuple, i: int) -> np.ndarray | None:
    return args[i] if i < len(args) else None


def _req(node: Node, args: tuple, i: int) -> np.ndarray:
    """Input ``i``, which the op requires (the verifier has checked the graph's arity)."""
    x = _opt(args, i)
    if x is None:
        raise ValueError(f"node {node.name!r} ({node.op.value}): required input {i} is absent")
    return x


def gqa_operands(node: Node, *args: np.ndarray | None):  # noqa: ANN201
    """(attention node, q, k, v, bias, present K, present V, sinks) of a GroupQueryAttention."""
    at = node.attrs_as(A.GroupQueryAttentionAttrs)
    q, k, v = _req(node, args, 0), _opt(args, 1), _opt(args, 2)
    past_k, past_v = _opt(args, 3), _opt(args, 4)
    seqlens, cos, sin, pos_ids = _opt(args, 5), _opt(args, 7), _opt(args, 8), _opt(args, 9)
    bias_in, sink = _opt(args, 10), _opt(args, 11)
    heads, kvh = at.num_heads, at.kv_num_heads
    batch, seq = q.shape[0], q.shape[1]
    if k is None:  # packed QKV
        head = q.shape[2] // (heads + 2 * kvh)
        q, k, v = np.split(q, [heads * head, (heads + kvh) * head], axis=2)
    else:
        v = _req(node, args, 2)
    head = q.shape[2] // heads
    past = past_k.shape[2] if past_k is not None else 0
    total = (np.asarray(seqlens).reshape(-1).astype(np.int64) + 1 if seqlens is not None
             else np.full(batch, past + seq, np.int64))
    past_b = total - seq                                   # [batch]
    positions = past_b[:, None] + np.arange(seq)[None, :]  # [batch, seq]
    qh, kh, vh = _heads_first(q, heads), _heads_first(k, kvh), _heads_first(v, kvh)
    if at.do_rotary:
        if cos is None or sin is None:
            raise ValueError(f"node {node.name!r}: do_rotary needs the cos and sin cache inputs")
        rot_pos = np.asarray(pos_ids).astype(np.int64) if pos_ids is not None else positions
        rot = A.RotaryAttrs(at.rotary_interleaved, 0, cos.shape[1] * 2)
        rnode = _proxy(node, rot, OpKind.ROTARY_EMBEDDING)
        qh = rotary(rnode, qh, cos, sin, rot_pos).astype(q.dtype)
        kh = rotary(rnode, kh, cos, sin, rot_pos).astype(k.dtype)
    keys = past + seq
    key_pos = np.concatenate([np.broadcast_to(np.arange(past), (batch, past)),
                              positions], axis=1)                           # [batch, keys]
    valid = np.concatenate([np.arange(past)[None, :] < past_b[:, None],
                            np.ones((batch, seq), bool)], axis=1)
    allowed = valid[:, None, :] & (key_pos[:, None, :] <= positions[:, :, None])
    if at.local_window_size > 0:
        allowed &= key_pos[:, None, :] > positions[:, :, None] - at.local_window_size
    neg, zero = q.dtype.type(-np.inf), q.dtype.type(0)
    mask = np.where(allowed, zero, neg)[:, None, :, :]                       # [batch, 1, seq, keys]
    if bias_in is not None:
        mask = mask + bias_in
    scale = at.scale if at.scale else 1 / np.sqrt(head)
    anode = _proxy(node, A.AttentionAttrs(False, kvh, heads, 0, scale, at.softcap))
    qs, ks, vv, bias, present_k, present_v = attention_operands(anode, qh, kh, vh, mask, past_k, past_v)
    assert bias.shape[-1] == keys
    sinks = sink if sink is not None else (np.zeros(heads, q.dtype) if at.smooth_softmax else None)
    return anode, qs, ks, vv, bias, present_k, present_v, sinks


def group_query_attention(node: Node, *args: np.ndarray | None):  # noqa: ANN201
    anode, qs, ks, v, bias, pk, pv, sinks = gqa_operands(node, *args)
    qk = np.matmul(qs, np.swapaxes(ks, 2, 3))
    dtype = _req(node, args, 0).dtype
    y, _ = attention_result(anode, qk, bias, softmax_array, np.matmul, v, True, dtype, sinks)
    return y, pk, pv


def mha_operands(node: Node, *args: np.ndarray | None):  # noqa: ANN201
    """(attention node, q, k, v, bias, present K, present V) of a MultiHeadAttention (3-D Q/K/V)."""
    at = node.attrs_as(A.MultiHeadAttentionAttrs)
    q, k, v = _req(node, args, 0), _req(node, args, 1), _req(node, args, 2)
    qkv_bias, pad, attn_bias = _opt(args, 3), _opt(args, 4), _opt(args, 5)
    past_k, past_v = _opt(args, 6), _opt(args, 7)
    if qkv_bias is not None:
        dq, dk = q.shape[2], k.shape[2]
        q, k, v = q + qkv_bias[:dq], k + qkv_bias[dq:dq + dk], v + qkv_bias[dq + dk:]
    heads = at.num_heads
    qh, kh, vh = _heads_first(q, heads), _heads_first(k, heads), _heads_first(v, heads)
    past = past_k.shape[2] if past_k is not None else 0
    keys, seq = past + k.shape[1], q.shape[1]
    mask = np.zeros((1, 1, seq, keys), q.dtype)
    if at.unidirectional:
        i, j = np.arange(seq)[:, None], np.arange(keys)[None, :]
        mask = mask + np.where(j <= i + keys - seq, 0, -np.inf).astype(q.dtype)
    if pad is not None:
        p = np.asarray(pad)
        if p.ndim != 2:
            raise ValueError("MultiHeadAttention key_padding_mask must be [batch, keys]")
        mask = mask + np.where(p != 0, 0, at.mask_filter_value).astype(q.dtype)[:, None, None, :]
    if attn_bias is not None:
        mask = mask + attn_bias
    scale = at.scale if at.scale else 1 / np.sqrt(qh.shape[3])
    anode = _proxy(node, A.AttentionAttrs(False, heads, heads, 0, scale))
    qs, ks, vv, bias, present_k, present_v = attention_operands(anode, qh, kh, vh, mask, past_k, past_v)
    return anode, qs, ks, vv, bias, present_k, present_v


def multi_head_attention(node: Node, *args: np.ndarray | None):  # noqa: ANN201
    anode, qs, ks, v, bias, pk, pv = mha_operands(node, *args)
    qk = np.matmul(qs, np.swapaxes(ks, 2, 3))
    y, _ = attention_result(anode, qk, bias, softmax_array, np.matmul, v, True, _req(node, args, 0).dtype)
    return y, pk, pv


def ms_rotary(node: Node, x: np.ndarray, position_ids: np.ndarray, cos: np.ndarray,
              sin: np.ndarray) -> np.ndarray:
    """com.microsoft RotaryEmbedding: position_ids [batch, seq], or [1] holding the first position."""
    at = node.attrs_as(A.MsRotaryAttrs)
    seq = x.shape[2] if x.ndim == 4 else x.shape[1]
    pos = np.asarray(position_ids).astype(np.int64)
    if pos.ndim == 1 or pos.size == 1:
        pos = pos.reshape(-1)[:1][None, :] + np.arange(seq)[None, :]
        pos = np.broadcast_to(pos, (x.shape[0], seq))
    heads = at.num_heads
    if x.ndim == 3 and not heads:
        heads = x.shape[2] // (at.rotary_embedding_dim or cos.shape[1] * 2)
    rot = A.RotaryAttrs(at.interleaved, heads, at.rotary_embedding_dim or cos.shape[1] * 2)
    out = rotary(_proxy(node, rot, OpKind.ROTARY_EMBEDDING), x, cos, sin, pos)
    return out if at.scale == 1.0 else (out * at.scale).astype(x.dtype)


def fast_gelu(node: Node, x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    y = x + bias if bias is not None else x
    c = np.sqrt(2 / np.pi)
    return (0.5 * y * (1 + np.tanh(c * (y + 0.044715 * y ** 3)))).astype(x.dtype)


def quick_gelu(node: Node, x: np.ndarray) -> np.ndarray:
    """x * sigmoid(alpha x)."""
    return (x / (1 + np.exp(-node.attrs_as(A.QuickGeluAttrs).alpha * x))).astype(x.dtype)


def bias_gelu(node: Node, x: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """GELU (erf form) of x + bias."""
    y = (x + bias).astype(np.float64)
    return (0.5 * y * (1 + _erf(y / np.sqrt(2)))).astype(x.dtype)


KERNELS: dict[OpKind, Callable[..., Any]] = {
    OpKind.GROUP_QUERY_ATTENTION: group_query_attention,
    OpKind.MULTI_HEAD_ATTENTION: multi_head_attention,
    OpKind.MS_ROTARY_EMBEDDING: ms_rotary,
    OpKind.FAST_GELU: fast_gelu,
    OpKind.QUICK_GELU: quick_gelu,
    OpKind.BIAS_GELU: bias_gelu,
}
