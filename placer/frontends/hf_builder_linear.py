"""Gated DeltaNet layers (Qwen3-Next, Qwen3.5-MoE ``linear_attn``) in the IR.

A linear-attention layer keeps no per-token KV: each sequence holds a fixed-size state, the
recurrent state ``[value_heads, key_head_dim, value_head_dim]`` and the causal convolution's
window ``[conv_dim, conv_kernel]`` (transformers' ``LinearAttentionLayer`` holds exactly
these). It is declared as a ``KVCache`` with ``elements_per_token = 0`` and ``state_elements``
that many, so it reaches the solver's memory as a per-sequence constant.

Per token the layer is emitted as: input projections; the K-tap depthwise convolution as K
multiply-adds per channel (each tap reads the token's own q/k/v: same FLOPs and parameters,
the shift over past tokens lives in the state); SiLU; the delta-rule update as the outer
product k v^T per value head (state-sized), scaled by the decay exp(g) and beta, and the
readout q . S; a gated RMSNorm (weight [value_head_dim], gate SiLU(z)); the output projection.
"""

from __future__ import annotations

import numpy as np

from placer.frontends.hf_builder import BATCH, SEQ, _Emitter
from placer.frontends.hf_families import AttentionSpec, ModelSpec
from placer.ir import DType, KVCache, OpKind, TensorType
from placer.ir.attrs import NormAttrs, SplitAttrs, SqueezeAttrs


def linear_attention(e: _Emitter, x: str, a: AttentionSpec, scope: str, spec: ModelSpec) -> str:
    assert a.linear is not None
    la = a.linear
    hidden = spec.hidden_size
    kd, vd = la.key_heads * la.key_head_dim, la.value_heads * la.value_head_dim
    nv, dk, dv = la.value_heads, la.key_head_dim, la.value_head_dim
    if la.split_projections:  # Qwen3.5: in_proj_qkv, in_proj_z, in_proj_b, in_proj_a
        qkv = e.linear(x, hidden, 2 * kd + vd, f"{scope}.in_proj_qkv", False)
        z = e.linear(x, hidden, vd, f"{scope}.in_proj_z", False)
        b = e.linear(x, hidden, nv, f"{scope}.in_proj_b", False)
        g = e.linear(x, hidden, nv, f"{scope}.in_proj_a", False)
    else:  # Qwen3-Next: in_proj_qkvz [q | k | v | z] and in_proj_ba [b | a]
        qkvz = e.linear(x, hidden, 2 * kd + 2 * vd, f"{scope}.in_proj_qkvz", False)
        qkv, z = e.multi(
            OpKind.SPLIT,
            [qkvz, e.const(f"{scope}.qkvz_split", np.array([2 * kd + vd, vd]), DType.INT64)],
            [TensorType(e.act, e.act3(2 * kd + vd)), TensorType(e.act, e.act3(vd))],
            scope,
            SplitAttrs(axis=2),
        )
        ba = e.linear(x, hidden, 2 * nv, f"{scope}.in_proj_ba", False)
        b, g = e.multi(
            OpKind.SPLIT, [ba], [TensorType(e.act, e.act3(nv))] * 2, scope, SplitAttrs(axis=2, num_outputs=2)
        )
    qkv = _causal_conv(e, qkv, la.conv_dim, la.conv_kernel, f"{scope}.conv1d", scope)
    q, k, v = e.multi(
        OpKind.SPLIT,
        [qkv, e.const(f"{scope}.qkv_split", np.array([kd, kd, vd]), DType.INT64)],
        [TensorType(e.act, e.act3(kd))] * 2 + [TensorType(e.act, e.act3(vd))],
        scope,
        SplitAttrs(axis=2),
    )
    rep = nv // la.key_heads  # key heads are shared by groups of value heads
    repeat = (
        e.const(f"{scope}.repeat", np.array([1, 1, 1, rep, 1], dtype=np.int64), DType.INT64)
        if rep > 1
        else ""
    )
    q = _heads(e, q, la.key_heads, dk, rep, repeat, scope)
    k = _heads(e, k, la.key_heads, dk, rep, repeat, scope)
    v5 = e.reshape(v, (BATCH, SEQ, nv, 1, dv), [0, 0, nv, 1, dv], scope)
    # Decay g = -exp(A_log) * softplus(a + dt_bias) and write strength beta = sigmoid(b), per head.
    t = e.op(OpKind.ADD, [g, e.param(f"{scope}.dt_bias", (nv,))], e.act3(nv), scope)
    one = e.const(f"{scope}.one", np.array(1.0, dtype=np.float32), e.act)
    t = e.op(
        OpKind.LOG,
        [e.op(OpKind.ADD, [e.op(OpKind.EXP, [t], e.act3(nv), scope), one], e.act3(nv), scope)],
        e.act3(nv),
        scope,
    )
    decay_rate = e.op(OpKind.EXP, [e.param(f"{scope}.A_log", (nv,))], (nv,), scope)
    decay = e.op(
        OpKind.EXP,
        [e.op(OpKind.NEG, [e.op(OpKind.MUL, [t, decay_rate], e.act3(nv), scope)], e.act3(nv), scope)],
        e.act3(nv),
        scope,
    )
    beta = e.op(OpKind.SIGMOID, [b], e.act3(nv), scope)
    scale = e.op(OpKind.MUL, [decay, beta], e.act3(nv), scope)
    scale = e.reshape(scale, (BATCH, SEQ, nv, 1, 1), [0, 0, nv, 1, 1], scope)
    kt = e.reshape(k, (BATCH, SEQ, nv, dk, 1), [0, 0, nv, dk, 1], scope)
    outer = e.op(OpKind.MATMUL, [kt, v5], (BATCH, SEQ, nv, dk, dv), scope)  # k v^T: the state update
    state = e.op(OpKind.MUL, [outer, scale], (BATCH, SEQ, nv, dk, dv), scope)
    e.b.kv_cache(
        KVCache(f"{scope}.state", state, 0, e.act, state_elements=nv * dk * dv + la.conv_dim * la.conv_kernel)
    )
    q5 = e.reshape(q, (BATCH, SEQ, nv, 1, dk), [0, 0, nv, 1, dk], scope)
    o = e.op(OpKind.MATMUL, [q5, state], (BATCH, SEQ, nv, 1, dv), scope)  # readout q . S
    o = e.reshape(o, (BATCH, SEQ, nv, dv), [0, 0, nv, dv], scope)
    o = e.op(
        OpKind.RMS_NORM,
        [o, e.param(f"{scope}.norm.weight", (dv,))],
        (BATCH, SEQ, nv, dv),
        f"{scope}.norm",
        NormAttrs(epsilon=spec.norm_eps),
    )
    z4 = e.reshape(z, (BATCH, SEQ, nv, dv), [0, 0, nv, dv], scope)
    o = e.op(
        OpKind.MUL, [o, e.op(OpKind.SILU, [z4], (BATCH, SEQ, nv, dv), scope)], (BATCH, SEQ, nv, dv), scope
    )
    o = e.reshape(o, e.act3(vd), [0, 0, vd], scope)
    return e.linear(o, vd, hidden, f"{scope}.out_proj", False)


