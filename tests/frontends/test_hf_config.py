"""from_config against transformers models built on the meta device (the parameter oracle),
native precisions, MoE structure, KV declarations and one-line errors for bad fields."""

from __future__ import annotations

import json
import math

import pytest

from placer.errors import UserError
from placer.frontends.hf_config import from_config
from placer.ir import DType, OpKind, WeightRole, verify

_BASE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=100,
)
TINY = {
    "llama": dict(model_type="llama", **_BASE, attention_bias=True, mlp_bias=True),
    "llama_tied": dict(model_type="llama", **_BASE, tie_word_embeddings=True),
    "mistral": dict(model_type="mistral", **_BASE, sliding_window=16, head_dim=32),
    "qwen2": dict(
        model_type="qwen2", **_BASE, use_sliding_window=True, sliding_window=16, max_window_layers=1
    ),
    "qwen3": dict(model_type="qwen3", **_BASE, head_dim=32, tie_word_embeddings=True),
    "mixtral": dict(model_type="mixtral", **_BASE, num_local_experts=4, num_experts_per_tok=2),
    "qwen3_moe": dict(
        model_type="qwen3_moe",
        **{**_BASE, "num_hidden_layers": 3},
        moe_intermediate_size=32,
        num_experts=4,
        num_experts_per_tok=2,
        head_dim=16,
        mlp_only_layers=[0],
    ),
    "gpt2": dict(
        model_type="gpt2",
        n_embd=64,
        n_layer=2,
        n_head=4,
        vocab_size=100,
        n_positions=32,
        bos_token_id=0,
        eos_token_id=0,
    ),
    "gpt_oss": dict(
        model_type="gpt_oss",
        **{**_BASE, "intermediate_size": 64},
        num_local_experts=4,
        num_experts_per_tok=2,
        head_dim=16,
        sliding_window=8,
    ),
    "deepseek_v3": dict(
        model_type="deepseek_v3",
        **{**_BASE, "num_hidden_layers": 3, "num_key_value_heads": 4},
        moe_intermediate_size=32,
        first_k_dense_replace=1,
        n_routed_experts=4,
        num_experts_per_tok=2,
        n_shared_experts=2,
        q_lora_rank=32,
        kv_lora_rank=16,
        qk_rope_head_dim=8,
        qk_nope_head_dim=16,
        v_head_dim=16,
        n_group=2,
        topk_group=1,
    ),
    "deepseek_v2_lite_q": dict(
        model_type="deepseek_v3",
        **{**_BASE, "num_hidden_layers": 2, "num_key_value_heads": 4},
        moe_intermediate_size=32,
        first_k_dense_replace=1,
        n_routed_experts=4,
        num_experts_per_tok=2,
        q_lora_rank=None,
        kv_lora_rank=16,
        qk_rope_head_dim=8,
        qk_nope_head_dim=16,
        v_head_dim=16,
        n_group=2,
        topk_group=1,
    ),
    "llama4_text": dict(
        model_type="llama4_text",
        **{**_BASE, "num_hidden_layers": 4, "intermediate_size": 32},
        intermediate_size_mlp=128,
        head_dim=16,
        num_local_experts=4,
        num_experts_per_tok=1,
        interleave_moe_layer_step=2,
    ),
}
_MOE_SMALL = dict(moe_intermediate_size=32, num_experts_per_tok=2)
_LINEAR = dict(linear_num_value_heads=4, linear_num_key_heads=2, linear_key_head_dim=8,
               linear_value_head_dim=16, linear_conv_kernel_dim=4)
_V4_TYPES = ["sliding_attention", "compressed_sparse_attention", "heavily_compressed_attention",
             "compressed_sparse_attention"]
