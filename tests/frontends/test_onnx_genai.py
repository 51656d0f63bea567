"""Whole models built by onnxruntime-genai's model builder (fp32 and int4, Llama and Qwen2):
exact parameter counts against torch, int4 weight bytes against the file's own tensors, a
compiled plan, and ``placer run`` against onnxruntime over a prompt and decode steps."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import onnx
import pytest

from placer.cost_model import annotate_costs
from placer.frontends.onnx import from_onnx
from placer.pipeline import load_graph
from placer.targets import load_target
from placer.workload import Workload

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_genai")

VOCAB = 96


def _hf_folder(family: str, folder: Path) -> int:
    """A random tiny HF model and a WordLevel tokenizer in ``folder``; returns torch's count."""
    import torch
    import transformers as tr
    from tokenizers import Tokenizer, models, pre_tokenizers

    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    cfg = {"llama": tr.LlamaConfig, "qwen2": tr.Qwen2Config}[family](**common)
    torch.manual_seed(0)
    model = tr.AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # random norms too: no two tensors alike
            p.normal_(0, 0.05)
    model.save_pretrained(folder)
    vocab = {f"t{i}": i for i in range(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tr.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="t0", eos_token="t1",
                               bos_token="t2").save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def genai_model(tmp_path_factory: pytest.TempPathFactory):
    """``genai_model(family, precision, **options)`` -> (model.onnx path, torch parameter count),
    built once per module with the builder in-process."""
    from onnxruntime_genai.models import builder

    root = tmp_path_factory.mktemp("genai")
    built: dict[tuple, tuple[Path, int]] = {}
    counts: dict[str, int] = {}

    def get(family: str, precision: str, **options: str) -> tuple[Path, int]:
        key = (family, precision, tuple(sorted(options.items())))
        if key not in built:
            hf = root / f"hf_{family}"
            if family not in counts:
                counts[family] = _hf_folder(family, hf)
            out = root / f"{family}_{precision}_{len(built)}"
            extra = [f"{k}={v}" for k, v in options.items()]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                opts = builder.parse_extra_options("", str(hf), str(out), precision, "cpu",
                                                   str(root / "cache"), extra)
                builder.create_model("", str(hf), str(out), precision, "cpu", str(root / "cache"), **opts)
            built[key] = (out / "model.onnx", counts[family])
        return built[key]
    return get


# Qwen2 int4: asymmetric (zero points), 16-element blocks, the embedding quantized too.
ASYM = {"is_symmetric": "false", "block_size": "16", "op_types_to_quantize": "MatMul/Gather"}
CASES = [("llama", "fp32", {}), ("llama", "int4", {}), ("qwen2", "fp32", {}), ("qwen2", "int4", ASYM)]


@pytest.mark.parametrize("family,precision,options", CASES)
def test_parameters_and_weight_bytes_are_exact(genai_model, family, precision, options) -> None:
    path, torch_count = genai_model(family, precision, **options)
    graph = from_onnx(path)
    assert graph.parameter_count() == torch_count
    proto = onnx.load(str(path), load_external_data=False)
    ops = {n.op_type for n in proto.graph.node}
    assert "GroupQueryAttention" in ops and "SkipSimplifiedLayerNormalization" in ops
    if precision == "int4":
        assert "MatMulNBits" in ops
    if options:
        assert any(n.op_type == "MatMulNBits" and len(n.input) > 3 and n.input[3] for n in proto.graph.node)
        assert "GatherBlockQuantized" in ops
    # Weight bytes: every stored tensor of the file (packed weights, scales, zero points, norms,
    # embedding) except the rotary tables, read from the external data lengths themselves.
    stored = 0
    for t in proto.graph.initializer:
        if t.name in ("cos_cache", "sin_cache"):
            continue
        info = {e.key: e.value for e in t.external_data}
        stored += int(info["length"]) if "length" in info else len(t.raw_data)
    cost = annotate_costs(load_graph(path), load_target("wse3"), Workload(context_tokens=64, prompt_tokens=8))
    assert cost.parameters == torch_count
    assert cost.weight_bytes == stored
    # 2 layers x (K and V) x 2 KV heads x head 16 x 4 bytes.
    assert cost.kv_bytes_per_token == 2 * 2 * 2 * 16 * 4
    if precision == "fp32":
        assert stored == 4 * torch_count


def _ort_steps(path: Path, ids: np.ndarray, steps: int) -> list[np.ndarray]:
    """onnxruntime's logits for the prompt and ``steps`` greedy decode steps."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    for i in sess.get_inputs():
        if i.name.startswith("past"):
            feeds[i.name] = np.zeros((ids.shape[0], 2, 0, 16), np.float32)
    logits = []
    for _ in range(steps + 1):
        out = dict(zip(names, sess.run(None, feeds)))
        logits.append(out["logits"])
        nxt = np.argmax(out["logits"][:, -1], axis=-1)[:, None].astype(np.int64)
        mask = np.ones((ids.shape[0], feeds["attention_mask"].shape[1] + 1), np.int64)
        feeds = {"input_ids": nxt, "attention_mask": mask}
        feeds |= {n.replace("present", "past_key_values"): out[n] for n in names[1:]}
    return logits


@pytest.mark.parametrize("family,precision,options", CASES)
def test_compile_and_run_match_onnxruntime(genai_model, family, precision, options) -> None:
    from placer.compiler import compile_model
    from placer.runner import run_plan

    path, _ = genai_model(family, precision, **options)
    plan = compile_model(path, target="wse-mini", context=32, prompt=8)
    ids = np.random.default_rng(1).integers(0, VOCAB, (1, 5)).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    feeds |= {i: np.zeros((1, 2, 0, 16), np.float32) for i in load_graph(path).inputs if i.startswith("past")}
    result = run_plan(path, plan, feeds, tokens=3, predict=False)
    want = _ort_steps(path, ids, 2)
    rtol = 1e-4 if precision == "fp32" else 1e-3
    for got, exp in ((result.prefill_outputs["logits"], want[0]), (result.outputs["logits"], want[-1])):
        assert np.abs(got - exp).max() <= rtol * np.abs(exp).max()
    assert result.tokens[0].tolist() == [int(np.argmax(w[0, -1])) for w in want]
