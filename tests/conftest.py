"""Shared pytest setup: the derandomized hypothesis profile, session-cached ONNX exports and
session-cached zoo models."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from placer.pipeline import LoadedModel

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


@pytest.fixture(scope="session")
def zoo_model() -> Callable[..., LoadedModel]:
    """``zoo_model(name, granularity="layer")`` -> ``placer.pipeline.load_model(name, granularity=...)``.

    Each (zoo name, granularity) is loaded once per test process: the big MoE
    configs take 10-60 s each (kimi-k2, deepseek-v4-pro: 100k-170k nodes), and test_roofline,
    test_zoo_compile and test_serialize_models load the same ones. Sharing is safe: a
    LoadedModel and its Graph are frozen dataclasses, and their users (annotate_costs,
    compile_result) only read them, as ``placer sweep`` does when one LoadedModel serves
    several points. A load that raises (or warns, an error here) is not cached.
    """
    from placer.pipeline import load_model

    @functools.cache
    def get(name: str, granularity: str = "layer") -> LoadedModel:
        return load_model(name, granularity=granularity)

    return get
