"""``placer calibrate``: fit a target's overhead fields to published points.

The physics of the performance model (``placer.perf``) leaves out what a deployment adds:
fixed cycles per kernel and per collective, host time per output token, a fixed time per
inter-wafer hop beyond the link's latency, per-request time in TTFT, and a prefill rate below
the mesh GEMM's. These are target fields (0, and utilisation 1,
in a ``-physics`` target); this module predicts every point of a points file with the one
performance model (``placer.compile`` on the point's model, wafers and workload), fits the
constants the calibration points identify (``placer.calibrate_fit``), and writes a target TOML.

The prefill utilisation ``u`` (a fraction <= 1) is fitted as the slowdown ``1 / u - 1 >= 0``,
which the prefill time is linear in, so that every fitted variable has the same bound >= 0.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from placer.calibrate_fit import Constant, FitResult, fit_constants, leave_one_out
from placer.calibrate_points import NOT_STATED, Point, PointSet, SpeculativeSetting
from placer.costs import ModelCost
from placer.errors import UserError
from placer.targets import Target

# The overhead constants, in order of preference when the points cannot tell two apart.
OVERHEADS: tuple[Constant, ...] = (
    Constant("kernel_overhead_cycles", "cycles per kernel", 100.0),
    Constant("collective_overhead_cycles", "cycles per collective", 100.0),
    Constant("host_overhead_s_per_token", "s per output token", 1e-5),
    Constant("hop_overhead_s", "s per inter-wafer hop", 1e-5),
    Constant("request_overhead_s", "s per request (in TTFT)", 1e-2),
    Constant("prefill_slowdown", "1 / prefill_utilisation - 1", 0.1),
)
# Fitted only when named with --fit. The two published calibration points (8B on one CS-3, 70B
# on four) cannot tell a per-hop overhead from a per-kernel one (with one point left out the
# selection takes the per-kernel one), and the per-hop fit they give, 360 us, is 72 x the
# published ~5 us switch hop (HARDWARE.md): 22 such hops alone are 7.9 ms per token for 405B
# against ~1.03 ms published (405B at 0.11x, Llama-4-Maverick on 20 wafers at 128 tokens/s).
# It describes the August 2024 software of those two points, not the hardware's hop.
OPT_IN = frozenset({"hop_overhead_s"})
OVERHEAD_FIELDS = ("kernel_overhead_cycles", "collective_overhead_cycles", "host_overhead_s_per_token",
                   "hop_overhead_s", "request_overhead_s", "prefill_utilisation")
QUANTITY_LABEL = {"tokens_per_s_per_user": "tokens/s per user", "ttft_s": "TTFT s"}


def constants_of(target: Target) -> dict[str, float]:
    """A target's overheads as fit variables (``prefill_utilisation`` as its slowdown)."""
    out = {c.name: float(getattr(target, c.name, 0.0)) for c in OVERHEADS if c.name != "prefill_slowdown"}
    out["prefill_slowdown"] = 1.0 / float(getattr(target, "prefill_utilisation", 1.0)) - 1.0
    return out


def target_with(target: Target, constants: Mapping[str, float]) -> Target:
    """``target`` with the overhead fields set from fit variables."""
    changes: dict[str, float] = {k: float(v) for k, v in constants.items() if k != "prefill_slowdown"}
    if "prefill_slowdown" in constants:
        changes["prefill_utilisation"] = 1.0 / (1.0 + float(constants["prefill_slowdown"]))
    # The ignore below: mypy checks a dict of floats against every Target field; these are the float
    # overhead fields only.
    return dataclasses.replace(target, **changes)  # type: ignore[arg-type]


