"""Built-in model zoo: published Hugging Face configs shipped as JSON data files.

``ZOO_MODELS`` lists the names (``llama-3.1-405b``, ``deepseek-v3``, ...); ``load_zoo_config``
returns a config as a fresh dict, ready for ``placer.frontends.hf_config.from_config``. The
files hold the fields of the published ``config.json`` of each model (no weights).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from placer.errors import UserError

ZOO_MODELS: tuple[str, ...] = (
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b",
    "llama-4-scout", "llama-4-maverick",
    "gpt-oss-20b", "gpt-oss-120b",
    "deepseek-v3",
    "qwen3-235b-a22b",
    "mixtral-8x7b", "mixtral-8x22b",
    "deepseek-v4-flash", "deepseek-v4-pro",
    "glm-4.7",
    "kimi-k2",
    "qwen3-coder-480b-a35b",
    "minimax-m2",
)

# Where each newer config comes from. The Hugging Face hub is not reachable from here: the field
# values were taken from copies of the published config.json found in public repositories
# (named here), checked against each other and against the model cards' parameter totals.
ZOO_SOURCES: dict[str, str] = {
    "deepseek-v4-flash": "https://huggingface.co/deepseek-ai/DeepSeek-V4-Flash/blob/main/config.json "
                         "(fields as quoted in public V4-Flash config fixtures; 284B total per the card)",
    "deepseek-v4-pro": "https://huggingface.co/deepseek-ai/DeepSeek-V4-Pro/blob/main/config.json "
                       "(a public copy of the full file; 1.6T total per the model card)",
    "glm-4.7": "https://huggingface.co/zai-org/GLM-4.7/blob/main/config.json (GLM-4.5/4.6 architecture; "
               "dims as in zyzshishui/slime scripts/models/glm4.5-355B-A32B.sh; 355B total per the report)",
    "kimi-k2": "https://huggingface.co/moonshotai/Kimi-K2-Instruct/blob/main/config.json "
               "(1T total, 32B activated per the model card)",
    "qwen3-coder-480b-a35b": "https://huggingface.co/Qwen/Qwen3-Coder-480B-A35B-Instruct/blob/main/config.json",
    "minimax-m2": "https://huggingface.co/MiniMaxAI/MiniMax-M2/blob/main/config.json "
                  "(230B total, 10B active per the model card)",
}


def load_zoo_config(name: str) -> dict[str, Any]:
    """The config of zoo model ``name`` as a new dict.

    Raises:
        UserError: ``name`` is not in the zoo (the message lists the names).
    """
    if name not in ZOO_MODELS:
        raise UserError(f"{name!r} is not a zoo model; choose one of: {', '.join(ZOO_MODELS)}")
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)
