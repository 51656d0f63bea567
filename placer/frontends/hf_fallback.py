"""Any other transformers causal LM: built on the meta device and lowered through ``from_torch``.

A ``model_type`` placer has no reader for (``placer.frontends.hf_families``) is handed to
transformers: ``AutoConfig.for_model`` and ``AutoModelForCausalLM.from_config`` under
``torch.device("meta")`` (no weight memory), exported with ``torch.export`` through
``placer.frontends.torch.from_torch`` with dynamic batch and sequence. Parameters are the model's
own, at the config's dtype (quantization configs are not applied on this path).

Exporting takes seconds to minutes for a large model, so the graph is cached as IR JSON under
the user cache folder (``$XDG_CACHE_HOME/placer/hf-fallback`` or ``~/.cache/...``; set
``PLACER_CACHE_DIR`` to move it), keyed by the SHA-256 of the canonical config, placer's version
and transformers' version: a new release of either rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from placer.errors import UserError
from placer.ir import Graph

_INSTALL = "pip install 'placer[torch]' transformers (install torch==2.13.0 first, see README)"


def cache_dir() -> Path:
    """Where fallback graphs are cached (created on first write)."""
    root = os.environ.get("PLACER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "placer")
    return Path(root) / "hf-fallback"


def cache_key(config: Mapping[str, Any], transformers_version: str) -> str:
    from placer import __version__

    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{text}\n{__version__}\n{transformers_version}".encode()).hexdigest()


def from_transformers(config: Mapping[str, Any], source: str, name: str) -> Graph:
    """The IR of the causal LM transformers builds from ``config`` (cached; see the module doc).

    Raises:
        UserError: torch or transformers is missing, transformers does not know the
            ``model_type`` as a causal LM, or the model cannot be exported.
    """
    model_type = str(config.get("model_type"))
    try:
        import torch
        import transformers
    except ImportError as e:
        raise UserError(f"{source}: model_type {model_type!r} has no built-in reader, and reading it "
                        f"through transformers needs torch and transformers ({e.name} is missing): "
                        f"{_INSTALL}") from None
    path = cache_dir() / f"{cache_key(config, transformers.__version__)}.json"
    if path.is_file():
        from placer.ir import from_json

        try:
            return from_json(path.read_text(encoding="utf-8")).replace(name=name)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    graph = _export(config, source, model_type, name, torch, transformers)
    from placer.fileio import write_atomic
    from placer.ir import to_json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, to_json(graph))
    except OSError:
        pass  # an unwritable cache only costs the next run the export again
    return graph


def _export(config: Mapping[str, Any], source: str, model_type: str, name: str, torch: Any,
            transformers: Any) -> Graph:
    from placer.frontends.torch import from_torch

    fields = {k: v for k, v in config.items() if k not in ("model_type", "quantization_config")}
    from placer.frontends.hf_reader import check_config_sizes

    check_config_sizes(fields, source)
    try:
        cfg = transformers.AutoConfig.for_model(model_type, **fields)
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{source}: field 'model_type' {model_type!r} is neither a family placer reads "
                        f"nor one transformers {transformers.__version__} knows ({_first_line(e)})") from None
    from placer.frontends.hf_reader import check_layers

    # Before building: the work (and the meta model) grows with the layers (a bounded run).
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    layers = getattr(text_cfg, "num_hidden_layers", None)
    if isinstance(layers, int):
        check_layers(layers, f"{source}: field 'num_hidden_layers'")
    try:
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(cfg)
    except (ValueError, KeyError, TypeError, AttributeError, AssertionError, RuntimeError) as e:
        # RuntimeError: torch refusing a tensor the config's sizes describe; AssertionError:
        # torch's own checks of the config's values (a padding index outside
        # the vocabulary), a bad input rather than a bug
        raise UserError(f"{source}: transformers cannot build a causal LM of model_type {model_type!r} "
                        f"({_first_line(e)})") from None
    model.eval()
    ids = torch.zeros((2, 8), dtype=torch.long, device="meta")
    shapes = {"input_ids": {0: "batch", 1: "seq"}}
    return from_torch(model, (ids,), dynamic_shapes=shapes, name=name, example_kwargs={"use_cache": False})


def _first_line(e: BaseException, limit: int = 200) -> str:
    """The first non-empty line of ``e``, at most ``limit`` characters (transformers' unknown
    model_type message lists every one of its ~500 model types on that line)."""
    text = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    first = text[0] if text else type(e).__name__
    return first if len(first) <= limit else first[:limit].rstrip(" ,") + " ..."
