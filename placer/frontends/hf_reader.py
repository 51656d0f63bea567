"""Typed, validated access to the fields of a Hugging Face ``config.json``.

Every error is a one-line ``UserError`` naming the file and the field at fault, so that a
hand-edited config with a missing ``hidden_size`` or a string where an integer belongs is
reported as the user's mistake, never as a traceback.
"""

from __future__ import annotations

import builtins
import math
import os
from collections.abc import Mapping
from typing import Any

from placer.errors import UserError
from placer.validate import show_int

_MISSING = object()
#: Largest integer a config field may hold (no real model dimension comes near 2^40): larger
#: values are a corrupted or hand-edited file, refused before any size is computed from them.
MAX_FIELD_INT = 1 << 40
#: Most decoder layers placer reads from a config (real models have < 200). The work is linear in
#: the layers (benchmarks/bench_scale.py: about 2 CPU s and 50 MB per 1,000 layers of a small
#: dense model), so this bounds a corrupt or hand-edited config's run; the environment variable
#: ``PLACER_MAX_LAYERS`` raises (or lowers) it for every command and the Python API.
MAX_LAYERS = 4096
#: Most attention heads (and dims per head) a config may give: real models have <= 128 heads of
#: <= 576 dims; the builder makes per-head and per-dim arrays (a head_dim of 10^12 allocated 3.6 TiB).
MAX_HEADS = 65_536
#: Most routed or shared experts per layer, and experts per token (real models: <= 384). Reading,
#: grouping and costing take about 1.7 ms per expert per layer (16,384 experts of 2 layers: 28 s).
MAX_EXPERTS = 4096
_HEAD_KEYS = ("num_attention_heads", "num_key_value_heads", "n_head", "head_dim", "index_head_dim",
              "index_n_heads", "linear_key_head_dim", "linear_num_key_heads", "linear_num_value_heads",
              "linear_value_head_dim", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "rotary_dim")
_EXPERT_KEYS = ("n_routed_experts", "n_shared_experts", "num_experts", "num_experts_per_tok",
                "num_local_experts")
_FIELD_CAPS = {**{k: (MAX_HEADS, "MAX_HEADS") for k in _HEAD_KEYS},
               **{k: (MAX_EXPERTS, "MAX_EXPERTS") for k in _EXPERT_KEYS}}
MAX_LAYERS_ENV = "PLACER_MAX_LAYERS"
#: Most layers ``PLACER_MAX_LAYERS`` may allow: about 200 CPU s and 5 GB at the rate above. A
#: larger setting (10^18 read a 10^8-layer config until it was killed) is refused.
MAX_LAYERS_CEILING = 100_000
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")


def max_layers() -> int:
    """The layer cap: ``PLACER_MAX_LAYERS`` when set, else ``MAX_LAYERS``.

    Raises:
        UserError: the environment variable is not a positive integer.
    """
    text = os.environ.get(MAX_LAYERS_ENV, "").strip()
    if not text:
        return MAX_LAYERS
    try:
        value = builtins.int(text.replace("_", ""))
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LAYERS_CEILING:
        raise UserError(f"environment variable {MAX_LAYERS_ENV} must be an integer from 1 to "
                        f"{MAX_LAYERS_CEILING:,} (about 2 CPU s and 50 MB per 1,000 layers), "
                        f"got {text[:40]!r}")
    return value


_SIZE_SUFFIXES = ("_size", "_dim", "_layers", "_heads", "_experts", "_positions", "_embeddings")
_SIZE_PREFIXES = ("num_", "n_")


def check_config_sizes(data: Mapping[str, Any], source: str, prefix: str = "", depth: int = 0) -> None:
    """Size and count fields (``*_size``, ``*_dim``, ``num_*``, ``n_*``, ...) of a config that
    placer does not read itself (the transformers fallback, ``placer export``) are non-negative
    integers of at most ``MAX_FIELD_INT``, in nested configs too: transformers builds tensors of
    them and reports a negative one as a traceback of its own (``negative dimension -64``).
    Window and chunk fields, where -1 often means "none", are left to transformers."""
    if depth > 4:
        return
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            check_config_sizes(value, source, f"{name}.", depth + 1)
            continue
        k = str(key)
        if isinstance(value, bool) or not isinstance(value, builtins.int) or "window" in k or "chunk" in k:
            continue
        if (k.endswith(_SIZE_SUFFIXES) or k.startswith(_SIZE_PREFIXES)) and not 0 <= value <= MAX_FIELD_INT:
            raise UserError(f"{source}: field {name!r} must be an integer from 0 to {MAX_FIELD_INT:,}, "
                            f"got {value:,}; fix the config")


