"""Hugging Face model families, read into one architecture description (``ModelSpec``).

Each family reader turns a ``config.json`` into a ``ModelSpec`` with the same defaults as
transformers' config class, so that ``placer.frontends.hf_builder`` builds every family from
one code path and the parameter counts equal transformers' (checked by the tests against
models built on the meta device). The family name (``model_type``) is the only string
dispatch, and it stops here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from placer.errors import UserError
from placer.frontends.hf_reader import ConfigReader


class AttentionKind(enum.Enum):
    GQA = "gqa"          # separate q/k/v projections, grouped KV heads
    FUSED_QKV = "fused"  # GPT-2's c_attn: one [H, 3H] projection
    MLA = "mla"          # DeepSeek's multi-head latent attention
    LINEAR = "linear"    # Qwen3-Next's gated DeltaNet: a fixed-size recurrent state, no KV
    COMPRESSED = "compressed"  # DeepSeek-V4: shared-KV MQA, sliding window + compressed KV


@dataclass(frozen=True)
class LinearAttentionSpec:
    """A gated DeltaNet layer (``linear_attn``): fused or split input projections, a causal
    depthwise convolution over q/k/v, and a per-value-head recurrent state."""

    key_heads: int
    value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int
    split_projections: bool = False  # Qwen3.5: in_proj_qkv/z/b/a; Qwen3-Next: in_proj_qkvz/ba

    @property
    def conv_dim(self) -> int:
        return 2 * self.key_heads * self.key_head_dim + self.value_heads * self.value_head_dim


@dataclass(frozen=True)
class CompressedAttentionSpec:
    """DeepSeek-V4 attention: grouped low-rank output projection and, unless ``compress`` is 0
    (sliding-window-only layers), a compressor pooling every ``compress`` tokens into one KV
    entry; CSA layers (``indexer``) pool two overlapping series and run a lightning indexer."""

    compress: int = 0
    indexer: bool = False
    o_groups: int = 1
    o_lora_rank: int = 0
    index_heads: int = 0
    index_head_dim: int = 0


@dataclass(frozen=True)
class AttentionSpec:
    kind: AttentionKind
    num_heads: int
    num_kv_heads: int
    head_dim: int
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False       # per-head RMSNorm weights q_norm/k_norm (Qwen3)
    rope: bool = True
    rope_interleaved: bool = False
    window: int = 0             # sliding-window (or chunked) attention: tokens kept, 0 = all
    sinks: bool = False         # per-head attention-sink logits (gpt-oss)
    q_lora_rank: int = 0        # MLA fields
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    rotary_dim: int = 0         # partial rotary: dims rotated per head (0 = all of head_dim)
    qk_norm_whole: bool = False  # MiniMax-M2: q_norm/k_norm over all heads at once, not per head
    output_gate: bool = False   # Qwen3-Next: q_proj also yields a sigmoid gate on the output
    index_heads: int = 0        # GLM-5 (DSA): lightning-indexer heads on this layer (0 = none)
    index_head_dim: int = 0
    linear: LinearAttentionSpec | None = None
    compressed: CompressedAttentionSpec | None = None


@dataclass(frozen=True)
class MlpSpec:
    """A dense MLP: SwiGLU (gate/up/down) or GPT-2's GELU MLP (c_fc/c_proj)."""

    intermediate: int
    gated: bool = True
    bias: bool = False


@dataclass(frozen=True)
class MoeSpec:
    """A mixture of experts with per-expert MLPs, a router and optional shared experts."""

    num_experts: int
    top_k: int
    expert_intermediate: int
    router_name: str = "gate"
    router_bias: bool = False
    router_buffer: bool = False      # DeepSeek's e_score_correction_bias (a buffer, not a parameter)
    score: str = "softmax"           # "softmax", "sigmoid" or "sqrtsoftplus" on the router logits
    hash_routing: bool = False       # DeepSeek-V4 hash layers: experts from a tid2eid[token] table
    shared_gate: bool = False        # Qwen3-Next: a sigmoid gate [H, 1] on the shared expert
    fused_gate_up: bool = False      # gpt-oss: one gate_up_proj [H, 2I] with biases per expert
    expert_bias: bool = False
    shared: MlpSpec | None = None
    shared_name: str = "shared_experts"


