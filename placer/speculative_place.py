"""The draft model of speculative decoding placed with the target model, and its plan figures.

Placement: the draft's units are extra units of the same partition problem. The combined model
is the draft's units (renamed ``draft.<unit>``) followed by the target's, joined by one edge that
carries the drafted token ids, so the problem stays a chain when both models are chains and any
solver (CP-SAT, the exact DP, the baselines) places both in one solve under the plan's objective,
wafer limits and pins: it decides whether the draft shares a wafer with the target (a cut inside
the combined chain) or sits on its own wafers (a cut at the join). Memory is exact (both models'
weights, both KV caches of every resident sequence, the larger activation buffer); the solver's
time is the chain's (draft step plus target step per token), a proxy: under ``--layout whole``
unit times do not depend on where a unit sits, only the hops do. One solve, so the plan is as
deterministic as any other.

Figures (``speculative_plan``): each model's pipeline on its own wafers through
``placer.perf.placement.place`` (the one performance model): the draft's decode step at the
plan's micro-batch, the target's step with ``k + 1`` rows per sequence, and the formulas of
``placer.speculative``. The plan's ``performance`` becomes the target alone on its wafers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from placer.costs import EdgeCost, ModelCost
from placer.errors import UserError
from placer.options import CompileOptions, Layout
from placer.perf.placement import place
from placer.speculative import (
    SpeculativePlan,
    effective_tokens_per_s,
    expected_tokens_per_step,
    step_seconds,
)
from placer.targets import Target

if TYPE_CHECKING:
    from placer.plan import Plan
    from placer.solver.solve import Solution

PREFIX = "draft."
# What crosses from the draft to the target per token: one token id (int32).
TOKEN_ID_BYTES = 4


@dataclass(frozen=True)
class Draft:
    """The draft model as costed for the plan's workload, and where it came from."""

    cost: ModelCost
    name: str
    sha256: str


def check_draft_options(opts: CompileOptions) -> None:
    """The options speculative decoding does not combine with, checked before any model is read
    (by compile, and by a sweep before its points): a per-user floor, ``--prefill-on``, a layout
    other than whole. Nothing without ``--draft``."""
    if opts.workload.speculative is None:
        return
    if opts.goal.min_tokens_per_s_per_user is not None:
        # the solver's time per token is the chain's (draft step + target step), not the effective rate
        raise UserError("option --min-tokens-per-s-per-user is not supported with --draft: compile "
                        "without the floor and read the plan's speculative.tokens_per_s_per_user")
    if opts.prefill_on is not None:
        raise UserError("option --prefill-on is not supported with --draft: the draft would need its "
                        "prompt's KV too; compile the speculative plan with prefill on the wafers")
    if opts.layout is not Layout.WHOLE:
        raise UserError(f"option --draft: speculative decoding is placed with --layout whole only, "
                        f"got --layout {opts.layout.value}")


def load_draft(opts: CompileOptions, target: Target,
               cost_of: Callable[[Any, Target, Any, str], tuple[Any, ...]]) -> Draft | None:
    """The draft of ``opts.workload.speculative`` costed by ``cost_of`` (the compiler's own
    loader: the same frontends and pipeline as the target model); None without ``--draft``.

    Raises:
        UserError: a layout other than whole, a per-user floor, ``--prefill-on``, or a draft that
            cannot be read.
    """
    spec = opts.workload.speculative
    if spec is None:
        return None
    check_draft_options(opts)
    cost, name, sha, *_ = cost_of(spec.draft, target, opts.workload, opts.granularity.value)
    if not any(k for u in cost.units for k in u.kv):
        # a model without a KV cache or state (an MLP) cannot decode tokens for the target to verify
        raise UserError(f"option --draft: {spec.draft} has no KV cache (no attention or recurrent layers), "
                        f"so it cannot draft tokens; give a decoder language model with the target's "
                        f"vocabulary")
    return Draft(cost, name, sha)


