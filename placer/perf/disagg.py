"""Disaggregated prefill (``--prefill-on TARGET``): the prompt runs on other hardware, its KV
is shipped to the wafers, decode runs on the wafers. Every formula of it, once; the compiler,
the plan, report.md, report.html and the sweep call these.

With a prefill target ``T`` (``placer.targets.prefill.PrefillTarget``) and a prompt of ``P``
tokens, on wafers ``w = 0 .. N-1`` of the decode target:

* prefill on ``T``, a roofline of the whole prompt's work:
  ``t_prefill = max(F / (peak_flops x u), (W + KV(P)) / (memory_bandwidth x u))`` with ``F``
  the prompt's FLOPs (every unit's prefill cost, the cost model's), ``W`` the stored weight and
  constant bytes (each read once for the prompt), ``KV(P)`` the prompt's KV bytes (written
  once) and ``u`` the target's ``utilisation``; ``W + KV(P)`` must fit ``memory_bytes``.
* KV transfer: the prompt's KV leaves ``T`` over its link and enters each wafer (its own
  layers' share ``KV_w(P)``) over that wafer's I/O, all wafers at once; the slower path binds:
  ``t_kv = max(KV(P) / link_bandwidth, max_w KV_w(P) / io_bandwidth)`` (``bound``: ``"wafer
  I/O"`` when the second term is at least the first, else ``"prefill link"``).
* hops: one switch hop between ``T`` and the wafers, ``t_hops = hop_latency_s``.
* ``TTFT = t_prefill + t_kv + t_hops``. The decode target's ``request_overhead_s`` (fitted to
  co-located TTFT) is not added.
* On the wafers, decode only: a unit's activation buffer holds one token of every sequence in
  flight and no prefill chunk (``buffer_chunk_tokens`` is 0), so the solver, the plan and
  the report size SRAM without prefill buffers.
* Cost: output tokens are the wafers' (``Performance.usd_per_million_tokens``); input tokens
  are charged ``T``'s time, ``t_prefill x T.cost_per_hour / 3600`` $ per prompt over its ``P``
  tokens (``usd_per_million_input_tokens``; none when ``T`` has no ``cost_per_hour``). The
  wafers are not charged for receiving the KV: they decode meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from placer.costs import ModelCost
from placer.errors import InfeasibleError
from placer.perf.unit import prefill_chunk
from placer.targets import Target
from placer.targets.prefill import PrefillTarget

WAFER_IO, PREFILL_LINK = "wafer I/O", "prefill link"


@dataclass(frozen=True)
class PrefillWork:
    """What the prompt asks of the prefill machine: FLOPs and bytes, and the time it takes there."""

    flops: float         # FLOPs of the whole prompt
    weight_bytes: int    # stored weights and constants, read once
    kv_bytes: int        # the prompt's KV, written once (and shipped)
    seconds: float       # t_prefill


@dataclass(frozen=True)
class DisaggregatedPrefill:
    """The plan's record of a disaggregated prefill: where, and the three TTFT terms (seconds)."""

    target: PrefillTarget
    prompt_tokens: int
    flops: float
    kv_bytes: int                 # KV of the prompt, every wafer's share together
    max_kv_bytes_per_wafer: int   # the largest share one wafer receives
    prefill_s: float
    kv_transfer_s: float
    hops_s: float
    transfer_bound: str           # WAFER_IO or PREFILL_LINK: which path sets kv_transfer_s

    @property
    def ttft_s(self) -> float:
        """``prefill_s + kv_transfer_s + hops_s``."""
        return self.prefill_s + self.kv_transfer_s + self.hops_s

    @property
    def io_binds(self) -> bool:
        """Whether the wafers' I/O (not the prefill machine's link) sets the transfer time."""
        return self.transfer_bound == WAFER_IO

    @staticmethod
    def from_dict(d: dict[str, Any]) -> DisaggregatedPrefill:
        return DisaggregatedPrefill(**{**d, "target": PrefillTarget.from_dict(d["target"], "plan prefill")})


def buffer_chunk_tokens(target: Target, prompt_tokens: int, disaggregated: bool) -> int:
    """Prompt tokens a unit's activation buffer holds on the wafers: one prefill chunk
    (``placer.perf.prefill_chunk``) when prefill is co-located, none when it runs elsewhere."""
    return 0 if disaggregated else prefill_chunk(target, prompt_tokens)


def prefill_seconds(target: PrefillTarget, flops: float, nbytes: float) -> float:
    """The roofline: ``max(flops / (peak_flops x u), bytes / (memory_bandwidth x u))``."""
    u = target.utilisation
    return max(flops / (target.peak_flops * u), nbytes / (target.memory_bandwidth_bytes_per_s * u))


