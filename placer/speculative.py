"""Speculative decoding: a draft model proposes ``k`` tokens, the target verifies them in one step.

With draft length ``k`` and a per-token acceptance rate ``a`` (each drafted token is accepted
with probability ``a`` independently, until the first rejection), one verification step
produces the accepted prefix plus one token from the target (the correction at the first
rejection, or a bonus token when all ``k`` are accepted), so the expected tokens per step are

    E = 1 + a + a^2 + ... + a^k = (1 - a^(k + 1)) / (1 - a)    (0 <= a < 1).

One step costs ``k`` decode steps of the draft plus one step of the target that verifies
``k + 1`` positions at once, i.e. a batched decode step of the target with ``k + 1`` rows per
sequence (``placer.perf``'s step of ``B`` rows; ``placer.speculative_place`` calls it), so

    time per output token = (k x t_draft + t_verify(k + 1)) / E
    effective tokens/s per user = E / (k x t_draft + t_verify(k + 1)).

These are the only copies of the formulas: the plan (``placer.speculative_place``), the report
and ``placer calibrate`` (a point's speculative settings) read the figures computed here.
This module is imported by ``placer.workload`` and ``placer.plan``: it imports nothing heavy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from placer.errors import UserError
from placer.validate import show_int

ACCEPTANCE_RANGE = "0 <= A < 1"
#: Longest ``--draft-length`` placer models: drafts propose a handful of tokens (1-16 in practice),
#: and the expected tokens per step are below ``1 / (1 - a)`` however long the draft.
MAX_DRAFT_LENGTH = 64


@dataclass(frozen=True)
class SpeculativeOptions:
    """A workload's speculative decoding (``--draft``, ``--draft-length``, ``--acceptance``).

    ``draft``: a zoo name or a model file, loaded through the same pipeline as the target
    model (the Python API also takes a ``ModelCost``; the plan records its model name);
    ``draft_length``: k, tokens drafted per verification step; ``acceptance``: a, the
    probability that the target accepts one drafted token.
    """

    draft: Any
    draft_length: int
    acceptance: float

    def __post_init__(self) -> None:
        if self.draft is None or (isinstance(self.draft, str) and not self.draft.strip()):
            raise UserError("option --draft: name a draft model (a zoo name or a model file)")
        k = self.draft_length
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise UserError(f"option --draft-length must be an integer >= 1, got {k!r}")
        if k > MAX_DRAFT_LENGTH:
            raise UserError(f"option --draft-length: {show_int(k)} tokens per verification step is more than "
                            f"placer's cap of {MAX_DRAFT_LENGTH} (placer.speculative.MAX_DRAFT_LENGTH; the "
                            f"expected gain stops growing after a few dozen: E < 1 / (1 - a)); give at most "
                            f"{MAX_DRAFT_LENGTH}")
        a = self.acceptance
        ok = not isinstance(a, bool) and isinstance(a, (int, float)) and 0.0 <= a < 1.0
        if not ok:
            raise UserError(f"option --acceptance must be a number with {ACCEPTANCE_RANGE} (the "
                            f"probability that the target accepts one drafted token), got {a!r}")
        object.__setattr__(self, "acceptance", float(a))

    @property
    def draft_name(self) -> str:
        """What plan.json records: the name as given, or a ``ModelCost``'s model name."""
        return self.draft if isinstance(self.draft, str) else str(getattr(self.draft, "model", self.draft))

    def to_dict(self) -> dict[str, object]:
        return {"draft": self.draft_name, "draft_length": self.draft_length, "acceptance": self.acceptance}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> SpeculativeOptions:
        return SpeculativeOptions(str(d["draft"]), int(d["draft_length"]), float(d["acceptance"]))


def speculative_from_flat(draft: Any, draft_length: Any, acceptance: Any) -> SpeculativeOptions | None:
    """The options of the flat names ``draft``, ``draft_length``, ``acceptance`` (None: no
    speculative decoding). Each needs the others: a UserError names the one missing."""
    if draft is None:
        given = [flag for flag, value in (("--draft-length", draft_length), ("--acceptance", acceptance))
                 if value is not None]
        if given:
            raise UserError(f"option {given[0]} needs --draft (the draft model of speculative decoding: "
                            f"a zoo name or a model file)")
        return None
    if draft_length is None:
        raise UserError("option --draft needs --draft-length K (tokens the draft proposes per "
                        "verification step, an integer >= 1)")
    if acceptance is None:
        raise UserError(f"option --draft needs --acceptance A (the probability that the target accepts "
                        f"one drafted token, {ACCEPTANCE_RANGE})")
    return SpeculativeOptions(draft, draft_length, acceptance)


