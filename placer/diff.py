"""``placer diff A B``: what moved between two plans, and whether it is a regression.

Plans are read through ``placer.plan.Plan.from_json`` (the one reader, so a schema change
reaches this module through one place); a plan of another schema version is refused there with
a message that says to recompile it, prefixed here with the file's path.

Compared: wafers used, per-wafer memory (weights, KV, activations, free), time per output token,
TTFT, tokens/s per user and in total, resident and parked sequences, and the units that changed
wafer; when either plan decodes speculatively (``--draft``), both plans' speculative settings and
the effective tokens/s per user (the speculative rate, or tokens/s per user without a draft). A
change is a regression when it passes a threshold of ``Thresholds`` (default: any added wafer, any
added parked sequence, or more than 1 % fewer tokens/s per user, in total or effective).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placer.errors import UserError

if TYPE_CHECKING:
    from placer.plan import Plan


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """The plan in ``path`` (a plan.json, or a folder holding one).

    Raises:
        UserError: missing file, not JSON, not a placer plan, or another schema version; the
            message names the file.
    """
    from placer.plan import Plan
    from placer.validate import read_text

    p = Path(path)
    if p.is_dir():
        p = p / "plan.json"
    if not p.exists():
        raise UserError(f"{p}: no such plan file; give a plan.json written by placer compile")
    text = read_text(p, "plan")
    try:
        return Plan.from_json(text)
    except UserError as e:
        raise UserError(f"{p}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"{p}: not a placer plan of this schema ({type(e).__name__}: {e}); "
                        "recompile it with this placer") from None


@dataclass(frozen=True)
class Thresholds:
    """When a change counts as a regression (B against the baseline A).

    Attributes:
        added_wafers: more added wafers than this regress (default 0: any added wafer).
        added_parked: more added parked sequences than this regress (default 0).
        tokens_per_s_drop_pct: a drop of tokens/s per user or in total by more than this
            percentage regresses (default 1 %).
        tpot_rise_pct: if set, a rise of time per output token by more than this percentage.
        ttft_rise_pct: if set, a rise of time to first token by more than this percentage.
    """

    added_wafers: int = 0
    added_parked: int = 0
    tokens_per_s_drop_pct: float = 1.0
    tpot_rise_pct: float | None = None
    ttft_rise_pct: float | None = None

    def __post_init__(self) -> None:
        from placer.validate import integer, number_in_range

        for name in ("added_wafers", "added_parked"):
            integer(getattr(self, name), f"option --max-{name.replace('_', '-')}", minimum=0)
        for name, option in (("tokens_per_s_drop_pct", "--max-tokens-per-s-drop"),
                             ("tpot_rise_pct", "--max-tpot-rise"), ("ttft_rise_pct", "--max-ttft-rise")):
            value = getattr(self, name)
            if value is not None:
                number_in_range(value, f"option {option}", low=0.0)


@dataclass(frozen=True)
class MetricChange:
    """One figure in both plans; ``regression`` names the threshold it broke, or is empty."""

    metric: str
    unit: str
    before: float
    after: float
    regression: str = ""

    @property
    def delta(self) -> float:
        return self.after - self.before

    @property
    def percent(self) -> float | None:
        return None if self.before == 0 else 100.0 * (self.after - self.before) / abs(self.before)


@dataclass(frozen=True)
class WaferChange:
    """Memory of one wafer index in A and B (None where that plan has no such wafer), bytes."""

    index: int
    before: dict[str, int] | None
    after: dict[str, int] | None


@dataclass(frozen=True)
class UnitMove:
    unit: str
    before: int | None   # wafer in A (None: the unit is not in A)
    after: int | None


@dataclass(frozen=True)
class PlanDiff:
    a: str
    b: str
    metrics: tuple[MetricChange, ...]
    wafers: tuple[WaferChange, ...]
    moves: tuple[UnitMove, ...]
    same_model: bool
    # each plan's speculative settings (``speculative_settings``), None for a plan without --draft;
    # both None: neither plan decodes speculatively (and the diff shows nothing of it)
    speculative: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None)

    @property
    def regressions(self) -> tuple[str, ...]:
        return tuple(m.regression for m in self.metrics if m.regression)

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a, "b": self.b, "same_model": self.same_model,
            "regression": bool(self.regressions), "regressions": list(self.regressions),
            "metrics": [{**asdict(m), "delta": m.delta, "percent": m.percent} for m in self.metrics],
            "wafers": [asdict(w) for w in self.wafers],
            "moved_units": [asdict(m) for m in self.moves],
            **({"speculative": {"a": self.speculative[0], "b": self.speculative[1]}}
               if self.speculative != (None, None) else {}),
        }

    def to_markdown(self) -> str:
        return render_markdown(self)


_MEMORY_FIELDS = ("weights", "kv", "activations", "free")


def speculative_settings(plan: Plan) -> dict[str, Any] | None:
    """A plan's speculative decoding as the diff shows it (None without ``--draft``)."""
    s = plan.speculative
    if s is None:
        return None
    return {"draft": s.draft, "draft_length": s.draft_length, "acceptance": s.acceptance,
            "expected_tokens_per_step": s.expected_tokens_per_step,
            "effective_tokens_per_s_per_user": s.tokens_per_s_per_user}


