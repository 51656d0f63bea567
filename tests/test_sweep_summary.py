"""The per-model summary table on the whole zoo at context 131072: KV bytes of one sequence
against the published configs' arithmetic, wafers for the weights against the capacity bound,
the I/O move time against the link, and the fastest/cheapest points."""

from __future__ import annotations

import math

import pytest

from placer.sweep import spec_from_lists
from placer.sweep_exec import run_sweep
from placer.sweep_summary import summarize, summary_markdown
from placer.targets import load_target
from placer.zoo import ZOO_MODELS, load_zoo_config

CONTEXT = 131072
PROMPT = 3000
# Families whose KV arithmetic the oracle below knows (full, sliding-window, chunked, MLA).
_CHECKED = {"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-4-scout", "llama-4-maverick",
            "gpt-oss-20b", "gpt-oss-120b", "deepseek-v3", "qwen3-235b-a22b", "mixtral-8x7b", "mixtral-8x22b"}


def _kv_bytes_per_sequence(name: str) -> tuple[int, bool]:
    """(bytes of one CONTEXT-token sequence in bf16, exact?) from the HF config alone."""
    c = load_zoo_config(name)
    c = c.get("text_config", c)
    layers = c["num_hidden_layers"]
    if c.get("kv_lora_rank"):   # MLA caches the compressed latent and the rope key
        return layers * (c["kv_lora_rank"] + c["qk_rope_head_dim"]) * 2 * CONTEXT, True
    head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    per_token_layer = 2 * c["num_key_value_heads"] * head_dim * 2
    if c.get("layer_types"):     # gpt-oss: sliding layers keep `sliding_window` tokens
        tokens = sum(c["sliding_window"] if t == "sliding_attention" else CONTEXT for t in c["layer_types"])
        return tokens * per_token_layer, False
    if c.get("attention_chunk_size"):   # Llama 4: chunked local layers, every 4th global
        return layers * per_token_layer * CONTEXT, False   # an upper bound
    return layers * per_token_layer * CONTEXT, True


@pytest.fixture(scope="module")
def summaries():
    # The grid point (auto wafers, concurrency 1, context 131072) is the summary's own
    # one-sequence point: the same input hash, compiled once.
    # A prompt of PROMPT tokens: three prefill chunks (wse3's 762 PE rows: chunks of 1,024 tokens).
    spec = spec_from_lists(list(ZOO_MODELS), wafers="auto", concurrency="1", context=[CONTEXT],
                           options={"time_limit": 2, "prompt": PROMPT})
    result = run_sweep(spec, jobs=2, summary_context=CONTEXT)
    assert result.computed == 2 * len(ZOO_MODELS)
    return result, summarize(result.rows, result.summary_rows, CONTEXT, floor=1.0)