class PointPredictor:
    """``predict(point, constants)``: the performance model's tokens/s per user and TTFT of a
    point on ``target`` with its overheads set to ``constants``.

    Each point is compiled with the settings it states (the points file's assumptions for the
    others) and objective ``min-latency``; model costs are computed once per model and workload
    and plans are cached per constants, so a fit recompiles only what changes.
    """

    def __init__(self, points: PointSet, target: Target, *, time_limit: float = 10.0) -> None:
        self.points, self.target, self.time_limit = points, target, time_limit
        self._costs: dict[tuple[Any, ...], ModelCost] = {}
        self._plans: dict[tuple[Any, ...], dict[str, float]] = {}

    def options(self, point: Point) -> dict[str, Any]:
        """The flat compile options of ``point`` (``placer.options.FLAT_DEFAULTS`` names)."""
        s = self.points
        wafers = s.setting(point, "wafers")
        spec = s.setting(point, "speculative")
        drafted = {}
        if spec != "none":
            if not isinstance(spec, SpeculativeSetting) or not spec.complete:
                raise UserError(f"{s.source}: point {point.id!r}: speculative decoding whose draft, "
                                f"draft_length and acceptance are not all stated cannot be predicted; "
                                f"state them or give it set = \"reference\"")
            drafted = {"draft": spec.draft, "draft_length": spec.draft_length, "acceptance": spec.acceptance}
        return {
            **drafted,
            "objective": "min-latency",
            "wafers": None if wafers == "fewest" else int(wafers),
            "context": int(s.setting(point, "context_tokens")),
            "prompt": int(s.setting(point, "prompt_tokens")),
            "concurrency": int(s.setting(point, "concurrency")),
            "weights_dtype": s.setting(point, "weights_dtype") if point.weights_dtype != NOT_STATED
            else s.assumed.get("weights_dtype", "native"),
            "kv_dtype": s.setting(point, "kv_dtype"),
            "layout": s.setting(point, "layout"),
            "time_limit": self.time_limit,
            "compare": False,
        }

    def cost(self, point: Point, model: str | None = None) -> ModelCost:
        """The costs of ``point``'s model (or of ``model``, its draft) under its workload."""
        from placer.cost_model import annotate_costs
        from placer.pipeline import load_model
        from placer.workload import DtypePolicy, Workload

        o = self.options(point)
        model = model or point.model
        key = (model, o["context"], o["prompt"], o["weights_dtype"], o["kv_dtype"])
        if key not in self._costs:
            loaded = load_model(model, granularity="layer")
            workload = Workload(o["context"], o["prompt"], o["concurrency"],
                                DtypePolicy.parse(o["weights_dtype"]), o["kv_dtype"])
            self._costs[key] = annotate_costs(loaded.graph, self.target, workload, loaded.structure)
        return self._costs[key]

    def __call__(self, point: Point, constants: Mapping[str, float]) -> dict[str, float]:
        """tokens/s per user (with a draft: the effective rate of ``placer.speculative``), TTFT
        and wafers of ``point``'s plan."""
        from placer.compiler import compile_result

        key = (point.id, tuple(sorted((k, float(v)) for k, v in constants.items())))
        if key not in self._plans:
            target = target_with(self.target, constants)
            options = self.options(point)
            if "draft" in options:
                options["draft"] = self.cost(point, options["draft"])
            plan = compile_result(self.cost(point), target=target, **options).plan
            perf, spec = plan.performance, plan.speculative
            rate = perf.tokens_per_s_per_user if spec is None else spec.tokens_per_s_per_user
            self._plans[key] = {"tokens_per_s_per_user": rate, "ttft_s": perf.ttft_s,
                                "wafers": float(len(plan.wafers))}
        return self._plans[key]


@dataclass(frozen=True)
class PointRow:
    """One measured quantity of one point: measured, physics-only, calibrated, leave-one-out."""

    point: Point
    quantity: str
    measured: float
    physics: float
    calibrated: float
    leave_one_out: float | None   # predicted / measured with the point left out of the fit
    wafers: int

    def ratio(self, which: str) -> float:
        return getattr(self, which) / self.measured


@dataclass(frozen=True)
class Calibration:
    """The outcome of ``calibrate``: the fit, the calibrated target and every point's row."""

    base: Target
    target: Target
    fit: FitResult
    fitted_points: tuple[Point, ...]
    rows: tuple[PointRow, ...]
    candidates: tuple[str, ...]