TINY.update({
    "glm4_moe": dict(model_type="glm4_moe", **_BASE, **_MOE_SMALL, n_routed_experts=4,
                     first_k_dense_replace=1, use_qk_norm=True, head_dim=16, attention_bias=True),
    "minimax_m2": dict(model_type="minimax_m2", **{**_BASE, "intermediate_size": 32},
                       num_local_experts=4, num_experts_per_tok=2, head_dim=16, rotary_dim=8),
    "glm_moe_dsa": dict(model_type="glm_moe_dsa",
                        **{**_BASE, "num_hidden_layers": 3, "num_key_value_heads": 4}, **_MOE_SMALL,
                        n_routed_experts=4, first_k_dense_replace=1, q_lora_rank=32, kv_lora_rank=16,
                        qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16, index_head_dim=16,
                        index_n_heads=2, index_topk=4, index_topk_pattern="FSF"),
    "kimi_k2": dict(TINY["deepseek_v3"], model_type="kimi_k2"),
    # No intermediate_size: transformers maps it onto moe_intermediate_size for this family.
    "deepseek_v4": dict(model_type="deepseek_v4",
                        **{**{k: v for k, v in _BASE.items() if k != "intermediate_size"},
                           "num_hidden_layers": 4, "num_key_value_heads": 1},
                        head_dim=32, qk_rope_head_dim=8, q_lora_rank=32, moe_intermediate_size=32,
                        n_routed_experts=4, num_experts_per_tok=2, o_groups=2, o_lora_rank=16,
                        index_n_heads=2, index_head_dim=16, index_topk=4, sliding_window=32, hc_mult=2,
                        num_hash_layers=1, layer_types=_V4_TYPES,
                        compress_rates={"compressed_sparse_attention": 4, "heavily_compressed_attention": 8}),
    "qwen3_next": dict(model_type="qwen3_next", **{**_BASE, "num_hidden_layers": 4}, head_dim=16,
                       **_MOE_SMALL, shared_expert_intermediate_size=48, num_experts=4, mlp_only_layers=[1],
                       **_LINEAR),
})
TINY["kimi_k25"] = dict(model_type="kimi_k25", text_config=dict(TINY["kimi_k2"]))
TINY["qwen3_5_moe"] = dict(model_type="qwen3_5_moe", text_config=dict(
    model_type="qwen3_5_moe_text", **{**_BASE, "num_hidden_layers": 4}, head_dim=16, **_MOE_SMALL,
    shared_expert_intermediate_size=48, num_experts=4, **_LINEAR))
# The multimodal form: only text_config is placed.
TINY["llama4"] = dict(
    model_type="llama4",
    text_config=dict(TINY["llama4_text"]),
    vision_config=dict(
        model_type="llama4_vision_model",
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    ),
)


def _transformers_config(config: dict) -> tuple[str, dict]:
    """The model type and fields transformers builds the (text) causal LM from: multimodal
    configs place their text_config; Kimi-K2 is DeepSeek-V3 under another name."""
    d = dict(config)
    model_type = d.pop("model_type")
    if model_type in ("llama4", "kimi_k25", "qwen3_5_moe"):
        d = dict(d["text_config"])
        model_type = d.pop("model_type")
    d.pop("quantization_config", None)
    return ("deepseek_v3" if model_type == "kimi_k2" else model_type), d


