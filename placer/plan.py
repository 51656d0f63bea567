"""The plan: which wafer holds each unit, what every wafer holds, and what the deployment will do.

``Plan.to_json`` writes versioned JSON with sorted keys, floats rounded to 12 significant
digits, and no wall-clock times or dates, so the same inputs and seed give the same bytes.
``Plan.from_json`` reads it back (``Plan.from_json(p.to_json()) == p``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from placer.options import CompileOptions
from placer.perf import Performance
from placer.perf.disagg import DisaggregatedPrefill
from placer.speculative import SpeculativePlan
from placer.targets import Target
from placer.workload import Workload

SCHEMA_VERSION = 2  # 2: typed provenance (CompileOptions), batched-decode performance


@dataclass(frozen=True)
class ModelInfo:
    name: str
    sha256: str
    parameters: int
    weight_bytes: int
    units: int
    structure_warning: str = ""  # why grouping found fewer layers than the model has (omitted if none)
    export_warnings: tuple[str, ...] = ()  # odd-export findings (omitted if none)


@dataclass(frozen=True)
class SolverInfo:
    name: str
    status: str              # OPTIMAL, FEASIBLE (gap may be > 0)
    objective: int | None    # integer model objective; see objective_description
    bound: int | None        # best proven lower bound on it
    gap: float | None        # (objective - bound) / objective
    seed: int
    time_limit_s: float      # deterministic seconds per CP-SAT solve
    objective_description: str


@dataclass(frozen=True)
class WaferMemory:
    weights: int             # bytes: parameters and constants
    kv: int                  # bytes: KV of the resident sequences
    activations: int         # bytes: activation buffers
    reserved: int            # bytes: SRAM x reserve
    free: int                # bytes left


@dataclass(frozen=True)
class WaferIO:
    in_bytes_per_token: int
    out_bytes_per_token: int
    bytes_per_token: int     # in + out
    utilization: float       # busiest direction's share of io_bandwidth at the plan's token rate


@dataclass(frozen=True)
class WaferPlan:
    index: int
    units: tuple[str, ...]
    memory: WaferMemory
    io: WaferIO
    stage_seconds: float     # one decode step of the plan's micro-batch
    prefill_seconds: float   # one prefill chunk (performance.prefill_chunk_tokens)
    kv_bytes_per_sequence: int
    sequences_that_fit: int  # resident sequences this wafer alone could hold
    # Under a regions layout (``placer.perf.regions``): stage_seconds is the wafer's latency and
    # this its interval between micro-batches; omitted (None) on a whole-layout wafer.
    interval_seconds: float | None = None
    # Under regions: prefill_seconds is one chunk's latency through the wafer and this its
    # interval between chunks (the slowest region's chunk); omitted on a whole-layout wafer.
    prefill_interval_seconds: float | None = None


@dataclass(frozen=True)
class FloorplanRect:
    """One unit's rectangle on its wafer: top-left corner, height and width in PEs."""

    unit: str
    wafer: int
    row: int
    col: int
    rows: int
    cols: int


@dataclass(frozen=True)
class KVPlan:
    bytes_per_token: int
    bytes_per_sequence: int
    context_tokens: int
    resident_sequences: int
    parked_sequences: int
    parked_bytes: int        # held in the external KV store
    swap_in_seconds: float   # to bring one parked sequence back


@dataclass(frozen=True)
class Provenance:
    """Where the plan came from: placer's version, the model as given, and the options used
    (``CompileOptions`` with every target-dependent default resolved)."""

    placer_version: str
    model_source: str
    options: CompileOptions

    def to_dict(self) -> dict[str, Any]:
        return {"placer_version": self.placer_version, "model_source": self.model_source,
                "options": self.options.to_dict()}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Provenance:
        return Provenance(d["placer_version"], d["model_source"], CompileOptions.from_dict(d["options"]))