def prefill_work(cost: ModelCost, target: PrefillTarget, prompt_tokens: int) -> PrefillWork:
    """The prompt's work on ``target`` (``cost``'s prefill costs are for the whole prompt).

    Raises:
        InfeasibleError: the weights and the prompt's KV exceed the target's memory.
    """
    flops = float(sum(u.prefill.flops for u in cost.units))
    weights = sum(u.weight_bytes + u.constant_bytes for u in cost.units)
    kv = sum(u.kv_bytes(prompt_tokens) for u in cost.units)
    if weights + kv > target.memory_bytes:
        raise InfeasibleError(
            f"infeasible: prefill target {target.name!r} has {target.memory_bytes / 1e9:.3f} GB of memory "
            "but "
            f"{cost.model}'s weights ({weights / 1e9:.3f} GB) and the KV of a {prompt_tokens}-token prompt "
            f"({kv / 1e9:.3f} GB) need {(weights + kv) / 1e9:.3f} GB; use a larger prefill target, a "
            "smaller --weights-dtype, or co-located prefill")
    return PrefillWork(flops, weights, kv, prefill_seconds(target, flops, weights + kv))


def kv_transfer(prefill: PrefillTarget, wafers: Target,
                kv_bytes_per_wafer: Sequence[int]) -> tuple[float, str]:
    """``(t_kv, bound)``: ``max(KV / link_bandwidth, max_w KV_w / io_bandwidth)`` and which binds."""
    link = sum(kv_bytes_per_wafer) / prefill.link_bandwidth_bytes_per_s
    io = max(kv_bytes_per_wafer, default=0) / wafers.io_bandwidth_bytes_per_s
    return max(link, io), (WAFER_IO if io >= link else PREFILL_LINK)


def disaggregate(work: PrefillWork, prefill: PrefillTarget, wafers: Target, prompt_tokens: int,
                 kv_bytes_per_wafer: Sequence[int]) -> DisaggregatedPrefill:
    """The three TTFT terms of a placed model; ``kv_bytes_per_wafer``: each wafer's share of
    the prompt's KV (its units' ``kv_bytes(prompt)``)."""
    seconds, bound = kv_transfer(prefill, wafers, kv_bytes_per_wafer)
    return DisaggregatedPrefill(
        target=prefill, prompt_tokens=prompt_tokens, flops=work.flops, kv_bytes=sum(kv_bytes_per_wafer),
        max_kv_bytes_per_wafer=max(kv_bytes_per_wafer, default=0), prefill_s=work.seconds,
        kv_transfer_s=seconds, hops_s=prefill.hop_latency_s, transfer_bound=bound)


def usd_per_million_input_tokens(d: DisaggregatedPrefill) -> float | None:
    """$ per million prompt tokens: the prefill machine's time, ``prefill_s x cost_per_hour /
    3600``, over the prompt's tokens; None when the machine has no ``cost_per_hour``."""
    if not d.target.cost_per_hour or d.prompt_tokens <= 0:
        return None
    return d.prefill_s * d.target.cost_per_hour / 3600 / d.prompt_tokens * 1e6


def describe(d: DisaggregatedPrefill, io_bandwidth_bytes_per_s: float) -> list[str]:
    """Plain-language lines for report.md and report.html."""
    t = d.target
    binds = ("the wafers' I/O binds" if d.io_binds else
             f"the prefill machine's link binds ({t.link_bandwidth_bytes_per_s / 1e9:.1f} GB/s), not the "
             "wafers' I/O")
    return [
        f"Prefill on {t.name} ({t.description}): {d.flops / 1e12:,.3f} TFLOP for the {d.prompt_tokens}-token "
        f"prompt, {d.prefill_s * 1e3:.3f} ms (roofline at {t.utilisation:.0%} of {t.peak_flops / 1e15:.3f} "
        f"PFLOP/s and {t.memory_bandwidth_bytes_per_s / 1e12:.2f} TB/s).",
        f"KV transfer: {d.kv_bytes / 1e9:.3f} GB of the prompt's KV, at most "
        f"{d.max_kv_bytes_per_wafer / 1e9:.3f} GB into one wafer at "
        f"{io_bandwidth_bytes_per_s / 1e9:.1f} GB/s: {d.kv_transfer_s * 1e3:.3f} ms; {binds}.",
        f"TTFT = prefill {d.prefill_s * 1e3:.3f} ms + KV transfer {d.kv_transfer_s * 1e3:.3f} ms + hops "
        f"{d.hops_s * 1e3:.3f} ms = {d.ttft_s * 1e3:.3f} ms; the wafers hold no prefill activation buffers.",
    ]