def transformers_parameters(config: dict) -> int:
    """Parameters of transformers' causal LM for ``config``, built on the meta device."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model_type, d = _transformers_config(config)
    cfg = transformers.AutoConfig.for_model(model_type, **d)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("key", sorted(TINY))
def test_parameters_equal_transformers(key: str) -> None:
    graph = from_config(TINY[key])
    verify(graph, require_types=True)
    assert graph.parameter_count() == transformers_parameters(TINY[key])


@pytest.mark.parametrize("key", sorted(TINY))
def test_shape_inference_agrees_with_builder_types(key: str) -> None:
    infer = pytest.importorskip("placer.ir.passes.infer_shapes")
    graph = from_config(TINY[key])
    inferred = infer.infer_shapes(graph)
    for value, t in graph.types.items():
        assert inferred.types[value] == t, value


def test_config_file_and_folder(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY["llama"]))
    a = from_config(tmp_path / "config.json")
    b = from_config(str(tmp_path))
    assert a.parameter_count() == b.parameter_count() == transformers_parameters(TINY["llama"])


def _kv(graph) -> dict[str, tuple[int, int]]:
    return {kv.name: (kv.elements_per_token, kv.window) for kv in graph.kv_caches}


def test_kv_caches_gqa_and_sliding_windows() -> None:
    kv = _kv(from_config(TINY["mistral"]))  # 2 KV heads x head_dim 32, every layer sliding
    assert kv["model.layers.0.self_attn.key"] == (64, 16)
    assert kv["model.layers.1.self_attn.value"] == (64, 16)
    kv = _kv(from_config(TINY["qwen2"]))  # sliding from max_window_layers = 1 on
    assert kv["model.layers.0.self_attn.key"] == (32, 0)
    assert kv["model.layers.1.self_attn.key"] == (32, 16)
    kv = _kv(from_config(TINY["gpt_oss"]))  # alternating, sliding first
    assert [kv[f"model.layers.{i}.self_attn.key"][1] for i in range(2)] == [8, 0]
    kv = _kv(from_config(TINY["llama4_text"]))  # every 4th layer is NoPE with full attention
    assert [kv[f"model.layers.{i}.self_attn.key"][1] for i in range(4)] == [8192, 8192, 8192, 0]


def test_kv_cache_mla_is_compressed_latent_plus_rope_key() -> None:
    kv = _kv(from_config(TINY["deepseek_v3"]))
    assert len(kv) == 2 * 3
    assert kv["model.layers.2.self_attn.latent"] == (16, 0)
    assert kv["model.layers.2.self_attn.rope_key"] == (8, 0)


def test_experts_are_separate_weights_and_scopes() -> None:
    graph = from_config(TINY["deepseek_v3"])
    scopes = {n.scope for n in graph.nodes}
    for e in range(4):
        assert f"model.layers.1.mlp.experts.{e}" in scopes
        assert f"model.layers.1.mlp.experts.{e}.gate_proj.weight" in graph.weights
    assert "model.layers.1.mlp.shared_experts" in scopes
    bias = graph.weights["model.layers.1.mlp.gate.e_score_correction_bias"]
    assert bias.role is WeightRole.CONSTANT  # a buffer in transformers, not a parameter
    # The router splits its gates into one [batch, seq, 1] value per expert.
    (split,) = [n for n in graph.nodes if n.scope == "model.layers.1.mlp.gate" and n.op is OpKind.SPLIT]
    assert len(split.outputs) == 4
    # Expert e reads the router's input, its own gate, and the running sum of expert e-1.
    consumers = graph.consumers
    for e, gate in enumerate(split.outputs):
        (mul,) = consumers[gate]
        assert mul.scope == f"model.layers.1.mlp.experts.{e}"


def test_gpt_oss_mxfp4_experts_bf16_elsewhere() -> None:
    config = dict(
        TINY["gpt_oss"],
        quantization_config={
            "quant_method": "mxfp4",
            "modules_to_not_convert": [
                "model.layers.*.self_attn",
                "model.layers.*.mlp.router",
                "model.embed_tokens",
                "lm_head",
            ],
        },
    )
    graph = from_config(config)
    assert graph.parameter_count() == transformers_parameters(config)
    w = graph.weights
    up = w["model.layers.0.mlp.experts.3.gate_up_proj"]
    assert up.type.dtype is DType.MXFP4 and up.type.shape == (64, 128)
    assert up.nbytes == 64 * 128 // 2 + 64 * 128 // 32  # 4-bit elements + one byte per 32
    assert w["model.layers.0.mlp.experts.3.gate_up_proj_bias"].type.dtype is DType.BFLOAT16
    assert w["model.layers.0.self_attn.q_proj.weight"].type.dtype is DType.BFLOAT16
    assert w["model.layers.0.mlp.router.weight"].type.dtype is DType.BFLOAT16
    assert w["model.layers.0.self_attn.sinks"].numel == 4
    assert w["lm_head.weight"].type.dtype is DType.BFLOAT16


def test_deepseek_fp8_block_scales_counted_exactly() -> None:
    config = dict(
        TINY["deepseek_v3"],
        hidden_size=200,
        quantization_config={
            "quant_method": "fp8",
            "fmt": "e4m3",
            "weight_block_size": [128, 128],
            "activation_scheme": "dynamic",
        },
    )
    graph = from_config(config)
    w = graph.weights
    for name, (d_in, d_out) in {
        "model.layers.0.self_attn.q_a_proj.weight": (200, 32),
        "model.layers.0.mlp.down_proj.weight": (128, 200),
        "model.layers.1.mlp.experts.2.up_proj.weight": (200, 32),
    }.items():
        assert w[name].type.dtype is DType.FP8_E4M3
        assert w[name].nbytes == d_in * d_out + math.ceil(d_in / 128) * math.ceil(d_out / 128) * 4
    for name in (
        "model.embed_tokens.weight",
        "lm_head.weight",
        "model.layers.1.mlp.gate.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.self_attn.kv_a_layernorm.weight",
    ):
        assert w[name].type.dtype is DType.BFLOAT16, name


# A required field of each family and a field that must be an integer.
REQUIRED = {k: ("n_embd" if k == "gpt2" else "hidden_size") for k in TINY}
MALFORMED = {k: ("n_layer" if k == "gpt2" else "num_hidden_layers") for k in TINY}


def _without(config: dict, field: str) -> dict:
    if "text_config" in config:
        return dict(config, text_config={k: v for k, v in config["text_config"].items() if k != field})
    return {k: v for k, v in config.items() if k != field}


def _with(config: dict, field: str, value: object) -> dict:
    if "text_config" in config:
        return dict(config, text_config=dict(config["text_config"], **{field: value}))
    return dict(config, **{field: value})


@pytest.mark.parametrize("key", sorted(TINY))
def test_missing_field_names_it(key: str, tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_without(TINY[key], REQUIRED[key])))
    with pytest.raises(UserError, match=rf"{path}.*'{REQUIRED[key]}' is missing"):
        from_config(path)


@pytest.mark.parametrize("key", sorted(TINY))
def test_malformed_field_names_it(key: str) -> None:
    with pytest.raises(UserError, match=rf"'{MALFORMED[key]}' must be an integer, got 'two'"):
        from_config(_with(TINY[key], MALFORMED[key], "two"))


@pytest.mark.parametrize(
    "change, field",
    [
        ({"model_type": "no_such_family"}, "model_type"),
        ({"num_key_value_heads": 3}, "num_key_value_heads"),
        ({"num_experts_per_tok": 9}, "num_experts_per_tok"),
        ({"tie_word_embeddings": "yes"}, "tie_word_embeddings"),
        ({"quantization_config": {"quant_method": "hqq"}}, "quant_method"),
        ({"quantization_config": {"quant_method": "fp8", "weight_block_size": [128]}}, "weight_block_size"),
    ],
)
def test_bad_values_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(UserError, match=field):
        from_config(dict(TINY["mixtral"], **change))


def test_unreadable_files(tmp_path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        from_config(bad)
    with pytest.raises(UserError, match="cannot read"):
        from_config(tmp_path / "missing.json")
    bad.write_text("[1, 2]")
    with pytest.raises(UserError, match="JSON object"):
        from_config(bad)


# 23 tokens: below every sliding window of the tiny configs, and 23 mod 4 = 3, 23 mod 8 = 7, so
# DeepSeek-V4's open compressor windows hold their most (the per-sequence state is at its bound).
CACHE_TOKENS = 23
NEW_FAMILIES = ("deepseek_v4", "glm4_moe", "glm_moe_dsa", "kimi_k2", "kimi_k25", "minimax_m2", "qwen3_next",
                "qwen3_5_moe")


def _tensors(obj: object):
    torch = pytest.importorskip("torch")
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def transformers_cache_elements(config: dict, tokens: int) -> int:
    """Elements of the cache tensors transformers holds after a forward pass over ``tokens``
    tokens of one sequence (DynamicCache and the families' own cache layers). A tensor read as
    both key and value (DeepSeek-V4's shared KV) counts once: its own cache layers store it once,
    the generic sliding-window layer of its window-only layers stores two equal copies."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model_type, d = _transformers_config(config)
    cfg = transformers.AutoConfig.for_model(model_type, **d)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (1, tokens))
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
    cache = getattr(out, "cache", None) or out.past_key_values
    seen: set[tuple[int, tuple[int, ...]]] = set()
    total = 0
    for layer in cache.layers:
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if isinstance(keys, torch.Tensor) and isinstance(values, torch.Tensor) \
                and keys.shape == values.shape and keys.data_ptr() != values.data_ptr() \
                and torch.equal(keys, values):
            seen.add((values.data_ptr(), tuple(values.shape)))
        for t in _tensors(vars(layer)):
            key = (t.data_ptr(), tuple(t.shape))
            if t.dim() >= 2 and key not in seen:
                seen.add(key)
                total += t.numel()
    return total


@pytest.mark.parametrize("key", NEW_FAMILIES)
def test_cache_elements_equal_transformers_cache(key: str) -> None:
    graph = from_config(TINY[key])
    ours = sum(kv.elements_for(CACHE_TOKENS) for kv in graph.kv_caches)
    assert ours == transformers_cache_elements(TINY[key], CACHE_TOKENS)


def _kv_sizes(graph) -> dict[str, tuple[int, int, int, int]]:
    """name -> (elements per entry, tokens per entry, state elements, window)."""
    return {kv.name: (kv.elements_per_token, kv.tokens_per_entry, kv.state_elements, kv.window)
            for kv in graph.kv_caches}


def test_kv_hand_formulas_new_families() -> None:
    # DeepSeek-V4: K=V shared (head_dim 32) over the window; CSA: head_dim per 4 tokens, open
    # window 2*(4-1)*2*32 kv+gate plus the overlap 2*4*32; its indexer the same at 16; HCA: per 8.
    kv = _kv_sizes(from_config(TINY["deepseek_v4"]))
    assert kv["model.layers.0.self_attn.kv"] == (32, 1, 0, 32)
    assert kv["model.layers.1.self_attn.compressed"] == (32, 4, 2 * 3 * 64 + 2 * 4 * 32, 0)
    assert kv["model.layers.1.self_attn.index_key"] == (16, 4, 2 * 3 * 32 + 2 * 4 * 16, 0)
    assert kv["model.layers.2.self_attn.compressed"] == (32, 8, 2 * 7 * 32, 0)
    assert len(kv) == 4 + 2 * 2 + 1
    # Qwen3-Next: full layer 3 is GQA (2 KV heads x 16); linear layers hold a fixed state:
    # conv (2*2*8 + 4*16 = 96 channels x 4 taps) + recurrent (4 value heads x 8 x 16).
    kv = _kv_sizes(from_config(TINY["qwen3_next"]))
    assert kv["model.layers.3.self_attn.key"] == (32, 1, 0, 0)
    assert kv["model.layers.0.linear_attn.state"] == (0, 1, 96 * 4 + 4 * 8 * 16, 0)
    assert sorted(kv) == ["model.layers.0.linear_attn.state", "model.layers.1.linear_attn.state",
                          "model.layers.2.linear_attn.state", "model.layers.3.self_attn.key",
                          "model.layers.3.self_attn.value"]
    assert _kv_sizes(from_config(TINY["qwen3_5_moe"])) == kv
    # GLM-5: MLA latent (16) + rope key (8); layers 0 and 2 index ("FSF") with a 16-wide key.
    kv = _kv_sizes(from_config(TINY["glm_moe_dsa"]))
    assert {k: v[0] for k, v in kv.items() if ".0." in k} == {
        "model.layers.0.self_attn.latent": 16, "model.layers.0.self_attn.rope_key": 8,
        "model.layers.0.self_attn.index_key": 16}
    assert "model.layers.1.self_attn.index_key" not in kv and "model.layers.2.self_attn.index_key" in kv
    # GQA families: 2 KV heads x head_dim 16, K and V.
    for key in ("glm4_moe", "minimax_m2"):
        kv = _kv_sizes(from_config(TINY[key]))
        assert sum(v[0] for v in kv.values()) == 2 * 2 * 2 * 16


def test_linear_state_is_per_sequence_in_the_cost_model() -> None:
    from placer.cost_model import annotate_costs
    from placer.pipeline import load_graph
    from placer.targets import load_target
    from placer.workload import Workload

    costs = annotate_costs(load_graph(from_config(TINY["qwen3_next"])), load_target("wse3"),
                           Workload(context_tokens=1000))
    state = 3 * (96 * 4 + 4 * 8 * 16) * 2  # three linear layers, bf16
    assert costs.kv_bytes_per_token == 2 * 2 * 16 * 2  # only the full-attention layer grows
    for context in (1, 1000, 5000):
        assert sum(u.kv_bytes(context) for u in costs.units) == state + context * 128
    assert sum(u.kv_state_bytes for u in costs.units) == state


def test_deepseek_v4_native_precisions() -> None:
    config = dict(TINY["deepseek_v4"], hidden_size=256, expert_dtype="fp4",
                  quantization_config={"quant_method": "fp8", "fmt": "e4m3", "scale_fmt": "ue8m0",
                                       "weight_block_size": [128, 128]})
    graph = from_config(config)
    assert graph.parameter_count() == transformers_parameters(config)
    w = graph.weights
    assert w["model.layers.0.mlp.experts.1.up_proj.weight"].type.dtype is DType.MXFP4
    q = w["model.layers.0.self_attn.q_a_proj.weight"]  # [256, 32]: 2 x 1 blocks, one byte each
    assert q.type.dtype is DType.FP8_E4M3 and q.nbytes == 256 * 32 + 2
    o = w["model.layers.0.self_attn.o_a_proj.weight"]  # checkpoint [2*16, 64]: one block
    assert o.type.shape == (2, 64, 16) and o.nbytes == 2 * 64 * 16 + 1
    for name in ("model.layers.0.attn_hc.fn", "model.layers.1.self_attn.compressor.position_bias",
                 "model.layers.0.self_attn.sinks", "model.layers.0.input_layernorm.weight",
                 "model.norm.weight", "model.hc_head.hc_fn", "model.layers.1.self_attn.kv_norm.weight"):
        assert w[name].type.dtype is DType.FLOAT32, name
    for name in ("model.layers.1.self_attn.compressor.kv_proj.weight", "model.layers.0.mlp.gate.weight",
                 "model.layers.1.self_attn.compressor.indexer.scorer.weights_proj.weight", "lm_head.weight"):
        assert w[name].type.dtype is DType.BFLOAT16, name


_INT4 = {
    "gptq": {"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": False, "sym": True},
    "awq": {"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": True, "version": "gemm"},
    "compressed-tensors": {
        "quant_method": "compressed-tensors", "format": "pack-quantized",
        "ignore": ["lm_head", "re:.*mlp.gate$"],
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 32}}}},
}


