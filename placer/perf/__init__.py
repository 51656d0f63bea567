"""The performance model: every time, memory and I/O formula of placer, in one package.

Every constant comes from ``placer.targets.Target``; nothing here is calibrated by hand. The
solver's integer model (``placer.solver.problem``), the exact DP, the bounds, the baselines'
evaluation, the plan, the report and ``placer run``'s predicted column all call this package:
``formulas`` (pipeline and memory terms for any number type; the integer model is the float
model with each unit and edge time rounded to 0.1 ns ticks), ``unit`` (one unit's step),
``pipeline`` (a placed pipeline), ``placement`` (a whole assignment, as the plan reports it).

Per unit, on a whole-wafer layout (every unit spread over the wafer's full PE grid, as in
published wafer-scale LLM work; a wafer runs its units one after the other), for one step of
``rows`` rows (a decode micro-batch of ``B`` sequences, or a prefill chunk of ``c`` tokens):

* compute ``t_c = rows x flops / (mesh_rows x mesh_cols x flops_per_cycle_per_pe x clock_hz)``
* SRAM traffic ``t_m = (weight reads + rows x activation bytes) / sram_bandwidth_bytes_per_s``:
  weights are read once per step whatever the rows (a MoE unit's expected reads per token add
  up over the rows to at most its stored weights); activations and KV reads grow with the rows.
  Compute and SRAM streaming overlap on a dataflow PE: the unit pays ``max(t_c, t_m)``.
* fabric ``t_f``: every collective's cycles from ``placer.ir.mesh_physics`` (the emulator's own
  algorithms), with the per-PE tiles ``rows`` times as large: a GEMV ``[rows, K] x [K, N]``
  broadcasts input tiles of ``ceil(K / mesh_rows) x rows`` elements along each grid row and
  reduces output tiles of ``ceil(N / mesh_cols) x rows`` elements down each grid column; a row
  all-reduce (norm statistics, softmax max and sum) reduces and broadcasts along a grid row,
  except a norm read only by GEMVs (``placer.ir.norm_fusion``: q/k/v, gate/up, a router, the
  LM head), whose statistics run beside the first GEMV's collective and are paid only where
  longer (``mesh_physics.fused_norm_extra_cycles``; not in a prefill chunk of several rows);
  a relayout (Transpose, Concat, Slice, ... of activations) is one neighbour exchange of every
  PE's tile; a gather from a resident table routes its rows across the grid at once. The
  latency is paid once per step, the tile streams grow with the rows. In a prefill chunk
  each weight GEMM runs as ``mesh_physics.prefill_gemm`` chooses (Cannon, or a chunk-row
  GEMV on the resident tiles; the GEMV wins at placer's chunk sizes on every zoo model),
  the emulator running the same choice; a Cannon GEMM's cycles include its FLOPs.
* unit time ``t_u(rows) = max(t_c, t_m) + t_f``.

Batched decode across N wafers (pipeline parallelism). ``S`` sequences are resident (their KV
is in SRAM); they run as ``M = ceil(S / B)`` micro-batches of ``B`` sequences, with
``B = ceil(S / min(S, N_fill))`` where ``N_fill`` is the fewest wafers that hold the S
sequences (``formulas.batch_for``: one micro-batch per stage keeps every stage busy). Stage
time ``t_w(B) = sum of t_u(B)`` on wafer w; a boundary b carries ``B x B_b`` bytes per step
(``B_b`` per token of one sequence; edges that skip a wafer are relayed through it):

* round trip ``R(B) = sum_w t_w(B) + N x hop_latency_s + sum_b B x B_b / io_bandwidth``
* time per output token ``TPOT = max(R(B), M x max_w t_w(B), M x max_b B x B_b / io_bandwidth)``
  (every stage serves each micro-batch once per token; I/O is full duplex)
* tokens/s per resident user ``1 / TPOT``; in total ``S / TPOT``; per wafer ``total / N``
* sequences to fill the pipeline ``B x ceil(R / max_w t_w)``
* parked sequences (``P = concurrency - S``) rotate fairly: each user holds a slot for ``Q``
  decoded tokens (``Q = context - prompt``, what a request generates), then its KV leaves over
  every wafer's I/O while the next one's arrives (full duplex, ``swap = hop_latency_s +
  max_w KV_w / io_bandwidth``): total ``S x Q / (Q x TPOT + swap)``, capped by the boundary
  links' room left by the activations; every user gets ``total / concurrency`` (mean = min
  under fair rotation). Swap traffic per wafer ``total / Q x max_w KV_w`` bytes/s each way.
* cost ``N x cost_per_hour / 3600 / total x 1e6`` $ per million output tokens; $ per million
  input tokens: the wafer time of the whole prompt's prefill, ``C x sum_w P_w /
  prefill_utilisation`` wafer-seconds x ``cost_per_hour / 3600``, over the prompt's tokens
  (``usd_per_million_input_tokens``).
* TTFT: the prompt in chunks of ``c`` tokens (``prefill_chunk``: the smallest power of two
  >= mesh_rows, so every PE row holds a token of the chunk; at most the prompt), ``C =
  ceil(prompt / c)`` chunks pipelined through the wafers: ``sum_w P_w + sum_b H_b + (C - 1) x
  max(max_w P_w, max_b H_b) + hop_latency_s`` with ``P_w`` one chunk on wafer w (``t_u(c)`` on the
  unit's prefill cost, ``c / prompt`` of its work per chunk) and ``H_b = hop_latency_s + c x B_b
  / io_bandwidth``; never below one decode round trip of one sequence. A unit's activation
  buffer holds one chunk plus one token of every sequence: ``out bytes per token x (c +
  concurrency)``, so a long prompt does not add wafers for buffers that chunking avoids.
* per wafer SRAM ``weights + S x KV(context) + largest activation buffer <= SRAM x (1 - reserve)``.

Under ``--layout regions`` a wafer is itself a spatial pipeline (``regions``): its latency
``L_w`` replaces ``t_w`` in the round trip and its interval ``I_w`` (slowest region) replaces
it in the stage term, ``TPOT = max(R, M x max_w I_w, M x max_b B x B_b / io_bandwidth)``, fill
``B x ceil(R / max_w I_w)``. A prefill chunk runs through the same spatial pipeline (every
region on its rectangle): its latency ``P_w`` and interval ``I^p_w`` give TTFT ``sum_w P_w +
sum_b H_b + (C - 1) x max(max_w I^p_w, max_b H_b) + hop_latency_s``, with the chunk the power of
two up to ``prefill_chunk`` with the shortest TTFT (``placement.place``); the named bound takes
the regions' parts priced on their rectangles (``placer.floorplan.floorplan_parts``).
"""

from __future__ import annotations

from placer.perf.formulas import TICK_S, to_ticks
from placer.perf.pipeline import (
    Performance,
    StageParts,
    predict_performance,
    prefill_chunks,
    prefill_wafer_seconds,
    swap_in_seconds,
    ttft_seconds,
    usd_per_million_input_tokens,
    usd_per_request,
)
from placer.perf.unit import (
    activation_buffer_bytes,
    decode_seconds_by_unit,
    fabric_cycles,
    prefill_chunk,
    step_parts,
    step_seconds,
    unit_decode_parts,
    unit_decode_seconds,
    unit_prefill_chunk_seconds,
)

__all__ = ["TICK_S", "Performance", "StageParts", "activation_buffer_bytes", "decode_seconds_by_unit",
           "fabric_cycles", "predict_performance", "prefill_chunk", "prefill_chunks", "prefill_wafer_seconds",
           "step_parts", "step_seconds", "swap_in_seconds", "to_ticks", "ttft_seconds", "unit_decode_parts",
           "unit_decode_seconds", "unit_prefill_chunk_seconds", "usd_per_million_input_tokens",
           "usd_per_request"]