@dataclass(frozen=True)
class LayerSpec:
    attention: AttentionSpec
    mlp: MlpSpec | MoeSpec


@dataclass(frozen=True)
class Naming:
    """Module names, so that weight names and node scopes equal the HF parameter names."""

    embed: str = "model.embed_tokens"
    positions: str = ""              # learned position embedding (GPT-2's wpe)
    layers: str = "model.layers"
    attn: str = "self_attn"
    linear_attn: str = "linear_attn"  # Qwen3-Next's gated DeltaNet layers
    mlp: str = "mlp"
    input_norm: str = "input_layernorm"
    post_norm: str = "post_attention_layernorm"
    final_norm: str = "model.norm"
    rotary: str = "model.rotary_emb"
    head: str = "lm_head"


@dataclass(frozen=True)
class ModelSpec:
    family: str
    vocab_size: int
    hidden_size: int
    layers: tuple[LayerSpec, ...]
    naming: Naming
    norm: str = "rms"                # "rms" or "layer" (LayerNorm with bias)
    norm_eps: float = 1e-6
    tie_embeddings: bool = False
    max_positions: int = 0           # rows of a learned position table
    rope_theta: float = 10000.0
    rope_dim: int = 0                # rotary dims (0: no rotary anywhere)
    rope_scaling: dict | None = None
    dtype: str = "bfloat16"
    hc_mult: int = 0                 # DeepSeek-V4 hyper-connections: residual streams (0 = plain)
    compress_rope_theta: float = 0.0  # DeepSeek-V4: rotary base of the compressed layers
    fp32_params: tuple[str, ...] = ()   # parameter-name patterns the checkpoint keeps in float32
    unquantized: tuple[str, ...] = ()   # module patterns a quantized checkpoint leaves unquantized
    expert_dtype: str = ""           # DeepSeek-V4: "fp4" routed experts in an fp8 checkpoint


FamilyReader = Callable[[ConfigReader], ModelSpec]


def _common(r: ConfigReader) -> dict:
    # the position limit is not placed (--context is), but a config giving a nonsense one is
    # corrupt, not a model: a positive integer when present
    r.int("max_position_embeddings", None)
    return dict(vocab_size=r.int("vocab_size"), hidden_size=r.int("hidden_size"))


def _heads(r: ConfigReader, hidden: int, default_head_dim: int | None = None) -> tuple[int, int, int]:
    heads = r.int("num_attention_heads")
    kv = r.int("num_key_value_heads", heads)
    if heads % kv:
        raise r.fail("num_key_value_heads", f"({kv}) must divide num_attention_heads ({heads})")
    if default_head_dim is None:
        if hidden % heads and not r.has("head_dim"):
            raise r.fail("num_attention_heads", f"({heads}) must divide hidden_size ({hidden}) "
                         "or the config must set head_dim")
        default_head_dim = hidden // heads
    return heads, kv, r.int("head_dim", default_head_dim)


# Numbers of a rope_scaling/rope_parameters object, each a finite number when given (the first
# seven > 0); the llama3 scaling needs the first four (its inverse frequencies are computed from them).
_ROPE_NUMBERS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings",
                 "rope_theta", "beta_fast", "beta_slow", "attention_factor", "mscale", "mscale_all_dim",
                 "partial_rotary_factor")
_LLAMA3_ROPE = _ROPE_NUMBERS[:4]
_POSITIVE_ROPE = _ROPE_NUMBERS[:7]


