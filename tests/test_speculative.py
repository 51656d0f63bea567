"""Speculative decoding: the expected-tokens formula against a Monte Carlo simulation."""

from __future__ import annotations

import numpy as np
import pytest

from placer.errors import UserError
from placer.speculative import SpeculativeOptions, effective_time_per_token, expected_tokens_per_step


def simulate_tokens_per_step(k: int, a: float, steps: int, seed: int) -> float:
    """Draft k tokens, accept each with probability a until the first rejection; the target
    adds one token (its correction, or a bonus token when all k are accepted)."""
    rng = np.random.default_rng(seed)
    accept = rng.random((steps, k)) < a
    # accepted prefix length: index of the first False, or k when all are accepted
    prefix = np.where(accept.all(axis=1), k, np.argmin(accept, axis=1))
    return float(np.mean(prefix + 1))


@pytest.mark.parametrize("k,a", [(1, 0.5), (4, 0.8), (8, 0.6), (3, 0.0), (5, 1.0), (16, 0.95)])
def test_expected_tokens_matches_monte_carlo(k, a):
    steps = 200_000
    sim = simulate_tokens_per_step(k, a, steps, seed=k)
    # standard error of a mean of values in [1, k+1] is at most k / (2 sqrt(steps))
    assert expected_tokens_per_step(k, a) == pytest.approx(sim, abs=5 * k / (2 * steps ** 0.5) + 1e-12)


def test_closed_form_values():
    assert expected_tokens_per_step(4, 0.8) == pytest.approx(1 + 0.8 + 0.64 + 0.512 + 0.4096)
    assert expected_tokens_per_step(4, 1.0) == 5.0
    assert expected_tokens_per_step(4, 0.0) == 1.0


def test_time_per_token():
    # 4 draft steps of 0.1 ms and one 2 ms verification, 3.3616 tokens per step
    assert effective_time_per_token(1e-4, 2e-3, 4, 0.8) == pytest.approx(2.4e-3 / 3.3616)


@pytest.mark.parametrize("kwargs,option", [({"draft_length": 0}, "--draft-length"),
                                           ({"acceptance": 1.5}, "--acceptance"),
                                           ({"draft": ""}, "--draft")])
def test_options_are_checked(kwargs, option):
    base = {"draft": "llama-3.1-8b", "draft_length": 4, "acceptance": 0.8} | kwargs
    with pytest.raises(UserError, match=option):
        SpeculativeOptions(**base)
