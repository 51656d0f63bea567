"""Build the IR of a decoder-only transformer from a ``ModelSpec``, without weight data.

Weights are references (name, type, exact bytes) named like the Hugging Face parameters;
projection matrices are stored ``[in, out]`` so that every projection is ``matmul(x, W)``.
Node scopes are HF module paths (``model.layers.3.mlp.experts.7``) so that placement units can
follow them. Activations are ``[batch, seq, width]`` with symbolic ``batch`` and ``seq``.

MoE layers (experts kept separate so that groups of experts can sit on different wafers)::

    router   (scope <mlp>.gate/.router): logits = matmul(x, W_router); top_k; routing weights;
             gates[b, s, E] = reduce_sum(one_hot(indices) * weights); split into E gates [b, s, 1]
    expert e (scope <mlp>.experts.e):    y_e = mlp_e(x) * gate_e;  acc_e = acc_{e-1} + y_e
    shared   (scope <mlp>.shared_expert(s)): s = mlp(x)
    combine  (scope <mlp>):              out = acc_{E-1} + s

Each expert reads the router's input ``x`` and its gate, and adds its output into a running
sum that flows from expert e to expert e+1: a contiguous group of experts receives ``x`` and
its gates and passes on one partial sum.
"""

from __future__ import annotations

import math

import numpy as np

from placer.frontends.hf_families import AttentionKind, AttentionSpec, MlpSpec, ModelSpec, MoeSpec
from placer.frontends.hf_quant import Quantization
from placer.ir import DType, Graph, GraphBuilder, KVCache, OpKind, Sym, TensorType, WeightRole
from placer.ir.attrs import (
    AttentionAttrs,
    Attrs,
    AxisAttrs,
    CastAttrs,
    GeluAttrs,
    NormAttrs,
    ReduceAttrs,
    RotaryAttrs,
    SplitAttrs,
    SqueezeAttrs,
    TopKAttrs,
    TransposeAttrs,
)
from placer.ir.symbolic import Dim

BATCH, SEQ = Sym.var("batch"), Sym.var("seq")


class _Emitter:
    """GraphBuilder plus the model's activation dtype, quantization and typed op helpers."""

    def __init__(self, name: str, act: DType, quant: Quantization) -> None:
        self.b = GraphBuilder(name)
        self.act = act
        self.quant = quant
        self.input_ids = ""     # graph inputs, set by build_graph
        self.positions = ""
        self.vocab = 0

    def param(self, name: str, shape: tuple[int, ...], checkpoint: tuple[int, ...] | None = None) -> str:
        """A parameter stored as ``shape``; ``checkpoint`` is its 2-D shape in the checkpoint when
        that differs (a grouped projection), which decides its quantized storage."""
        dtype, nbytes = self.quant.storage(name, checkpoint or shape)
        return self.b.weight(name, TensorType(dtype, shape), role=WeightRole.PARAMETER, nbytes=nbytes)

    def const(self, name: str, value: np.ndarray, dtype: DType) -> str:
        return self.b.constant(value, name=name, dtype=dtype)

    def op(self, kind: OpKind, inputs: list[str], shape: tuple[Dim, ...], scope: str,
           attrs: Attrs | None = None, dtype: DType | None = None) -> str:
        t = TensorType(dtype or self.act, shape)
        return self.b.op(kind, inputs, attrs, scope=scope, types=[t])

    def multi(self, kind: OpKind, inputs: list[str], types: list[TensorType], scope: str,
              attrs: Attrs | None = None) -> tuple[str, ...]:
        self.b.op(kind, inputs, attrs, scope=scope, num_outputs=len(types), types=types)
        return self.b.last_outputs

    def act3(self, width: int) -> tuple[Dim, ...]:
        return (BATCH, SEQ, width)

    def linear(self, x: str, d_in: int, d_out: int, module: str, bias: bool, *, weight: str = "weight",
               bias_name: str = "bias") -> str:
        w = self.param(f"{module}.{weight}" if weight else module, (d_in, d_out))
        y = self.op(OpKind.MATMUL, [x, w], self.act3(d_out), module)
        if bias:
            bname = f"{module}.{bias_name}" if weight else f"{module}_bias"
            y = self.op(OpKind.ADD, [y, self.param(bname, (d_out,))], self.act3(d_out), module)
        return y

    def norm(self, x: str, dim: int, module: str, spec: ModelSpec) -> str:
        w = self.param(f"{module}.weight", (dim,))
        if spec.norm == "layer":
            b = self.param(f"{module}.bias", (dim,))
            return self.op(OpKind.LAYER_NORM, [x, w, b], self.act3(dim), module,
                           NormAttrs(epsilon=spec.norm_eps))
        return self.op(OpKind.RMS_NORM, [x, w], self.act3(dim), module, NormAttrs(epsilon=spec.norm_eps))

    def reshape(self, x: str, shape: tuple[Dim, ...], target: list[int], scope: str) -> str:
        self._shapes = getattr(self, "_shapes", 0) + 1
        s = self.const(f"{scope}.shape_{self._shapes}", np.array(target, dtype=np.int64), DType.INT64)
        return self.op(OpKind.RESHAPE, [x, s], shape, scope)


