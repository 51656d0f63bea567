"""DeepSeek-V4 decoder layers in the IR (transformers' ``DeepseekV4ForCausalLM``).

Residual: ``hc_mult`` = N streams of the hidden state, carried flattened as
``[batch, seq, N * hidden]`` between layers (so N times a plain model's bytes cross a wafer
boundary). Around the attention and the MoE block, a hyper-connection (``attn_hc``/``ffn_hc``)
normalizes the streams, projects them (``fn``, ``base``, ``scale``) to pre/post weights and an
N x N mixing matrix, collapses the streams with ``pre`` into the block input, and returns
``post * block output + comb^T @ streams`` (the Sinkhorn normalization of ``comb``, a few
elementwise passes over N x N values per token, is emitted as one softmax).

Attention (every layer): shared-KV MQA over a sliding window: q = q_b(q_a_norm(q_a(x))), per
head unweighted RMSNorm, partial interleaved rotary; one KV head ``kv_norm(kv_proj(x))`` read
as both key and value and cached over the window; per-head sinks; the rotary is undone on the
output; grouped low-rank output projection (``o_a_proj`` per group of heads, ``o_b_proj``).
CSA/HCA layers add a compressor: ``kv_proj``/``gate_proj`` per token, gated by
``gate + position_bias[position mod m]``, pooled (CSA: two overlapping series summed), normed
and rotated; one compressed entry per m tokens is cached (``tokens_per_entry = m``), and the
open window (buffered kv and gate; CSA also the overlap slice) is per-sequence state, as in
transformers' ``DeepseekV4HCACache``/``DeepseekV4CSACache``. CSA layers also run the lightning
indexer (its own compressor at ``index_head_dim``, cached the same way, query from q_a's
output, weights_proj): its scores are the additive bias of the compressed keys. The compressed
keys join the window's keys in one attention.
"""

from __future__ import annotations

import numpy as np

from placer.frontends.hf_builder import (
    BATCH,
    SEQ,
    _Emitter,
    _moe,
    _rotary,
    _rotary_tables,
    index_scores,
)
from placer.frontends.hf_families import AttentionSpec, ModelSpec, MoeSpec
from placer.ir import DType, KVCache, OpKind, TensorType
from placer.ir.attrs import (
    AttentionAttrs,
    AxisAttrs,
    ReduceAttrs,
    SplitAttrs,
    SqueezeAttrs,
    TransposeAttrs,
)
from placer.ir.symbolic import Dim


def build_v4_layers(e: _Emitter, h: str, spec: ModelSpec) -> str:
    """The decoder layers and the final stream collapse (``hc_head``): ``[batch, seq, hidden]``."""
    n, hidden = spec.hc_mult, spec.hidden_size
    # Rotary tables of the rope types the layers use (sliding layers "main", compressed ones
    # "compress"); an unused table would be a dead end.
    used = {"compress" if layer.attention.compressed and layer.attention.compressed.compress else "main"
            for layer in spec.layers}
    thetas = {"main": spec.rope_theta, "compress": spec.compress_rope_theta}
    ropes = {k: _rotary_tables(e, spec, e.positions, f"model.rotary_emb.{k}", thetas[k])
             for k in sorted(used)}
    h1 = e.op(OpKind.UNSQUEEZE, [h], (BATCH, SEQ, 1, hidden), "model", SqueezeAttrs(axes=(2,)))
    copies = e.const("model.hc_copies", np.array([1, 1, n, 1], dtype=np.int64), DType.INT64)
    h4 = e.op(OpKind.EXPAND, [h1, copies], (BATCH, SEQ, n, hidden), "model")
    streams = e.reshape(h4, e.act3(n * hidden), [0, 0, n * hidden], "model")
    for i, layer in enumerate(spec.layers):
        scope = f"model.layers.{i}"

        def attention(x: str, a: AttentionSpec = layer.attention, scope: str = scope) -> str:
            x = e.norm(x, hidden, f"{scope}.input_layernorm", spec)
            return _attention(e, x, a, f"{scope}.self_attn", spec, ropes)

        # The ignore below: LayerSpec.mlp is MlpSpec | MoeSpec; every DeepSeek-V4 layer is MoE.
        def mlp(x: str, m: MoeSpec = layer.mlp, scope: str = scope) -> str:  # type: ignore[assignment]
            x = e.norm(x, hidden, f"{scope}.post_attention_layernorm", spec)
            return _moe(e, x, m, f"{scope}.mlp", hidden)

        streams = _hyper_connection(e, streams, f"{scope}.attn_hc", spec, attention)
        streams = _hyper_connection(e, streams, f"{scope}.ffn_hc", spec, mlp)
    return _hyper_head(e, streams, spec)