@pytest.mark.parametrize("method", sorted(_INT4))
def test_int4_checkpoints_count_packed_weights_scales_and_zeros(method: str) -> None:
    config = dict(TINY["qwen3_moe"], quantization_config=_INT4[method])
    graph = from_config(config)
    assert graph.parameter_count() == transformers_parameters(config)
    w = graph.weights
    q = w["model.layers.0.self_attn.q_proj.weight"]  # [in 64, out 64]: 2 groups of 32 inputs
    assert q.type.dtype is DType.INT4
    packed, groups = 64 * 64 // 2, 2
    expected = {
        "gptq": packed + groups * 64 // 2 + groups * 64 * 2 + 64 * 4,  # qweight, qzeros, scales, g_idx
        "awq": packed + groups * 64 // 2 + groups * 64 * 2,          # qweight, qzeros, scales
        "compressed-tensors": packed + 64 * groups * 2 + 16,         # packed, scales, weight_shape
    }[method]
    assert q.nbytes == expected
    assert w["model.layers.1.mlp.experts.0.down_proj.weight"].type.dtype is DType.INT4
    for name in ("model.embed_tokens.weight", "lm_head.weight", "model.layers.1.mlp.gate.weight",
                 "model.layers.0.input_layernorm.weight"):
        assert w[name].type.dtype is DType.BFLOAT16, name