def build_graph(spec: ModelSpec, quant: Quantization, name: str) -> Graph:
    """The IR of ``spec`` with weights stored as ``quant`` says; KV caches declared per layer."""
    act = quant.base
    e = _Emitter(name, act, quant)
    nm = spec.naming
    ids = e.b.input("input_ids", TensorType(DType.INT64, (BATCH, SEQ)))
    e.input_ids, e.vocab = ids, spec.vocab_size
    needs_positions = bool(spec.max_positions) or any(l.attention.rope for l in spec.layers)
    positions = e.b.input("position_ids", TensorType(DType.INT64, (BATCH, SEQ))) if needs_positions else ""
    table = e.param(f"{nm.embed}.weight", (spec.vocab_size, spec.hidden_size))
    h = e.op(OpKind.GATHER, [table, ids], e.act3(spec.hidden_size), nm.embed, AxisAttrs(0))
    if spec.max_positions:
        wpe = e.param(f"{nm.positions}.weight", (spec.max_positions, spec.hidden_size))
        p = e.op(OpKind.GATHER, [wpe, positions], e.act3(spec.hidden_size), nm.positions, AxisAttrs(0))
        h = e.op(OpKind.ADD, [h, p], e.act3(spec.hidden_size), nm.positions)
    e.positions = positions
    if spec.hc_mult:  # DeepSeek-V4: hyper-connected residual streams, its own layer structure
        from placer.frontends.hf_builder_v4 import build_v4_layers

        h = build_v4_layers(e, h, spec)
        return _finish(e, h, spec, table)
    rope = _rotary_tables(e, spec, positions) if spec.rope_dim and needs_positions else ("", "")
    for i, layer in enumerate(spec.layers):
        scope = f"{nm.layers}.{i}"
        x = e.norm(h, spec.hidden_size, f"{scope}.{nm.input_norm}", spec)
        attn = nm.linear_attn if layer.attention.kind is AttentionKind.LINEAR else nm.attn
        a = _attention(e, x, layer.attention, f"{scope}.{attn}", spec, rope)
        h = e.op(OpKind.ADD, [h, a], e.act3(spec.hidden_size), scope)
        x = e.norm(h, spec.hidden_size, f"{scope}.{nm.post_norm}", spec)
        mlp_scope = f"{scope}.{nm.mlp}"
        if isinstance(layer.mlp, MoeSpec):
            m = _moe(e, x, layer.mlp, mlp_scope, spec.hidden_size)
        else:
            m = _mlp(e, x, layer.mlp, mlp_scope, spec.hidden_size)
        h = e.op(OpKind.ADD, [h, m], e.act3(spec.hidden_size), scope)
    return _finish(e, h, spec, table)


