"""The fitting core of ``placer calibrate``: which constants points identify, and their values.

Generic over the prediction: ``predict(point, constants) -> {quantity: value}`` returns the
model's prediction of each measured quantity of ``point`` with the constants set to
``constants`` (a name -> value mapping); the fit never looks inside it, so it is tested with
synthetic predictions and used with the one performance model (``placer.calibrate``).

Residuals are log ratios ``r_i = ln(predicted_i / measured_i)``, one per measured quantity of a
point; the fit minimises ``sum r_i^2`` over constants ``theta_j >= 0``.

* **Identifiability.** The sensitivity matrix ``S_ij = d r_i / d x_j`` (forward differences
  at the start, the physics-only constants; ``x_j = theta_j / scale_j``, so a column is the
  change of each log ratio per typical step of the constant) has one column per constant. A zero
  column means no measurement moves that constant (e.g. per-request time when no point
  measures TTFT). Columns are normalised (the test is then independent of the constants'
  units) and chosen greedily with pivoting, the way a column-pivoted QR orders them: first the
  candidate first in the order given, then at each step the column with the largest component
  orthogonal to those already chosen (near-ties keep the given order); a column whose orthogonal part is below
  ``collinear_tol`` is not identifiable *separately* (the points move it in the same
  proportion as one already chosen). Never more columns than measurements. The condition
  number of the chosen normalised columns is reported.
* **Solve.** Projected Gauss-Newton with Levenberg-Marquardt damping: each step solves the
  linearised problem ``min ||J y - (J x - r)||^2 + lambda ||y - x||^2`` over ``y >= 0`` by
  non-negative least squares (Lawson-Hanson active set, below). The search runs in scaled
  variables ``x_j = theta_j / scale_j`` so that one damping weight suits every constant.
* **Constants at their bound.** A chosen constant the fit leaves at 0 (the points would pull
  it below 0) spends a measurement on nothing; it is then excluded and the selection rerun
  on the rest, and the new fit kept if its sum of squares is lower (repeated while it is).
* **Leave-one-out.** For each fitted point, the constants are re-selected and refitted on the
  other points and the held-out point is predicted.

numpy only: scipy (``scipy.optimize.nnls`` / ``least_squares``) would be the well-kept library
for this, but it is a large dependency for ~40 lines of a textbook active-set method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Predict = Callable[[Any, Mapping[str, float]], Mapping[str, float]]


@dataclass(frozen=True)
class Constant:
    """A constant the fit may set: a target field, its unit, and a typical magnitude
    (``scale``, used only to scale the search and the difference steps)."""

    name: str
    unit: str
    scale: float


@dataclass(frozen=True)
class Selection:
    """Which constants the measurements identify, and why the others are not fitted."""

    chosen: tuple[str, ...]
    reasons: dict[str, str]            # constant not chosen -> why
    condition: float                   # of the chosen normalised sensitivity columns
    sensitivity: tuple[tuple[float, ...], ...]  # S_ij, rows = measurements, cols = candidates


@dataclass(frozen=True)
class FitResult:
    values: dict[str, float]           # every candidate constant (0 or the start if not fitted)
    selection: Selection
    residuals_before: tuple[float, ...]
    residuals_after: tuple[float, ...]
    iterations: int


def nnls(a: np.ndarray, b: np.ndarray, *, max_iter: int | None = None) -> np.ndarray:
    """``argmin ||a x - b||_2`` over ``x >= 0`` (Lawson and Hanson, 1974, algorithm NNLS)."""
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    tol = 10 * np.finfo(float).eps * max(1.0, float(np.abs(a).max(initial=0.0))) * max(m, n)
    limit = max_iter if max_iter is not None else 3 * n + 30
    w = a.T @ (b - a @ x)
    for _ in range(limit):
        if passive.all() or not (w[~passive] > tol).any():
            break
        j = int(np.argmax(np.where(passive, -np.inf, w)))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > tol).all():
                x = z
                break
            bad = passive & (z <= tol)
            alpha = float(np.min(x[bad] / (x[bad] - z[bad])))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    return x


def log_residuals(predict: Predict, points: Sequence[Any], measured: Sequence[Mapping[str, float]],
                  values: Mapping[str, float]) -> np.ndarray:
    """``ln(predicted / measured)`` for every measured quantity of every point, in order."""
    out = []
    for point, meas in zip(points, measured):
        pred = predict(point, values)
        for quantity, m in meas.items():
            p = float(pred[quantity])
            out.append(math.log(p / m) if p > 0 and math.isfinite(p) else math.inf)
    return np.asarray(out, dtype=float)


def _jacobian(predict: Predict, points: Sequence[Any], measured: Sequence[Mapping[str, float]],
              constants: Sequence[Constant], base: Mapping[str, float], r0: np.ndarray,
              names: Sequence[str], step: float) -> np.ndarray:
    """d r / d x_j (scaled variables) by forward differences of ``step`` scales."""
    by_name = {c.name: c for c in constants}
    cols = []
    for name in names:
        h = step * by_name[name].scale
        moved = dict(base)
        moved[name] = base[name] + h
        cols.append((log_residuals(predict, points, measured, moved) - r0) / step)
    return np.column_stack(cols) if cols else np.zeros((len(r0), 0))


def select_identifiable(sensitivity: np.ndarray, names: Sequence[str], *, collinear_tol: float = 0.1,
                        zero_tol: float = 1e-9, max_count: int | None = None,
                        exclude: Mapping[str, str] | None = None) -> Selection:
    """Choose the columns of ``sensitivity`` the measurements can tell apart (module docstring);
    ``exclude``: names never chosen, with the reason reported for each."""
    s = np.asarray(sensitivity, dtype=float)
    rows = s.shape[0]
    limit = rows if max_count is None else min(rows, max_count)
    norms = np.linalg.norm(s, axis=0)
    reasons: dict[str, str] = {}
    candidates = []
    for j, name in enumerate(names):
        if exclude and name in exclude:
            reasons[name] = exclude[name]
        elif not norms[j] > zero_tol:
            reasons[name] = "no measured quantity depends on it (zero sensitivity column)"
        else:
            candidates.append(j)
    unit = s / np.where(norms > 0, norms, 1.0)
    chosen: list[int] = []
    basis = np.zeros((rows, 0))
    while candidates:
        if len(chosen) >= rows:  # the measurements' space is spanned: nothing more is determined
            break
        residual = unit[:, candidates] - basis @ (basis.T @ unit[:, candidates])
        parts = np.linalg.norm(residual, axis=0)
        for k in [k for k in range(len(candidates)) if parts[k] < collinear_tol]:
            j = candidates[k]
            closest = max(chosen, key=lambda c: abs(float(unit[:, c] @ unit[:, j])))
            reasons[names[j]] = (f"not separable from {names[closest]}: the points move it in nearly the "
                                 f"same proportion (orthogonal part {parts[k]:.3f} < {collinear_tol})")
        keep = parts >= collinear_tol
        candidates = [j for j, k in zip(candidates, keep) if k]
        residual, parts = residual[:, keep], parts[keep]
        if not candidates or len(chosen) >= limit:
            break
        # near-ties (within 0.1 %: difference noise) keep the given order
        best = int(np.flatnonzero(parts >= parts.max() * (1 - 1e-3))[0])
        chosen.append(candidates.pop(best))
        basis = np.column_stack([basis, residual[:, best] / parts[best]])
    for j in candidates:
        reasons[names[j]] = (f"only {rows} measurement(s): a fit of more constants than measurements is "
                             f"not determined" if len(chosen) >= rows
                             else f"at most {limit} constant(s) requested")
    sub = unit[:, chosen]
    cond = float(np.linalg.cond(sub)) if chosen else math.nan
    return Selection(tuple(names[j] for j in chosen), reasons, cond,
                     tuple(tuple(float(v) for v in row) for row in s))


def fit_constants(predict: Predict, points: Sequence[Any], measured: Sequence[Mapping[str, float]],
                  constants: Sequence[Constant], start: Mapping[str, float] | None = None, *,
                  collinear_tol: float = 0.1, max_iter: int = 60, step: float = 1e-2,
                  max_count: int | None = None) -> FitResult:
    """Select the identifiable constants and fit them by bounded least squares on log ratios.

    Args:
        predict: ``predict(point, constants) -> {quantity: value}``.
        points: opaque point objects passed to ``predict``.
        measured: per point, the measured quantities to fit (name -> value > 0).
        constants: the candidates, in order of preference for ties.
        start: starting values (default 0 for every candidate); constants not chosen keep them.
        max_count: fit at most this many constants.
    """
    names = [c.name for c in constants]
    base = {n: float((start or {}).get(n, 0.0)) for n in names}
    r0 = log_residuals(predict, points, measured, base)
    if not np.isfinite(r0).all():
        raise ValueError("a prediction at the starting constants is not a positive finite number")
    sens = _jacobian(predict, points, measured, constants, base, r0, names, step)
    scale = {c.name: c.scale for c in constants}

    def solve(chosen: Sequence[str]) -> tuple[dict[str, float], np.ndarray, int]:
        """Projected damped Gauss-Newton over ``chosen`` (module docstring): values, residuals,
        iterations."""
        x = np.array([base[n] / scale[n] for n in chosen])

        def values_at(xs: np.ndarray) -> dict[str, float]:
            out = dict(base)
            out.update({n: float(v) * scale[n] for n, v in zip(chosen, xs)})
            return out

        r = r0
        cost = float(r @ r)
        lam = 1e-3
        iterations = 0
        for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
            if not chosen:
                break
            jac = _jacobian(predict, points, measured, constants, values_at(x), r, chosen, step)
            improved = False
            while lam < 1e12:
                a = np.vstack([jac, math.sqrt(lam) * np.eye(len(chosen))])
                b = np.concatenate([jac @ x - r, math.sqrt(lam) * x])
                y = nnls(a, b)
                r_new = log_residuals(predict, points, measured, values_at(y))
                cost_new = float(r_new @ r_new) if np.isfinite(r_new).all() else math.inf
                if cost_new < cost:
                    moved = float(np.max(np.abs(y - x)))
                    x, r, gain, cost = y, r_new, cost - cost_new, cost_new
                    lam = max(lam / 10, 1e-12)
                    improved = True
                    break
                lam *= 10
            if not improved or gain < 1e-14 * max(1.0, cost) or moved < 1e-10:
                break
        return values_at(x), r, iterations

    # A chosen constant that ends at its bound 0 spends a measurement and explains nothing: the
    # points pull it below 0. It is then left out and the constants selected again from the
    # rest (the next identifiable one takes the measurement); the new fit is kept only if it
    # fits better (lower sum of squares), so the result is never worse than the first selection.
    excluded: dict[str, str] = {}
    selection = select_identifiable(sens, names, collinear_tol=collinear_tol, max_count=max_count)
    values, r, iterations = solve(selection.chosen)
    while True:
        at_bound = [n for n in selection.chosen if values[n] <= 0.0 and n not in excluded]
        if not at_bound:
            break
        others = ", ".join(n for n in selection.chosen if n not in at_bound) or "nothing"
        trial_excluded = dict(excluded)
        for n in at_bound:
            trial_excluded[n] = (f"fitted beside {others}, it ends at its bound 0 (the points pull it "
                                 f"below 0), so the measurement it spent went to the next identifiable "
                                 f"constant")
        trial = select_identifiable(sens, names, collinear_tol=collinear_tol, max_count=max_count,
                                    exclude=trial_excluded)
        if set(trial.chosen) <= set(selection.chosen):
            break  # nothing new to try
        trial_values, trial_r, trial_iterations = solve(trial.chosen)
        if not float(trial_r @ trial_r) < float(r @ r) * (1 - 1e-9):
            break
        excluded, selection = trial_excluded, trial
        values, r, iterations = trial_values, trial_r, trial_iterations
    return FitResult(values, selection, tuple(float(v) for v in r0), tuple(float(v) for v in r), iterations)


def leave_one_out(predict: Predict, points: Sequence[Any], measured: Sequence[Mapping[str, float]],
                  constants: Sequence[Constant], start: Mapping[str, float] | None = None,
                  **options: Any) -> list[dict[str, float] | None]:
    """Per point: predicted / measured of each of its quantities when it is left out of the fit
    (the constants re-selected and refitted on the other points); ``None`` with one point."""
    out: list[dict[str, float] | None] = []
    for i, point in enumerate(points):
        rest = [p for k, p in enumerate(points) if k != i]
        rest_meas = [m for k, m in enumerate(measured) if k != i]
        if not rest:
            out.append(None)
            continue
        fit = fit_constants(predict, rest, rest_meas, constants, start, **options)
        pred = predict(point, fit.values)
        out.append({q: float(pred[q]) / m for q, m in measured[i].items()})
    return out
