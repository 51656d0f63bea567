"""The placement problem in integers, and the one function that scores an assignment.

``build_problem`` turns a ``ModelCost`` on a ``Target`` under a ``Workload`` into a ``Problem``
of plain integer arrays (bytes, and times in ticks of ``TICK_S`` seconds), so that CP-SAT, the
exact DP, brute force and every baseline optimise and are scored by exactly the same numbers.

An *assignment* maps unit index -> wafer index. It is valid when every edge goes to the same or
a later wafer, wafers ``0 .. N-1`` are each used, N respects ``--wafers``/``--max-wafers``, pins
hold, and with ``S`` resident sequences every wafer fits
``sum(weights) + S x sum(KV(context)) + max(activation buffer) <= capacity`` (capacity = SRAM x
(1 - reserve)). A unit's activation buffer holds its output for one prefill chunk plus one token per
sequence in flight (``placer.perf.activation_buffer_bytes``; no chunk under ``--prefill-on``,
``placer.perf.disagg``); the units
of a wafer run one after another and reuse one buffer, so a wafer pays for its largest.

Time terms are the float model's (``placer.perf``) rounded to ticks of ``TICK_S`` seconds,
combined by the same functions (``placer.perf.formulas``): at ``S`` resident sequences the
problem is timed at the micro-batch ``B = batch_for(S, N_fill)`` (``Problem.timed``), unit
ticks ``t_u(B)``, ``D = sum of unit ticks``, stage ``t_w``, boundary ``I_b`` (I/O ticks of
``B`` tokens of activations crossing the cut after wafer b), ``R = D + N x hop + sum_b I_b``,
``M = ceil(S / B)`` micro-batches and time per output token ``T = max(R, M x max_w t_w,
M x max_b I_b)``.

Objectives, all lexicographic after "keep as many of the ``concurrency`` sequences resident as
fit" (parked sequences rotate through the external KV store, which the plan charges):

* ``min-wafers``: ``N x (D + 1) + max_w t_w`` (fewest wafers, then the most balanced stages)
* ``min-latency`` and ``max-throughput``: ``T x (max_wafers + 1) + N``. At a fixed resident
  count the total ``S / T`` is highest exactly where ``T`` is lowest, so both place alike; ties
  go to fewer wafers, so max-throughput never takes a wafer that does not raise tokens/s.
* ``min-cost``: ``N x T x (max_wafers + 1) + N`` (wafer-seconds per token, proportional to $ per
  token at a fixed per-system price; a wafer must pay for itself in tokens/s).

``--min-tokens-per-s-per-user X`` adds ``T <= 1 / X`` to all.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from placer.costs import ModelCost
from placer.errors import UserError
from placer.options import CompileOptions, Objective
from placer.perf import activation_buffer_bytes, unit_decode_seconds
from placer.perf import formulas as f
from placer.perf.disagg import buffer_chunk_tokens
from placer.perf.formulas import TICK_S
from placer.perf.unit import decode_key
from placer.targets import Target

__all__ = ["TICK_S", "Edge", "Evaluation", "Objective", "Problem", "build_problem", "evaluate"]


class DecodeTimes:
    """Unit and edge ticks at any micro-batch (the float model rounded), cached per batch."""

    def __init__(self, cost: ModelCost, target: Target, edge_bytes: Sequence[int],
                 scale: Sequence[float] = ()) -> None:
        self._units, self._target, self._edge_bytes = cost.units, target, tuple(edge_bytes)
        self._scale = tuple(scale) or (1.0,) * len(cost.units)
        self._cache: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def at(self, batch: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(unit ticks, edge ticks) of one step of ``batch`` sequences."""
        if batch not in self._cache:
            bw = self._target.io_bandwidth_bytes_per_s
            # Alike units (the layers of a dense model) cost the same: each distinct one once.
            alike: dict[tuple[object, int], float] = {}
            ticks = []
            for u, scale in zip(self._units, self._scale):
                key = decode_key(u)
                if key not in alike:
                    alike[key] = unit_decode_seconds(u, self._target, batch)
                ticks.append(f.to_ticks(alike[key] * scale))
            self._cache[batch] = (tuple(ticks), tuple(f.to_ticks(batch * b / bw) for b in self._edge_bytes))
        return self._cache[batch]


@dataclass(frozen=True)
class Edge:
    src: int
    dst: int
    bytes_per_token: int
    ticks: int  # I/O ticks of those bytes on one off-wafer link