def _finish(e: _Emitter, h: str, spec: ModelSpec, table: str) -> Graph:
    """Final norm and LM head."""
    nm = spec.naming
    act = e.act
    h = e.norm(h, spec.hidden_size, nm.final_norm, spec)
    if spec.tie_embeddings:
        w = e.op(OpKind.TRANSPOSE, [table], (spec.hidden_size, spec.vocab_size), nm.head)
    else:
        w = e.param(f"{nm.head}.weight", (spec.hidden_size, spec.vocab_size))
    logits = e.b.op(OpKind.MATMUL, [h, w], scope=nm.head, outputs=["logits"],
                    types=[TensorType(act, e.act3(spec.vocab_size))])
    e.b.output(logits)
    return e.b.build()


def _rotary_tables(e: _Emitter, spec: ModelSpec, positions: str, scope: str = "",
                   theta: float = 0.0) -> tuple[str, str]:
    """cos and sin ``f32[batch, seq, rope_dim/2]`` from the positions, computed once (as HF's
    ``rotary_emb`` does) and read by every layer's rotary embedding."""
    scope = scope or spec.naming.rotary
    half = spec.rope_dim // 2
    inv_freq = _inv_freq(spec, theta)
    table = e.const(f"{scope}.inv_freq", inv_freq.reshape(1, half), DType.FLOAT32)
    f32 = DType.FLOAT32
    pos = e.op(OpKind.CAST, [positions], (BATCH, SEQ), scope, CastAttrs(to=f32), dtype=f32)
    pos = e.op(OpKind.UNSQUEEZE, [pos], (BATCH, SEQ, 1), scope, SqueezeAttrs(axes=(2,)), dtype=DType.FLOAT32)
    freqs = e.op(OpKind.MATMUL, [pos, table], (BATCH, SEQ, half), scope, dtype=DType.FLOAT32)
    cos = e.op(OpKind.COS, [freqs], (BATCH, SEQ, half), scope, dtype=DType.FLOAT32)
    sin = e.op(OpKind.SIN, [freqs], (BATCH, SEQ, half), scope, dtype=DType.FLOAT32)
    return cos, sin


