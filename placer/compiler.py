"""``compile_model``: MODEL -> costs -> problem -> solve -> Plan (the library behind
``placer compile``; the package re-exports it as ``placer.compile``; the module is not named
compile so that ``placer.compile`` stays the function)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from placer import __version__
from placer.costs import ModelCost
from placer.errors import InfeasibleError, UserError
from placer.fileio import write_atomic
from placer.perf import predict_performance, swap_in_seconds, unit_decode_seconds, unit_prefill_seconds
from placer.pins import check_pins, read_pin_file, resolve_pins
from placer.plan import (
    SCHEMA_VERSION,
    KVPlan,
    ModelInfo,
    Plan,
    SolverInfo,
    WaferIO,
    WaferMemory,
    WaferPlan,
)
from placer.solver.bounds import explain_infeasible
from placer.solver.problem import Objective, Problem, SolveOptions, build_problem, objective_description
from placer.solver.solve import SOLVERS, Solution, solve
from placer.targets import Target, load_target
from placer.workload import DtypePolicy, Workload, parse_dtype_option


@dataclass(frozen=True)
class CompileResult:
    """The plan, and what report.md needs beside it (never written into plan.json)."""

    plan: Plan
    cost: ModelCost
    problem: Problem
    solution: Solution
    others: tuple[Solution, ...]     # every other method on the same problem


def compile_model(model: Any, **options: Any) -> Plan:
    """Place ``model`` (a path, zoo name, config dict, Graph or ``ModelCost``) and return its Plan.

    Takes the keyword options of ``compile_result`` (``compare=False`` is implied)."""
    options["compare"] = False
    return compile_result(model, **options).plan


def compile_result(model: Any, *, target: str | Target = "wse3",
                   target_overrides: dict[str, object] | None = None, objective: str = "min-wafers",
                   context: int = 8192, prompt: int = 1024, concurrency: int = 1,
                   wafers: int | None = None, max_wafers: int | None = None, weights_dtype: str = "native",
                   dtype_overrides: Sequence[str] = (), kv_dtype: str = "native",
                   reserve: float | None = None,
                   granularity: str = "layer", solver: str = "cp-sat",
                   min_tokens_per_s_per_user: float | None = None, pins: Sequence[str] = (),
                   pin_file: str | os.PathLike[str] | None = None, time_limit: float = 10.0, seed: int = 0,
                   compare: bool = True) -> CompileResult:
    """Compile and, with ``compare``, also solve the same problem with every other method."""
    if solver not in SOLVERS:
        raise UserError(f"option --solver: expected one of {', '.join(SOLVERS)}, got {solver!r}")
    if time_limit <= 0:
        raise UserError(f"option --time-limit must be > 0, got {time_limit}")
    tgt = target.with_overrides(target_overrides or {}) if isinstance(target, Target) else \
        load_target(target, target_overrides)
    workload = Workload(context, prompt, concurrency,
                        DtypePolicy.parse(weights_dtype, tuple(dtype_overrides)),
                        parse_dtype_option(kv_dtype, "--kv-dtype"))
    cost, name, sha = _cost_of(model, tgt, workload, granularity)
    opts = SolveOptions(Objective.parse(objective), wafers, max_wafers, reserve, min_tokens_per_s_per_user,
                        time_limit, seed, solver)
    specs = list(pins) + (read_pin_file(pin_file) if pin_file else [])
    names = [u.name for u in cost.units]
    problem = build_problem(cost, tgt, workload, opts, resolve_pins(specs, names))
    check_pins(problem)
    reserve_used = tgt.default_reserve if reserve is None else reserve
    solution = solve(problem, solver, time_limit, seed)
    if not solution.feasible:
        why = explain_infeasible(problem, tgt.sram_bytes, reserve_used)
        if solver != "cp-sat" and solution.evaluation.reason:
            why = f"{why} (solver {solver}: {solution.evaluation.reason})"
        raise InfeasibleError(why)
    others = tuple(solve(problem, m, time_limit, seed) for m in SOLVERS if m != solver) if compare else ()
    provenance = {
        "placer_version": __version__, "model_source": name, "target_name": tgt.name,
        "target_overrides": tuple(sorted(f"{k}={v}" for k, v in (target_overrides or {}).items())),
        "objective": objective, "context": context, "prompt": prompt, "concurrency": concurrency,
        "wafers": wafers, "max_wafers": max_wafers, "weights_dtype": weights_dtype,
        "dtype_overrides": tuple(dtype_overrides), "kv_dtype": kv_dtype, "reserve": reserve_used,
        "granularity": granularity, "solver": solver, "min_tokens_per_s_per_user": min_tokens_per_s_per_user,
        "pins": tuple(specs), "time_limit_s": time_limit, "seed": seed,
    }
    plan = build_plan(cost, tgt, workload, problem, solution, ModelInfo(name, sha, cost.parameters,
                      cost.weight_bytes, len(cost.units)), objective, provenance)
    return CompileResult(plan, cost, problem, solution, others)


def _cost_of(model: Any, target: Target, workload: Workload, granularity: str) -> tuple[ModelCost, str, str]:
    if isinstance(model, ModelCost):
        return model, model.model, hashlib.sha256(repr(model).encode()).hexdigest()
    from placer.pipeline import load_model

    loaded = load_model(model, granularity=granularity)
    try:
        from placer.cost_model import annotate_costs
    except ImportError:
        raise UserError("cost model not available in this build (placer.cost_model); "
                        "pass a ModelCost") from None
    return annotate_costs(loaded.graph, target, workload), loaded.name, loaded.sha256


def build_plan(cost: ModelCost, target: Target, workload: Workload, problem: Problem, solution: Solution,
               model: ModelInfo, objective: str, provenance: dict[str, Any]) -> Plan:
    """The Plan of a feasible solution, with memory, I/O, KV and performance per the perf model."""
    assert solution.assignment is not None
    ev = solution.evaluation
    resident, n = ev.resident, ev.wafers
    context = workload.context_tokens
    groups: list[list[int]] = [[] for _ in range(n)]
    for u, w in enumerate(solution.assignment):
        groups[w].append(u)
    units = cost.units
    stage = [sum(unit_decode_seconds(units[u], target) for u in g) for g in groups]
    prefill = [sum(unit_prefill_seconds(units[u], target) for u in g) for g in groups]
    boundary = list(ev.boundary_bytes)
    perf = predict_performance(target, stage, prefill, boundary, resident, workload.prompt_tokens)
    reserved = target.sram_bytes - problem.capacity
    kv_seq = [sum(units[u].kv_bytes(context) for u in g) for g in groups]
    wafer_plans = []
    for w, g in enumerate(groups):
        weights = sum(units[u].weight_bytes + units[u].constant_bytes for u in g)
        acts = max(problem.act_bytes[u] for u in g)
        kv = resident * kv_seq[w]
        in_b = boundary[w - 1] if w > 0 else 0
        out_b = boundary[w] if w < n - 1 else 0
        fit = (problem.capacity - weights - acts) // kv_seq[w] if kv_seq[w] else workload.concurrency
        wafer_plans.append(WaferPlan(
            index=w, units=tuple(units[u].name for u in g),
            memory=WaferMemory(weights, kv, acts, reserved,
                               target.sram_bytes - weights - kv - acts - reserved),
            io=WaferIO(in_b, out_b, in_b + out_b,
                       max(in_b, out_b) * perf.tokens_per_s_total / target.io_bandwidth_bytes_per_s),
            stage_seconds=stage[w], prefill_seconds=prefill[w], kv_bytes_per_sequence=kv_seq[w],
            sequences_that_fit=fit))
    parked = workload.concurrency - resident
    per_seq = sum(kv_seq)
    if parked * per_seq > target.external_kv_bytes:
        raise InfeasibleError(
            f"infeasible: external KV store binds: {parked} parked sequences need "
            f"{parked * per_seq / 1e9:.3f} GB "
            f"but target {target.name!r} has {target.external_kv_bytes / 1e9:.3f} GB external KV; lower "
            f"--concurrency or --context, add wafers (--max-wafers), or --set external_kv_bytes=...")
    kv_plan = KVPlan(cost.kv_bytes_per_token, per_seq, context, resident, parked, parked * per_seq,
                     swap_in_seconds(target, kv_seq))
    info = SolverInfo(solution.method, solution.status, solution.objective, solution.bound, solution.gap,
                      int(provenance["seed"]), float(provenance["time_limit_s"]),
                      objective_description(problem))
    plan = Plan(SCHEMA_VERSION, model, target, workload, objective, info, tuple(wafer_plans), kv_plan, perf,
                tuple(sorted((units[u].name, w) for u, w in enumerate(solution.assignment))),
                tuple(sorted(provenance.items())))
    return Plan.from_json(plan.to_json())  # canonical: floats rounded as in the file


def write_outputs(result: CompileResult, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``plan.json`` and ``report.md`` into ``out_dir`` atomically."""
    from placer.report import render_report

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"option -o: {out} exists and is not a folder")
    plan_path, report_path = out / "plan.json", out / "report.md"
    write_atomic(plan_path, result.plan.to_json())
    write_atomic(report_path, render_report(result))
    return plan_path, report_path