def _rms(e: _Emitter, x: str, shape: tuple[Dim, ...], scope: str, eps: float) -> str:
    """RMSNorm without a weight over the last axis (DeepSeek-V4's unweighted norms)."""
    sq = e.op(OpKind.MUL, [x, x], shape, scope)
    mean = e.op(OpKind.REDUCE_MEAN, [sq], (*shape[:-1], 1), scope, ReduceAttrs(axes=(len(shape) - 1,)))
    eps_c = e.const(f"{scope}.eps_{len(shape)}", np.array(eps, dtype=np.float32), e.act)
    root = e.op(
        OpKind.SQRT, [e.op(OpKind.ADD, [mean, eps_c], (*shape[:-1], 1), scope)], (*shape[:-1], 1), scope
    )
    return e.op(OpKind.DIV, [x, root], shape, scope)


def _hyper_connection(e: _Emitter, streams: str, module: str, spec: ModelSpec, block) -> str:  # noqa: ANN001
    n, hidden = spec.hc_mult, spec.hidden_size
    width = (2 + n) * n
    normed = _rms(e, streams, e.act3(n * hidden), module, spec.norm_eps)
    mix = e.op(
        OpKind.MATMUL,
        [normed, e.param(f"{module}.fn", (n * hidden, width), (n * hidden, width))],
        e.act3(width),
        module,
    )
    which = np.array([0] * n + [1] * n + [2] * n * n, dtype=np.int64)  # pre, post, comb scale
    table = e.param(f"{module}.scale", (3,))
    scale = e.op(
        OpKind.GATHER,
        [table, e.const(f"{module}.which", which, DType.INT64)],
        (width,),
        module,
        AxisAttrs(0),
        dtype=e.b._weights[table].type.dtype,
    )
    mix = e.op(OpKind.MUL, [mix, scale], e.act3(width), module)
    mix = e.op(OpKind.ADD, [mix, e.param(f"{module}.base", (width,))], e.act3(width), module)
    sizes = e.const(f"{module}.split", np.array([n, n, n * n], dtype=np.int64), DType.INT64)
    pre, post, comb = e.multi(
        OpKind.SPLIT,
        [mix, sizes],
        [TensorType(e.act, e.act3(n))] * 2 + [TensorType(e.act, e.act3(n * n))],
        module,
        SplitAttrs(axis=2),
    )
    pre = e.op(OpKind.SIGMOID, [pre], e.act3(n), module)
    post = e.op(OpKind.SIGMOID, [post], e.act3(n), module)
    comb = e.reshape(comb, (BATCH, SEQ, n, n), [0, 0, n, n], module)
    comb = e.op(OpKind.SOFTMAX, [comb], (BATCH, SEQ, n, n), module, AxisAttrs(-1))
    s4 = e.reshape(streams, (BATCH, SEQ, n, hidden), [0, 0, n, hidden], module)
    collapsed = _collapse(e, s4, pre, spec, module)
    out = block(collapsed)
    comb_t = e.op(OpKind.TRANSPOSE, [comb], (BATCH, SEQ, n, n), module, TransposeAttrs(perm=(0, 1, 3, 2)))
    mixed = e.op(OpKind.MATMUL, [comb_t, s4], (BATCH, SEQ, n, hidden), module)
    post4 = e.op(OpKind.UNSQUEEZE, [post], (BATCH, SEQ, n, 1), module, SqueezeAttrs(axes=(3,)))
    out4 = e.op(OpKind.UNSQUEEZE, [out], (BATCH, SEQ, 1, hidden), module, SqueezeAttrs(axes=(2,)))
    new = e.op(
        OpKind.ADD,
        [e.op(OpKind.MUL, [post4, out4], (BATCH, SEQ, n, hidden), module), mixed],
        (BATCH, SEQ, n, hidden),
        module,
    )
    return e.reshape(new, e.act3(n * hidden), [0, 0, n * hidden], module)