def _inv_freq(spec: ModelSpec, theta: float = 0.0) -> np.ndarray:
    """Rotary inverse frequencies; Llama-3's frequency-dependent scaling is applied, other
    scalings (YaRN) change only values, not shapes or costs, and are left at the default."""
    d = spec.rope_dim
    inv = 1.0 / ((theta or spec.rope_theta) ** (np.arange(0, d, 2, dtype=np.float64) / d))
    s = spec.rope_scaling or {}
    if s.get("rope_type") == "llama3":
        factor, lo, hi = float(s["factor"]), float(s["low_freq_factor"]), float(s["high_freq_factor"])
        old = float(s["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        with np.errstate(divide="ignore", invalid="ignore"):  # hi == lo: no smooth band
            smooth = np.nan_to_num((old / wavelen - lo) / (hi - lo))
        scaled = np.where(wavelen > old / lo, inv / factor, inv)
        mid = (wavelen <= old / lo) & (wavelen >= old / hi)
        inv = np.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)
    return inv.astype(np.float32)


def _rotary(e: _Emitter, x: str, heads: int, width: int, scope: str, interleaved: bool,
            rope: tuple[str, str], rotary_dim: int = 0) -> str:
    """ONNX RotaryEmbedding; ``rotary_dim`` (partial rotary) rotates that many dims of each head."""
    partial = rotary_dim if rotary_dim and rotary_dim < width // heads else 0
    return e.op(OpKind.ROTARY_EMBEDDING, [x, rope[0], rope[1]], e.act3(width), scope,
                RotaryAttrs(interleaved=interleaved, num_heads=heads, rotary_embedding_dim=partial))


def _head_norm(e: _Emitter, x: str, heads: int, dim: int, module: str, spec: ModelSpec) -> str:
    """Qwen3's per-head RMSNorm: reshape to heads, normalize over head_dim, reshape back."""
    x4 = e.reshape(x, (BATCH, SEQ, heads, dim), [0, 0, heads, dim], module)
    w = e.param(f"{module}.weight", (dim,))
    y = e.op(OpKind.RMS_NORM, [x4, w], (BATCH, SEQ, heads, dim), module, NormAttrs(epsilon=spec.norm_eps))
    return e.reshape(y, e.act3(heads * dim), [0, 0, heads * dim], module)


def _declare_kv(e: _Emitter, scope: str, parts: list[tuple[str, str, int]], window: int) -> None:
    for suffix, value, width in parts:
        e.b.kv_cache(KVCache(f"{scope}.{suffix}", value, width, e.act, window))


def _attention(e: _Emitter, x: str, a: AttentionSpec, scope: str, spec: ModelSpec,
               rope: tuple[str, str]) -> str:
    if a.kind is AttentionKind.MLA:
        return _mla(e, x, a, scope, spec, rope)
    if a.kind is AttentionKind.LINEAR:
        from placer.frontends.hf_builder_linear import linear_attention

        return linear_attention(e, x, a, scope, spec)
    hidden = spec.hidden_size
    q_w, kv_w = a.num_heads * a.head_dim, a.num_kv_heads * a.head_dim
    if a.kind is AttentionKind.FUSED_QKV:
        qkv = e.linear(x, hidden, q_w + 2 * kv_w, f"{scope}.c_attn", True)
        q, k, v = e.multi(OpKind.SPLIT, [qkv], [TensorType(e.act, e.act3(q_w))] * 3, f"{scope}.c_attn",
                          SplitAttrs(axis=-1, num_outputs=3))
        out_module = f"{scope}.c_proj"
    elif a.output_gate:  # Qwen3-Next: per head [query | gate] from one q_proj
        q2 = e.linear(x, hidden, 2 * q_w, f"{scope}.q_proj", a.qkv_bias)
        q4 = e.reshape(q2, (BATCH, SEQ, a.num_heads, 2 * a.head_dim), [0, 0, a.num_heads, 2 * a.head_dim],
                       scope)
        half = TensorType(e.act, (BATCH, SEQ, a.num_heads, a.head_dim))
        q4, g4 = e.multi(OpKind.SPLIT, [q4], [half, half], scope, SplitAttrs(axis=3, num_outputs=2))
        q = e.reshape(q4, e.act3(q_w), [0, 0, q_w], scope)
        gate = e.reshape(g4, e.act3(q_w), [0, 0, q_w], scope)
        k = e.linear(x, hidden, kv_w, f"{scope}.k_proj", a.qkv_bias)
        v = e.linear(x, hidden, kv_w, f"{scope}.v_proj", a.qkv_bias)
        out_module = f"{scope}.o_proj"
    else:
        q = e.linear(x, hidden, q_w, f"{scope}.q_proj", a.qkv_bias)
        k = e.linear(x, hidden, kv_w, f"{scope}.k_proj", a.qkv_bias)
        v = e.linear(x, hidden, kv_w, f"{scope}.v_proj", a.qkv_bias)
        out_module = f"{scope}.o_proj"
    if a.qk_norm and a.qk_norm_whole:  # MiniMax-M2: one RMSNorm over all heads
        q = e.norm(q, q_w, f"{scope}.q_norm", spec)
        k = e.norm(k, kv_w, f"{scope}.k_norm", spec)
    elif a.qk_norm:
        q = _head_norm(e, q, a.num_heads, a.head_dim, f"{scope}.q_norm", spec)
        k = _head_norm(e, k, a.num_kv_heads, a.head_dim, f"{scope}.k_norm", spec)
    if a.rope:
        q = _rotary(e, q, a.num_heads, q_w, scope, a.rope_interleaved, rope, a.rotary_dim)
        k = _rotary(e, k, a.num_kv_heads, kv_w, scope, a.rope_interleaved, rope, a.rotary_dim)
    _declare_kv(e, scope, [("key", k, kv_w), ("value", v, kv_w)], a.window)
    inputs = [q, k, v]
    if a.sinks:
        # Input 7 (after ONNX's mask, past_key, past_value, nonpad_kv_seqlen): per-head sink
        # logits that join each softmax row as one extra column with a zero value.
        inputs += ["", "", "", "", e.param(f"{scope}.sinks", (a.num_heads,))]
    attrs = AttentionAttrs(is_causal=True, q_num_heads=a.num_heads, kv_num_heads=a.num_kv_heads,
                           scale=a.head_dim ** -0.5, window=a.window)
    y = e.op(OpKind.ATTENTION, inputs, e.act3(q_w), scope, attrs)
    if a.output_gate:
        y = e.op(OpKind.MUL, [y, e.op(OpKind.SIGMOID, [gate], e.act3(q_w), scope)], e.act3(q_w), scope)
    return e.linear(y, q_w, hidden, out_module, a.o_bias)


def _mla(e: _Emitter, x: str, a: AttentionSpec, scope: str, spec: ModelSpec, rope: tuple[str, str]) -> str:
    """Multi-head latent attention. The KV cache is the compressed latent (kv_lora_rank) and the
    shared rotary key (qk_rope_head_dim) per token, as DeepSeek's inference caches them."""
    hidden, nh = spec.hidden_size, a.num_heads
    nope, rd, vd, rank = a.qk_nope_head_dim, a.qk_rope_head_dim, a.v_head_dim, a.kv_lora_rank
    qk = nope + rd
    q_low = ""
    if a.q_lora_rank:
        q = e.linear(x, hidden, a.q_lora_rank, f"{scope}.q_a_proj", a.qkv_bias)
        q = q_low = e.norm(q, a.q_lora_rank, f"{scope}.q_a_layernorm", spec)
        q = e.linear(q, a.q_lora_rank, nh * qk, f"{scope}.q_b_proj", False)
    else:
        q = e.linear(x, hidden, nh * qk, f"{scope}.q_proj", False)
    q4 = e.reshape(q, (BATCH, SEQ, nh, qk), [0, 0, nh, qk], scope)
    split = e.const(f"{scope}.q_split", np.array([nope, rd], dtype=np.int64), DType.INT64)
    q_nope, q_pe = e.multi(OpKind.SPLIT, [q4, split], [TensorType(e.act, (BATCH, SEQ, nh, nope)),
                                                       TensorType(e.act, (BATCH, SEQ, nh, rd))], scope,
                           SplitAttrs(axis=3))
    q_pe = e.reshape(q_pe, e.act3(nh * rd), [0, 0, nh * rd], scope)
    q_pe = _rotary(e, q_pe, nh, nh * rd, scope, a.rope_interleaved, rope)
    q_pe = e.reshape(q_pe, (BATCH, SEQ, nh, rd), [0, 0, nh, rd], scope)
    q4 = e.op(OpKind.CONCAT, [q_nope, q_pe], (BATCH, SEQ, nh, qk), scope, AxisAttrs(3))
    q = e.reshape(q4, e.act3(nh * qk), [0, 0, nh * qk], scope)

    kv_a = e.linear(x, hidden, rank + rd, f"{scope}.kv_a_proj_with_mqa", a.qkv_bias)
    split = e.const(f"{scope}.kv_split", np.array([rank, rd], dtype=np.int64), DType.INT64)
    parts = [TensorType(e.act, e.act3(rank)), TensorType(e.act, e.act3(rd))]
    latent, k_pe = e.multi(OpKind.SPLIT, [kv_a, split], parts, scope, SplitAttrs(axis=2))
    latent = e.norm(latent, rank, f"{scope}.kv_a_layernorm", spec)
    k_pe = _rotary(e, k_pe, 1, rd, scope, a.rope_interleaved, rope)
    _declare_kv(e, scope, [("latent", latent, rank), ("rope_key", k_pe, rd)], a.window)
    kv = e.linear(latent, rank, nh * (nope + vd), f"{scope}.kv_b_proj", False)
    kv4 = e.reshape(kv, (BATCH, SEQ, nh, nope + vd), [0, 0, nh, nope + vd], scope)
    split = e.const(f"{scope}.kv_b_split", np.array([nope, vd], dtype=np.int64), DType.INT64)
    k_nope, v4 = e.multi(OpKind.SPLIT, [kv4, split], [TensorType(e.act, (BATCH, SEQ, nh, nope)),
                                                      TensorType(e.act, (BATCH, SEQ, nh, vd))], scope,
                         SplitAttrs(axis=3))
    k_pe = e.op(OpKind.UNSQUEEZE, [k_pe], (BATCH, SEQ, 1, rd), scope, SqueezeAttrs(axes=(2,)))
    heads = e.const(f"{scope}.rope_key_heads", np.array([1, 1, nh, 1], dtype=np.int64), DType.INT64)
    k_pe = e.op(OpKind.EXPAND, [k_pe, heads], (BATCH, SEQ, nh, rd), scope)
    k4 = e.op(OpKind.CONCAT, [k_nope, k_pe], (BATCH, SEQ, nh, qk), scope, AxisAttrs(3))
    k = e.reshape(k4, e.act3(nh * qk), [0, 0, nh * qk], scope)
    v = e.reshape(v4, e.act3(nh * vd), [0, 0, nh * vd], scope)
    attrs = AttentionAttrs(is_causal=True, q_num_heads=nh, kv_num_heads=nh, scale=qk ** -0.5, window=a.window)
    inputs = [q, k, v]
    if a.index_heads:  # GLM-5 (DSA): the indexer's scores select the keys each query sees
        inputs.append(_indexer(e, x, q_low, a, scope, spec, rope))
    # Layers whose indexer is "shared" reuse the last indexer's top-k indices (a few thousand
    # integers per token); that cross-layer edge is not drawn, so that layers stay separable.
    y = e.op(OpKind.ATTENTION, inputs, e.act3(nh * vd), scope, attrs)
    return e.linear(y, nh * vd, hidden, f"{scope}.o_proj", a.o_bias)


def _indexer(e: _Emitter, x: str, q_low: str, a: AttentionSpec, scope: str, spec: ModelSpec,
             rope: tuple[str, str]) -> str:
    """DSA's lightning indexer: per-head ReLU(q . k) weighted by a projection of x, summed over
    heads: one score per (query, key), the additive attention bias ``[batch, 1, seq, seq]``.
    Its keys (``index_head_dim`` per token) are cached."""
    s, ih, idim, hidden = f"{scope}.indexer", a.index_heads, a.index_head_dim, spec.hidden_size
    q = e.linear(q_low or x, a.q_lora_rank or hidden, ih * idim, f"{s}.wq_b", False)
    q = _rotary(e, q, ih, ih * idim, s, True, rope, a.qk_rope_head_dim)
    k = e.linear(x, hidden, idim, f"{s}.wk", False)
    w, b = e.param(f"{s}.k_norm.weight", (idim,)), e.param(f"{s}.k_norm.bias", (idim,))
    k = e.op(OpKind.LAYER_NORM, [k, w, b], e.act3(idim), s, NormAttrs(epsilon=1e-6))
    k = _rotary(e, k, 1, idim, s, True, rope, a.qk_rope_head_dim)
    _declare_kv(e, scope, [("index_key", k, idim)], a.window)
    return index_scores(e, q, k, e.linear(x, hidden, ih, f"{s}.weights_proj", False), ih, idim, s)


def index_scores(e: _Emitter, q: str, k: str, weights: str, heads: int, dim: int, scope: str) -> str:
    """sum_h w[t, h] * ReLU(q[t, h] . k[s]) as ``[batch, 1, seq, keys]`` (an attention bias)."""
    q4 = e.reshape(q, (BATCH, SEQ, heads, dim), [0, 0, heads, dim], scope)
    k4 = e.op(OpKind.UNSQUEEZE, [k], (BATCH, 1, SEQ, dim), scope, SqueezeAttrs(axes=(1,)))
    kt = e.op(OpKind.TRANSPOSE, [k4], (BATCH, 1, dim, SEQ), scope, TransposeAttrs(perm=(0, 1, 3, 2)))
    sc = e.op(OpKind.MATMUL, [q4, kt], (BATCH, SEQ, heads, SEQ), scope)
    sc = e.op(OpKind.RELU, [sc], (BATCH, SEQ, heads, SEQ), scope)
    w4 = e.op(OpKind.UNSQUEEZE, [weights], (BATCH, SEQ, heads, 1), scope, SqueezeAttrs(axes=(3,)))
    sc = e.op(OpKind.MUL, [sc, w4], (BATCH, SEQ, heads, SEQ), scope)
    sc = e.op(OpKind.REDUCE_SUM, [sc], (BATCH, SEQ, SEQ), scope, ReduceAttrs(axes=(2,), keepdims=False))
    return e.op(OpKind.UNSQUEEZE, [sc], (BATCH, 1, SEQ, SEQ), scope, SqueezeAttrs(axes=(1,)))


def _mlp(e: _Emitter, x: str, m: MlpSpec, scope: str, hidden: int) -> str:
    if not m.gated:  # GPT-2: c_fc -> gelu(tanh) -> c_proj
        f = e.linear(x, hidden, m.intermediate, f"{scope}.c_fc", m.bias)
        f = e.op(OpKind.GELU, [f], e.act3(m.intermediate), scope, GeluAttrs("tanh"))
        return e.linear(f, m.intermediate, hidden, f"{scope}.c_proj", m.bias)
    g = e.linear(x, hidden, m.intermediate, f"{scope}.gate_proj", m.bias)
    u = e.linear(x, hidden, m.intermediate, f"{scope}.up_proj", m.bias)
    g = e.op(OpKind.SILU, [g], e.act3(m.intermediate), scope)
    p = e.op(OpKind.MUL, [g, u], e.act3(m.intermediate), scope)
    return e.linear(p, m.intermediate, hidden, f"{scope}.down_proj", m.bias)


def _router(e: _Emitter, x: str, m: MoeSpec, scope: str, hidden: int) -> tuple[str, ...]:
    """Routing: E gate values [batch, seq, 1], zero for the experts a token does not use."""
    r = f"{scope}.{m.router_name}"
    E, k = m.num_experts, m.top_k
    logits = e.linear(x, hidden, E, r, m.router_bias)
    kk = e.const(f"{r}.k", np.array([k], dtype=np.int64), DType.INT64)
    idx_t = TensorType(DType.INT64, (BATCH, SEQ, k))
    val_t = TensorType(e.act, (BATCH, SEQ, k))
    if m.hash_routing:  # DeepSeek-V4 hash layers: experts fixed per token id, weights from scores
        scores = _scores(e, logits, m, r, E)
        table = e.b.weight(f"{r}.tid2eid", TensorType(DType.INT64, (e.vocab, k)), role=WeightRole.CONSTANT)
        idx = e.op(OpKind.GATHER, [table, e.input_ids], (BATCH, SEQ, k), r, AxisAttrs(0), dtype=DType.INT64)
        weights = e.op(OpKind.GATHER_ELEMENTS, [scores, idx], (BATCH, SEQ, k), r, AxisAttrs(-1))
    elif m.router_buffer:  # DeepSeek: sigmoid scores, bias-corrected choice, weights from the scores
        scores = _scores(e, logits, m, r, E)
        bias = e.b.weight(f"{r}.e_score_correction_bias", TensorType(DType.FLOAT32, (E,)),
                          role=WeightRole.CONSTANT)
        choice = e.op(OpKind.ADD, [scores, bias], e.act3(E), r)
        _, idx = e.multi(OpKind.TOP_K, [choice, kk], [val_t, idx_t], r, TopKAttrs())
        weights = e.op(OpKind.GATHER_ELEMENTS, [scores, idx], (BATCH, SEQ, k), r, AxisAttrs(-1))
    elif m.score == "sigmoid":  # Llama 4: top-k logits, then sigmoid
        vals, idx = e.multi(OpKind.TOP_K, [logits, kk], [val_t, idx_t], r, TopKAttrs())
        weights = e.op(OpKind.SIGMOID, [vals], (BATCH, SEQ, k), r)
    elif m.fused_gate_up:  # gpt-oss: top-k logits, softmax over the k
        vals, idx = e.multi(OpKind.TOP_K, [logits, kk], [val_t, idx_t], r, TopKAttrs())
        weights = e.op(OpKind.SOFTMAX, [vals], (BATCH, SEQ, k), r, AxisAttrs(-1))
    else:  # Mixtral, Qwen3-MoE: softmax over all experts, top-k, renormalize
        probs = e.op(OpKind.SOFTMAX, [logits], e.act3(E), r, AxisAttrs(-1))
        vals, idx = e.multi(OpKind.TOP_K, [probs, kk], [val_t, idx_t], r, TopKAttrs())
        total = e.op(OpKind.REDUCE_SUM, [vals], (BATCH, SEQ, 1), r, ReduceAttrs(axes=(2,)))
        weights = e.op(OpKind.DIV, [vals, total], (BATCH, SEQ, k), r)
    depth = e.const(f"{r}.num_experts", np.array(E, dtype=np.int64), DType.INT64)
    onoff = e.const(f"{r}.one_hot_values", np.array([0, 1], dtype=np.float32), e.act)
    hot = e.op(OpKind.ONE_HOT, [idx, depth, onoff], (BATCH, SEQ, k, E), r, AxisAttrs(-1))
    w4 = e.op(OpKind.UNSQUEEZE, [weights], (BATCH, SEQ, k, 1), r, SqueezeAttrs(axes=(3,)))
    dense = e.op(OpKind.MUL, [hot, w4], (BATCH, SEQ, k, E), r)
    gates = e.op(OpKind.REDUCE_SUM, [dense], e.act3(E), r, ReduceAttrs(axes=(2,), keepdims=False))
    return e.multi(OpKind.SPLIT, [gates], [TensorType(e.act, e.act3(1))] * E, r,
                   SplitAttrs(axis=-1, num_outputs=E))


def _scores(e: _Emitter, logits: str, m: MoeSpec, scope: str, experts: int) -> str:
    """Router scores: sigmoid, or DeepSeek-V4's sqrt(softplus(logits))."""
    if m.score != "sqrtsoftplus":
        return e.op(OpKind.SIGMOID, [logits], e.act3(experts), scope)
    one = e.const(f"{scope}.one", np.array(1.0, dtype=np.float32), e.act)
    t = e.op(OpKind.EXP, [logits], e.act3(experts), scope)
    t = e.op(OpKind.LOG, [e.op(OpKind.ADD, [t, one], e.act3(experts), scope)], e.act3(experts), scope)
    return e.op(OpKind.SQRT, [t], e.act3(experts), scope)


def _expert(e: _Emitter, x: str, m: MoeSpec, scope: str, hidden: int) -> str:
    inter = m.expert_intermediate
    if m.fused_gate_up:
        # gpt-oss: gate_up_proj [H, 2I] + bias, then a clamped SwiGLU variant (gate * sigmoid(1.702
        # gate) * (up + 1)); emitted as silu(gate) * up: same shapes and cost class, no parameters.
        gu = e.linear(x, hidden, 2 * inter, f"{scope}.gate_up_proj", m.expert_bias, weight="")
        g, u = e.multi(OpKind.SPLIT, [gu], [TensorType(e.act, e.act3(inter))] * 2, scope,
                       SplitAttrs(axis=-1, num_outputs=2))
        g = e.op(OpKind.SILU, [g], e.act3(inter), scope)
        p = e.op(OpKind.MUL, [g, u], e.act3(inter), scope)
        return e.linear(p, inter, hidden, f"{scope}.down_proj", m.expert_bias, weight="")
    return _mlp(e, x, MlpSpec(inter), scope, hidden)


def _moe(e: _Emitter, x: str, m: MoeSpec, scope: str, hidden: int) -> str:
    gates = _router(e, x, m, scope, hidden)
    acc = ""
    for i in range(m.num_experts):
        xs = f"{scope}.experts.{i}"
        y = _expert(e, x, m, xs, hidden)
        y = e.op(OpKind.MUL, [y, gates[i]], e.act3(hidden), xs)
        acc = e.op(OpKind.ADD, [acc, y], e.act3(hidden), xs) if acc else y
    if m.shared is not None:
        s = _mlp(e, x, m.shared, f"{scope}.{m.shared_name}", hidden)
        if m.shared_gate:  # Qwen3-Next: sigmoid(x W_g) scales the shared expert
            g = e.linear(x, hidden, 1, f"{scope}.shared_expert_gate", False)
            s = e.op(OpKind.MUL, [s, e.op(OpKind.SIGMOID, [g], e.act3(1), scope)], e.act3(hidden), scope)
        acc = e.op(OpKind.ADD, [acc, s], e.act3(hidden), scope)
    return acc
