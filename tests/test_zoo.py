"""The built-in zoo: every config builds, its parameters equal transformers' (meta device), and
KV bytes per token equal the HARDWARE.md formulas."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from placer.cli.main import cli
from placer.cli.zoo import summarize_graph
from placer.errors import UserError
from placer.frontends.hf_config import from_config
from placer.zoo import ZOO_MODELS, load_zoo_config
from tests.frontends.test_hf_config import transformers_parameters

PUBLISHED = {  # RECIPES.md, verified with transformers on this machine
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "deepseek-v3": 671_026_404_352,
    "mixtral-8x7b": 46_702_792_704,
}


# Totals the model cards publish, rounded (name: (total, relative tolerance)). transformers does
# not build the multi-token-prediction layers, so GLM-4.7, Kimi-K2 and DeepSeek-V4-Pro come out
# a little under the card's figure; MiniMax-M2's safetensors hold 228,703,644,928 values.
PUBLISHED_ROUNDED = {
    "deepseek-v4-flash": (284e9, 0.002),
    "deepseek-v4-pro": (1.6e12, 0.02),
    "glm-4.7": (355e9, 0.01),
    "kimi-k2": (1.0e12, 0.03),
    "qwen3-coder-480b-a35b": (480e9, 0.001),
    "minimax-m2": (228_703_644_928, 0.0001),
}


class _Graphs(dict):
    """Zoo graphs built on first use and kept for the session (DeepSeek-V3 takes ~2 s)."""

    def __missing__(self, name: str):
        self[name] = from_config(load_zoo_config(name), name=name)
        return self[name]


@pytest.fixture(scope="session")
def graphs() -> dict:
    return _Graphs()


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_parameters_equal_transformers(name: str, graphs: dict) -> None:
    expected = transformers_parameters(load_zoo_config(name))
    assert graphs[name].parameter_count() == expected
    if name in PUBLISHED:
        assert expected == PUBLISHED[name]
    if name in PUBLISHED_ROUNDED:
        total, tolerance = PUBLISHED_ROUNDED[name]
        assert abs(expected - total) <= tolerance * total


def _kv_bytes(graph) -> tuple[int, int]:
    """(all, windowed) KV bytes per token at the native KV dtype (bf16: 2 bytes)."""
    total = sum(c.elements_per_token * 2 for c in graph.kv_caches)
    windowed = sum(c.elements_per_token * 2 for c in graph.kv_caches if c.window)
    assert all(c.dtype.storage_bytes(1) == 2 for c in graph.kv_caches)
    return total, windowed


@pytest.mark.parametrize(
    "name, layers, kv_heads, head_dim",
    [("llama-3.1-8b", 32, 8, 128), ("llama-3.1-70b", 80, 8, 128), ("llama-3.1-405b", 126, 8, 128)],
)
def test_gqa_kv_bytes_per_token(name: str, layers: int, kv_heads: int, head_dim: int, graphs: dict) -> None:
    assert _kv_bytes(graphs[name]) == (2 * layers * kv_heads * head_dim * 2, 0)


def test_known_kv_values(graphs: dict) -> None:
    assert _kv_bytes(graphs["llama-3.1-8b"])[0] == 128 * 1024
    assert _kv_bytes(graphs["llama-3.1-70b"])[0] == 320 * 1024
    assert _kv_bytes(graphs["llama-3.1-405b"])[0] == 504 * 1024
    assert _kv_bytes(graphs["deepseek-v3"]) == ((512 + 64) * 61 * 2, 0) == (70_272, 0)


def test_gpt_oss_120b_kv_with_sliding_window_caps(graphs: dict) -> None:
    g = graphs["gpt-oss-120b"]
    per_layer = 2 * 8 * 64 * 2  # K and V, 8 KV heads x 64, bf16
    assert _kv_bytes(g) == (36 * per_layer, 18 * per_layer) == (73_728, 36_864)
    assert {c.window for c in g.kv_caches} == {0, 128}
    sliding_layers = {c.name.split(".")[2] for c in g.kv_caches if c.window == 128}
    assert sliding_layers == {str(i) for i in range(0, 36, 2)}


def test_kv_through_cost_model(graphs: dict) -> None:
    cost_model = pytest.importorskip("placer.cost_model")
    from placer.pipeline import load_graph
    from placer.targets import load_target
    from placer.workload import Workload

    for name, kv in [("llama-3.1-8b", 131_072), ("gpt-oss-20b", 49_152)]:
        costs = cost_model.annotate_costs(
            load_graph(name), load_target("wse3"), Workload(context_tokens=1000)
        )
        assert costs.kv_bytes_per_token == kv
        held = sum(u.kv_bytes(1000) for u in costs.units)
        windows = [c for c in graphs[name].kv_caches if c.window]
        assert held == 1000 * kv - sum(c.elements_per_token * 2 * (1000 - c.window) for c in windows)


def test_native_weight_bytes(graphs: dict) -> None:
    oss = summarize_graph(graphs["gpt-oss-120b"], "gpt-oss-120b", "gpt_oss")
    experts = 36 * 128 * (2880 * 5760 + 2880 * 2880)  # MXFP4: 4.25 bits per element
    other = (oss.parameters - experts) * 2
    assert oss.weight_bytes == experts * 17 // 32 + other
    ds = graphs["deepseek-v3"]
    fp8 = [w for w in ds.weights.values() if w.type.dtype.value == "fp8e4m3"]
    assert sum(w.numel for w in fp8) > 0.98 * ds.parameter_count()


def test_unknown_zoo_name() -> None:
    with pytest.raises(UserError, match="not a zoo model"):
        load_zoo_config("llama-5")


def test_zoo_command_json() -> None:
    result = CliRunner().invoke(cli, ["zoo", "--json", "gpt-oss-120b", "llama-3.1-8b"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["llama-3.1-8b"]["parameters"] == 8_030_261_248
    assert rows["llama-3.1-8b"]["kv_bytes_per_token"] == 131_072
    assert rows["gpt-oss-120b"]["windowed_kv_bytes_per_token"] == 36_864
    assert rows["gpt-oss-120b"]["windows"] == [128]
    text = CliRunner().invoke(cli, ["zoo", "mixtral-8x7b"])
    assert "46.70 B params" in text.output and "131,072 B/token" in text.output
    bad = CliRunner().invoke(cli, ["zoo", "nope"])
    assert bad.exit_code == 2 and "not a zoo model" in bad.output


@pytest.mark.parametrize(
    "field, value, message",
    [("hidden_size", None, "'hidden_size' is missing"), ("num_hidden_layers", "two", "must be an integer")],
)
def test_cli_bad_config_exits_2_naming_the_field(tmp_path, field: str, value: object, message: str) -> None:
    config = load_zoo_config("llama-3.1-8b")
    if value is None:
        del config[field]
    else:
        config[field] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 2
    assert message in result.output and field in result.output and str(path) in result.output


def test_new_zoo_kv_and_state_bytes(graphs: dict) -> None:
    """KV bytes per token and per-sequence state (bf16) of the newer zoo models, by hand."""
    def per_token(name: str) -> int:
        return sum(c.dtype.storage_bytes(c.elements_per_token) // c.tokens_per_entry
                   for c in graphs[name].kv_caches)

    def state(name: str) -> int:
        return sum(c.dtype.storage_bytes(c.state_elements) for c in graphs[name].kv_caches)

    assert per_token("glm-4.7") == 92 * 2 * 8 * 128 * 2
    assert per_token("qwen3-coder-480b-a35b") == 62 * 2 * 8 * 128 * 2
    assert per_token("minimax-m2") == 62 * 2 * 8 * 128 * 2
    assert per_token("kimi-k2") == 61 * (512 + 64) * 2
    # DeepSeek-V4-Flash: 43 layers of a 512-wide shared K=V over the 128-token window; 21 CSA
    # layers add 512/4 (KV) + 128/4 (indexer) per token, 20 HCA layers 512/128.
    window = 43 * 512 * 2
    assert per_token("deepseek-v4-flash") == window + (21 * (128 + 32) + 20 * 4) * 2
    csa = 2 * 3 * 1024 + 2 * 4 * 512 + 2 * 3 * 256 + 2 * 4 * 128  # open windows + overlaps
    assert state("deepseek-v4-flash") == (21 * csa + 20 * 2 * 127 * 512) * 2
    assert per_token("deepseek-v4-pro") == 61 * 512 * 2 + (30 * (128 + 32) + 31 * 4) * 2
