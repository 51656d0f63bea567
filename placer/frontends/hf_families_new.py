"""The newer Hugging Face families: GLM-4.5/4.6/4.7 (``glm4_moe``), GLM-5 (``glm_moe_dsa``),
Kimi-K2 (``kimi_k2``, DeepSeek-V3's architecture; ``kimi_k25`` wraps it in a multimodal
config), MiniMax-M2, DeepSeek-V4, Qwen3-Next and Qwen3.5-MoE (hybrid linear attention).

Each reader uses transformers' defaults for absent fields (transformers 5.2x config classes),
so that parameter counts equal the models transformers builds (checked by the tests).
"""

from __future__ import annotations

from placer.frontends.hf_families import (
    AttentionKind,
    AttentionSpec,
    CompressedAttentionSpec,
    FamilyReader,
    LayerSpec,
    LinearAttentionSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    Naming,
    _common,
    _dtype,
    _heads,
    _rope,
    _rotary_dim,
    _top_k,
    read_deepseek_v3,
)
from placer.frontends.hf_reader import ConfigReader


def read_glm4_moe(r: ConfigReader) -> ModelSpec:
    """GLM-4.5/4.6/4.7: GQA with q/k/v biases, half-rotary heads, DeepSeek-style sigmoid router
    with a correction bias, shared experts, the first ``first_k_dense_replace`` layers dense.
    The multi-token-prediction layer (``num_nextn_predict_layers``) is not built, as in
    transformers."""
    common = _common(r)
    n = r.int("num_hidden_layers")
    # transformers: getattr(config, "head_dim", hidden_size // num_attention_heads), rounded down
    heads, kv, head_dim = _heads(
        r, common["hidden_size"], common["hidden_size"] // r.int("num_attention_heads")
    )
    bias = r.bool("attention_bias", False)
    rot = _rotary_dim(r, head_dim, 0.5)
    attn = AttentionSpec(
        AttentionKind.GQA,
        heads,
        kv,
        head_dim,
        qkv_bias=bias,
        qk_norm=r.bool("use_qk_norm", False),
        rotary_dim=rot,
    )
    experts = r.int("n_routed_experts", 128)
    inter = r.int("moe_intermediate_size", 1408)
    shared = r.int("n_shared_experts", 1, minimum=0)
    moe = MoeSpec(
        experts,
        _top_k(r, experts, 8),
        inter,
        router_buffer=True,
        score="sigmoid",
        shared=MlpSpec(inter * shared) if shared else None,
    )
    dense = MlpSpec(r.int("intermediate_size", 10944))
    first = r.int("first_k_dense_replace", 1, minimum=0)
    layers = tuple(LayerSpec(attn, moe if i >= first else dense) for i in range(n))
    return ModelSpec(
        "glm4_moe",
        layers=layers,
        naming=Naming(),
        norm_eps=r.float("rms_norm_eps", 1e-5),
        tie_embeddings=r.bool("tie_word_embeddings", False),
        rope_dim=rot,
        dtype=_dtype(r),
        **common,
        **_rope(r),
    )


def read_minimax_m2(r: ConfigReader) -> ModelSpec:
    """MiniMax-M2: GQA with q_norm/k_norm over all heads at once, partial rotary (``rotary_dim``),
    a sigmoid router with a correction bias and no shared expert."""
    common = _common(r)
    n = r.int("num_hidden_layers")
    heads, kv, head_dim = _heads(r, common["hidden_size"], 128)
    rot = _rotary_dim(r, head_dim)
    attn = AttentionSpec(
        AttentionKind.GQA, heads, kv, head_dim, qk_norm=True, qk_norm_whole=True, rotary_dim=rot
    )
    experts = r.int("num_local_experts", 256)
    moe = MoeSpec(
        experts, _top_k(r, experts, 8), r.int("intermediate_size", 1536), router_buffer=True, score="sigmoid"
    )
    return ModelSpec(
        "minimax_m2",
        layers=(LayerSpec(attn, moe),) * n,
        naming=Naming(),
        norm_eps=r.float("rms_norm_eps", 1e-6),
        tie_embeddings=r.bool("tie_word_embeddings", False),
        rope_dim=rot,
        dtype=_dtype(r),
        **common,
        **_rope(r),
    )