@dataclass(frozen=True)
class Plan:
    schema_version: int
    model: ModelInfo
    target: Target
    workload: Workload
    objective: str
    solver: SolverInfo
    wafers: tuple[WaferPlan, ...]
    kv: KVPlan
    performance: Performance
    assignment: tuple[tuple[str, int], ...]   # (unit, wafer), sorted by unit name
    provenance: Provenance
    # ``--layout regions|auto`` only (omitted under whole, so those plans keep their bytes):
    # "whole", "regions" or "mixed" (auto chose differently per wafer), and every rectangle.
    layout: str | None = None
    floorplan: tuple[FloorplanRect, ...] = ()
    # ``--prefill-on`` only (omitted otherwise): the prefill target and the three TTFT terms
    # (``placer.perf.disagg``); ``performance.ttft_s`` is then their sum.
    prefill: DisaggregatedPrefill | None = None
    # ``--draft`` only (omitted otherwise): the draft model's wafers and the effective figures.
    speculative: SpeculativePlan | None = None

    def wafer_of(self, unit: str) -> int:
        return dict(self.assignment)[unit]

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _encode(getattr(self, f.name)) for f in fields(self)}
        out["assignment"] = {u: w for u, w in self.assignment}
        if not self.model.structure_warning:
            del out["model"]["structure_warning"]
        for w in out["wafers"]:
            for key in ("interval_seconds", "prefill_interval_seconds"):
                if w[key] is None:
                    del w[key]
        if self.layout is None:
            del out["layout"], out["floorplan"]
        if not self.model.export_warnings:
            del out["model"]["export_warnings"]
        if self.prefill is None:
            del out["prefill"]
        if self.speculative is None:
            del out["speculative"]
        out["provenance"] = _encode(self.provenance.to_dict())
        out["target"] = _encode(self.target.to_dict())
        out["workload"] = _encode(self.workload.to_dict())
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, allow_nan=False) + "\n"

    @staticmethod
    def from_json(text: str) -> Plan:
        """The plan in ``text``, every field checked (``placer.validate``): a hand-edited or
        truncated plan is one ``UserError`` naming the section and field, not a crash later."""
        from placer.errors import UserError
        from placer.validate import parse_json, typed_fields

        d = parse_json(text, "not a placer plan")
        if not isinstance(d, dict):
            raise UserError(f"not a placer plan (a JSON {type(d).__name__}, not an object); give a plan.json "
                            f"written by placer compile")
        if d.get("schema_version") != SCHEMA_VERSION:
            raise UserError(f"plan schema_version {d.get('schema_version')!r} is not {SCHEMA_VERSION}; "
                            f"recompile the plan with this placer")
        known = {f.name for f in fields(Plan)}
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            # placer writes exactly these sections; another is a hand edit or another tool's file
            raise UserError(f"plan: unknown section(s) {', '.join(map(repr, unknown[:5]))}; expected "
                            f"some of {', '.join(sorted(known))}; recompile the plan")
        for section in ("model", "target", "workload", "solver", "kv", "performance", "assignment",
                        "provenance"):
            if not isinstance(d.get(section), dict):
                raise UserError(f"plan section {section!r} is missing or not a table; recompile the plan")
        if not isinstance(d.get("wafers"), list) or not all(isinstance(x, dict) for x in d["wafers"]):
            raise UserError("plan section 'wafers' is missing or not a list of tables; recompile the plan")
        model = typed_fields(ModelInfo, d["model"], "plan section 'model'", non_negative=True)
        wafers = []
        for i, x in enumerate(d["wafers"]):
            where = f"plan section 'wafers' [{i}]"
            w = typed_fields(WaferPlan, x, where, non_negative=True)  # times, counts, bytes
            units = w["units"]
            if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
                raise UserError(f"{where}: field 'units' must be a list of unit names")
            wafers.append(WaferPlan(**{**w, "units": tuple(units),
                                       "memory": WaferMemory(**typed_fields(WaferMemory, w["memory"],
                                                                            f"{where}.memory",
                                                                            non_negative=True)),
                                       "io": WaferIO(**typed_fields(WaferIO, w["io"], f"{where}.io",
                                                                    non_negative=True))}))
        for unit, wafer in d["assignment"].items():  # the model-dependent checks: plan_checks
            if isinstance(wafer, bool) or not isinstance(wafer, int):
                raise UserError(f"plan section 'assignment': unit {unit} has wafer {wafer!r}, not an integer")
            if not 0 <= wafer < len(wafers):
                raise UserError(f"plan section 'assignment': unit {unit} is on wafer {wafer:,}, outside the "
                                f"plan's wafers 0..{len(wafers) - 1}")
        _check_wafer_lists(wafers, d["assignment"])
        floorplan = d.get("floorplan", ())
        if not isinstance(floorplan, list | tuple):
            raise UserError("plan section 'floorplan' is not a list; recompile the plan")
        target = Target(**typed_fields(Target, d["target"], "plan section 'target'"))
        _check_choices(d)
        rects = tuple(FloorplanRect(**typed_fields(FloorplanRect, r, "plan section 'floorplan'"))
                      for r in floorplan)
        _check_floorplan(rects, d.get("layout"), d["assignment"])
        plan = Plan(
            schema_version=d["schema_version"],
            model=ModelInfo(**{**model, "export_warnings": tuple(model.get("export_warnings", ()))}),
            target=target.with_overrides({}),  # validates every field as a target file's
            workload=Workload.from_dict(d["workload"]),
            objective=d["objective"],
            solver=SolverInfo(**typed_fields(SolverInfo, d["solver"], "plan section 'solver'")),
            wafers=tuple(wafers),
            kv=KVPlan(**typed_fields(KVPlan, d["kv"], "plan section 'kv'", non_negative=True)),
            performance=Performance(**typed_fields(Performance, d["performance"],
                                                   "plan section 'performance'", non_negative=True)),
            assignment=tuple(sorted(d["assignment"].items())),
            provenance=Provenance.from_dict(d["provenance"]),
            layout=d.get("layout"),
            floorplan=rects,
            prefill=DisaggregatedPrefill.from_dict(d["prefill"]) if "prefill" in d else None,
            speculative=SpeculativePlan.from_dict(d["speculative"]) if "speculative" in d else None,
        )
        kv, served = plan.kv, plan.workload.concurrency
        if kv.context_tokens != plan.workload.context_tokens:
            raise UserError(f"plan section 'kv': context_tokens {kv.context_tokens:,} differs from the "
                            f"workload's {plan.workload.context_tokens:,} (workload.context_tokens); "
                            f"recompile the plan")
        if kv.resident_sequences + kv.parked_sequences != served:
            # a hand edit (resident 10^12 of 1 sequence) diffed as a +10^14 % gain with exit 0
            raise UserError(f"plan section 'kv': {kv.resident_sequences:,} resident and "
                            f"{kv.parked_sequences:,} parked sequences, but the workload serves {served:,} "
                            f"(workload.concurrency); recompile the plan")
        return plan


