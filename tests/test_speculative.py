"""Speculative decoding: the expected-tokens formula against a Monte Carlo simulation, the options."""

from __future__ import annotations

import numpy as np
import pytest

from placer.errors import UserError
from placer.options import CompileOptions
from placer.speculative import (
    SpeculativeOptions,
    effective_time_per_token,
    effective_tokens_per_s,
    expected_tokens_per_step,
)


def simulate_tokens_per_step(k: int, a: float, steps: int, seed: int) -> np.ndarray:
    """Tokens of each of ``steps`` verification steps: draft k tokens, accept each with
    probability a until the first rejection; the target adds one token (its correction at the
    first rejection, or a bonus token when all k are accepted)."""
    rng = np.random.default_rng(seed)
    accept = rng.random((steps, k)) < a
    # accepted prefix: the first rejection's index, or k when none is rejected
    prefix = np.where(accept.all(axis=1), k, np.argmin(accept, axis=1))
    return prefix + 1


@pytest.mark.parametrize("k,a", [(1, 0.5), (4, 0.8), (8, 0.6), (3, 0.0), (16, 0.95), (2, 0.999)])
def test_expected_tokens_matches_monte_carlo(k, a):
    tokens = simulate_tokens_per_step(k, a, 200_000, seed=k)
    se = tokens.std(ddof=1) / np.sqrt(tokens.size)
    tolerance = 5 * se + 1e-12  # five standard errors: a false failure about once in 1.7 million
    assert abs(expected_tokens_per_step(k, a) - tokens.mean()) <= tolerance
    if a ** k > 2 * tolerance:  # the test can fail: dropping the bonus token (a^k) is outside it
        assert abs((1 - a ** k) / (1 - a) - tokens.mean()) > tolerance


def test_effective_rate_matches_simulated_steps():
    # 4 draft steps of 0.1 ms and one 2 ms verification: tokens over the time of the steps
    k, a, draft, verify = 4, 0.8, 1e-4, 2e-3
    tokens = simulate_tokens_per_step(k, a, 100_000, seed=7)
    simulated = tokens.sum() / (tokens.size * (k * draft + verify))
    se = tokens.std(ddof=1) / np.sqrt(tokens.size) / (k * draft + verify)
    assert abs(effective_tokens_per_s(draft, verify, k, a) - simulated) <= 5 * se
    assert effective_time_per_token(draft, verify, k, a) == pytest.approx(2.4e-3 / 3.3616)


def test_closed_form_values():
    assert expected_tokens_per_step(4, 0.8) == pytest.approx(1 + 0.8 + 0.64 + 0.512 + 0.4096)
    assert expected_tokens_per_step(4, 0.0) == 1.0
    assert expected_tokens_per_step(4, 1.0) == 5.0  # the limit, for callers of the formula


@pytest.mark.parametrize("kwargs,option", [({"draft_length": 0}, "--draft-length"),
                                           ({"draft_length": 2.5}, "--draft-length"),
                                           ({"acceptance": 1.0}, "--acceptance"),
                                           ({"acceptance": -0.1}, "--acceptance"),
                                           ({"acceptance": float("nan")}, "--acceptance"),
                                           ({"acceptance": "high"}, "--acceptance"),
                                           ({"draft": ""}, "--draft")])
def test_options_are_checked(kwargs, option):
    base = {"draft": "llama-3.1-8b", "draft_length": 4, "acceptance": 0.8} | kwargs
    with pytest.raises(UserError, match=option):
        SpeculativeOptions(**base)


@pytest.mark.parametrize("flat,message", [
    ({"draft_length": 4}, "option --draft-length needs --draft"),
    ({"acceptance": 0.5}, "option --acceptance needs --draft"),
    ({"draft": "llama-3.1-8b", "acceptance": 0.5}, "option --draft needs --draft-length"),
    ({"draft": "llama-3.1-8b", "draft_length": 3}, "option --draft needs --acceptance"),
    ({"draft": "llama-3.1-8b", "draft_length": 3, "acceptance": 1.0}, "option --acceptance must be"),
])
def test_flat_options_need_each_other(flat, message):
    with pytest.raises(UserError, match=message):
        CompileOptions.from_flat(**flat)


def test_options_round_trip_and_stay_out_of_plans_without_a_draft():
    opts = CompileOptions.from_flat(draft="llama-3.1-8b", draft_length=4, acceptance=0.8)
    assert opts.workload.speculative == SpeculativeOptions("llama-3.1-8b", 4, 0.8)
    again = CompileOptions.from_dict(opts.to_dict())
    assert again == opts and again.to_dict()["workload"]["speculative"] == {
        "draft": "llama-3.1-8b", "draft_length": 4, "acceptance": 0.8}
    assert "speculative" not in CompileOptions.from_flat().to_dict()["workload"]