def read_glm_moe_dsa(r: ConfigReader) -> ModelSpec:
    """GLM-5: DeepSeek-V3.2's MLA with a lightning indexer (DSA). Layers whose ``indexer_types``
    entry is ``shared`` reuse the previous indexer's selection and have no indexer of their own."""
    base = read_deepseek_v3(r, "glm_moe_dsa", dict(qk_nope_head_dim=192, v_head_dim=256, q_lora_rank=2048))
    n = len(base.layers)
    types = r.str_list("indexer_types", length=n, allowed=("full", "shared"))
    if types is None:  # transformers: index_topk_pattern, else a frequency and offset
        pattern = r.raw("index_topk_pattern")
        if isinstance(pattern, str):
            types = [{"F": "full", "S": "shared"}.get(c, "full") for c in pattern]
        else:
            freq = max(r.int("index_topk_freq", 1), 1)
            offset = r.int("index_skip_topk_offset", 2, minimum=0)
            types = ["full" if max(i - offset + 1, 0) % freq == 0 else "shared" for i in range(n)]
    ih, idim = r.int("index_n_heads", 32), r.int("index_head_dim", 128)
    bias = r.bool("attention_bias", False)
    mlp_types = r.str_list("mlp_layer_types", length=n, allowed=("dense", "sparse"))
    layers = []
    for i, layer in enumerate(base.layers):
        a = layer.attention
        attn = AttentionSpec(
            a.kind,
            a.num_heads,
            a.num_kv_heads,
            a.head_dim,
            qkv_bias=bias,
            o_bias=bias,
            rope_interleaved=True,
            q_lora_rank=a.q_lora_rank,
            kv_lora_rank=a.kv_lora_rank,
            qk_rope_head_dim=a.qk_rope_head_dim,
            qk_nope_head_dim=a.qk_nope_head_dim,
            v_head_dim=a.v_head_dim,
            index_heads=ih if types[i] == "full" else 0,
            index_head_dim=idim if types[i] == "full" else 0,
        )
        mlp = layer.mlp
        if mlp_types is not None:
            moe = next((x.mlp for x in base.layers if isinstance(x.mlp, MoeSpec)), None)
            dense = MlpSpec(r.int("intermediate_size", 12288))
            mlp = moe if mlp_types[i] == "sparse" and moe is not None else dense
        layers.append(LayerSpec(attn, mlp))
    return _replace_layers(base, tuple(layers), norm_eps=r.float("rms_norm_eps", 1e-5))


def _replace_layers(spec: ModelSpec, layers: tuple[LayerSpec, ...], **changes: object) -> ModelSpec:
    import dataclasses

    # The ignore below: changes are ModelSpec fields of several types.
    return dataclasses.replace(spec, layers=layers, **changes)  # type: ignore[arg-type]


def read_kimi_k2(r: ConfigReader) -> ModelSpec:
    """Kimi-K2: the DeepSeek-V3 architecture under its own ``model_type``."""
    return read_deepseek_v3(r, "kimi_k2")


def read_kimi_k25(r: ConfigReader) -> ModelSpec:
    """Kimi-K2.5: the text model (``text_config``, DeepSeek-V3 architecture); the vision tower and
    projector are not placed."""
    text = r.sub("text_config")
    if text is None:
        raise r.fail("text_config", "is missing; a kimi_k25 config needs its text_config object")
    spec = read_deepseek_v3(text, "kimi_k25")
    if not text.has("torch_dtype") and not text.has("dtype"):
        return _replace_layers(spec, spec.layers, dtype=_dtype(r))
    return spec


def _linear_spec(r: ConfigReader, split: bool) -> LinearAttentionSpec:
    spec = LinearAttentionSpec(
        r.int("linear_num_key_heads", 16),
        r.int("linear_num_value_heads", 32),
        r.int("linear_key_head_dim", 128),
        r.int("linear_value_head_dim", 128),
        r.int("linear_conv_kernel_dim", 4),
        split_projections=split,
    )
    if spec.value_heads % spec.key_heads:
        raise r.fail(
            "linear_num_value_heads",
            f"({spec.value_heads}) must be a multiple of linear_num_key_heads ({spec.key_heads})",
        )
    return spec


def _hybrid_types(r: ConfigReader, n: int) -> list[str]:
    types = r.str_list("layer_types", length=n, allowed=("linear_attention", "full_attention"))
    if types is None:
        interval = r.int("full_attention_interval", 4)
        types = ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(n)]
    return types