def _check_wafer_lists(wafers: list[WaferPlan], assignment: dict[str, Any]) -> None:
    """Each wafer's ``index`` is its position and its ``units`` are the units ``assignment``
    puts on it (the plan says it twice; an edit of one ran on the other)."""
    from placer.errors import UserError

    on: list[set[str]] = [set() for _ in wafers]
    for unit, wafer in assignment.items():
        on[wafer].add(unit)
    for i, w in enumerate(wafers):
        if w.index != i:
            raise UserError(f"plan section 'wafers' [{i}]: field 'index' is {w.index:,}, not its position "
                            f"{i}; recompile the plan")
        listed = set(w.units)
        if len(listed) != len(w.units) or listed != on[i]:
            extra, missing = sorted(listed - on[i]), sorted(on[i] - listed)
            what = (f"lists {extra[0]}, which 'assignment' puts on another wafer or none" if extra else
                    f"leaves out {missing[0]}, which 'assignment' puts on it" if missing else
                    "lists a unit twice")
            raise UserError(f"plan section 'wafers' [{i}]: field 'units' {what}; recompile the plan")


def _check_floorplan(rects: tuple[FloorplanRect, ...], layout: object, assignment: dict[str, Any]) -> None:
    """One rectangle per unit at most, on its unit's wafer, no two overlapping on a wafer, and a
    regions layout has its rectangles (the grid bounds need the target: ``placer.runner``)."""
    from placer.errors import UserError

    if layout == "regions" and not rects:
        raise UserError("plan section 'floorplan' is empty, but 'layout' is regions (a rectangle per unit); "
                        "recompile the plan")
    seen: set[str] = set()
    by_wafer: dict[int, list[FloorplanRect]] = {}
    for r in rects:
        if r.unit in seen:
            raise UserError(f"plan section 'floorplan': unit {r.unit} has two rectangles; recompile the plan")
        seen.add(r.unit)
        if r.unit in assignment and assignment[r.unit] != r.wafer:
            raise UserError(f"plan section 'floorplan': floorplan puts unit {r.unit!r} on wafer {r.wafer} "
                            f"but the assignment on wafer {assignment[r.unit]}; recompile the plan")
        if r.rows <= 0 or r.cols <= 0:
            raise UserError(f"plan section 'floorplan': unit {r.unit}'s rectangle is {r.rows} x {r.cols} "
                            f"PEs, not at least 1 x 1; recompile the plan")
        by_wafer.setdefault(r.wafer, []).append(r)
    for wafer, group in by_wafer.items():
        # sweep down the rows: only rectangles still open at a row's start can overlap it
        group.sort(key=lambda r: (r.row, r.col, r.unit))
        open_: list[FloorplanRect] = []
        for r in group:
            open_ = [o for o in open_ if o.row + o.rows > r.row]
            for o in open_:
                if o.col < r.col + r.cols and r.col < o.col + o.cols:
                    raise UserError(f"plan section 'floorplan': the rectangles of {o.unit} and {r.unit} "
                                    f"overlap on wafer {wafer}; recompile the plan")
            open_.append(r)