def calibrate(points: PointSet, base: Target, *, name: str, candidates: Sequence[str] | None = None,
              command: str = "", predictor: Any = None) -> Calibration:
    """Fit ``candidates`` (default: every overhead but those in ``OPT_IN``, fitted only when
    named) to ``points``' calibration set on ``base``.

    The fit starts from the physics of ``base`` (every overhead 0, prefill utilisation 1,
    whatever ``base`` holds) and constants not fitted stay there.

    Raises:
        UserError: no calibration point, an unknown candidate, or more candidates requested
            explicitly than the calibration points measure quantities.
    """
    fitted = points.of_set("calibration")
    if not fitted:
        raise UserError(f"{points.source}: no point has set = \"calibration\"")
    by_name = {c.name: c for c in OVERHEADS}
    chosen = list(candidates) if candidates else [c for c in by_name if c not in OPT_IN]
    unknown = [c for c in chosen if c not in by_name]
    if unknown:
        raise UserError(f"option --fit: unknown constant(s) {', '.join(unknown)}; choose from "
                        f"{', '.join(by_name)}")
    measured = [p.measured() for p in fitted]
    count = sum(len(m) for m in measured)
    if candidates and len(chosen) > count:
        raise UserError(f"option --fit: {len(chosen)} constants but the calibration points of "
                        f"{points.source} measure only {count} quantities; fit at most {count}")
    constants = [by_name[c] for c in chosen]
    predict = predictor or PointPredictor(points, base)
    physics = {c: 0.0 for c in by_name}  # the fit starts from the physics: every overhead 0
    fit = fit_constants(predict, fitted, measured, constants, physics)
    loo = leave_one_out(predict, fitted, measured, constants, physics)
    loo_of = {p.id: r for p, r in zip(fitted, loo)}
    used = sorted(p.id for p in fitted)
    values = ", ".join(f"{n} = {fit.values[n]:.6g}" for n in fit.selection.chosen) or "nothing"
    note = (f"fitted {values} to {', '.join(used)} "
            f"({points.source}) on {base.name}" + (f" by `{command}`" if command else ""))
    described = base.description.replace("physics only", "overheads calibrated")
    if described == base.description:
        described += " (overheads calibrated)"
    calibrated = dataclasses.replace(target_with(base, fit.values), name=name, description=described,
                                     calibration=note)
    rows = []
    for p in points.points:
        if p.set == "reference":
            continue
        phys = predict(p, physics)
        cal = predict(p, fit.values)
        for quantity, value in p.measured().items():
            if p.set == "calibration":
                ratios = loo_of.get(p.id)
                loo_value = None if ratios is None else ratios[quantity] * value
            else:
                loo_value = cal[quantity]  # a validation point is never in the fit
            rows.append(PointRow(p, quantity, value, phys[quantity], cal[quantity], loo_value,
                                 int(cal.get("wafers", 0))))
    return Calibration(base, calibrated, fit, fitted, tuple(rows), tuple(chosen))


def target_toml(target: Target, header: Sequence[str] = ()) -> str:
    """A target as TOML text (fields in declaration order), with ``#`` header lines."""
    lines = [f"# {h}" for h in header]
    for f in dataclasses.fields(target):
        value = getattr(target, f.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, float):
            text = repr(value) if math.isfinite(value) else "nan"
        else:
            text = json.dumps(str(value))  # a JSON string is a valid TOML basic string
        lines.append(f"{f.name} = {text}")
    return "\n".join(lines) + "\n"


def _fmt(value: float, quantity: str) -> str:
    return f"{value:,.1f}" if quantity == "tokens_per_s_per_user" else f"{value * 1e3:,.2f} ms"