def read_qwen3_next(r: ConfigReader, family: str = "qwen3_next") -> ModelSpec:
    """Qwen3-Next (and Qwen3.5-MoE's text model): gated DeltaNet layers with every
    ``full_attention_interval``-th layer a gated GQA layer (q_proj also yields an output gate),
    quarter-rotary heads, MoE with a gated shared expert."""
    split = family != "qwen3_next"
    text = r
    if split and r.sub("text_config") is not None:  # qwen3_5_moe: the multimodal wrapper
        # The ignore below: not None: checked on the line above (two calls, so mypy cannot tell).
        text = r.sub("text_config")  # type: ignore[assignment]
    common = _common(text)
    n = text.int("num_hidden_layers")
    heads, kv, head_dim = _heads(text, common["hidden_size"], 256)
    bias = text.bool("attention_bias", False)
    rot = _rotary_dim(text, head_dim, 0.25)
    linear = _linear_spec(text, split)
    full = AttentionSpec(
        AttentionKind.GQA,
        heads,
        kv,
        head_dim,
        qkv_bias=bias,
        o_bias=bias,
        qk_norm=True,
        output_gate=True,
        rotary_dim=rot,
    )
    lin = AttentionSpec(AttentionKind.LINEAR, heads, kv, head_dim, rope=False, linear=linear)
    experts = text.int("num_experts", 512 if not split else 256, minimum=0)
    moe = (
        MoeSpec(
            experts,
            _top_k(text, max(experts, 1), 10 if not split else 8),
            text.int("moe_intermediate_size", 512),
            shared=MlpSpec(text.int("shared_expert_intermediate_size", 512)),
            shared_name="shared_expert",
            shared_gate=True,
        )
        if experts
        else None
    )
    dense = MlpSpec(text.int("intermediate_size", 5632)) if not split else None
    step = text.int("decoder_sparse_step", 1)
    dense_only = set(text.int_list("mlp_only_layers"))
    layers = []
    for i, t in enumerate(_hybrid_types(text, n)):
        sparse = moe is not None and (split or (i not in dense_only and (i + 1) % step == 0))
        mlp = moe if sparse else dense
        if mlp is None:
            raise text.fail("num_experts", "must be > 0 for a qwen3_5_moe model")
        layers.append(LayerSpec(full if t == "full_attention" else lin, mlp))
    dtype = _dtype(text) if text.has("torch_dtype") or text.has("dtype") else _dtype(r)
    return ModelSpec(
        family,
        layers=tuple(layers),
        naming=Naming(),
        norm_eps=text.float("rms_norm_eps", 1e-6),
        tie_embeddings=text.bool("tie_word_embeddings", False),
        rope_dim=rot,
        dtype=dtype,
        **common,
        **_rope(text),
    )


_V4_TYPES = ("sliding_attention", "compressed_sparse_attention", "heavily_compressed_attention")
_V4_RATIO_TYPES = {
    0: "sliding_attention",
    4: "compressed_sparse_attention",
    128: "heavily_compressed_attention",
}
# Parameters DeepSeek-V4 keeps in float32 (transformers' _keep_in_fp32_modules_strict), and the
# compressor/indexer projections its fp8 checkpoints ship in bf16 without scales.
_V4_FP32 = (
    "*.attn_hc.*",
    "*.ffn_hc.*",
    "model.hc_head.*",
    "*.sinks",
    "*.position_bias",
    "*.q_a_norm.*",
    "*.kv_norm.*",
    "*.input_layernorm.*",
    "*.post_attention_layernorm.*",
    "model.norm.*",
)
_V4_UNQUANTIZED = (
    "*.compressor.kv_proj",
    "*.compressor.gate_proj",
    "*.indexer.kv_proj",
    "*.indexer.gate_proj",
    "*.indexer.scorer.weights_proj",
    "*.mlp.gate",
)