def _rope(r: ConfigReader) -> dict:
    key = "rope_parameters" if r.raw("rope_parameters") else "rope_scaling"
    params = r.raw(key)
    theta = r.float("rope_theta", 0.0)
    if theta < 0:
        raise r.fail("rope_theta", f"must be > 0, got {theta!r}")
    if params is not None and not isinstance(params, dict):
        raise r.fail(key, f"must be a JSON object or null, got {params!r}")
    if params is not None:
        nested = r.sub(key)
        assert nested is not None
        for name in _ROPE_NUMBERS:
            if nested.has(name) and nested.float(name, 0.0) <= 0 and name in _POSITIVE_ROPE:
                raise nested.fail(name, f"must be a number > 0, got {params[name]!r}")
        if params.get("rope_type") == "llama3":
            for name in _LLAMA3_ROPE:
                if not nested.has(name):
                    raise nested.fail(name, "is missing; the llama3 rope scaling needs factor, "
                                      "low_freq_factor, high_freq_factor, original_max_position_embeddings")
    if not theta and isinstance(params, dict) and isinstance(params.get("rope_theta"), (int, float)):
        theta = float(params["rope_theta"])
    return dict(rope_theta=theta or 10000.0, rope_scaling=params)


def _rotary_dim(r: ConfigReader, head_dim: int, default_factor: float = 1.0) -> int:
    """Rotated dims per head: ``partial_rotary_factor`` (top level or in ``rope_parameters``)
    or MiniMax's ``rotary_dim``; the whole head by default."""
    if r.has("rotary_dim"):
        return r.int("rotary_dim")
    params = r.raw("rope_parameters")
    factor = r.float("partial_rotary_factor", 0.0)
    nested = params.get("partial_rotary_factor") if isinstance(params, dict) else None
    if not factor and isinstance(nested, (int, float)):
        factor = float(nested)
    return int(head_dim * (factor or default_factor))


def _dtype(r: ConfigReader) -> str:
    return r.str("torch_dtype", r.str("dtype", "bfloat16"))


def _layer_types(r: ConfigReader, n: int, default: list[str]) -> list[str]:
    allowed = ("full_attention", "sliding_attention", "chunked_attention")
    return r.str_list("layer_types", length=n, allowed=allowed) or default


def _window(r: ConfigReader, key: str = "sliding_window") -> int:
    return r.int(key, 0, minimum=1) if r.has(key) else 0


def read_llama_like(r: ConfigReader, family: str, *, qkv_bias: bool | None = None,
                    qk_norm: bool = False, sliding: str = "none") -> ModelSpec:
    """llama, mistral, qwen2, qwen3 (dense decoders with SwiGLU MLPs)."""
    common = _common(r)
    hidden = common["hidden_size"]
    n = r.int("num_hidden_layers")
    heads, kv, head_dim = _heads(r, hidden)
    bias = r.bool("attention_bias", False) if qkv_bias is None else qkv_bias
    o_bias = r.bool("attention_bias", False) if family in ("llama", "qwen3") else False
    window = 0
    types = ["full_attention"] * n
    if sliding == "all":                      # mistral: every layer when sliding_window is set
        window = _window(r)
        types = ["sliding_attention" if window else "full_attention"] * n
    elif sliding == "qwen":                   # qwen2/3: layers >= max_window_layers when enabled
        if r.bool("use_sliding_window", False):
            window = r.int("sliding_window", 4096)
            first = r.int("max_window_layers", 28, minimum=0)
            types = ["sliding_attention" if i >= first else "full_attention" for i in range(n)]
        types = _layer_types(r, n, types)
        if "sliding_attention" in types and not window:
            window = r.int("sliding_window", 4096)
    mlp = MlpSpec(r.int("intermediate_size"), bias=r.bool("mlp_bias", False))
    layers = tuple(
        LayerSpec(AttentionSpec(AttentionKind.GQA, heads, kv, head_dim, qkv_bias=bias, o_bias=o_bias,
                                qk_norm=qk_norm, window=window if t == "sliding_attention" else 0), mlp)
        for t in types)
    return ModelSpec(family, layers=layers, naming=Naming(), norm_eps=r.float("rms_norm_eps", 1e-6),
                     tie_embeddings=r.bool("tie_word_embeddings", False), rope_dim=head_dim,
                     dtype=_dtype(r), **common, **_rope(r))