@dataclass(frozen=True)
class Problem:
    """Integer placement problem. Units are in topological order (every edge src < dst)."""

    names: tuple[str, ...]
    layers: tuple[int, ...]
    parameters: tuple[int, ...]
    weight_bytes: tuple[int, ...]   # parameters + constants
    act_bytes: tuple[int, ...]      # activation buffer (a wafer holds its units' largest)
    kv_bytes: tuple[int, ...]       # KV of one sequence at the workload's context
    ticks: tuple[int, ...]          # decode time of one token of one sequence
    edges: tuple[Edge, ...]
    capacity: int                   # usable SRAM bytes per wafer
    hop_ticks: int                  # fixed latency of one inter-wafer hop
    concurrency: int
    objective: Objective = Objective.MIN_WAFERS
    min_wafers: int = 1
    max_wafers: int = 1
    max_tpot_ticks: int | None = None
    pins: tuple[tuple[int, int], ...] = ()  # (unit index, wafer)
    host_ticks: int = 0             # the host's time per output token (target overhead; issue 10)
    batch: int = 1                  # sequences per micro-batch that ``ticks`` are for
    decode: DecodeTimes | None = field(default=None, compare=False, repr=False)  # ticks at any batch
    _timed: dict[int, Problem] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for e in self.edges:
            if not 0 <= e.src < e.dst < len(self.names):
                raise ValueError(f"edge {e} is not in topological order")

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def exact_wafers(self) -> bool:
        return self.min_wafers == self.max_wafers and self.min_wafers > 1

    @property
    def total_ticks(self) -> int:
        return sum(self.ticks)

    @property
    def is_chain(self) -> bool:
        return {(e.src, e.dst) for e in self.edges} == {(i, i + 1) for i in range(self.n - 1)}

    def size(self, u: int, resident: int) -> int:
        """Bytes of unit u that add up on a wafer: weights and the resident sequences' KV."""
        return f.wafer_bytes(self.weight_bytes[u], self.kv_bytes[u], resident, 0)

    def sizes(self, resident: int) -> list[int]:
        return [self.size(u, resident) for u in range(self.n)]

    def alone(self, u: int, resident: int) -> int:
        """Bytes unit u needs on a wafer of its own."""
        return f.wafer_bytes(self.weight_bytes[u], self.kv_bytes[u], resident, self.act_bytes[u])

    def micro_batches(self, resident: int) -> int:
        return f.micro_batches(resident, self.batch)

    def timed(self, resident: int) -> Problem:
        """This problem with unit and edge ticks at the micro-batch of ``resident`` sequences
        (``formulas.batch_for`` over the fewest wafers that hold them); itself when its ticks
        are fixed (a problem built without a cost model)."""
        if self.decode is None:
            return self
        if resident not in self._timed:
            batch = f.batch_for(resident, max(self.min_wafers, self.fill_wafers(resident)))
            ticks, edge_ticks = self.decode.at(batch)
            edges = tuple(Edge(e.src, e.dst, e.bytes_per_token, t) for e, t in zip(self.edges, edge_ticks))
            self._timed[resident] = dataclasses.replace(self, ticks=ticks, edges=edges, batch=batch,
                                                        decode=None, _timed={})
        return self._timed[resident]

    def fill_wafers(self, resident: int) -> int:
        """Wafers a first-fit fill in topological order uses with ``resident`` sequences (the
        fewest on a chain; pins ignored)."""
        w, load, buffer = 1, 0, 0
        for u in range(self.n):
            size = self.size(u, resident)
            if load and f.wafer_bytes(load, 0, 0, max(buffer, self.act_bytes[u])) + size > self.capacity:
                w, load, buffer = w + 1, 0, 0
            load += size
            buffer = max(buffer, self.act_bytes[u])
        return w


def objective_value(problem: Problem, wafers: int, max_stage: int, tpot: int) -> int:
    """The integer objective at a fixed resident count (smaller is better)."""
    if problem.objective is Objective.MIN_WAFERS:
        return wafers * (problem.total_ticks + 1) + max_stage
    if problem.objective is Objective.MIN_COST:
        return wafers * tpot * (problem.max_wafers + 1) + wafers
    return tpot * (problem.max_wafers + 1) + wafers