def _collapse(e: _Emitter, s4: str, pre: str, spec: ModelSpec, module: str) -> str:
    """sum_j pre[j] * stream[j]: ``[batch, seq, hidden]``."""
    n, hidden = spec.hc_mult, spec.hidden_size
    pre4 = e.op(OpKind.UNSQUEEZE, [pre], (BATCH, SEQ, n, 1), module, SqueezeAttrs(axes=(3,)))
    weighted = e.op(OpKind.MUL, [s4, pre4], (BATCH, SEQ, n, hidden), module)
    return e.op(OpKind.REDUCE_SUM, [weighted], e.act3(hidden), module, ReduceAttrs(axes=(2,), keepdims=False))


def _hyper_head(e: _Emitter, streams: str, spec: ModelSpec) -> str:
    n, hidden, module = spec.hc_mult, spec.hidden_size, "model.hc_head"
    normed = _rms(e, streams, e.act3(n * hidden), module, spec.norm_eps)
    mix = e.op(
        OpKind.MATMUL,
        [normed, e.param(f"{module}.hc_fn", (n * hidden, n), (n * hidden, n))],
        e.act3(n),
        module,
    )
    mix = e.op(OpKind.MUL, [mix, e.param(f"{module}.hc_scale", (1,))], e.act3(n), module)
    mix = e.op(OpKind.ADD, [mix, e.param(f"{module}.hc_base", (n,))], e.act3(n), module)
    pre = e.op(OpKind.SIGMOID, [mix], e.act3(n), module)
    s4 = e.reshape(streams, (BATCH, SEQ, n, hidden), [0, 0, n, hidden], module)
    return _collapse(e, s4, pre, spec, module)


def _attention(
    e: _Emitter, x: str, a: AttentionSpec, scope: str, spec: ModelSpec, ropes: dict[str, tuple[str, str]]
) -> str:
    c = a.compressed
    assert c is not None
    hidden, nh, hd, qr = spec.hidden_size, a.num_heads, a.head_dim, a.q_lora_rank
    rope = ropes["compress" if c.compress else "main"]
    q_low = e.norm(e.linear(x, hidden, qr, f"{scope}.q_a_proj", False), qr, f"{scope}.q_a_norm", spec)
    q = e.linear(q_low, qr, nh * hd, f"{scope}.q_b_proj", False)
    q4 = e.reshape(q, (BATCH, SEQ, nh, hd), [0, 0, nh, hd], scope)
    q4 = _rms(e, q4, (BATCH, SEQ, nh, hd), f"{scope}.q_b_norm", spec.norm_eps)
    q = e.reshape(q4, e.act3(nh * hd), [0, 0, nh * hd], scope)
    q = _rotary(e, q, nh, nh * hd, scope, True, rope, a.rotary_dim)
    kv = e.norm(e.linear(x, hidden, hd, f"{scope}.kv_proj", False), hd, f"{scope}.kv_norm", spec)
    kv = _rotary(e, kv, 1, hd, scope, True, rope, a.rotary_dim)
    e.b.kv_cache(KVCache(f"{scope}.kv", kv, hd, e.act, a.window))  # one tensor: key and value
    keys, mask = kv, ""
    if c.compress:
        comp, state = _compressor(
            e, x, hd, c.compress, 2 if c.indexer else 1, f"{scope}.compressor", a, spec, rope
        )
        e.b.kv_cache(
            KVCache(f"{scope}.compressed", comp, hd, e.act, tokens_per_entry=c.compress, state_elements=state)
        )
        keys = e.op(OpKind.CONCAT, [kv, comp], (BATCH, 2 * SEQ, hd), scope, AxisAttrs(1))
        if c.indexer:
            s = f"{scope}.compressor.indexer"
            ih, idim = c.index_heads, c.index_head_dim
            ikey, istate = _compressor(e, x, idim, c.compress, 2, s, a, spec, rope)
            e.b.kv_cache(
                KVCache(
                    f"{scope}.index_key",
                    ikey,
                    idim,
                    e.act,
                    tokens_per_entry=c.compress,
                    state_elements=istate,
                )
            )
            iq = _rotary(
                e,
                e.linear(q_low, qr, ih * idim, f"{s}.q_b_proj", False),
                ih,
                ih * idim,
                s,
                True,
                rope,
                a.rotary_dim,
            )
            iw = e.linear(x, hidden, ih, f"{s}.scorer.weights_proj", False)
            scores = index_scores(e, iq, ikey, iw, ih, idim, s)
            zero = e.const(f"{scope}.zero", np.array(0.0, dtype=np.float32), e.act)
            window_bias = e.op(OpKind.MUL, [scores, zero], (BATCH, 1, SEQ, SEQ), scope)
            mask = e.op(OpKind.CONCAT, [window_bias, scores], (BATCH, 1, SEQ, 2 * SEQ), scope, AxisAttrs(3))
    sinks = e.param(f"{scope}.sinks", (nh,))
    attrs = AttentionAttrs(is_causal=True, q_num_heads=nh, kv_num_heads=1, scale=hd**-0.5, window=a.window)
    y = e.op(OpKind.ATTENTION, [q, keys, keys, mask, "", "", "", sinks], e.act3(nh * hd), scope, attrs)
    y = _rotary(e, y, nh, nh * hd, scope, True, rope, a.rotary_dim)  # undo the values' rotation
    g, rank = c.o_groups, c.o_lora_rank
    per = nh * hd // g
    y5 = e.reshape(y, (BATCH, SEQ, g, 1, per), [0, 0, g, 1, per], scope)
    w = e.param(f"{scope}.o_a_proj.weight", (g, per, rank), (per, g * rank))
    y5 = e.op(OpKind.MATMUL, [y5, w], (BATCH, SEQ, g, 1, rank), f"{scope}.o_a_proj")
    y = e.reshape(y5, e.act3(g * rank), [0, 0, g * rank], scope)
    return e.linear(y, g * rank, hidden, f"{scope}.o_b_proj", False)


