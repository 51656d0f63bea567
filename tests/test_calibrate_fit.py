"""The fitting core against synthetic points generated from known constants, and NNLS against
brute force over active sets."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from placer.calibrate_fit import Constant, fit_constants, leave_one_out, nnls, select_identifiable

CLOCK = 1.1e9
CONSTANTS = (
    Constant("kernel_overhead_cycles", "cycles", 100.0),
    Constant("collective_overhead_cycles", "cycles", 100.0),
    Constant("host_seconds_per_token", "s", 1e-5),
    Constant("request_overhead_s", "s", 1e-2),
    Constant("prefill_slowdown", "1", 0.1),
)
TRUE = {"kernel_overhead_cycles": 40.0, "collective_overhead_cycles": 250.0, "host_seconds_per_token": 3e-5,
        "request_overhead_s": 8e-3, "prefill_slowdown": 0.6}


def synthetic_predict(point, c):
    """A stand-in for the performance model: overheads add time linearly to a physics part."""
    tpot = (point["tpot"] + point["kernels"] * c["kernel_overhead_cycles"] / CLOCK
            + point["collectives"] * c["collective_overhead_cycles"] / CLOCK + c["host_seconds_per_token"])
    ttft = point["prefill"] * (1 + c["prefill_slowdown"]) + c["request_overhead_s"] + tpot
    return {"tokens_per_s_per_user": 1.0 / tpot, "ttft_s": ttft}


def make_points(rows, measure_ttft):
    points = [dict(tpot=t, kernels=k, collectives=n, prefill=p) for t, k, n, p in rows]
    measured = []
    for point, ttft in zip(points, measure_ttft):
        truth = synthetic_predict(point, TRUE)
        measured.append({q: v for q, v in truth.items() if q == "tokens_per_s_per_user" or ttft})
    return points, measured


INDEPENDENT = [  # physics TPOT s, kernels, collectives, physics prefill s per token step
    (2e-4, 600, 300, 0.01), (9e-4, 1500, 400, 0.05), (4e-4, 700, 900, 0.02),
    (1.5e-3, 3000, 2500, 0.20), (3e-4, 200, 150, 0.03)]


def test_recovers_known_constants():
    points, measured = make_points(INDEPENDENT, [False, True, False, True, True])
    fit = fit_constants(synthetic_predict, points, measured, CONSTANTS)
    assert set(fit.selection.chosen) == set(TRUE)
    for name, value in TRUE.items():
        assert fit.values[name] == pytest.approx(value, rel=1e-5), name
    assert max(abs(r) for r in fit.residuals_after) < 1e-8
    assert max(abs(r) for r in fit.residuals_before) > 0.1
    assert all(v >= 0 for v in fit.values.values())
    loo = leave_one_out(synthetic_predict, points, measured, CONSTANTS)
    # Noise-free points: a held-out point is predicted exactly whenever the rest identify
    # every constant it depends on; the first point leaves four rows for five constants... so
    # only check the points whose removal keeps all five identifiable.
    assert loo[0] is not None
    for ratios in loo[1:3]:
        assert ratios is not None
        for v in ratios.values():
            assert v == pytest.approx(1.0, rel=1e-4)


def test_two_decode_points_identify_at_most_two_constants():
    # Kernels and collectives in the same proportion (same layer structure, more layers):
    # they cannot be told apart; no TTFT is measured, so TTFT constants are not identified.
    rows = [(3e-4, 500, 250, 0.01), (1.2e-3, 1250, 625, 0.05)]
    points, measured = make_points(rows, [False, False])
    fit = fit_constants(synthetic_predict, points, measured, CONSTANTS)
    assert fit.selection.chosen == ("kernel_overhead_cycles", "host_seconds_per_token")
    reasons = fit.selection.reasons
    assert "not separable from kernel_overhead_cycles" in reasons["collective_overhead_cycles"]
    assert "zero sensitivity" in reasons["request_overhead_s"]
    assert "zero sensitivity" in reasons["prefill_slowdown"]
    assert fit.values["collective_overhead_cycles"] == 0.0
    # kernel-only truth absorbed exactly: collectives fold into kernels (250 / 500 = 0.5 each)
    assert max(abs(r) for r in fit.residuals_after) < 1e-8
    assert fit.values["kernel_overhead_cycles"] == pytest.approx(40 + 250 * 0.5, rel=1e-5)
    assert fit.values["host_seconds_per_token"] == pytest.approx(3e-5, rel=1e-4)


def test_never_more_constants_than_measurements():
    points, measured = make_points(INDEPENDENT[:1], [False])
    fit = fit_constants(synthetic_predict, points, measured, CONSTANTS)
    assert len(fit.selection.chosen) == 1
    assert any("only 1 measurement" in r for r in fit.selection.reasons.values())
    assert leave_one_out(synthetic_predict, points, measured, CONSTANTS) == [None]


def test_constants_stay_non_negative_when_the_model_is_slower_than_measured():
    points = [dict(tpot=1e-3, kernels=800, collectives=300, prefill=0.01),
              dict(tpot=2e-3, kernels=900, collectives=2000, prefill=0.01)]
    measured = [{"tokens_per_s_per_user": 2000.0}, {"tokens_per_s_per_user": 900.0}]  # faster than physics
    fit = fit_constants(synthetic_predict, points, measured, CONSTANTS)
    assert all(v == 0.0 for v in fit.values.values())
    assert fit.residuals_after == pytest.approx(fit.residuals_before)


def _brute_nnls(a, b):
    best, best_cost = None, math.inf
    n = a.shape[1]
    for size in range(n + 1):
        for subset in itertools.combinations(range(n), size):
            x = np.zeros(n)
            if subset:
                x[list(subset)] = np.linalg.lstsq(a[:, subset], b, rcond=None)[0]
            if (x >= -1e-12).all():
                cost = float(np.sum((a @ x - b) ** 2))
                if cost < best_cost - 1e-12:
                    best, best_cost = x, cost
    return best, best_cost


@pytest.mark.parametrize("seed", range(25))
def test_nnls_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    m, n = rng.integers(2, 7), rng.integers(1, 6)
    a = rng.normal(size=(m, n))
    b = rng.normal(size=m)
    x = nnls(a, b)
    want, want_cost = _brute_nnls(a, b)
    assert (x >= 0).all()
    assert float(np.sum((a @ x - b) ** 2)) == pytest.approx(want_cost, rel=1e-9, abs=1e-12)


def test_selection_reports_zero_and_collinear_columns():
    s = np.array([[1.0, 2.0, 0.0, 1.0], [2.0, 4.0, 0.0, -1.0], [3.0, 6.0, 0.0, 0.5]])
    sel = select_identifiable(s, ["a", "b", "c", "d"])
    assert sel.chosen == ("a", "d")
    assert "not separable from a" in sel.reasons["b"]
    assert "zero sensitivity" in sel.reasons["c"]
    assert sel.condition >= 1.0


def test_a_constant_at_its_bound_gives_its_measurement_to_the_next():
    """Two decode points on 1 and 4 wafers whose truth is a per-hop overhead only (N hops per
    token): the greedy selection picks kernels, then host time (the most orthogonal column);
    the exact solve of those two needs host < 0, so host ends at 0, is excluded, and the hop
    overhead takes its measurement: recovered exactly, kernels at 0."""
    constants = (Constant("kernel_overhead_cycles", "cycles", 100.0), Constant("host_s", "s", 1e-5),
                 Constant("hop_overhead_s", "s", 1e-5))

    def predict(point, c):
        tpot = (point["tpot"] + point["kernels"] * c["kernel_overhead_cycles"] / CLOCK + c["host_s"]
                + point["wafers"] * c.get("hop_overhead_s", 0.0))
        return {"tokens_per_s_per_user": 1.0 / tpot}

    truth = {"kernel_overhead_cycles": 0.0, "host_s": 0.0, "hop_overhead_s": 3.7e-4}
    points = [dict(tpot=2.42e-4, kernels=1000, wafers=1), dict(tpot=6.32e-4, kernels=2500, wafers=4)]
    measured = [predict(p, truth) for p in points]
    first = fit_constants(predict, points, measured, constants[:2])  # without the hop constant
    assert first.selection.chosen == ("kernel_overhead_cycles", "host_s") and first.values["host_s"] == 0.0
    fit = fit_constants(predict, points, measured, constants)
    assert "hop_overhead_s" in fit.selection.chosen and "host_s" not in fit.selection.chosen
    assert "bound 0" in fit.selection.reasons["host_s"]
    assert fit.values["hop_overhead_s"] == pytest.approx(3.7e-4, rel=1e-5)
    assert fit.values["kernel_overhead_cycles"] == pytest.approx(0.0, abs=1e-6)
    assert max(abs(r) for r in fit.residuals_after) < 1e-8
    assert max(abs(r) for r in fit.residuals_after) < max(abs(r) for r in first.residuals_after)