def objective_description(problem: Problem) -> str:
    if problem.objective is Objective.MIN_WAFERS:
        return f"wafers x {problem.total_ticks + 1} + max stage time (ticks of {TICK_S:g} s)"
    if problem.objective is Objective.MIN_COST:
        return (f"wafers x time per output token (ticks of {TICK_S:g} s) x {problem.max_wafers + 1} "
                f"+ wafers")
    return f"time per output token (ticks of {TICK_S:g} s) x {problem.max_wafers + 1} + wafers"


@dataclass(frozen=True)
class Evaluation:
    """An assignment scored at a resident count; ``reason`` says why it is not feasible."""

    feasible: bool
    reason: str
    wafers: int = 0
    resident: int = 0
    objective: int = 0
    max_stage: int = 0
    tpot: int = 0
    round_trip: int = 0
    stage_ticks: tuple[int, ...] = ()
    boundary_ticks: tuple[int, ...] = ()
    boundary_bytes: tuple[int, ...] = ()
    memory: tuple[int, ...] = ()    # bytes used per wafer (weights + activations + resident KV)
    batch: int = 1                  # sequences per micro-batch


def _infeasible(reason: str) -> Evaluation:
    return Evaluation(False, reason)


def evaluate(problem: Problem, assignment: Sequence[int], resident: int) -> Evaluation:
    """Score ``assignment`` with ``resident`` sequences kept in SRAM; never raises."""
    p = problem.timed(resident) if 1 <= resident <= problem.concurrency else problem
    if len(assignment) != p.n:
        return _infeasible("assignment length differs from the unit count")
    if p.n == 0:
        return _infeasible("no units")
    if not 1 <= resident <= p.concurrency:
        return _infeasible(f"resident sequences {resident} outside 1..{p.concurrency}")
    n_wafers = max(assignment) + 1
    if min(assignment) < 0 or n_wafers > p.max_wafers:
        return _infeasible(f"uses {n_wafers} wafers, more than the {p.max_wafers} allowed")
    if n_wafers < p.min_wafers:
        return _infeasible(f"uses {n_wafers} wafers, fewer than the {p.min_wafers} required")
    counts = [0] * n_wafers
    for w in assignment:
        counts[w] += 1
    if 0 in counts:
        return _infeasible(f"wafer {counts.index(0)} is empty")
    for e in p.edges:
        if assignment[e.src] > assignment[e.dst]:
            return _infeasible(f"edge {p.names[e.src]} -> {p.names[e.dst]} goes back to an earlier wafer")
    for u, w in p.pins:
        if assignment[u] != w:
            return _infeasible(f"unit {p.names[u]} is pinned to wafer {w}")
    weights = [0] * n_wafers
    kv = [0] * n_wafers
    buffer = [0] * n_wafers
    stage = [0] * n_wafers
    for u, w in enumerate(assignment):
        weights[w] += p.weight_bytes[u]
        kv[w] += p.kv_bytes[u]
        buffer[w] = max(buffer[w], p.act_bytes[u])
        stage[w] += p.ticks[u]
    memory = [f.wafer_bytes(a, k, resident, b) for a, k, b in zip(weights, kv, buffer)]
    for w, used in enumerate(memory):
        if used > p.capacity:
            return _infeasible(f"wafer {w} needs {used / 1e9:.3f} GB > {p.capacity / 1e9:.3f} GB usable")
    b_ticks = [0] * (n_wafers - 1)
    b_bytes = [0] * (n_wafers - 1)
    for e in p.edges:
        for b in range(assignment[e.src], assignment[e.dst]):
            b_ticks[b] += e.ticks
            b_bytes[b] += e.bytes_per_token
    max_stage = max(stage)
    round_trip = f.round_trip(p.total_ticks, sum(b_ticks), n_wafers, p.hop_ticks, p.host_ticks)
    tpot = f.tpot(round_trip, max_stage, max(b_ticks, default=0), p.micro_batches(resident))
    if p.max_tpot_ticks is not None and tpot > p.max_tpot_ticks:
        return _infeasible(f"time per token {tpot * TICK_S:.3g} s exceeds the per-user floor's "
                           f"{p.max_tpot_ticks * TICK_S:.3g} s")
    return Evaluation(True, "", n_wafers, resident, objective_value(p, n_wafers, max_stage, tpot),
                      max_stage, tpot, round_trip, tuple(stage), tuple(b_ticks), tuple(b_bytes),
                      tuple(memory), p.batch)