def _compressor(
    e: _Emitter,
    x: str,
    dim: int,
    ratio: int,
    series: int,
    module: str,
    a: AttentionSpec,
    spec: ModelSpec,
    rope: tuple[str, str],
) -> tuple[str, int]:
    """One compressed entry per ``ratio`` tokens (per token: its gated contribution), and the
    elements of the open window each sequence holds (kv and gate of up to ratio - 1 tokens;
    two series also keep the previous window's first series, kv and gate)."""
    width = series * dim
    hidden = spec.hidden_size
    kv = e.linear(x, hidden, width, f"{module}.kv_proj", False)
    gate = e.linear(x, hidden, width, f"{module}.gate_proj", False)
    i64 = DType.INT64
    m = e.const(f"{module}.ratio", np.array(ratio, dtype=np.int64), i64)
    windows = e.op(OpKind.DIV, [e.positions, m], (BATCH, SEQ), module, dtype=i64)
    slot = e.op(
        OpKind.SUB,
        [e.positions, e.op(OpKind.MUL, [windows, m], (BATCH, SEQ), module, dtype=i64)],
        (BATCH, SEQ),
        module,
        dtype=i64,
    )
    # position_bias[slot] as one_hot(slot) @ position_bias: a Gather of a parameter by ids that
    # derive from an integer input would read as an embedding lookup to the grouping pass.
    onoff = e.const(f"{module}.one_hot_values", np.array([0, 1], dtype=np.float32), DType.FLOAT32)
    hot = e.op(
        OpKind.ONE_HOT, [slot, m, onoff], (BATCH, SEQ, ratio), module, AxisAttrs(-1), dtype=DType.FLOAT32
    )
    bias = e.op(
        OpKind.MATMUL,
        [hot, e.param(f"{module}.position_bias", (ratio, width))],
        e.act3(width),
        module,
        dtype=DType.FLOAT32,
    )  # float32 in the checkpoint
    weight = e.op(
        OpKind.SIGMOID, [e.op(OpKind.ADD, [gate, bias], e.act3(width), module)], e.act3(width), module
    )
    pooled = e.op(OpKind.MUL, [kv, weight], e.act3(width), module)
    if series == 2:
        first, second = e.multi(
            OpKind.SPLIT,
            [pooled],
            [TensorType(e.act, e.act3(dim))] * 2,
            module,
            SplitAttrs(axis=2, num_outputs=2),
        )
        pooled = e.op(OpKind.ADD, [first, second], e.act3(dim), module)
    comp = e.norm(pooled, dim, f"{module}.kv_norm", spec)
    comp = _rotary(e, comp, 1, dim, module, True, rope, a.rotary_dim)
    state = 2 * (ratio - 1) * width + (2 * ratio * dim if series == 2 else 0)
    return comp, state