def read_mixtral(r: ConfigReader) -> ModelSpec:
    common = _common(r)
    hidden = common["hidden_size"]
    n = r.int("num_hidden_layers")
    heads, kv, head_dim = _heads(r, hidden)
    window = _window(r)
    experts = r.int("num_local_experts", 8)
    moe = MoeSpec(experts, _top_k(r, experts, 2), r.int("intermediate_size"))
    attn = AttentionSpec(AttentionKind.GQA, heads, kv, head_dim, window=window)
    return ModelSpec("mixtral", layers=(LayerSpec(attn, moe),) * n, naming=Naming(),
                     norm_eps=r.float("rms_norm_eps", 1e-5),
                     tie_embeddings=r.bool("tie_word_embeddings", False),
                     rope_dim=head_dim, dtype=_dtype(r), **common, **_rope(r))


def _top_k(r: ConfigReader, experts: int, default: int) -> int:
    k = r.int("num_experts_per_tok", default)
    if k > experts:
        raise r.fail("num_experts_per_tok", f"({k}) must not exceed the number of experts ({experts})")
    return k


def read_qwen3_moe(r: ConfigReader) -> ModelSpec:
    common = _common(r)
    hidden = common["hidden_size"]
    n = r.int("num_hidden_layers")
    heads, kv, head_dim = _heads(r, hidden)
    bias = r.bool("attention_bias", False)
    experts = r.int("num_experts", 128, minimum=0)
    step = r.int("decoder_sparse_step", 1)
    dense_only = set(r.int_list("mlp_only_layers"))
    dense = MlpSpec(r.int("intermediate_size"))
    moe = MoeSpec(experts, _top_k(r, max(experts, 1), 8), r.int("moe_intermediate_size")) if experts else None
    window = r.int("sliding_window", 4096) if r.bool("use_sliding_window", False) else 0
    first = r.int("max_window_layers", n, minimum=0)
    layers = []
    for i in range(n):
        sparse = moe is not None and i not in dense_only and (i + 1) % step == 0
        attn = AttentionSpec(AttentionKind.GQA, heads, kv, head_dim, qkv_bias=bias, o_bias=bias, qk_norm=True,
                             window=window if window and i >= first else 0)
        # The ignore below: sparse implies moe is not None, which mypy cannot see.
        layers.append(LayerSpec(attn, moe if sparse else dense))  # type: ignore[arg-type]
    return ModelSpec("qwen3_moe", layers=tuple(layers), naming=Naming(),
                     norm_eps=r.float("rms_norm_eps", 1e-6),
                     tie_embeddings=r.bool("tie_word_embeddings", False), rope_dim=head_dim, dtype=_dtype(r),
                     **common, **_rope(r))


def read_gpt2(r: ConfigReader) -> ModelSpec:
    hidden = r.int_alias(("n_embd", "hidden_size"))
    n = r.int_alias(("n_layer", "num_hidden_layers"))
    heads = r.int_alias(("n_head", "num_attention_heads"))
    if hidden % heads:
        raise r.fail("n_head", f"({heads}) must divide n_embd ({hidden})")
    inner = r.int("n_inner", 4 * hidden)
    attn = AttentionSpec(AttentionKind.FUSED_QKV, heads, heads, hidden // heads, qkv_bias=True, o_bias=True,
                         rope=False)
    naming = Naming(embed="transformer.wte", positions="transformer.wpe", layers="transformer.h", attn="attn",
                    input_norm="ln_1", post_norm="ln_2", final_norm="transformer.ln_f", rotary="")
    return ModelSpec("gpt2", vocab_size=r.int("vocab_size"), hidden_size=hidden,
                     layers=(LayerSpec(attn, MlpSpec(inner, gated=False, bias=True)),) * n, naming=naming,
                     norm="layer", norm_eps=r.float("layer_norm_epsilon", 1e-5),
                     tie_embeddings=r.bool("tie_word_embeddings", True),
                     max_positions=r.int_alias(("n_positions", "max_position_embeddings"), 1024),
                     rope_dim=0, dtype=r.str("torch_dtype", "float32"))


