"""``from_config``: the IR of a Hugging Face decoder model from its ``config.json`` alone.

Any other ``model_type`` transformers knows as a causal LM goes through
``placer.frontends.hf_fallback`` (built on the meta device, exported, cached; torch extra).

No weights are read or allocated: a 405B-parameter model builds in about a second. Supported
``model_type`` values: llama, mistral, qwen2, qwen3, mixtral, qwen3_moe, gpt2, llama4 (its text
model; ``llama4_text`` too), gpt_oss and deepseek_v3 (without its multi-token-prediction layer,
as transformers builds it). Parameter counts equal transformers' ``AutoModelForCausalLM``.

Conventions of the emitted graph (see ``placer.frontends.hf_builder`` for the structure):

- inputs ``input_ids`` and ``position_ids``, both ``i64[batch, seq]``; output ``logits``.
- weights are parameters named like the HF checkpoint (``model.layers.3.self_attn.q_proj.weight``),
  stored ``[in, out]``; experts are separate (``model.layers.3.mlp.experts.7.gate_proj.weight``).
- node scopes are HF module paths; KV caches are declared per layer: ``<attn>.key`` and
  ``<attn>.value`` (GQA), or ``<attn>.latent`` and ``<attn>.rope_key`` (MLA), with ``window``
  set on sliding-window and chunked-attention layers.
- weight dtypes are the checkpoint's native ones (``placer.frontends.hf_quant``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from placer.errors import UserError
from placer.frontends.hf_builder import build_graph
from placer.frontends.hf_families import FAMILIES, ModelSpec, read_spec
from placer.frontends.hf_families_new import NEW_FAMILIES
from placer.frontends.hf_quant import Quantization, read_quantization
from placer.frontends.hf_reader import ConfigReader
from placer.ir import Graph, VerificationError, verify
from placer.validate import parse_json, read_text

FAMILIES.update(NEW_FAMILIES)  # the newer families build on hf_families' readers
SUPPORTED_FAMILIES = tuple(sorted(FAMILIES))


def read_config(path_or_dict: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The config mapping and a name for messages (its path, or ``config``)."""
    if isinstance(path_or_dict, Mapping):
        return dict(path_or_dict), "config"
    path = Path(path_or_dict)
    if path.is_dir():
        path = path / "config.json"
    data = parse_json(read_text(path, "config"), str(path))
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config.json must hold a JSON object, got {type(data).__name__}")
    return data, str(path)


ConfigSource = str | os.PathLike[str] | Mapping[str, Any]


def read_model_spec(path_or_dict: ConfigSource) -> tuple[ModelSpec, Quantization]:
    """The architecture and native precisions a config describes, validated."""
    data, source = read_config(path_or_dict)
    reader = ConfigReader(data, source)
    spec = read_spec(reader)
    text = reader.sub("text_config")
    quant_reader = reader if reader.has("quantization_config") or text is None else text
    return spec, read_quantization(quant_reader, spec.dtype, fp32=spec.fp32_params,
                                   unquantized=spec.unquantized, expert_dtype=spec.expert_dtype)


def from_config(path_or_dict: ConfigSource, *, name: str | None = None) -> Graph:
    """The IR of the model a Hugging Face config describes, with weight references only.

    Args:
        path_or_dict: a ``config.json`` path, a folder holding one, or the parsed mapping.
        name: the graph's name (default: ``_name_or_path`` or the ``model_type``).

    Raises:
        UserError: the file cannot be read, the ``model_type`` is not supported, or a field is
            missing or malformed (the message names the field and the file).
    """
    data, source = read_config(path_or_dict)
    model_type = data.get("model_type")
    if isinstance(model_type, str) and model_type not in FAMILIES:
        # Another transformers family: built on the meta device and exported (torch extra).
        from placer.frontends.hf_fallback import from_transformers

        return from_transformers(data, source, name or str(data.get("_name_or_path") or model_type))
    spec, quant = read_model_spec(data if source == "config" else path_or_dict)
    graph_name = name or str(data.get("_name_or_path") or spec.family)
    graph = build_graph(spec, quant, graph_name)
    try:
        verify(graph, require_types=True)
    except VerificationError as e:  # a bug in the builder, not the user's config
        raise AssertionError(f"from_config built an invalid graph for {source}: {e}") from e
    return graph