def with_draft(cost: ModelCost, draft: Draft) -> ModelCost:
    """One model of the draft's units (``draft.`` names, layer -1: not a layer of the target)
    followed by the target's; the draft's last unit feeds the target's first."""
    taken = {u.name for u in cost.units}
    clash = sorted(PREFIX + u.name for u in draft.cost.units if PREFIX + u.name in taken)
    if clash:
        raise UserError(f"option --draft: the target model already has unit(s) {', '.join(clash[:3])}; "
                        f"draft units are named {PREFIX}<unit>")
    units = tuple(dataclasses.replace(u, name=PREFIX + u.name, layer=-1) for u in draft.cost.units)
    edges = tuple(EdgeCost(PREFIX + e.src, PREFIX + e.dst, e.bytes_per_token) for e in draft.cost.edges)
    join = EdgeCost(units[-1].name, cost.units[0].name, TOKEN_ID_BYTES)
    return ModelCost(cost.model, units + cost.units, (*edges, join, *cost.edges),
                     cost.parameters + draft.cost.parameters, cost.weight_bytes + draft.cost.weight_bytes,
                     cost.kv_bytes_per_token + draft.cost.kv_bytes_per_token)


def _own(assignment: tuple[int, ...]) -> tuple[list[int], tuple[int, ...]]:
    """One model's wafers renumbered from 0, and the plan's wafer indices they are."""
    first = min(assignment)
    return [w - first for w in assignment], tuple(range(first, max(assignment) + 1))


def speculative_plan(plan: Plan, cost: ModelCost, draft: Draft, target: Target, solution: Solution) -> Plan:
    """``plan`` (built from ``with_draft``'s combined cost) with the target alone as its
    ``performance`` and the ``speculative`` section; canonical (floats rounded as in the file)."""
    from placer.plan import Plan

    spec = plan.workload.speculative
    assert spec is not None and solution.assignment is not None
    k, a = spec.draft_length, spec.acceptance
    workload = plan.workload
    ev = solution.evaluation
    resident, batch = ev.resident, ev.batch
    nd = len(draft.cost.units)
    draft_at, draft_wafers = _own(tuple(solution.assignment[:nd]))
    target_at, target_wafers = _own(tuple(solution.assignment[nd:]))
    alone = place(cost, target, workload, target_at, resident, batch).performance
    t_draft = place(draft.cost, target, workload, draft_at, resident, batch).performance
    # k + 1 rows per sequence: resident x (k + 1) rows in micro-batches of batch x (k + 1), so
    # the micro-batches in flight, and the time between two steps of one sequence, are the plan's.
    t_verify = place(cost, target, workload, target_at, resident * (k + 1), batch * (k + 1)).performance
    d, v = t_draft.time_per_output_token_s, t_verify.time_per_output_token_s
    step = step_seconds(d, v, k)
    rate = effective_tokens_per_s(d, v, k, a)
    section = SpeculativePlan(
        draft=draft.name, draft_sha256=draft.sha256, draft_parameters=draft.cost.parameters,
        draft_weight_bytes=draft.cost.weight_bytes, draft_units=nd, draft_length=k, acceptance=a,
        expected_tokens_per_step=expected_tokens_per_step(k, a), draft_step_s=d, verify_step_s=v,
        step_s=step, time_per_output_token_s=1.0 / rate, tokens_per_s_per_user=rate,
        speedup=rate / alone.tokens_per_s_per_user, target_wafers=target_wafers, draft_wafers=draft_wafers,
        shared_wafers=tuple(sorted(set(target_wafers) & set(draft_wafers))))
    return Plan.from_json(dataclasses.replace(plan, performance=alone, speculative=section).to_json())


def draft_units_summary(names: Sequence[str], cost: ModelCost, draft: Draft) -> str:
    """report.md's units of one wafer of a plan with a draft: ``draft: embed, layers 0-31, head;
    embed, layers 0-11`` (each model's layers as ranges, by its own layer numbers)."""
    from placer.report import summarize_units

    def maps(units: Sequence[Any]) -> tuple[dict[str, int], dict[int, int]]:
        count: dict[int, int] = {}
        for u in units:
            if u.layer >= 0:
                count[u.layer] = count.get(u.layer, 0) + 1
        return {u.name: u.layer for u in units}, count

    mine = tuple(n[len(PREFIX):] for n in names if n.startswith(PREFIX))
    theirs = tuple(n for n in names if not n.startswith(PREFIX))
    parts = []
    if mine:
        parts.append("draft: " + summarize_units(mine, *maps(draft.cost.units)))
    if theirs:
        parts.append(summarize_units(theirs, *maps([u for u in cost.units if not u.name.startswith(PREFIX)])))
    return "; ".join(parts)
