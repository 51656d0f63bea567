"""Objectives and batched decode on real zoo configs: residency first, batching pays, min-cost
trades wafers for tokens/s, TTFT and prefill chunking (issue 8's acceptance cases)."""

from __future__ import annotations

import pytest

import placer
from placer.errors import InfeasibleError

FAST = {"time_limit": 2.0}


@pytest.fixture(scope="module")
def llama70b_8_wafers():
    return {c: placer.compile("llama-3.1-70b", wafers=8, concurrency=c, context=8192,
                              objective="max-throughput", **FAST) for c in (8, 32)}


def test_max_throughput_keeps_every_sequence_that_fits_resident(llama70b_8_wafers):
    plan = llama70b_8_wafers[32]
    assert plan.kv.resident_sequences == 32 and plan.kv.parked_sequences == 0
    assert all(w.memory.free >= 0 for w in plan.wafers)


def test_batching_pays_on_70b(llama70b_8_wafers):
    eight, many = llama70b_8_wafers[8].performance, llama70b_8_wafers[32].performance
    assert many.tokens_per_s_total >= 2 * eight.tokens_per_s_total
    assert many.micro_batch * many.micro_batches_in_flight >= 32


def test_8b_on_one_wafer_grows_with_concurrency_until_something_binds():
    plans = [placer.compile("llama-3.1-8b", wafers=1, concurrency=c, context=8192, objective="max-throughput",
                            **FAST) for c in (1, 2, 4, 8, 16, 32, 64)]
    totals = [p.performance.tokens_per_s_total for p in plans]
    resident = [p for p in plans if p.kv.parked_sequences == 0]
    assert len(resident) >= 4
    for a, b in zip(resident, resident[1:]):
        assert b.performance.tokens_per_s_total > 1.5 * a.performance.tokens_per_s_total
    last = plans[-1]
    assert last.kv.parked_sequences > 0 and totals[-1] <= 1.01 * max(totals)
    assert last.performance.throughput_bound in {"compute", "SRAM bandwidth", "SRAM capacity", "I/O"}
    from placer.report import binding_constraints

    assert any(last.performance.throughput_bound in line for line in binding_constraints(last))


def test_max_throughput_with_free_wafers_adds_a_wafer_only_when_it_raises_tokens_per_s():
    plan = placer.compile("llama-3.1-70b", concurrency=32, context=8192, objective="max-throughput", **FAST)
    n = len(plan.wafers)
    assert plan.kv.parked_sequences == 0 and n < 40
    assert plan.performance.tokens_per_s_per_wafer == pytest.approx(plan.performance.tokens_per_s_total / n)
    fewer = placer.compile("llama-3.1-70b", wafers=n - 1, concurrency=32, context=8192,
                           objective="max-throughput", **FAST)
    if fewer.kv.parked_sequences == 0:
        assert plan.performance.tokens_per_s_total > fewer.performance.tokens_per_s_total


def test_min_cost_is_the_cheapest_exact_wafer_count():
    """Oracle: compile with every exact wafer count and price each plan."""
    common = {"concurrency": 16, "context": 8192, **FAST}
    best = placer.compile("llama-3.1-8b", objective="min-cost", max_wafers=4, **common)
    prices = {}
    for n in range(1, 5):
        try:
            p = placer.compile("llama-3.1-8b", objective="min-latency", wafers=n, **common)
        except InfeasibleError:
            continue
        if p.kv.resident_sequences == best.kv.resident_sequences:
            prices[n] = p.performance.usd_per_million_tokens
    assert best.performance.usd_per_million_tokens <= min(prices.values()) * (1 + 1e-6)
    usd = best.performance.usd_per_million_tokens
    expected = len(best.wafers) * 23.35 / 3600 / best.performance.tokens_per_s_total * 1e6
    assert usd == pytest.approx(expected)


def test_rented_target_prices_the_same_plan_higher():
    owned = placer.compile("llama-3.1-8b", concurrency=4, objective="min-cost", **FAST)
    rented = placer.compile("llama-3.1-8b", target="wse3-rented", concurrency=4, objective="min-cost", **FAST)
    assert rented.performance.usd_per_million_tokens == pytest.approx(
        owned.performance.usd_per_million_tokens * 41.96 / 23.35)


def test_ttft_is_never_below_one_decode_round_trip():
    plan = placer.compile("llama-3.1-8b", prompt=1, context=8192, **FAST)
    assert plan.performance.ttft_s >= plan.performance.round_trip_s > 0


def test_long_prompt_is_chunked_and_adds_no_wafers_for_buffers():
    short = placer.compile("llama-3.1-8b", prompt=1024, context=100_000, **FAST)
    long = placer.compile("llama-3.1-8b", prompt=96_000, context=100_000, **FAST)
    assert len(long.wafers) == len(short.wafers)
    assert long.performance.prefill_chunk_tokens == 1024
    assert long.wafers[0].memory.activations == short.wafers[0].memory.activations
    assert long.performance.ttft_s > 50 * short.performance.ttft_s  # ~94 chunks instead of one


def test_external_store_is_per_system():
    """Each wafer's system parks its own share of a sequence's KV in its own store."""
    plan = placer.compile("llama-3.1-70b", wafers=4, concurrency=64, context=8192, **FAST)
    parked, shares = plan.kv.parked_sequences, [w.kv_bytes_per_sequence for w in plan.wafers]
    assert parked > 0
    store = parked * max(shares)  # enough for the busiest system, less than the whole deployment needs
    assert store < parked * sum(shares)
    again = placer.compile("llama-3.1-70b", wafers=4, concurrency=64, context=8192,
                           target_overrides={"external_kv_bytes": store}, **FAST)
    assert again.kv.parked_bytes == parked * sum(shares)
    with pytest.raises(InfeasibleError, match="external KV store binds"):
        placer.compile("llama-3.1-70b", wafers=4, concurrency=64, context=8192,
                       target_overrides={"external_kv_bytes": store - 1}, **FAST)