def check_layers(layers: int, where: str) -> int:
    """``layers`` when within ``max_layers()``; else a one-line ``UserError`` naming the cap and
    how to raise it (``where``: the file and field)."""
    cap = max_layers()
    if layers > cap:
        raise UserError(f"{where} is {layers:,} layers, above placer's cap of {cap:,}; if the config is "
                        f"right, set {MAX_LAYERS_ENV}={layers} to read it "
                        "(about 2 s and 50 MB per 1,000 layers)")
    return layers


class ConfigReader:
    """Reads fields of one config mapping; ``source`` names it in messages (a path or ``config``)."""

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str = "") -> None:
        if not isinstance(data, Mapping):
            raise UserError(f"{source}: {prefix or 'the config'} must be a JSON object, "
                            f"got {type(data).__name__}")
        self.data = data
        self.source = source
        self.prefix = prefix

    def _where(self, key: str) -> str:
        return f"{self.source}: field {self.prefix}{key!r}"

    def fail(self, key: str, message: str) -> UserError:
        """A UserError about ``key``."""
        return UserError(f"{self._where(key)} {message}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def int(self, key: str, default: Any = _MISSING, *, minimum: int = 1) -> int:
        """An integer field >= ``minimum``; required unless ``default`` is given."""
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                raise self.fail(key, "is missing; add it to the config (an integer)")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise self.fail(key, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {show_int(value)}")
        if key in _LAYER_KEYS:
            return check_layers(value, self._where(key))
        cap, name = _FIELD_CAPS.get(key, (MAX_FIELD_INT, "MAX_FIELD_INT"))
        if value > cap:
            raise self.fail(key, f"is {show_int(value)}, above placer's cap of {cap:,} "
                            f"(placer.frontends.hf_reader.{name}); is the config corrupt?")
        return value

    # ``builtins.`` from here on: the methods ``int`` and ``str`` shadow the types in this class body.
    def int_alias(self, keys: tuple[builtins.str, ...], default: Any = _MISSING, *,
                  minimum: builtins.int = 1) -> builtins.int:
        """The first of ``keys`` present (GPT-2's ``n_embd`` or ``hidden_size``); a missing field
        is reported under its first name."""
        for key in keys:
            if self.has(key):
                return self.int(key, minimum=minimum)
        if default is _MISSING:
            raise self.fail(keys[0], f"is missing (or {', '.join(repr(k) for k in keys[1:])}); "
                            "add it to the config (an integer)")
        return default

    def optional_int(self, key: builtins.str, *, minimum: builtins.int = 1) -> builtins.int | None:
        """An integer field that may be absent or null."""
        return self.int(key, None, minimum=minimum) if self.has(key) else None

    def float(self, key: str, default: float) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise self.fail(key, f"must be a finite number, got {value!r}")
        return float(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def str(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise self.fail(key, "is missing; add it to the config (a string)")
            return default
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {value!r}")
        return value

    def int_list(self, key: builtins.str, default: list[builtins.int] | None = None, *,
                 length: builtins.int | None = None, minimum: builtins.int = 0) -> list[builtins.int]:
        value = self.data.get(key)
        if value is None:
            return list(default or [])
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum
                                              or v > MAX_FIELD_INT for v in value):
            raise self.fail(key, f"must be a list of integers >= {minimum}, got {value!r}")
        if length is not None and value and len(value) != length:
            raise self.fail(key, f"must have {length} entries (one per layer), got {len(value)}")
        return list(value)

    def str_list(self, key: builtins.str, *, length: builtins.int | None = None,
                 allowed: tuple[builtins.str, ...] = ()) -> list[builtins.str] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of strings, got {value!r}")
        if length is not None and len(value) != length:
            raise self.fail(key, f"must have {length} entries (one per layer), got {len(value)}")
        bad = [v for v in value if allowed and v not in allowed]
        if bad:
            raise self.fail(key, f"has unknown entry {bad[0]!r}; expected one of {', '.join(allowed)}")
        return list(value)

    def sub(self, key: builtins.str) -> ConfigReader | None:
        """The nested object ``key`` as a reader, or None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a JSON object, got {type(value).__name__}")
        return ConfigReader(value, self.source, f"{self.prefix}{key}.")
