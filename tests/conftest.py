"""Shared pytest setup: the derandomized hypothesis profile and session-cached ONNX exports."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=50)
settings.load_profile("ci")

_LOCK = threading.Lock()


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``onnx_model(family, dynamo=True, with_cache=False)`` -> path of the tiny model's export.

    Each combination is exported once per session (4-6 s with dynamo), into a session tmp dir.
    Families: llama, mistral, qwen2, gpt2, mixtral (see ``tests.models``).
    """
    from tests.models import export_onnx

    root = tmp_path_factory.mktemp("onnx_models")
    cache: dict[tuple[str, bool, bool], Path] = {}

    def get(family: str, dynamo: bool = True, with_cache: bool = False) -> Path:
        key = (family, dynamo, with_cache)
        with _LOCK:
            if key not in cache:
                name = f"{family}_{'dynamo' if dynamo else 'legacy'}_{'cache' if with_cache else 'nocache'}"
                folder = root / name
                folder.mkdir()
                cache[key] = export_onnx(family, folder / "model.onnx", dynamo=dynamo,
                                         with_cache=with_cache)
            return cache[key]

    return get
