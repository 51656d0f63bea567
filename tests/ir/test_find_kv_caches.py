"""find-kv-caches: cached tensors per layer from past-KV inputs or traced K/V operands.

Oracle: the size transformers' own cache holds per token (``present_key_i`` of the export run
in onnxruntime has ``kv_heads * head_dim`` elements per token), and the synthetic models' shape.
"""

from __future__ import annotations

import numpy as np
import pytest

from placer.frontends.hf_config import from_config
from placer.frontends.onnx import from_onnx
from placer.ir.passes.find_kv_caches import FindKVCaches, find_kv_caches
from placer.synthetic import write_llama_like_onnx
from tests.models import FAMILIES, HEADS, HIDDEN, KV_HEADS, LAYERS


def _ort_present_elements_per_token(path) -> int:
    """Elements per token of layer 0's cached key, measured by running the export."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path))
    feeds = {}
    for i in sess.get_inputs():
        if i.name == "input_ids":
            feeds[i.name] = np.array([[1, 2, 3]], dtype=np.int64)
        else:
            dims = [1 if d == "batch" else 2 if isinstance(d, str) else d for d in i.shape]
            feeds[i.name] = np.zeros(dims, dtype=np.float32)
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, feeds)))
    present = out["present_key_0"]
    return present.size // present.shape[2]  # [batch=1, kv_heads, tokens, head_dim]


@pytest.mark.slow
@pytest.mark.parametrize("with_cache", [False, True], ids=["nocache", "cache"])
@pytest.mark.parametrize("family", FAMILIES)
def test_real_exports_cache_kv_heads_times_head_dim(onnx_model, family: str, with_cache: bool) -> None:
    path = onnx_model(family, dynamo=True, with_cache=with_cache)
    graph = from_onnx(path)
    caches = find_kv_caches(graph)
    kv_heads = HEADS if family == "gpt2" else KV_HEADS  # GPT-2 is MHA (fused c_attn + Split)
    per_token = kv_heads * (HIDDEN // HEADS)
    assert [c.name for c in caches] == [f"layers.{i}.{r}" for i in range(LAYERS) for r in ("key", "value")]
    assert all(c.elements_per_token == per_token for c in caches)
    if with_cache:
        assert _ort_present_elements_per_token(path) == per_token
        assert {c.value for c in caches} == {f"past_{r}_{i}" for i in range(LAYERS) for r in ("key", "value")}
    new = FindKVCaches().run(graph).graph
    assert new.kv_caches == caches


@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 4), (4, 2), (8, 1)], ids=["mha", "gqa", "mqa"])
def test_synthetic_mha_gqa_mqa(tmp_path, heads: int, kv_heads: int) -> None:
    path = write_llama_like_onnx(tmp_path / "m.onnx", layers=2, hidden=64, heads=heads, kv_heads=kv_heads,
                                 head_dim=16, ffn=96, vocab=100, dtype="f32", sparse_external=False)
    caches = find_kv_caches(from_onnx(path))
    assert len(caches) == 4
    assert all(c.elements_per_token == kv_heads * 16 for c in caches)


def test_caches_declared_by_the_frontend_are_kept() -> None:
    cfg = dict(model_type="mistral", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, vocab_size=100, sliding_window=16)
    graph = from_config(cfg)
    assert graph.kv_caches and all(c.window == 16 for c in graph.kv_caches)
    result = FindKVCaches().run(graph)
    assert not result.changed and result.graph.kv_caches == graph.kv_caches
    # Tracing alone finds the same per-token sizes, without the windows.
    traced = find_kv_caches(graph)
    assert [c.elements_per_token for c in traced] == [c.elements_per_token for c in graph.kv_caches]
