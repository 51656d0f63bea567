"""``placer export``: a transformers model (HF folder, config.json or zoo name) to an ONNX file
that placer and onnxruntime both run.

The graph has dynamic ``batch``, ``seq`` and ``past`` dims and an explicit KV cache: inputs
``input_ids`` i64[batch, seq] and ``past_key_{i}`` / ``past_value_{i}`` [batch, kv_heads, past,
head_dim]; outputs ``logits`` and ``present_key_{i}`` / ``present_value_{i}``. It is made by
``torch.onnx.export(..., dynamo=True)`` (the recipe of ``docs/``: a flat-tensor wrapper around
``DynamicCache``). Weights:

* ``from-dir``: the checkpoint in the HF folder (``from_pretrained``);
* ``random``: the config's architecture with every parameter drawn at random (seeded), so
  that no two tensors are equal and the exporter's optimizer merges nothing;
* ``none``: built on the meta device (no memory) and exported without the optimizer; every
  initializer becomes an external-data reference into ``<output>.data`` (offsets and lengths
  of a contiguous layout), which is not written: placer inspects and compiles the file, and
  nothing needs the weights until they exist.

torch and transformers are an extra (``pip install 'placer-wafer[export]'``).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from placer.errors import UserError

WEIGHTS = ("from-dir", "random", "none")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    layers: int
    parameters: int
    seconds: float


def _require_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError:
        raise UserError("placer export needs torch and transformers: pip install 'placer-wafer[export]' "
                        "(install torch==2.13.0 first on CPU-only machines)") from None
    return torch, transformers


def load_export_config(model: str) -> tuple[Any, Path | None]:
    """(transformers config, HF folder or None) of MODEL: a folder, a config.json or a zoo name."""
    _, tr = _require_torch()
    path = Path(model)
    folder = path if path.is_dir() else None
    if path.is_dir():
        path = path / "config.json"
        if not path.is_file():
            raise UserError(f"{model}: the folder has no config.json")
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not a readable JSON config ({e})") from None
    else:
        from placer.zoo import load_zoo_config

        try:
            data = load_zoo_config(model)
        except (KeyError, ValueError, FileNotFoundError, UserError):
            raise UserError(f"{model}: not an HF folder, a config.json or a zoo name "
                            "(see 'placer zoo')") from None
    data = {k: v for k, v in data.items() if not k.startswith("_")}
    model_type = data.get("model_type")
    from placer.frontends.hf_fallback import _first_line
    from placer.frontends.hf_reader import check_config_sizes

    check_config_sizes(data, str(path if path.is_file() else model))

    try:
        cfg = tr.AutoConfig.for_model(model_type, **{k: v for k, v in data.items() if k != "model_type"})
    except Exception as e:  # noqa: BLE001  (transformers' validators raise their own classes, e.g.
        # huggingface_hub's StrictDataclassClassValidationError for a negative hidden_size)
        # the last line of a validator's chained message says which field is wrong
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        why = lines[-1] if len(lines) > 1 else _first_line(e)
        raise UserError(f"{model}: transformers cannot build model_type {model_type!r} from this config "
                        f"({why[:200]}); fix the field it names") from None
    return cfg, folder


def _build(cfg: Any, folder: Path | None, weights: str, seed: int) -> Any:
    torch, tr = _require_torch()
    if getattr(cfg, "model_type", "") in ("mixtral", "qwen2_moe", "qwen3_moe"):
        # The grouped_mm and eager expert paths fail in both exporters (RECIPES.md).
        cfg._experts_implementation = "batched_mm"
    cfg._attn_implementation = "eager" if cfg.model_type == "gpt2" else "sdpa"
    if weights == "from-dir":
        if folder is None:
            raise UserError("option --weights from-dir: MODEL must be an HF folder with weights")
        try:
            model = tr.AutoModelForCausalLM.from_pretrained(folder, config=cfg, dtype=torch.float32)
        except (OSError, ValueError) as e:
            raise UserError(f"{folder}: cannot load the checkpoint ({type(e).__name__}: {e})") from None
        return model.eval()
    if weights == "none":
        # ``dtype`` first: reading ``torch_dtype`` of a recent transformers config logs a
        # deprecation line on stderr (older configs have only ``torch_dtype``).
        named = getattr(cfg, "dtype", None) if hasattr(cfg, "dtype") else getattr(cfg, "torch_dtype", None)
        dtype = getattr(torch, str(named or "bfloat16").replace("torch.", ""), torch.bfloat16)
        with torch.device("meta"):
            model = tr.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
        return model.eval()
    torch.manual_seed(seed)
    model = tr.AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    return model.eval()


def _exportable(model: Any) -> Any:
    """``model`` with a flat-tensors forward (ids, *past) -> (logits, *present), module paths kept."""
    from transformers import DynamicCache

    base = type(model)

    # The ignore below: the base is the model's class, known only at run time (a variable to mypy).
    class Exportable(base):  # type: ignore[misc, valid-type]
        def forward(self, input_ids, *past):  # noqa: ANN001, ANN201
            pairs = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)]
            cache = DynamicCache(ddp_cache_data=pairs, config=self.config)
            out = base.forward(self, input_ids=input_ids, past_key_values=cache, use_cache=True)
            flat = []
            for layer in out.past_key_values.layers:
                flat += [layer.keys, layer.values]
            return (out.logits, *flat)

    Exportable.__name__ = base.__name__
    model.__class__ = Exportable
    return model


def _kv_shape(cfg: Any) -> tuple[int, int, int]:
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    layers = text.num_hidden_layers
    heads = text.num_attention_heads
    kv = getattr(text, "num_key_value_heads", None) or heads
    head = getattr(text, "head_dim", None) or text.hidden_size // heads
    return layers, kv, head


def export_model(model: str, output: str | Path, *, weights: str = "random", seed: int = 0,
                 layers: int | None = None) -> ExportResult:
    """Export MODEL to ``output`` (see the module docstring).

    Args:
        layers: keep only the first N decoder layers (tests and quick looks at huge models).

    Raises:
        UserError: missing torch/transformers, an unreadable MODEL, an unknown ``weights``.
    """
    import time

    if weights not in WEIGHTS:
        raise UserError(f"option --weights: expected one of {', '.join(WEIGHTS)}, got {weights!r}")
    from placer.validate import integer

    # torch.manual_seed takes a 64-bit seed (2^70 was a traceback from its unpacking)
    integer(seed, "option --seed", minimum=0, maximum=2**63 - 1)
    torch, _ = _require_torch()
    start = time.perf_counter()
    cfg, folder = load_export_config(model)
    if layers is not None:
        have = getattr(cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg,
                       "num_hidden_layers", None)
        if isinstance(have, int) and layers > have:
            # a larger count built that many random layers (--layers 10^9 of a 2-layer model grew
            # past 3 GB in a minute): --layers keeps a prefix, it does not add layers
            raise UserError(f"option --layers: {layers:,} is more than the {have:,} decoder layers of "
                            f"{model} (num_hidden_layers); give at most {have}, or leave --layers out")
        cfg.num_hidden_layers = layers
    net = _build(cfg, folder, weights, seed)
    n_layers, kv, head = _kv_shape(net.config)
    meta = weights == "none"
    device = "meta" if meta else "cpu"
    dtype = next(net.parameters()).dtype
    ids = torch.zeros((2, 5), dtype=torch.int64, device=device)
    past = tuple(torch.zeros((2, kv, 3, head), dtype=dtype, device=device) for _ in range(2 * n_layers))
    names_in = ["input_ids"] + [f"past_{k}_{i}" for i in range(n_layers) for k in ("key", "value")]
    names_out = ["logits"] + [f"present_{k}_{i}" for i in range(n_layers) for k in ("key", "value")]
    shapes = ({0: "batch", 1: "seq"}, tuple({0: "batch", 2: "past"} for _ in range(2 * n_layers)))
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    # torch's exporter logs one line per torchvision op it cannot register when torchvision is
    # absent (irrelevant to a language model); keep stderr to placer's own lines.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(_exportable(net), (ids, *past), dynamo=True, optimize=not meta,
                                        dynamic_shapes=shapes, input_names=names_in,
                                        output_names=names_out, verbose=False)
    finally:
        registration.setLevel(level)
    parameters = sum(p.numel() for p in net.parameters())
    if meta:
        _save_external_references(program.model, out)
    else:
        _save_with_data(program, out)
    return ExportResult(out, n_layers, parameters, time.perf_counter() - start)


def _save_with_data(program: Any, out: Path) -> None:
    """Save the model and ``<out>.data`` in a scratch folder beside ``out``, then move both into
    place (data first), so that a failed export leaves no half-written file behind."""
    import os
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        program.save(str(scratch / out.name), external_data=True)
        data = scratch / (out.name + ".data")
        if data.exists():
            os.replace(data, out.with_name(out.name + ".data"))
        os.replace(scratch / out.name, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _save_external_references(model: Any, out: Path) -> None:
    """Every initializer as a reference into ``<out>.data`` (not written); the graph saved atomically."""
    import onnx_ir as ir

    from placer.fileio import write_atomic

    location = out.name + ".data"
    offset = 0
    for value in model.graph.initializers.values():
        tensor = value.const_value
        if tensor is None:
            continue
        numel = 1
        for d in tensor.shape:
            numel *= int(d)
        length = math.ceil(numel * tensor.dtype.itemsize)  # onnx_ir's itemsize is a float (4-bit: 0.5)
        value.const_value = ir.ExternalTensor(location, offset, length, tensor.dtype, shape=tensor.shape,
                                              name=value.name)
        offset += length
    proto = ir.serde.serialize_model(model)
    write_atomic(out, proto.SerializeToString())