@pytest.mark.parametrize("change, field", [
    ({"quant_method": "gptq", "bits": 8}, "bits"),
    ({"quant_method": "compressed-tensors"}, "config_groups"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 8}}}},
     "num_bits"),
    ({"quant_method": "compressed-tensors", "ignore": ["re:("], "config_groups": {"g": {"weights": {}}}},
     "ignore"),
])
def test_bad_int4_configs_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(UserError, match=field):
        from_config(dict(TINY["llama"], quantization_config=change))


def test_grouping_shortfall_warns_and_says_why() -> None:
    from placer._warnings import PlacerWarning
    from placer.ir.passes.group_units import grouping_shortfall
    from placer.pipeline import load_graph, load_model

    # Without their declared state, Qwen3-Next's linear-attention layers have no attention core.
    graph = from_config(TINY["qwen3_next"]).replace(kv_caches=())
    with pytest.warns(PlacerWarning, match=r"found 1 decoder layer unit\(s\) but node names number 4 layers: "
                                           r"no attention core .* in layer 0-2"):
        loaded = load_model(graph)
    assert "layer 0-2" in loaded.structure_warning and "\n" not in loaded.structure_warning
    assert grouping_shortfall(load_graph(from_config(TINY["qwen3_next"]))) == ""  # and no warning