def _causal_conv(e: _Emitter, x: str, channels: int, kernel: int, module: str, scope: str) -> str:
    """Depthwise causal convolution (weight ``[channels, 1, kernel]``, no bias) then SiLU: one
    multiply-add per tap and channel."""
    w = e.param(f"{module}.weight", (channels, 1, kernel))
    taps = e.multi(
        OpKind.SPLIT,
        [w],
        [TensorType(e.act, (channels, 1, 1))] * kernel,
        module,
        SplitAttrs(axis=2, num_outputs=kernel),
    )
    acc = ""
    for i, tap in enumerate(taps):
        t = e.reshape(tap, (channels,), [channels], f"{module}.tap{i}")
        y = e.op(OpKind.MUL, [x, t], e.act3(channels), module)
        acc = e.op(OpKind.ADD, [acc, y], e.act3(channels), module) if acc else y
    return e.op(OpKind.SILU, [acc], e.act3(channels), scope)


def _heads(e: _Emitter, x: str, heads: int, dim: int, rep: int, repeat: str, scope: str) -> str:
    """``[batch, seq, heads * dim]`` -> ``[batch, seq, heads * rep, dim]``: each key head serves
    ``rep`` value heads."""
    x4 = e.reshape(x, (BATCH, SEQ, heads, dim), [0, 0, heads, dim], scope)
    if rep == 1:
        return x4
    x5 = e.op(OpKind.UNSQUEEZE, [x4], (BATCH, SEQ, heads, 1, dim), scope, SqueezeAttrs(axes=(3,)))
    x5 = e.op(OpKind.EXPAND, [x5, repeat], (BATCH, SEQ, heads, rep, dim), scope)
    return e.reshape(x5, (BATCH, SEQ, heads * rep, dim), [0, 0, heads * rep, dim], scope)