def expected_tokens_per_step(draft_length: int, acceptance: float) -> float:
    """Expected tokens one verification step produces: ``(1 - a^(k+1)) / (1 - a)``."""
    k, a = draft_length, float(acceptance)
    if a >= 1.0:  # the limit k + 1 (options exclude a = 1; kept for callers of the formula)
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


def effective_tokens_per_s(draft_step_s: float, verify_step_s: float, draft_length: int,
                           acceptance: float) -> float:
    """Effective tokens/s per user: ``E / (k x t_draft + t_verify(k + 1))``."""
    t = effective_time_per_token(draft_step_s, verify_step_s, draft_length, acceptance)
    return 1.0 / t if t > 0 else math.inf


@dataclass(frozen=True)
class SpeculativePlan:
    """plan.json's ``speculative`` section (present only with ``--draft``); seconds and tokens/s
    per resident sequence at the plan's micro-batch.

    ``draft_step_s``: one decode step of the draft on its wafers (its time per output token);
    ``verify_step_s``: one target step over ``draft_length + 1`` positions of every sequence;
    ``tokens_per_s_per_user``: the effective rate ``E / step_s``; ``speedup``: over the
    target alone on the same wafers (the plan's ``performance``). Wafers are plan indices;
    ``shared_wafers`` hold units of both models.
    """

    draft: str
    draft_sha256: str
    draft_parameters: int
    draft_weight_bytes: int
    draft_units: int
    draft_length: int
    acceptance: float
    expected_tokens_per_step: float
    draft_step_s: float
    verify_step_s: float
    step_s: float
    time_per_output_token_s: float
    tokens_per_s_per_user: float
    speedup: float
    target_wafers: tuple[int, ...]
    draft_wafers: tuple[int, ...]
    shared_wafers: tuple[int, ...]

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> SpeculativePlan:
        return SpeculativePlan(**{**d, **{k: tuple(d[k]) for k in ("target_wafers", "draft_wafers",
                                                                   "shared_wafers")}})

    def placement(self) -> str:
        """``shares wafers 3`` or ``on its own wafers``: how the draft sits beside the target."""
        if self.shared_wafers:
            return f"shares wafer(s) {_wafers(self.shared_wafers)} with the target"
        return "on its own wafer(s)"


def _wafers(indices: tuple[int, ...]) -> str:
    return f"{indices[0]}-{indices[-1]}" if len(indices) > 1 else str(indices[0])


def report_lines(plan: Any) -> list[str]:
    """report.md's speculative-decoding section (empty without ``--draft``)."""
    s: SpeculativePlan | None = getattr(plan, "speculative", None)
    if s is None:
        return []
    perf = plan.performance
    return [
        "## Speculative decoding", "",
        f"Draft `{s.draft}` ({s.draft_parameters:,} parameters, {s.draft_weight_bytes / 1e9:.3f} GB, "
        f"{s.draft_units} units) on wafer(s) {_wafers(s.draft_wafers)}; target on wafer(s) "
        f"{_wafers(s.target_wafers)}; the draft {s.placement()} (one partition of both models' units).",
        "",
        "| draft length k | acceptance a | expected tokens per step E | draft step | verification step "
        "(k + 1 positions) | step (k drafts + 1 verification) | time per output token | effective "
        "tokens/s per user | target alone, tokens/s per user | speedup |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {s.draft_length} | {s.acceptance:g} | {s.expected_tokens_per_step:.4f} | "
        f"{s.draft_step_s * 1e3:.4f} ms | {s.verify_step_s * 1e3:.4f} ms | {s.step_s * 1e3:.4f} ms | "
        f"{s.time_per_output_token_s * 1e3:.4f} ms | {s.tokens_per_s_per_user:,.1f} | "
        f"{perf.tokens_per_s_per_user:,.1f} | {s.speedup:.3f}x |",
        "",
        "E = (1 - a^(k+1)) / (1 - a); effective tokens/s per user = E / (k x draft step + verification "
        "step). The verification step is the target's batched decode step with k + 1 rows per sequence "
        "(each row charged its KV reads, an upper bound: the k + 1 positions share one sequence's KV). "
        "The performance section above is the target alone on its wafers (TTFT: the target's prefill "
        "gives the first token). With more than one micro-batch in flight, draft and target steps on a "
        "shared wafer are assumed not to contend. The methods table below times the combined chain (one "
        "draft step plus one target step per token), the solver's proxy for placing both models.",
        "",
    ]
