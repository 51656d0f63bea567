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
)


def load_zoo_config(name: str) -> dict[str, Any]:
    """The config of zoo model ``name`` as a new dict.

    Raises:
        UserError: ``name`` is not in the zoo (the message lists the names).
    """
    if name not in ZOO_MODELS:
        raise UserError(f"{name!r} is not a zoo model; choose one of: {', '.join(ZOO_MODELS)}")
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]
