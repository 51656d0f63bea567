"""Optimum's exports (``optimum-cli export onnx --task text-generation-with-past``; committed in
``tests/data/optimum`` with the script that made them, since Optimum pins an older transformers):
transformers' meta-device parameter counts, the KV bytes of their cache inputs, ``placer run``
against onnxruntime, and the ops the docs list for Optimum."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

from placer.cost_model import annotate_costs
from placer.pipeline import load_graph
from placer.targets import load_target
from placer.workload import Workload

ort = pytest.importorskip("onnxruntime")

DATA = Path(__file__).resolve().parents[1] / "data" / "optimum"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "onnx-ops.md"
FAMILIES = ("llama", "qwen2", "gpt2")


def _meta_parameters(family: str) -> int:
    torch = pytest.importorskip("torch")
    tr = pytest.importorskip("transformers")
    data = json.loads((DATA / f"{family}.config.json").read_text())
    kept = {k: v for k, v in data.items() if k not in ("model_type", "architectures", "transformers_version")}
    cfg = tr.AutoConfig.for_model(data["model_type"], **kept)
    with torch.device("meta"):
        return sum(p.numel() for p in tr.AutoModelForCausalLM.from_config(cfg).parameters())


def _feeds(sess: ort.InferenceSession, ids: np.ndarray) -> dict[str, np.ndarray]:
    feeds = {"input_ids": ids}
    for i in sess.get_inputs():
        if i.name == "attention_mask":
            feeds[i.name] = np.ones_like(ids)
        elif i.name == "position_ids":
            feeds[i.name] = np.arange(ids.shape[1], dtype=np.int64)[None].repeat(ids.shape[0], 0)
        elif i.name.startswith("past_key_values"):
            feeds[i.name] = np.zeros((ids.shape[0], i.shape[1], 0, i.shape[3]), np.float32)
    return feeds


def _ort_steps(path: Path, ids: np.ndarray, steps: int) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feeds = _feeds(sess, ids)
    logits = []
    for _ in range(steps + 1):
        out = dict(zip(names, sess.run(None, feeds)))
        logits.append(out["logits"])
        nxt = np.argmax(out["logits"][:, -1], axis=-1)[:, None].astype(np.int64)
        new = {"input_ids": nxt}
        if "attention_mask" in feeds:
            new["attention_mask"] = np.ones((1, feeds["attention_mask"].shape[1] + 1), np.int64)
        if "position_ids" in feeds:
            new["position_ids"] = feeds["position_ids"][:, -1:] + 1
        feeds = new | {n.replace("present", "past_key_values"): out[n] for n in names[1:]}
    return logits


@pytest.mark.parametrize("family", FAMILIES)
def test_parameters_and_kv_bytes_are_exact(family) -> None:
    path = DATA / f"{family}.onnx"
    assert path.stat().st_size < 1e6
    graph = load_graph(path)
    want = _meta_parameters(family)
    assert graph.parameter_count() == want
    cost = annotate_costs(graph, load_target("wse3"), Workload(context_tokens=64, prompt_tokens=8))
    assert cost.parameters == want
    kv_heads = 4 if family == "gpt2" else 2
    assert cost.kv_bytes_per_token == 2 * 2 * kv_heads * 8 * 4  # layers x (K, V) x heads x head 8 x fp32


@pytest.mark.parametrize("family", FAMILIES)
def test_compile_and_run_match_onnxruntime(family) -> None:
    from placer.compiler import compile_model
    from placer.runner import run_plan

    path = DATA / f"{family}.onnx"
    plan = compile_model(path, target="wse-mini", context=32, prompt=8)
    ids = np.random.default_rng(3).integers(0, 96, (1, 5)).astype(np.int64)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    result = run_plan(path, plan, _feeds(sess, ids), tokens=3, predict=False)
    want = _ort_steps(path, ids, 2)
    for got, exp in ((result.prefill_outputs["logits"], want[0]), (result.outputs["logits"], want[-1])):
        assert np.abs(got - exp).max() <= 1e-4 * np.abs(exp).max()
    assert result.tokens[0].tolist() == [int(np.argmax(w[0, -1])) for w in want]


def test_docs_list_the_ops_of_the_exports() -> None:
    ops: set[str] = set()
    for family in FAMILIES:
        model = onnx.load(str(DATA / f"{family}.onnx"), load_external_data=False)
        ops |= {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}
    row = next(line for line in DOCS.read_text().splitlines() if line.startswith("| Optimum"))
    listed = set(re.split(r"\s+", row.rsplit("|", 2)[1].strip()))
    assert listed == ops