def test_one_row_per_zoo_model(summaries):
    _, rows = summaries
    assert [s["model"] for s in rows] == list(ZOO_MODELS)
    assert all(s["why_not"] == "" for s in rows), [s["why_not"] for s in rows]


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_kv_of_one_128k_sequence_against_the_config(summaries, name):
    (s,) = [x for x in summaries[1] if x["model"] == name]
    expected, exact = _kv_bytes_per_sequence(name)
    got = s["kv_gb_per_sequence"] * 1e9
    if exact and name in _CHECKED:
        assert got == pytest.approx(expected, rel=1e-9)
    elif name not in _CHECKED:   # a newer zoo family (e.g. compressed attention): only positive
        assert got > 0
        return
    else:
        assert 0 < got <= expected * (1 + 1e-9)
    if name == "gpt-oss-120b":   # 18 full layers of 131,072 tokens and 18 sliding of 128
        assert got == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_wafers_free_sram_and_move_time(summaries, name):
    result, rows = summaries
    (s,) = [x for x in rows if x["model"] == name]
    t = load_target("wse3")
    capacity = t.sram_bytes * (1 - t.default_reserve)
    weights = next(r for r in result.summary_rows if r["model"] == name and r["context"] == 0)
    assert weights["status"] == "ok" and s["min_wafers_for_weights"] == weights["wafers_used"]
    # fewer wafers than the weight bytes over one wafer's capacity cannot hold the weights, and
    # the free SRAM is what the weights leave
    n = s["min_wafers_for_weights"]
    assert n >= math.ceil(weights["weights_gb"] * 1e9 / capacity)
    assert 0 <= s["free_sram_gb_per_wafer"] * 1e9 <= capacity - weights["weights_gb"] * 1e9 / n + 1
    # moving one sequence's KV over the wafers' links in parallel takes at least its bytes over
    # every link together, and at most over one link
    kv, n = s["kv_gb_per_sequence"] * 1e9, s["wafers_for_one_sequence"]
    bw = t.io_bandwidth_bytes_per_s
    hop = t.io_latency_s + t.hop_overhead_s
    assert kv / (n * bw) <= s["kv_move_ms"] / 1e3 <= (hop + kv / bw) * (1 + 1e-9)
    assert s["fastest"]["model"] == name and s["cheapest"]["model"] == name


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_dollars_per_million_tokens_by_hand(summaries, name):
    """$ per million output tokens = wafers x $/wafer-hour / 3600 / (tokens/s) x 1e6, from the
    row's own wafers and tokens/s and wse3's published price; a request is its prompt's tokens at
    the input rate plus 256 output tokens at the output rate."""
    rate = load_target("wse3").cost_per_hour
    assert rate == 23.35   # $ per CS-3 hour, owned (placer/targets/wse3.toml)
    (s,) = [x for x in summaries[1] if x["model"] == name]
    for r in (s["fastest"], s["cheapest"]):
        by_hand = r["wafers_used"] * rate / 3600 / r["tokens_per_s_total"] * 1e6
        assert r["usd_per_million_output_tokens"] == pytest.approx(by_hand, rel=1e-9)
        assert r["usd_per_million_input_tokens"] > 0
        assert r["usd_per_request"] == pytest.approx(
            (r["usd_per_million_input_tokens"] * PROMPT + r["usd_per_million_output_tokens"] * 256) / 1e6,
            rel=1e-9)


def test_dollars_per_million_input_tokens_by_hand(summaries):
    """The prompt's tokens pay for the wafer time of its whole prefill: ceil(3000 / 1024) = 3
    chunks on every wafer, each wafer's chunk time over the prefill utilisation."""
    from placer.compiler import compile_model

    t = load_target("wse3")
    (s,) = [x for x in summaries[1] if x["model"] == "llama-3.1-8b"]
    row = s["fastest"]
    plan = compile_model("llama-3.1-8b", context=CONTEXT, concurrency=1, prompt=PROMPT, time_limit=2)
    assert len(plan.wafers) == row["wafers_used"]
    assert plan.performance.tokens_per_s_total == row["tokens_per_s_total"]
    assert plan.performance.prefill_chunk_tokens == 1024   # the smallest power of two >= 762 rows
    busy = 3 * sum(w.prefill_seconds for w in plan.wafers) / t.prefill_utilisation   # wafer-seconds
    by_hand = busy * 23.35 / 3600 / PROMPT * 1e6
    assert row["usd_per_million_input_tokens"] == pytest.approx(by_hand, rel=1e-9)


def test_markdown_table(summaries):
    lines = summary_markdown(summaries[1])
    assert lines[0].startswith("## Per model (KV of one 131,072-token sequence")
    assert "cheapest $ per M output tokens" in lines[2] and "cheapest $ per M input tokens" in lines[2]
    assert [x.split(" | ")[0] for x in lines[4:]] == [f"| {name}" for name in ZOO_MODELS]
    for line, s in zip(lines[4:], summaries[1]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[-2] == f"${s['cheapest']['usd_per_million_output_tokens']:,.3f}"
        assert cells[-1] == f"${s['cheapest']['usd_per_million_input_tokens']:,.3f}"
        assert cells[7] == f"${s['fastest']['usd_per_million_output_tokens']:,.3f}"