def _check_choices(d: dict[str, Any]) -> None:
    """The plan's named choices are ones placer writes: ``objective``, ``layout`` and the
    workload's weight and KV dtypes (a hand edit would otherwise run, or diff, as if valid)."""
    from placer.errors import UserError
    from placer.options import Objective
    from placer.workload import parse_dtype_option

    objectives = [o.value for o in Objective]
    if d.get("objective") not in objectives:
        raise UserError(f"plan field 'objective' is {d.get('objective')!r}, not one of "
                        f"{', '.join(objectives)}; recompile the plan")
    if d.get("layout") not in (None, "whole", "regions", "mixed"):
        raise UserError(f"plan field 'layout' is {d.get('layout')!r}, not whole, regions or mixed; recompile "
                        f"the plan")
    w = d["workload"]
    for name in ("weights_dtype", "kv_dtype"):
        if not isinstance(w.get(name), str):
            raise UserError(f"plan section 'workload': field {name!r} is {w.get(name)!r}, not a dtype name; "
                            f"recompile the plan")
        try:
            parse_dtype_option(w[name], name)
        except UserError as e:
            raise UserError(f"plan section 'workload': field {name!r} is {w[name]!r}, not a dtype "
                            f"placer knows ({str(e).split(': ', 2)[-1][:160]}); recompile the plan") from None


def round_float(x: float) -> float:
    """Stable float formatting: 12 significant digits (idempotent)."""
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x} in a plan")
    return float(f"{x:.12g}")


def _encode(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return round_float(value)
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return str(value)
