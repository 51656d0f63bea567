"""IR JSON round trip on real imported graphs, and a golden printed graph of the whole front
half of the pipeline (import, shape inference, weight roles, KV caches, units).

Regenerate the golden file with: PLACER_UPDATE_GOLDEN=1 python -m pytest tests/ir/test_serialize_models.py
"""

from __future__ import annotations

import pytest

from placer.ir import from_json, graphs_equal, print_graph, to_json
from placer.pipeline import load_graph
from placer.synthetic import write_llama_like_onnx
from tests.ir.test_printer import check_golden

FAMILIES = ["llama", "mistral", "qwen2", "gpt2", "mixtral"]


@pytest.mark.parametrize("with_cache", [False, True], ids=["nocache", "cache"])
@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_exported_models(onnx_model, family, with_cache):
    graph = load_graph(onnx_model(family, dynamo=True, with_cache=with_cache), granularity="block")
    text = to_json(graph)
    again = from_json(text)
    assert graphs_equal(graph, again)
    assert to_json(again) == text
    assert print_graph(again) == print_graph(graph)


@pytest.mark.parametrize("source", ["llama-3.1-8b", "deepseek-v3", "gpt-oss-20b"])
def test_round_trip_config_models(source, zoo_model):
    graph = zoo_model(source, "layer").graph
    again = from_json(to_json(graph))
    assert graphs_equal(graph, again)


def test_golden_two_layer_llama(tmp_path):
    path = write_llama_like_onnx(tmp_path / "tiny.onnx", layers=2, hidden=32, heads=4, kv_heads=2,
                                 head_dim=8, ffn=64, vocab=64, dtype="bf16")
    graph = load_graph(path, granularity="block")
    check_golden("llama2_block.ir.txt", print_graph(graph))