def max_resident_fit(problem: Problem, assignment: Sequence[int]) -> int:
    """The most sequences (<= concurrency) whose KV fits beside ``assignment``'s weights."""
    n_wafers = max(assignment) + 1
    fixed = [0] * n_wafers
    buffer = [0] * n_wafers
    kv = [0] * n_wafers
    for u, w in enumerate(assignment):
        fixed[w] += problem.weight_bytes[u]
        buffer[w] = max(buffer[w], problem.act_bytes[u])
        kv[w] += problem.kv_bytes[u]
    return min(f.sequences_that_fit(problem.capacity, a, b, k, problem.concurrency)
               for a, b, k in zip(fixed, buffer, kv))


def best_evaluation(problem: Problem, assignment: Sequence[int]) -> Evaluation:
    """Score an assignment at the most resident sequences that fit beside it (every objective
    keeps as many resident as fit), as baselines are scored."""
    top = max_resident_fit(problem, assignment)
    if top < 1:
        ev = evaluate(problem, assignment, 1)
        return ev if not ev.feasible else _infeasible("no room for one sequence's KV")
    for s in range(top, 0, -1):  # fewer only when a per-user floor rules out more
        ev = evaluate(problem, assignment, s)
        if ev.feasible or s == 1:
            return ev
    return _infeasible("no feasible resident count")


def rank_key(problem: Problem, ev: Evaluation) -> tuple[object, ...]:
    """Sort key of feasible evaluations: the most resident sequences, then the objective."""
    return (-ev.resident, ev.objective)


def build_problem(cost: ModelCost, target: Target, options: CompileOptions,
                  pins: Sequence[tuple[int, int]] = (), scale: Sequence[float] = ()) -> Problem:
    """Integer problem of ``cost`` on ``target`` under ``options`` (resolved against the target
    here if the caller has not); option errors raise ``UserError``. ``scale``: each unit's
    decode time as a multiple of its whole-wafer time (default 1: the whole-wafer layout; the
    compiler passes the previous floorplans' under ``--layout regions|auto``)."""
    if scale and len(scale) != len(cost.units):
        raise ValueError(f"scale has {len(scale)} factors for {len(cost.units)} units")
    options = options.resolve(target)
    workload, dep = options.workload, options.deployment
    assert dep.reserve is not None and dep.limit is not None
    floor = options.goal.min_tokens_per_s_per_user
    index = {u.name: i for i, u in enumerate(cost.units)}
    edges: dict[tuple[int, int], int] = {}
    for e in cost.edges:
        if e.src not in index or e.dst not in index:
            raise UserError(f"model {cost.model!r}: edge {e.src} -> {e.dst} names an unknown unit")
        key = (index[e.src], index[e.dst])
        if key[0] >= key[1]:
            raise UserError(f"model {cost.model!r}: edge {e.src} -> {e.dst} is not in topological order")
        edges[key] = edges.get(key, 0) + e.bytes_per_token
    bw = target.io_bandwidth_bytes_per_s
    chunk = buffer_chunk_tokens(target, workload.prompt_tokens, options.prefill_on is not None)
    edge_list = sorted(edges.items())
    return Problem(
        names=tuple(u.name for u in cost.units),
        layers=tuple(u.layer for u in cost.units),
        parameters=tuple(u.parameters for u in cost.units),
        weight_bytes=tuple(u.weight_bytes + u.constant_bytes for u in cost.units),
        act_bytes=tuple(activation_buffer_bytes(u, chunk, workload.concurrency) for u in cost.units),
        kv_bytes=tuple(u.kv_bytes(workload.context_tokens) for u in cost.units),
        ticks=tuple(f.to_ticks(unit_decode_seconds(u, target) * (scale[i] if scale else 1.0))
                    for i, u in enumerate(cost.units)),
        edges=tuple(Edge(s, d, b, f.to_ticks(b / bw)) for (s, d), b in edge_list),
        capacity=math.floor(target.sram_bytes * (1 - dep.reserve)),
        hop_ticks=f.to_ticks(target.hop_latency_s),
        host_ticks=f.to_ticks(target.host_overhead_s_per_token),
        concurrency=workload.concurrency,
        objective=options.objective,
        min_wafers=dep.wafers or 1,
        max_wafers=dep.limit,
        max_tpot_ticks=None if floor is None else math.floor(1.0 / floor / TICK_S),
        pins=tuple(sorted(pins)),
        decode=DecodeTimes(cost, target, [b for _, b in edge_list], scale),
    )