def read_llama4(r: ConfigReader) -> ModelSpec:
    """Llama 4: the text model only (``text_config`` of a multimodal config); the vision tower
    and projector are not placed."""
    text = r.sub("text_config")
    if text is None:
        if r.str("model_type") == "llama4":
            raise r.fail("text_config", "is missing; a llama4 config needs its text_config object")
        text = r
    common = _common(text)
    hidden = common["hidden_size"]
    n = text.int("num_hidden_layers")
    heads, kv, head_dim = _heads(text, hidden)
    bias = text.bool("attention_bias", False)
    interval = text.int("no_rope_layer_interval", 4)
    use_rope = text.int_list("no_rope_layers", length=n, minimum=0) or [
        int((i + 1) % interval != 0) for i in range(n)]
    step = text.int("interleave_moe_layer_step", 1)
    moe_layers = set(text.int_list("moe_layers") if text.has("moe_layers") else range(step - 1, n, step))
    # An explicit null disables chunked attention; an absent field means transformers' 8192.
    chunk = 0 if "attention_chunk_size" in text.data and not text.has("attention_chunk_size") else \
        text.int("attention_chunk_size", 8192)
    types = _layer_types(text, n, ["chunked_attention" if u else "full_attention" for u in use_rope])
    experts = text.int("num_local_experts", 16)
    inter = text.int("intermediate_size")
    moe = MoeSpec(experts, _top_k(text, experts, 1), inter, router_name="router", score="sigmoid",
                  shared=MlpSpec(inter), shared_name="shared_expert")
    dense = MlpSpec(text.int("intermediate_size_mlp"))
    layers = tuple(
        LayerSpec(AttentionSpec(AttentionKind.GQA, heads, kv, head_dim, qkv_bias=bias, o_bias=bias,
                                rope=bool(use_rope[i]), rope_interleaved=True,
                                window=chunk if types[i] == "chunked_attention" else 0),
                  moe if i in moe_layers else dense)
        for i in range(n))
    return ModelSpec("llama4", layers=layers, naming=Naming(mlp="feed_forward"),
                     norm_eps=text.float("rms_norm_eps", 1e-5),
                     tie_embeddings=text.bool("tie_word_embeddings", False), rope_dim=head_dim,
                     dtype=_dtype(text) if text.has("torch_dtype") or text.has("dtype") else _dtype(r),
                     **common, **_rope(text))


def read_gpt_oss(r: ConfigReader) -> ModelSpec:
    common = _common(r)
    hidden = common["hidden_size"]
    n = r.int("num_hidden_layers")
    heads, kv, head_dim = _heads(r, hidden)
    bias = r.bool("attention_bias", True)
    window = r.int("sliding_window", 128)
    types = _layer_types(r, n, ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)])
    experts = r.int("num_local_experts", 128)
    moe = MoeSpec(experts, _top_k(r, experts, 4), r.int("intermediate_size"), router_name="router",
                  router_bias=True, fused_gate_up=True, expert_bias=True)
    layers = tuple(
        LayerSpec(AttentionSpec(AttentionKind.GQA, heads, kv, head_dim, qkv_bias=bias, o_bias=bias,
                                sinks=True, window=window if t == "sliding_attention" else 0), moe)
        for t in types)
    return ModelSpec("gpt_oss", layers=layers, naming=Naming(), norm_eps=r.float("rms_norm_eps", 1e-5),
                     tie_embeddings=r.bool("tie_word_embeddings", False), rope_dim=head_dim, dtype=_dtype(r),
                     **common, **_rope(r))


_DEEPSEEK_V3_DEFAULTS = dict(qk_nope_head_dim=128, v_head_dim=128, q_lora_rank=1536)