def effective_tokens_per_s_per_user(plan: Plan) -> float:
    """What a user of ``plan`` sees: the speculative rate with a draft, else tokens/s per user."""
    return plan.performance.tokens_per_s_per_user if plan.speculative is None \
        else plan.speculative.tokens_per_s_per_user


def diff_plans(a: Plan, b: Plan, thresholds: Thresholds | None = None, a_label: str = "A",
               b_label: str = "B") -> PlanDiff:
    """Compare plan ``b`` against the baseline ``a``."""
    t = thresholds or Thresholds()
    pa, pb = a.performance, b.performance

    def rise(name: str, unit: str, x: float, y: float, limit: float | None) -> MetricChange:
        bad = limit is not None and x > 0 and 100 * (y - x) / x > limit
        return MetricChange(name, unit, x, y, f"{name} rose {_pct(x, y)} (> {limit:g} %)" if bad else "")

    def drop(name: str, unit: str, x: float, y: float, limit: float | None) -> MetricChange:
        bad = limit is not None and x > 0 and 100 * (x - y) / x > limit
        why = f"{name} fell {_pct(x, y)} (> {limit:g} % allowed)" if bad else ""
        return MetricChange(name, unit, x, y, why)

    def count(name: str, x: int, y: int, allowed: int | None) -> MetricChange:
        bad = allowed is not None and y - x > allowed
        return MetricChange(name, "", x, y, f"{name} {x} -> {y} (+{y - x}, {allowed} allowed)" if bad else "")

    metrics: tuple[MetricChange, ...] = (
        count("wafers", len(a.wafers), len(b.wafers), t.added_wafers),
        rise("time per output token", "ms", pa.time_per_output_token_s * 1e3,
             pb.time_per_output_token_s * 1e3, t.tpot_rise_pct),
        rise("TTFT", "ms", pa.ttft_s * 1e3, pb.ttft_s * 1e3, t.ttft_rise_pct),
        drop("tokens/s per user", "tokens/s", pa.tokens_per_s_per_user, pb.tokens_per_s_per_user,
             t.tokens_per_s_drop_pct),
        drop("tokens/s total", "tokens/s", pa.tokens_per_s_total, pb.tokens_per_s_total,
             t.tokens_per_s_drop_pct),
        count("resident sequences", a.kv.resident_sequences, b.kv.resident_sequences, None),
        count("parked sequences", a.kv.parked_sequences, b.kv.parked_sequences, t.added_parked),
    )
    speculative = (speculative_settings(a), speculative_settings(b))
    if speculative != (None, None):  # either plan drafts: compare what a user sees
        metrics += (drop("effective tokens/s per user", "tokens/s", effective_tokens_per_s_per_user(a),
                         effective_tokens_per_s_per_user(b), t.tokens_per_s_drop_pct),)
    n = max(len(a.wafers), len(b.wafers))

    def memory(plan: Plan, i: int) -> dict[str, int] | None:
        if i >= len(plan.wafers):
            return None
        m = plan.wafers[i].memory
        return {f: int(getattr(m, f)) for f in _MEMORY_FIELDS}

    wafers = tuple(WaferChange(i, memory(a, i), memory(b, i)) for i in range(n))
    wa, wb = dict(a.assignment), dict(b.assignment)
    moves = tuple(UnitMove(u, wa.get(u), wb.get(u)) for u in sorted(set(wa) | set(wb), key=_unit_key)
                  if wa.get(u) != wb.get(u))
    return PlanDiff(a_label, b_label, metrics, wafers, moves, a.model.sha256 == b.model.sha256, speculative)


