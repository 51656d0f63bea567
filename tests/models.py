"""Tiny transformers models with random weights, and their ONNX exports, for tests.

Other helpers' tests import these factories; ``tests/conftest.py`` holds the session-scoped
``onnx_model`` fixture that exports each (family, exporter, cache) combination once.

Every parameter is randomized before export: the exporters merge initializers with identical
contents (fresh norm weights are all ones), which would make parameter counts unmatchable.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

FAMILIES = ("llama", "mistral", "qwen2", "gpt2", "mixtral")
HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
VOCAB = 160
INTERMEDIATE = 96


def tiny_config(family: str) -> Any:
    """A transformers config of ``family`` with hidden 64, 2 layers, 4 heads (2 KV heads)."""
    import transformers as tr

    common = dict(vocab_size=VOCAB, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  max_position_embeddings=256)
    if family == "llama":
        cfg = tr.LlamaConfig(hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                             num_key_value_heads=KV_HEADS, **common)
    elif family == "mistral":
        cfg = tr.MistralConfig(hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                               num_key_value_heads=KV_HEADS, sliding_window=None, **common)
    elif family == "qwen2":
        cfg = tr.Qwen2Config(hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                             num_key_value_heads=KV_HEADS, **common)
    elif family == "gpt2":
        cfg = tr.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS,
                            n_positions=256, n_inner=INTERMEDIATE)
    elif family == "mixtral":
        cfg = tr.MixtralConfig(hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                               num_key_value_heads=KV_HEADS, num_local_experts=4,
                               num_experts_per_tok=2, sliding_window=None, **common)
        # The default grouped_mm and eager expert paths fail in both exporters (RECIPES.md).
        cfg._experts_implementation = "batched_mm"
    else:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    cfg._attn_implementation = "eager" if family == "gpt2" else "sdpa"
    return cfg


def tiny_model(family: str, seed: int = 0) -> Any:
    """A ``*ForCausalLM`` of ``family`` with every parameter drawn from N(0, 0.02), in eval mode."""
    import torch
    import transformers as tr

    cfg = tiny_config(family)
    torch.manual_seed(seed)
    model = tr.AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.02)
    return model.eval()


def parameter_count(family: str) -> int:
    """Exact number of parameters, counted by torch (tied embeddings once)."""
    return sum(p.numel() for p in tiny_model(family).parameters())


def _make_exportable(model: Any, with_cache: bool) -> Any:
    """Give ``model`` a tensors-in, tensors-out ``forward`` without wrapping it, so that module
    paths in the export stay those of a plain HF model (``model.layers.0.self_attn``)."""
    import torch
    from transformers import DynamicCache

    base = type(model)

    class Exportable(base):  # type: ignore[misc, valid-type]
        def forward(self, input_ids, *past):  # noqa: ANN001, ANN201
            if with_cache:
                pairs = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)]
                cache = DynamicCache(ddp_cache_data=pairs, config=self.config)
                out = base.forward(self, input_ids=input_ids, past_key_values=cache, use_cache=True)
                flat = []
                for layer in out.past_key_values.layers:
                    flat += [layer.keys, layer.values]
                return (out.logits, *flat)
            if torch.jit.is_tracing():
                # An empty cache skips transformers' packed-sequence check, whose aten::diff
                # the legacy exporter cannot convert.
                cache = DynamicCache(config=self.config)
                return base.forward(self, input_ids=input_ids, past_key_values=cache,
                                    use_cache=True).logits
            return base.forward(self, input_ids=input_ids, use_cache=False).logits

    Exportable.__name__ = base.__name__
    model.__class__ = Exportable
    return model.eval()


def export_onnx(family: str, path: str | Path, *, dynamo: bool = True, with_cache: bool = False,
                opset: int | None = None, seed: int = 0, optimize: bool = True) -> Path:
    """Export the tiny ``family`` model to ``path``; dynamic dims are named batch, seq, past.

    Inputs: ``input_ids`` i64[batch, seq] and, with ``with_cache``, ``past_key_{i}`` and
    ``past_value_{i}`` of shape [batch, kv_heads, past, head_dim] for each layer. Outputs:
    ``logits`` and, with the cache, ``present_key_{i}``/``present_value_{i}``. ``optimize=False``
    keeps the dynamo exporter's raw graph (CastLike, Constant, SplitToSequence, ...).
    """
    import torch

    path = Path(path)
    model = tiny_model(family, seed)
    if not dynamo:
        # The legacy exporter cannot convert SDPA with grouped KV heads.
        model.set_attn_implementation("eager")
    cfg = model.config
    n_layers = cfg.num_hidden_layers
    kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    ids = torch.randint(0, cfg.vocab_size, (2, 5))
    names_in = ["input_ids"]
    names_out = ["logits"]
    args: tuple = (ids,)
    if with_cache:
        past = tuple(torch.randn(2, kv_heads, 3, head_dim) for _ in range(2 * n_layers))
        args = (ids, *past)
        for i in range(n_layers):
            names_in += [f"past_key_{i}", f"past_value_{i}"]
            names_out += [f"present_key_{i}", f"present_value_{i}"]
    wrapper = _make_exportable(model, with_cache)
    kwargs: dict[str, Any] = dict(input_names=names_in, output_names=names_out)
    if opset is not None:
        kwargs["opset_version"] = opset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            ids_dims = {0: "batch", 1: "seq"}
            if with_cache:
                past_dims = tuple({0: "batch", 2: "past"} for _ in range(2 * n_layers))
                kwargs["dynamic_shapes"] = (ids_dims, past_dims)
            else:
                kwargs["dynamic_shapes"] = (ids_dims,)
            torch.onnx.export(wrapper, args, str(path), dynamo=True, verbose=False, optimize=optimize,
                              **kwargs)
        else:
            axes = {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
            for i in range(n_layers if with_cache else 0):
                for kind in ("key", "value"):
                    axes[f"past_{kind}_{i}"] = {0: "batch", 2: "past"}
                    axes[f"present_{kind}_{i}"] = {0: "batch", 2: "past+seq"}
            torch.onnx.export(wrapper, args, str(path), dynamo=False, dynamic_axes=axes, **kwargs)
    return path