def read_deepseek_v3(r: ConfigReader, family: str = "deepseek_v3",
                     defaults: dict[str, int] = _DEEPSEEK_V3_DEFAULTS) -> ModelSpec:
    """DeepSeek-V3. The multi-token-prediction layers (``num_nextn_predict_layers``) are not
    built: transformers' DeepseekV3ForCausalLM does not build them either, and a server uses
    them only for speculative decoding, so the published 671B (not 685B) is what gets placed.
    ``defaults`` are the config class's for the MLA dims (GLM-5 differs from DeepSeek-V3)."""
    common = _common(r)
    n = r.int("num_hidden_layers")
    heads = r.int("num_attention_heads")
    rope_dim = r.int("qk_rope_head_dim", 64)
    nope = r.int("qk_nope_head_dim", defaults["qk_nope_head_dim"])
    v_dim = r.int("v_head_dim", defaults["v_head_dim"])
    # q_lora_rank null: queries use one q_proj (DeepSeek-V2-Lite); absent: the config class's.
    q_rank = 0 if "q_lora_rank" in r.data and not r.has("q_lora_rank") else r.int("q_lora_rank",
                                                                                 defaults["q_lora_rank"])
    kv_rank = r.int("kv_lora_rank", 512)
    attn = AttentionSpec(AttentionKind.MLA, heads, heads, nope + rope_dim, o_bias=False,
                         qkv_bias=r.bool("attention_bias", False),
                         rope_interleaved=r.bool("rope_interleave", True),
                         q_lora_rank=q_rank, kv_lora_rank=kv_rank, qk_rope_head_dim=rope_dim,
                         qk_nope_head_dim=nope, v_head_dim=v_dim)
    experts = r.int("n_routed_experts", 256)
    inter = r.int("moe_intermediate_size")
    moe = MoeSpec(experts, _top_k(r, experts, 8), inter, router_buffer=True, score="sigmoid",
                  shared=MlpSpec(inter * r.int("n_shared_experts", 1)))
    first_dense = r.int("first_k_dense_replace", 3, minimum=0)
    dense = MlpSpec(r.int("intermediate_size"))
    layers = tuple(LayerSpec(attn, moe if i >= first_dense else dense) for i in range(n))
    return ModelSpec(family, layers=layers, naming=Naming(), norm_eps=r.float("rms_norm_eps", 1e-6),
                     tie_embeddings=r.bool("tie_word_embeddings", False), rope_dim=rope_dim, dtype=_dtype(r),
                     **common, **_rope(r))


FAMILIES: dict[str, FamilyReader] = {
    "llama": lambda r: read_llama_like(r, "llama"),
    "mistral": lambda r: read_llama_like(r, "mistral", qkv_bias=False, sliding="all"),
    "qwen2": lambda r: read_llama_like(r, "qwen2", qkv_bias=True, sliding="qwen"),
    "qwen3": lambda r: read_llama_like(r, "qwen3", qk_norm=True, sliding="qwen"),
    "mixtral": read_mixtral,
    "qwen3_moe": read_qwen3_moe,
    "gpt2": read_gpt2,
    "llama4": read_llama4,
    "llama4_text": read_llama4,
    "gpt_oss": read_gpt_oss,
    "deepseek_v3": read_deepseek_v3,
}


def read_spec(r: ConfigReader) -> ModelSpec:
    """The architecture of the config read by ``r``; UserError for an unknown ``model_type``."""
    family = r.str("model_type")
    reader = FAMILIES.get(family)
    if reader is None:
        raise r.fail("model_type", f"{family!r} is not supported; supported: {', '.join(sorted(FAMILIES))}")
    spec = reader(r)
    if spec.rope_dim % 2 or any(l.attention.rope and spec.rope_dim == 0 for l in spec.layers
                                if l.attention.kind not in (AttentionKind.FUSED_QKV, AttentionKind.LINEAR)):
        raise UserError(f"{r.source}: rotary dimension {spec.rope_dim} must be even and > 0")
    return spec