def _unit_key(name: str) -> tuple[Any, ...]:
    """Natural order: layers.2 before layers.10."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in name.split("."))


def _pct(x: float, y: float) -> str:
    return "n/a" if x == 0 else f"{100 * (y - x) / abs(x):+.2f} %"


def _num(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if unit == "ms":
        return f"{x:.4f}"
    if unit == "tokens/s":
        return f"{x:,.1f}"
    return f"{x:,.0f}"


def _move_runs(moves: tuple[UnitMove, ...]) -> list[tuple[str, int | None, int | None]]:
    """Consecutive ``layers.N`` moving between the same wafers as one row (``layers.16-31``)."""
    runs: list[list[Any]] = []   # [prefix, first, last, before, after] or [name, None, None, ...]
    for m in moves:
        prefix, _, index = m.unit.rpartition(".")
        if index.isdigit() and runs and runs[-1][0] == prefix and runs[-1][2] is not None \
                and runs[-1][2] + 1 == int(index) and runs[-1][3:] == [m.before, m.after]:
            runs[-1][2] = int(index)
        elif index.isdigit() and prefix:
            runs.append([prefix, int(index), int(index), m.before, m.after])
        else:
            runs.append([m.unit, None, None, m.before, m.after])
    out = []
    for name, first, last, before, after in runs:
        label = name if first is None else f"{name}.{first}" if first == last else f"{name}.{first}-{last}"
        out.append((label, before, after))
    return out


def _speculative_text(s: dict[str, Any] | None) -> str:
    if s is None:
        return "none"
    return (f"draft {s['draft']}, draft length {s['draft_length']}, acceptance {s['acceptance']:g} "
            f"({s['expected_tokens_per_step']:.4f} tokens per verification step)")


def render_markdown(d: PlanDiff) -> str:
    """The diff as GitHub-flavoured Markdown (fit for ``$GITHUB_STEP_SUMMARY``)."""
    verdict = ("**Regression**: " + "; ".join(d.regressions)) if d.regressions else \
        "No regression beyond the thresholds."
    lines = [f"## placer diff: `{d.a}` -> `{d.b}`", "", verdict, ""]
    if not d.same_model:
        lines += ["Note: the two plans are of different models (sha256 differs).", ""]
    if d.speculative != (None, None):
        lines += [f"Speculative decoding: A {_speculative_text(d.speculative[0])}; "
                  f"B {_speculative_text(d.speculative[1])}.", ""]
    lines += ["| metric | A | B | change | |", "|---|---:|---:|---:|---|"]
    for m in d.metrics:
        unit = f" ({m.unit})" if m.unit else ""
        mark = "regression" if m.regression else ""
        lines.append(f"| {m.metric}{unit} | {_num(m.before, m.unit)} | {_num(m.after, m.unit)} | "
                     f"{_pct(m.before, m.after)} | {mark} |")
    lines += ["", "### Memory per wafer (GB)", "",
              "| wafer | " + " | ".join(f"{f} A | {f} B" for f in _MEMORY_FIELDS) + " |",
              "|---:|" + "---:|" * (2 * len(_MEMORY_FIELDS))]
    for w in d.wafers:
        cells = []
        for f in _MEMORY_FIELDS:
            for side in (w.before, w.after):
                cells.append("-" if side is None else f"{side[f] / 1e9:.3f}")
        lines.append(f"| {w.index} | " + " | ".join(cells) + " |")
    lines += ["", f"### Units that changed wafer: {len(d.moves)}", ""]
    if d.moves:
        lines += ["| units | wafer A | wafer B |", "|---|---:|---:|"]
        lines += [f"| {names} | {'-' if before is None else before} | {'-' if after is None else after} |"
                  for names, before, after in _move_runs(d.moves)]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"
