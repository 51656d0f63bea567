"""A plan checked against the model and target it is about to run with.

``placer run MODEL --plan plan.json`` trusts nothing in the plan file: before any wafer is
emulated, ``check_plan_assignment`` confirms that the plan places exactly the model's units,
that every wafer index is an integer in ``0 .. N-1`` with every wafer used (``N`` the plan's own
wafer count, at most the target's), and that no activation flows back to an earlier wafer.
``check_plan_provenance`` confirms the plan was made for this model file (sha256) and, unless
the caller overrides the target on purpose, for this target. Each mismatch is one
``UserError`` line naming the plan file, the unit or field, and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from placer.errors import UserError


def check_plan_assignment(assignment: Mapping[str, Any], units: Sequence[str],
                          edges: Iterable[tuple[str, str]], source: str, plan_wafers: int | None = None,
                          max_wafers: int | None = None) -> dict[str, int]:
    """The validated unit -> wafer mapping (see the module docstring)."""
    unknown = sorted(set(assignment) - set(units))
    if unknown:
        raise UserError(f"{source}: plan does not match the model: unknown unit(s) "
                        f"{', '.join(unknown[:5])}; recompile the plan for this model")
    missing = [u for u in units if u not in assignment]
    if missing:
        raise UserError(f"{source}: plan does not match the model: unit(s) {', '.join(missing[:5])} have no "
                        f"wafer; recompile the plan for this model")
    out: dict[str, int] = {}
    for unit in units:
        wafer = assignment[unit]
        if isinstance(wafer, bool) or not isinstance(wafer, int):
            raise UserError(f"{source}: unit {unit} has wafer {wafer!r}, not an integer")
        out[unit] = wafer
    limit = plan_wafers if plan_wafers is not None else max(out.values(), default=0) + 1
    if max_wafers is not None and limit > max_wafers:
        raise UserError(f"{source}: the plan uses {limit:,} wafers but the target has {max_wafers:,}; "
                        f"recompile the plan or run with a target that has them")
    for unit in units:
        if not 0 <= out[unit] < limit:
            raise UserError(f"{source}: unit {unit} is on wafer {out[unit]:,}, outside the plan's wafers "
                            f"0..{limit - 1}")
    used = set(out.values())
    if len(used) != limit:
        empty = min(set(range(limit)) - used)
        raise UserError(f"{source}: wafer {empty} of the plan holds no unit; recompile the plan")
    for src, dst in edges:
        if src in out and dst in out and out[src] > out[dst]:
            raise UserError(f"{source}: unit {src} (wafer {out[src]}) feeds {dst} (wafer {out[dst]}): "
                            f"activations never flow back to an earlier wafer; recompile the plan")
    return out


def check_plan_provenance(plan_sha256: str, model_sha256: str, plan_target: Any, run_target: Any,
                          source: str, target_overridden: bool = False) -> list[str]:
    """Differences the caller must report; raises for a different model or an unannounced target."""
    if plan_sha256 and model_sha256 and plan_sha256 != model_sha256:
        raise UserError(f"{source}: the plan was made for another model file (sha256 {plan_sha256[:12]}... "
                        f"vs {model_sha256[:12]}...); recompile it for this model")
    if plan_target is None or run_target is None:
        return []
    a, b = plan_target.to_dict(), run_target.to_dict()
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if changed and not target_overridden:
        first = changed[0]
        raise UserError(f"{source}: the plan's target differs from the run's in {', '.join(changed[:4])} "
                        f"({first}: {a.get(first)!r} vs {b.get(first)!r}); run with the plan's target or "
                        f"override fields explicitly with --set")
    return [f"{k}: plan {a.get(k)!r} -> run {b.get(k)!r}" for k in changed]


def check_plan_target(plan: Any, source: str) -> None:
    """A plan whose ``target`` section is not the target it names: a built-in target's name with
    other figures than placer's (after the plan's recorded ``--set`` overrides), or a section
    named otherwise than the target the options record. A hand edit, or a plan from a placer whose
    built-in figures differ: either way its numbers are not that target's. A target compiled from
    a TOML file (whatever its name) is taken as written."""
    from placer.targets import BUILTIN_TARGETS, load_target

    name = plan.target.name
    recorded = plan.provenance.options.target
    recorded_name = recorded if isinstance(recorded, str) else recorded.name
    if recorded_name not in BUILTIN_TARGETS:  # a TOML file's target: its own figures, any name
        return
    if recorded_name != name:
        raise UserError(f"{source}: the plan's target section is named {name!r}, but it was compiled for "
                        f"{recorded_name!r} (provenance.options.target); compile the plan again")
    expected = load_target(name, dict(plan.provenance.options.target_overrides)).to_dict()
    got = plan.target.to_dict()
    changed = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
    if changed:
        first = changed[0]

        def short(v: object) -> str:
            text = repr(v)
            return text if len(text) <= 40 else text[:37] + "..."
        raise UserError(f"{source}: the plan's target {name!r} differs from placer's {name} (with the plan's "
                        f"--set overrides) in {', '.join(changed[:4])} ({first}: {short(got.get(first))} vs "
                        f"{short(expected.get(first))}); compile the plan again (placer run --set changes "
                        f"a run's target)")