def read_deepseek_v4(r: ConfigReader) -> ModelSpec:
    """DeepSeek-V4: every layer a shared-KV MQA over a sliding window, CSA layers adding KV
    compressed 4:1 with a lightning indexer, HCA layers KV compressed 128:1; grouped low-rank
    output projection, hyper-connections (``hc_mult`` residual streams), hash-routed MoE in the
    first layers. Attention schedule from ``layer_types`` or the released ``compress_ratios``."""
    common = _common(r)
    n = r.int("num_hidden_layers")
    heads = r.int("num_attention_heads")
    head_dim = r.int("head_dim", 512)
    rope_dim = r.int("qk_rope_head_dim", int(head_dim * r.float("partial_rotary_factor", 64 / 512)))
    rates = r.sub("compress_rates")
    csa = rates.int("compressed_sparse_attention", 4) if rates else r.int("compress_rate_csa", 4)
    hca = rates.int("heavily_compressed_attention", 128) if rates else r.int("compress_rate_hca", 128)
    types = r.str_list("layer_types", allowed=_V4_TYPES)
    if types is None and r.has("compress_ratios"):
        ratios = r.int_list("compress_ratios", minimum=0)
        bad = [x for x in ratios if x not in _V4_RATIO_TYPES]
        if bad:
            raise r.fail(
                "compress_ratios",
                f"has {bad[0]}; DeepSeek-V4 layers use 0, 4 or 128 (or give layer_types and compress_rates)",
            )
        types = [_V4_RATIO_TYPES[x] for x in ratios]
    if types is None:
        types = ["heavily_compressed_attention"] * min(n, 2) + [
            "compressed_sparse_attention" if i % 2 else "heavily_compressed_attention"
            for i in range(max(n - 2, 0))
        ]
    if len(types) < n:
        raise r.fail("layer_types", f"must have {n} entries (one per layer), got {len(types)}")
    types = types[:n]  # the released compress_ratios also list the MTP layer
    mlp_types = r.str_list("mlp_layer_types", allowed=("hash_moe", "moe"))
    if mlp_types is None:
        hashed = r.int("num_hash_layers", 3, minimum=0)
        mlp_types = ["hash_moe"] * min(n, hashed) + ["moe"] * max(0, n - hashed)
    groups, o_rank = r.int("o_groups", 8), r.int("o_lora_rank", 1024)
    if heads * head_dim % groups:
        raise r.fail(
            "o_groups", f"({groups}) must divide num_attention_heads * head_dim ({heads * head_dim})"
        )
    ih, idim = r.int("index_n_heads", 64), r.int("index_head_dim", 128)
    experts = r.int("n_routed_experts", 256)
    inter = r.int("moe_intermediate_size", 2048)
    k = _top_k(r, experts, 6)
    layers = []
    for i in range(n):
        t = types[i]
        comp = CompressedAttentionSpec(
            compress={
                "sliding_attention": 0,
                "compressed_sparse_attention": csa,
                "heavily_compressed_attention": hca,
            }[t],
            indexer=t == "compressed_sparse_attention",
            o_groups=groups,
            o_lora_rank=o_rank,
            index_heads=ih,
            index_head_dim=idim,
        )
        attn = AttentionSpec(
            AttentionKind.COMPRESSED,
            heads,
            1,
            head_dim,
            rope_interleaved=True,
            sinks=True,
            window=r.int("sliding_window", 128),
            q_lora_rank=r.int("q_lora_rank", 1024),
            rotary_dim=rope_dim,
            compressed=comp,
        )
        # The shared expert is transformers' DeepseekV4MLP at moe_intermediate_size.
        moe = MoeSpec(
            experts,
            k,
            inter,
            score="sqrtsoftplus",
            router_buffer=mlp_types[i] == "moe",
            hash_routing=mlp_types[i] == "hash_moe",
            fused_gate_up=False,
            shared=MlpSpec(inter),
        )
        layers.append(LayerSpec(attn, moe))
    q = r.sub("quantization_config")
    expert_dtype = r.str("expert_dtype", q.str("expert_dtype", "") if q is not None else "") or ""
    return ModelSpec(
        "deepseek_v4",
        layers=tuple(layers),
        naming=Naming(),
        norm_eps=r.float("rms_norm_eps", 1e-6),
        tie_embeddings=r.bool("tie_word_embeddings", False),
        rope_dim=rope_dim,
        dtype=_dtype(r),
        hc_mult=r.int("hc_mult", 4),
        compress_rope_theta=r.float("compress_rope_theta", 160000.0),
        fp32_params=_V4_FP32,
        unquantized=_V4_UNQUANTIZED,
        expert_dtype=expert_dtype,
        **common,
        **_rope(r),
    )


NEW_FAMILIES: dict[str, FamilyReader] = {
    "glm4_moe": read_glm4_moe,
    "glm_moe_dsa": read_glm_moe_dsa,
    "kimi_k2": read_kimi_k2,
    "kimi_k25": read_kimi_k25,
    "minimax_m2": read_minimax_m2,
    "deepseek_v4": read_deepseek_v4,
    "qwen3_next": read_qwen3_next,
    "qwen3_5_moe": lambda r: read_qwen3_next(r, "qwen3_5_moe"),
    "qwen3_5_moe_text": lambda r: read_qwen3_next(r, "qwen3_5_moe"),
}