def test_structure_warning_reaches_inspect_and_compile_json() -> None:
    from placer._warnings import PlacerWarning
    from placer.compiler import compile_result
    from placer.inspect import inspect_model, inspection_to_dict

    graph = from_config(TINY["qwen3_next"]).replace(kv_caches=())
    with pytest.warns(PlacerWarning):
        inspected = inspection_to_dict(inspect_model(graph))
    assert "no attention core" in inspected["structure_warning"]
    with pytest.warns(PlacerWarning):
        plan = json.loads(compile_result(graph, compare=False).plan.to_json())
    assert "no attention core" in plan["model"]["structure_warning"]
    clean = json.loads(compile_result(from_config(TINY["qwen3_next"]), compare=False).plan.to_json())
    assert "structure_warning" not in clean["model"]
    assert inspection_to_dict(inspect_model(from_config(TINY["qwen3_next"])))["structure_warning"] is None


_OLMO2 = dict(model_type="olmo2", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
              num_attention_heads=2, num_key_value_heads=1, vocab_size=64, eos_token_id=0, pad_token_id=0)


@pytest.mark.slow
def test_other_transformers_family_goes_through_the_meta_device_fallback(tmp_path, monkeypatch) -> None:
    """A family without a reader (OLMo-2) is built on the meta device and exported; the graph
    is cached by config, placer and transformers versions."""
    pytest.importorskip("torch")
    from placer.frontends import hf_fallback
    from placer.pipeline import load_graph

    monkeypatch.setenv("PLACER_CACHE_DIR", str(tmp_path))
    graph = from_config(_OLMO2)
    assert graph.parameter_count() == transformers_parameters(_OLMO2)
    assert [u.name for u in load_graph(graph).units] == ["embed", "layers.0", "head"]
    (entry,) = (tmp_path / "hf-fallback").iterdir()
    monkeypatch.setattr(hf_fallback, "_export", lambda *a: pytest.fail("not read from the cache"))
    assert from_config(_OLMO2).parameter_count() == graph.parameter_count()
    assert entry.stem == hf_fallback.cache_key(_OLMO2, pytest.importorskip("transformers").__version__)


def test_fallback_without_torch_is_a_one_line_error(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(UserError, match=r"model_type 'olmo2' has no built-in reader.*torch is missing.*pip"):
        from_config(_OLMO2)


def test_compressed_kv_in_the_cost_model() -> None:
    """DeepSeek-V4's caches at a 1000-token context: windows capped at 32 tokens, one entry per
    4 (CSA, indexer) or 8 (HCA) tokens, plus the open windows; bf16."""
    from placer.cost_model import annotate_costs
    from placer.pipeline import load_graph
    from placer.targets import load_target
    from placer.workload import Workload

    costs = annotate_costs(load_graph(from_config(TINY["deepseek_v4"])), load_target("wse3"),
                           Workload(context_tokens=1000))
    window = 4 * 32 * 32
    csa = 2 * (250 * 32 + 640 + 250 * 16 + 320)
    hca = 125 * 32 + 448
    assert sum(u.kv_bytes(1000) for u in costs.units) == (window + csa + hca) * 2
    assert costs.kv_bytes_per_token == (4 * 32 + 2 * (8 + 4) + 4) * 2
