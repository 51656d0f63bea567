"""``placer export``: exported files run in placer (from inputs without past tensors) exactly as
in onnxruntime, and a meta-device ``--weights none`` export of a 405B-shaped model inspects
with transformers' own parameter count and the hand-computed KV bytes."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from placer.errors import UserError

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

FAMILIES = ("llama", "mistral", "qwen2", "gpt2", "mixtral")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """family -> model.onnx exported once per module with random weights (tiny configs)."""
    from placer.export import export_model
    from tests.models import tiny_config

    root = tmp_path_factory.mktemp("export")
    done = {}

    def get(family: str):
        if family not in done:
            folder = root / family
            folder.mkdir()
            (folder / "config.json").write_text(tiny_config(family).to_json_string())
            done[family] = export_model(str(folder / "config.json"), folder / "model.onnx").path
        return done[family]
    return get


def _ort_logits(path, ids: np.ndarray, steps: int) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feeds = {"input_ids": ids}
    for i in sess.get_inputs()[1:]:
        feeds[i.name] = np.zeros((ids.shape[0], i.shape[1], 0, i.shape[3]), np.float32)
    logits = []
    for _ in range(steps + 1):
        out = dict(zip(names, sess.run(None, feeds)))
        logits.append(out["logits"])
        feeds = {"input_ids": np.argmax(out["logits"][:, -1], axis=-1)[:, None].astype(np.int64)}
        feeds |= {n.replace("present", "past"): out[n] for n in names[1:]}
    return logits


@pytest.mark.parametrize("family", FAMILIES)
def test_export_then_run_matches_onnxruntime(exported, family) -> None:
    from placer.compiler import compile_model
    from placer.runner import run_plan

    path = exported(family)
    plan = compile_model(path, target="wse-mini", context=32, prompt=8)
    ids = np.random.default_rng(2).integers(0, 150, (1, 4)).astype(np.int64)
    result = run_plan(path, plan, {"input_ids": ids}, tokens=3, predict=False)  # no past given
    want = _ort_logits(path, ids, 2)
    for got, exp in ((result.prefill_outputs["logits"], want[0]), (result.outputs["logits"], want[-1])):
        assert np.abs(got - exp).max() <= 1e-4 * np.abs(exp).max()
    assert result.tokens[0].tolist() == [int(np.argmax(w[0, -1])) for w in want]


def test_weights_none_exports_references_only(tmp_path) -> None:
    """A 2-layer Llama-3.1-405B: no weight bytes anywhere, transformers' meta-device count."""
    import torch
    import transformers as tr

    from placer.export import export_model
    from placer.inspect import inspect_model
    from placer.zoo import load_zoo_config

    result = export_model("llama-3.1-405b", tmp_path / "m.onnx", weights="none", layers=2)
    assert not (tmp_path / "m.onnx.data").exists()
    assert result.path.stat().st_size < 50e6
    cfg = {k: v for k, v in load_zoo_config("llama-3.1-405b").items() if not k.startswith("_")}
    cfg["num_hidden_layers"] = 2
    with torch.device("meta"):
        want = sum(p.numel() for p in tr.AutoModelForCausalLM.from_config(tr.LlamaConfig(**cfg)).parameters())
    total = inspect_model(str(result.path)).cost
    assert total.parameters == want
    assert total.kv_bytes_per_token == 2 * 2 * 8 * 128 * 2  # layers x (K, V) x KV heads x head x bf16


def test_export_without_torch_is_one_line_error(monkeypatch, tmp_path) -> None:
    from placer.export import export_model

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(UserError, match=r"placer export needs torch and transformers.*\[export\]"):
        export_model("llama-3.1-8b", tmp_path / "m.onnx")


def test_bad_model_and_weights_are_user_errors(tmp_path) -> None:
    from placer.export import export_model

    with pytest.raises(UserError, match="not an HF folder, a config.json or a zoo name"):
        export_model("no-such-model", tmp_path / "m.onnx")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(UserError, match="--weights"):
        export_model(str(tmp_path), tmp_path / "m.onnx", weights="zeros")
    with pytest.raises(UserError, match="from-dir"):
        export_model(str(tmp_path / "config.json"), tmp_path / "m.onnx", weights="from-dir")
