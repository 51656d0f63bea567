"""Speculative decoding: a draft model proposes ``k`` tokens, the target verifies them in one step.

With draft length ``k`` and a per-token acceptance rate ``a`` (each drafted token is accepted
with probability ``a`` independently, until the first rejection), one verification step
produces the accepted prefix plus one token from the target (the correction at the first
rejection, or a bonus token when all ``k`` are accepted), so the expected tokens per step are

    E[tokens] = 1 + a + a^2 + ... + a^k = (1 - a^(k + 1)) / (1 - a)    (k + 1 when a = 1).

One step costs ``k`` decode steps of the draft (one sequence each) plus one step of the target
that verifies ``k + 1`` positions at once, i.e. a batched decode step of the target
(``placer.perf`` with batch ``k + 1``), so

    time per output token = (k x t_draft + t_verify(k + 1)) / E[tokens]
    effective tokens/s per user = E[tokens] / (k x t_draft + t_verify(k + 1)).

These are the only copies of the two formulas; the performance model and the plan call them.
"""

from __future__ import annotations

from dataclasses import dataclass

from placer.errors import UserError


@dataclass(frozen=True)
class SpeculativeOptions:
    """A workload's speculative decoding: ``draft`` is a zoo name or a model file, placed with
    the target model; ``draft_length`` is k; ``acceptance`` is a, in [0, 1]."""

    draft: str
    draft_length: int = 4
    acceptance: float = 0.8

    def __post_init__(self) -> None:
        if not self.draft:
            raise UserError("option --draft: name a draft model (a zoo name or a model file)")
        if isinstance(self.draft_length, bool) or not isinstance(self.draft_length, int) or \
                self.draft_length < 1:
            raise UserError(f"option --draft-length must be an integer >= 1, got {self.draft_length!r}")
        if not 0.0 <= float(self.acceptance) <= 1.0:
            raise UserError(f"option --acceptance must be in [0, 1], got {self.acceptance!r}")

    def to_dict(self) -> dict[str, object]:
        return {"draft": self.draft, "draft_length": self.draft_length, "acceptance": self.acceptance}


def expected_tokens_per_step(draft_length: int, acceptance: float) -> float:
    """Expected tokens one verification step produces: ``(1 - a^(k+1)) / (1 - a)``."""
    k, a = draft_length, float(acceptance)
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


def step_seconds(draft_step_s: float, verify_step_s: float, draft_length: int) -> float:
    """Seconds of one speculative step: ``k`` draft decode steps, then one verification step of
    the target over ``k + 1`` positions (``verify_step_s``, a batched target step)."""
    return draft_length * draft_step_s + verify_step_s


def effective_time_per_token(draft_step_s: float, verify_step_s: float, draft_length: int,
                             acceptance: float) -> float:
    """Seconds per output token of one stream with speculative decoding."""
    return step_seconds(draft_step_s, verify_step_s, draft_length) / expected_tokens_per_step(
        draft_length, acceptance)
