"""``placer check plan.json --max-wafers N ...``: a plan against budgets, for a CI gate.

Each budget is optional; a plan fails when any budget given is broken. The result names every
broken budget with the measured value and the option that set it, on one line. A plan compiled
with ``--draft`` is checked on its effective tokens/s per user (the speculative rate a user sees)
and its line names the speculative settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from placer.errors import UserError

if TYPE_CHECKING:
    from placer.plan import Plan


@dataclass(frozen=True)
class Budgets:
    """Limits a plan must meet; None (False for ``all_resident``) means not checked."""

    max_wafers: int | None = None
    min_tokens_per_s_per_user: float | None = None
    min_total_tokens_per_s: float | None = None
    max_time_per_output_token_s: float | None = None
    max_ttft_s: float | None = None
    all_resident: bool = False

    def __post_init__(self) -> None:
        if self.max_wafers is not None and self.max_wafers < 1:
            raise UserError(f"option --max-wafers must be >= 1, got {self.max_wafers}")
        for name in ("min_tokens_per_s_per_user", "min_total_tokens_per_s", "max_time_per_output_token_s",
                     "max_ttft_s"):
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:
                # the CLI takes the two time budgets in ms (--max-ttft-ms); the Budgets field is seconds
                option = name.replace("_", "-")
                shown = value
                if name.startswith("max_"):
                    option, shown = option[:-2] + "-ms", value * 1e3
                raise UserError(f"option --{option} must be a finite number > 0, got {shown:g}")

    @property
    def empty(self) -> bool:
        return self == Budgets()


@dataclass(frozen=True)
class CheckResult:
    plan: str
    failures: tuple[str, ...]     # one phrase per broken budget
    measured: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def line(self) -> str:
        """One line: ``ok`` or every broken budget."""
        if self.ok:
            m = self.measured
            spec = m.get("speculative")
            drafted = "" if spec is None else (
                f", {m['effective_tokens_per_s_per_user']:,.1f} effective tokens/s per user with draft "
                f"{spec['draft']} (draft length {spec['draft_length']}, acceptance {spec['acceptance']:g})")
            return (f"{self.plan}: ok ({m['wafers']} wafers, {m['tokens_per_s_per_user']:,.1f} tokens/s "
                    f"per user{drafted}, {m['tokens_per_s_total']:,.1f} tokens/s total, "
                    f"{m['parked_sequences']} parked)")
        return f"{self.plan}: check failed: " + "; ".join(self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "ok": self.ok, "failures": list(self.failures), "measured": self.measured}


def check_plan(plan: Plan, budgets: Budgets, label: str = "plan") -> CheckResult:
    """Measure ``plan`` against ``budgets``.

    Raises:
        UserError: no budget given (a check that checks nothing is a mistake in a CI script).
    """
    if budgets.empty:
        raise UserError("placer check: give at least one budget (--max-wafers, --min-tokens-per-s-per-user, "
                        "--min-total-tokens-per-s, --max-time-per-output-token-ms, --max-ttft-ms, "
                        "--all-resident)")
    from placer.diff import effective_tokens_per_s_per_user, speculative_settings

    perf, kv = plan.performance, plan.kv
    spec = speculative_settings(plan)
    # With a draft, a user sees the speculative rate: the per-user budget checks it.
    per_user = effective_tokens_per_s_per_user(plan)
    rate_name = "tokens/s per user" if spec is None else "effective tokens/s per user"
    measured: dict[str, Any] = {
        "wafers": len(plan.wafers),
        "tokens_per_s_per_user": perf.tokens_per_s_per_user,
        "tokens_per_s_total": perf.tokens_per_s_total,
        "time_per_output_token_s": perf.time_per_output_token_s,
        "ttft_s": perf.ttft_s,
        "resident_sequences": kv.resident_sequences,
        "parked_sequences": kv.parked_sequences,
        **({"speculative": spec, "effective_tokens_per_s_per_user": per_user} if spec is not None else {}),
    }
    b = budgets
    failures = []
    if b.max_wafers is not None and len(plan.wafers) > b.max_wafers:
        failures.append(f"wafers {len(plan.wafers)} > --max-wafers {b.max_wafers}")
    if b.min_tokens_per_s_per_user is not None and per_user < b.min_tokens_per_s_per_user:
        failures.append(f"{rate_name} {per_user:,.1f} < --min-tokens-per-s-per-user "
                        f"{b.min_tokens_per_s_per_user:g}")
    if b.min_total_tokens_per_s is not None and perf.tokens_per_s_total < b.min_total_tokens_per_s:
        failures.append(f"tokens/s total {perf.tokens_per_s_total:,.1f} < --min-total-tokens-per-s "
                        f"{b.min_total_tokens_per_s:g}")
    tpot = perf.time_per_output_token_s
    if b.max_time_per_output_token_s is not None and tpot > b.max_time_per_output_token_s:
        failures.append(f"time per output token {perf.time_per_output_token_s * 1e3:.4f} ms > "
                        f"--max-time-per-output-token-ms {b.max_time_per_output_token_s * 1e3:g}")
    if b.max_ttft_s is not None and perf.ttft_s > b.max_ttft_s:
        failures.append(f"TTFT {perf.ttft_s * 1e3:.3f} ms > --max-ttft-ms {b.max_ttft_s * 1e3:g}")
    if b.all_resident and kv.parked_sequences > 0:
        failures.append(f"{kv.parked_sequences} of {plan.workload.concurrency} sequences parked "
                        "(--all-resident)")
    return CheckResult(label, tuple(failures), measured)