def render_calibration(c: Calibration) -> str:
    """The text ``placer calibrate`` prints: identifiability, fitted values, the fidelity table."""
    fit = c.fit
    by_name = {k.name: k for k in OVERHEADS}
    labels = [f"{p.id} {QUANTITY_LABEL[q]}" for p in c.fitted_points for q in p.measured()]
    out = [f"Calibration of {c.base.name!r} to {len(c.fitted_points)} point(s), "
           f"{len(labels)} measured quantit{'y' if len(labels) == 1 else 'ies'}; "
           f"fit: least squares on ln(predicted / measured), every constant >= 0.", "",
           "Identifiability: d ln(predicted / measured) per typical step of each constant, at the physics "
           "values (rows: measured quantities):", ""]
    out.append("| constant (typical step) | " + " | ".join(labels) + " | fitted |")
    out.append("|---|" + "---:|" * len(labels) + "---|")
    sens = fit.selection.sensitivity
    for j, name in enumerate(c.candidates):
        col = " | ".join(f"{sens[i][j]:+.3g}" for i in range(len(labels)))
        why = "yes" if name in fit.selection.chosen else f"no: {fit.selection.reasons.get(name, '')}"
        out.append(f"| {name} ({by_name[name].scale:g} {by_name[name].unit}) | {col} | {why} |")
    cond = fit.selection.condition
    skipped = [n for n in OPT_IN if n not in c.candidates]
    if skipped:
        out += ["", f"Not candidates unless named with --fit: {', '.join(sorted(skipped))} (the two "
                "calibration points cannot tell a per-hop overhead from a per-kernel one, and their "
                "per-hop fit is ~70x the published ~5 us switch hop; see placer.calibrate.OPT_IN)."]
    out += ["", f"Condition number of the fitted (normalised) columns: "
            f"{cond:.3g}" if math.isfinite(cond) else "No constant is identifiable.", ""]
    out.append("Fitted values:")
    for name in c.candidates:
        value = fit.values[name]
        shown = f"{value:.6g} {by_name[name].unit}"
        if name == "prefill_slowdown":
            shown += f" (prefill_utilisation = {1 / (1 + value):.4g})"
        tag = "kept at the physics value"
        if name in fit.selection.chosen:
            tag = "fitted" if value > 0 else "fitted; at its bound 0: the points pull it below 0"
        out.append(f"- {name} = {shown} ({tag})")
    out += ["", f"Predicted / measured (physics: {c.base.name}; calibrated: {c.target.name}; leave-one-out: "
            "the point's own fit without it; a validation point is never fitted):", ""]
    out.append(fidelity_table(c))
    return "\n".join(out)


def fidelity_table(c: Calibration) -> str:
    """Markdown: every point's measured value, physics-only and calibrated predictions, ratios."""
    lines = ["| point | set | quantity | wafers | measured | physics-only | ratio | calibrated | ratio "
             "| leave-one-out ratio |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in c.rows:
        loo = "n/a (one point)" if r.leave_one_out is None else f"{r.ratio('leave_one_out'):.3f}"
        lines.append(f"| {r.point.id} | {r.point.set} | {QUANTITY_LABEL[r.quantity]} | {r.wafers} | "
                     f"{_fmt(r.measured, r.quantity)} | {_fmt(r.physics, r.quantity)} | "
                     f"{r.ratio('physics'):.3f} | {_fmt(r.calibrated, r.quantity)} | "
                     f"{r.ratio('calibrated'):.3f} | {loo} |")
    return "\n".join(lines)


def calibration_json(c: Calibration) -> dict[str, Any]:
    """The same content as ``render_calibration`` as plain data (``--json``)."""
    fit = c.fit
    return {
        "base_target": c.base.name, "target": c.target.name, "calibration": c.target.calibration,
        "fitted": list(fit.selection.chosen), "not_fitted": dict(sorted(fit.selection.reasons.items())),
        "condition": fit.selection.condition if math.isfinite(fit.selection.condition) else None,
        "values": {k: fit.values[k] for k in c.candidates},
        "target_fields": {k: getattr(c.target, k) for k in OVERHEAD_FIELDS},
        "points": [{"id": r.point.id, "set": r.point.set, "quantity": r.quantity, "wafers": r.wafers,
                    "measured": r.measured, "physics": r.physics, "calibrated": r.calibrated,
                    "physics_ratio": r.ratio("physics"), "calibrated_ratio": r.ratio("calibrated"),
                    "leave_one_out_ratio": None if r.leave_one_out is None else r.ratio("leave_one_out")}
                   for r in c.rows],
    }
