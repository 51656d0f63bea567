"""Run a placed model on emulated wafers: prefill, then greedy decoding with the KV cache.

``run_plan(model, plan, inputs, tokens=N)`` loads MODEL the way ``placer compile`` did (same
unit granularity), places every unit on the wafer the plan chose, and executes the graph on
the numpy mesh emulator (``placer.backends.executor``). Activations crossing wafers go through
an emulated I/O link with the target's bandwidth and latency; the KV cache (past inputs fed
back from present outputs) stays on the wafer that produced it. The accounting (per wafer and
per kernel) is printed beside the performance model's prediction for the same context.

A plan laid out in regions (``layout`` regions or mixed, rectangles under ``floorplan``) runs
each unit on its rectangle of its wafer's PEs (``MeshExecutor(regions=...)``); the prediction
is then the floorplan's: each regions wafer's latency on those rectangles
(``placer.floorplan.placed_seconds``) and each unit's step on its rectangle
(``placer.floorplan.pricing.unit_seconds_on_rectangle``).
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from placer.backends.executor import IoLink, MeshExecutor, StepStats
from placer.backends.mesh import MeshSpec, SramOverflowError, StatsObserver
from placer.backends.mesh.observer import KernelStats
from placer.backends.reference import MissingValueError, NodeExecutionError
from placer.errors import UserError
from placer.ir import Graph
from placer.ir.symbolic import Sym
from placer.run_bounds import check_lookups


@dataclass
class RunResult:
    """What a run produced and what it cost on the emulated wafers."""

    outputs: dict[str, np.ndarray]                # the last step's graph outputs
    tokens: np.ndarray | None                     # [batch, N] greedy token ids (None without decoding)
    prefill: StepStats
    decode: list[StepStats]
    decode_stats: StatsObserver                   # per wafer and kernel, summed over decode steps
    wafers: int
    peak_pe_bytes: dict[str, int] = field(default_factory=dict)
    predicted_step_s: float | None = None         # performance model: one decode step, this context
    emulated_step_s: float | None = None          # mean emulated decode step (incl. token return hop)
    prefill_outputs: dict[str, np.ndarray] = field(default_factory=dict)  # the prefill's graph outputs
    batch: int = 1                                # sequences decoded together in each step
    emulated_unit_s: dict[str, float] = field(default_factory=dict)   # mean decode step, per unit
    predicted_unit_s: dict[str, float] = field(default_factory=dict)  # the model's, per unit
    target_changes: list[str] = field(default_factory=list)  # fields the run's target changed (--set)
    micro_batches: int = 1                        # micro-batches of each step in flight at once


def load_inputs(source: str | os.PathLike[str] | Mapping[str, np.ndarray],
                graph: Graph) -> dict[str, np.ndarray]:
    """Graph inputs from an .npz file or a mapping, checked against the graph's input types.

    Raises:
        UserError: a missing key, a wrong rank or a fixed dimension that differs.
    """
    where = str(source) if not isinstance(source, Mapping) else "inputs"
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"{where}: no such file; pass an .npz with keys {', '.join(graph.inputs)}")
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):   # an .npy file holds one bare array
                first = graph.inputs[0] if graph.inputs else "name"
                raise UserError(f"{where}: a single .npy array, not an .npz archive of named inputs; "
                                f"write it with numpy.savez(path, {first}=...)")
            with loaded as npz:
                data = {}
                for k in npz.files:
                    if k not in graph.inputs:   # not an input of the model: never decompressed
                        continue
                    _check_member_size(npz, k, where)
                    try:
                        data[k] = npz[k]
                    except ValueError as e:  # an object array: pickled, never loaded
                        raise UserError(f"{where}: {k!r} cannot be read ({str(e).splitlines()[0]}); "
                                        f"save it as numbers (e.g. numpy.int64 token ids)") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            raise UserError(f"{where}: not a readable .npz file ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else 'truncated'}); write it again "
                            f"with numpy.savez") from None
    pasts = {past for past, _ in kv_pairs(graph)}
    for name in graph.inputs:  # the model's own inputs first: an empty cache is built from them
        if name in pasts:
            continue
        if name not in data:
            raise UserError(f"{where}: missing key {name!r}; the model's inputs are "
                            f"{', '.join(graph.inputs)}")
        t = graph.type_of(name)
        if np.ndim(data[name]) != t.rank:
            raise UserError(f"{where}: {name!r} has shape {np.shape(data[name])}, but the model expects {t} "
                            f"(rank {t.rank})")
        if 0 in np.shape(data[name]):
            raise UserError(f"{where}: {name!r} has shape {np.shape(data[name])}, with no elements; "
                            f"give at least one (a token per sequence)")
    data = _with_empty_cache(graph, data)
    out: dict[str, np.ndarray] = {}
    bindings: dict[str, int] = {}
    for name in graph.inputs:
        if name not in data:
            raise UserError(f"{where}: missing key {name!r}; the model's inputs are "
                            f"{', '.join(graph.inputs)}")
        arr = np.asarray(data[name])
        t = graph.type_of(name)
        if arr.ndim != t.rank:
            raise UserError(f"{where}: {name!r} has shape {arr.shape}, but the model expects {t} "
                            f"(rank {t.rank})")
        for axis, (dim, size) in enumerate(zip(t.shape, arr.shape)):
            if isinstance(dim, int) and dim != size:
                raise UserError(f"{where}: {name!r} has shape {arr.shape}, but dimension {axis} "
                                f"must be {dim} ({t})")
            if (isinstance(dim, Sym) and len(dim.terms) == 1 and dim.terms[0][1] == 1
                    and len(dim.terms[0][0]) == 1):
                sym = dim.terms[0][0][0]
                if bindings.setdefault(sym, size) != size:
                    raise UserError(f"{where}: {name!r} dimension {axis} ({sym}) is {size}, but another "
                                    f"input has {sym} = {bindings[sym]}")
        want = np.dtype(t.dtype.to_numpy())
        if _kind(arr.dtype) != _kind(want):
            raise UserError(f"{where}: {name!r} holds {arr.dtype} values but the model expects "
                            f"{t.dtype.value} ({_kind(want)}); save it with that dtype")
        out[name] = arr.astype(want, copy=False)
    _check_lookup_indices(graph, out, where)
    return out


#: Largest array ``placer run`` reads from an --inputs .npz (2^31 bytes: token ids, masks and
#: the past KV of the models the emulator runs are far smaller; a compressed member's header
#: is checked before it is decompressed, so a few MB that inflate to terabytes are refused).
MAX_INPUT_BYTES = 2**31


def _check_member_size(npz: Any, key: str, where: str) -> None:
    """Refuse, from its .npy header alone, an array larger than ``MAX_INPUT_BYTES`` or larger
    than the bytes the archive says the member holds."""
    from numpy.lib import format as npy_format

    member = key + ".npy"
    try:
        info = npz.zip.getinfo(member)
        with npz.zip.open(member) as f:
            version = npy_format.read_magic(f)
            read = (npy_format.read_array_header_1_0 if version == (1, 0)
                    else npy_format.read_array_header_2_0)
            shape, _, dtype = read(f)
            header = f.tell()
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, zlib.error):
        return  # not a plain .npy member: reading it reports what is wrong
    if dtype.hasobject:
        return  # refused when read (pickled objects are never loaded)
    n = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if n > MAX_INPUT_BYTES:
        raise UserError(f"{where}: {key!r} is a {dtype} array of shape {tuple(shape)} ({n / 1e9:,.1f} GB), "
                        f"more than placer run reads (placer.runner.MAX_INPUT_BYTES, "
                        f"{MAX_INPUT_BYTES / 1e9:.2f} GB); pass smaller inputs")
    if header + n > info.file_size:
        raise UserError(f"{where}: {key!r} says shape {tuple(shape)} ({n:,} bytes of {dtype}) but the "
                        f"archive holds {max(info.file_size - header, 0):,} bytes of it; write the file "
                        f"again with numpy.savez")


def _check_lookup_indices(graph: Graph, inputs: Mapping[str, np.ndarray], where: str) -> None:
    """An integer input that indexes a weight table directly (token ids into an embedding, a
    Gather on a stored weight) holds indices inside the table: ``0`` to ``n - 1``."""
    from placer.ir import OpKind
    from placer.ir.attrs import AxisAttrs

    for node in graph.nodes:
        if node.op is not OpKind.GATHER or len(node.inputs) < 2 or node.inputs[1] not in inputs:
            continue
        table = graph.weights.get(node.inputs[0])
        attrs = node.attrs
        if table is None or not isinstance(attrs, AxisAttrs):
            continue
        shape = graph.type_of(node.inputs[0]).shape
        axis = attrs.axis % len(shape) if shape else 0
        n = shape[axis] if shape else None
        arr = inputs[node.inputs[1]]
        if not isinstance(n, int) or arr.size == 0 or arr.dtype.kind not in "iu":
            continue
        low, high = int(arr.min()), int(arr.max())
        # ONNX's Gather takes -n..-1 as rows from the end, but an input that names rows of a
        # table (token ids) is never negative: -1 is a padding or a sentinel id run as the last row.
        if low < 0 or high >= n:
            bad = high if high >= n else low
            raise UserError(f"{where}: {node.inputs[1]!r} holds {bad:,}, outside the {n:,} rows of "
                            f"{node.inputs[0]!r} (valid: 0 to {n - 1:,}); give ids the model knows")


def _kind(dtype: np.dtype) -> str:
    """The family of an element type: integers, floats or booleans (no silent casts between)."""
    return {"i": "integers", "u": "integers", "b": "booleans"}.get(dtype.kind, "floats" if dtype.kind in "fV"
                                                                    else dtype.kind)


def _with_empty_cache(graph: Graph, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """When every past-KV input is left out, they start as an empty cache: past length 0, the
    other dims static or bound by the given inputs (the batch of ``input_ids``). Some given and
    some not is an error (reported as a missing key by the caller)."""
    pairs = kv_pairs(graph)
    missing = [p for p, _ in pairs if p not in data]
    if not missing or len(missing) != len(pairs):
        return data
    from placer.ir.passes.find_kv_caches import find_token_symbols

    past = find_token_symbols(graph).past
    bound: dict[Sym, int] = {}
    for name, arr in data.items():
        if name in graph.types and np.ndim(arr) == graph.types[name].rank:
            bound.update({d: size for d, size in zip(graph.types[name].shape, np.shape(arr))
                          if isinstance(d, Sym)})
    out = dict(data)
    for name in missing:
        t = graph.type_of(name)
        shape = [d if isinstance(d, int) else 0 if past and d == Sym.var(past) else bound.get(d)
                 for d in t.shape]
        known = [s for s in shape if s is not None]
        if len(known) != len(shape):
            raise UserError(f"inputs: {name!r} ({t}) is missing and its shape is not known from the "
                            "other inputs; pass it (a zero-length past) in the .npz")
        out[name] = np.zeros(known, t.dtype.to_numpy())
    return out


def kv_pairs(graph: Graph) -> list[tuple[str, str]]:
    """(past input, present output) pairs: inputs and outputs whose names say past/present, in
    order (the convention of HF and optimum exports and of ``tests/models.py``)."""
    pasts = [n for n in graph.inputs if "past" in n.lower()]
    presents = [n for n in graph.outputs if "present" in n.lower()]
    return list(zip(pasts, presents)) if len(pasts) == len(presents) else []


def _load_plan(plan: Any) -> Any:
    """A Plan from a plan.json path (checked), or ``plan`` itself."""
    if not isinstance(plan, (str, os.PathLike)):
        return plan
    from placer.plan import Plan
    from placer.validate import read_text

    path = Path(plan)
    if path.is_dir():  # a compile's output folder, as placer check and diff take
        if not (path / "plan.json").exists():
            raise UserError(f"option --plan: folder {str(path)!r} holds no plan.json; give a plan.json or "
                            f"the folder placer compile wrote it into")
        path = path / "plan.json"
    if not path.is_file():
        raise UserError(f"option --plan: no such file {str(path)!r}; write one with placer compile")
    text = read_text(path, "plan")
    try:
        return Plan.from_json(text)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise UserError(f"{path}: not a placer plan ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
                        ) from None


def _assignment(plan: Any) -> tuple[dict[str, Any], Any, str]:
    """(unit -> wafer, target or None, granularity) from a Plan, a plan.json path or a dict."""
    plan = _load_plan(plan)
    if isinstance(plan, Mapping):
        return {str(k): v for k, v in plan.items()}, None, "layer"
    return dict(plan.assignment), plan.target, plan.provenance.options.granularity.value


Rects = dict[str, tuple[int, int, int, int]]


def _regions(plan: Any, assignment: Mapping[str, int], target: Any, source: str) -> Rects:
    """unit -> (row, col, rows, cols) from a plan's ``floorplan``, checked against the plan's
    assignment and the grid of the target it runs on.

    Raises:
        UserError: a rectangle on another wafer than its unit, or outside the grid.
    """
    rects: Rects = {}
    for r in getattr(plan, "floorplan", ()):
        if r.unit not in assignment:
            raise UserError(f"{source}: floorplan names unit {r.unit!r}, which the model does not have; "
                            "recompile the plan")
        if r.wafer != assignment[r.unit]:
            raise UserError(f"{source}: floorplan puts unit {r.unit!r} on wafer {r.wafer} but the assignment "
                            f"on wafer {assignment[r.unit]}; recompile the plan")
        if min(r.rows, r.cols) < 1 or min(r.row, r.col) < 0 or r.row + r.rows > target.mesh_rows \
                or r.col + r.cols > target.mesh_cols:
            raise UserError(f"{source}: floorplan rectangle of unit {r.unit!r} (row {r.row}, col {r.col}, "
                            f"{r.rows} x {r.cols} PEs) is outside target {target.name!r}'s "
                            f"{target.mesh_rows} x {target.mesh_cols} grid; recompile the plan for it")
        rects[r.unit] = (r.row, r.col, r.rows, r.cols)
    return rects


def _weights_from_file(model: Any, graph: Graph) -> dict[str, np.ndarray]:
    """Values of weights that the frontend left without data (external data of an ONNX file)."""
    missing = [n for n, w in graph.weights.items() if w.data is None]
    if not missing or not isinstance(model, (str, os.PathLike)) or not str(model).endswith(".onnx"):
        return {}
    import onnx
    from onnx import numpy_helper

    folder = Path(model).parent
    opened: set[str] = set()
    for n in missing:
        loc = graph.weights[n].location
        if loc is not None and not (folder / loc.path).is_file():
            raise UserError(f"{folder / loc.path}: no such file; placer run needs the weights of "
                            f"initializer {n!r} (inspect and compile plan without them): export with "
                            f"--weights random or from-dir, or copy the data file beside the model")
        if loc is not None and loc.path not in opened:
            opened.add(loc.path)
            try:  # onnx's own loader reports an unreadable file as "kernel rejected path"
                with open(folder / loc.path, "rb"):
                    pass
            except OSError as e:
                raise UserError(f"{folder / loc.path}: cannot read the external data of initializer {n!r} "
                                f"({e.strerror}); fix the file's permissions") from None
    try:
        proto = onnx.load(str(model), load_external_data=True)
    except (OSError, ValueError, onnx.checker.ValidationError) as e:
        why = " ".join(str(e).split())[:300]
        raise UserError(f"{model}: cannot read its external data ({why})") from None
    tensors = {t.name: t for t in proto.graph.initializer}
    return {n: numpy_helper.to_array(tensors[n]) for n in missing if n in tensors}


def _decode_cost(graph: Graph, target: Any, context: int, prompt: int) -> Any:
    from placer.cost_model import annotate_costs
    from placer.workload import Workload

    return annotate_costs(graph, target, Workload(context_tokens=context, prompt_tokens=max(prompt, 1)))


def predicted_step_seconds(graph: Graph, target: Any, assignment: Mapping[str, int], context: int,
                           prompt: int, batch: int = 1, regions: Rects | None = None,
                           micro_batches: int = 1) -> float:
    """The performance model's decode time per output token of a step of ``batch`` sequences
    at ``context`` tokens, in ``micro_batches`` equal micro-batches in flight: with one, the
    round trip; with ``M``, the pipeline's ``formulas.tpot`` of one micro-batch's round trip,
    every wafer's interval and the busiest boundary (``placer.perf.placement.predicted_step``).
    Wafers with units in ``regions`` take their floorplan's latency and interval
    (``placer.floorplan.placed_seconds``); a whole-grid wafer's interval is its stage."""
    from placer.floorplan import placed_seconds
    from placer.perf.placement import predicted_step

    cost = _decode_cost(graph, target, context, prompt)
    regions = regions or {}
    m = max(1, micro_batches)
    mb = max(1, batch // m)
    wafer_seconds: dict[int, float] = {}
    intervals: dict[int, float] = {}
    for w in sorted({assignment.get(u, 0) for u in regions}):
        # One region per rectangle (units sharing one run in turn), in data-path order.
        shared: dict[tuple[int, int, int, int], list[str]] = {}
        for u in cost.units:
            if u.name in regions and assignment.get(u.name, 0) == w:
                shared.setdefault(regions[u.name], []).append(u.name)
        rects = [(units, *rect) for rect, units in shared.items()]
        wafer_seconds[w], intervals[w] = placed_seconds(cost, target, rects, context_tokens=context, batch=mb)
    return predicted_step(cost, target, assignment, mb, wafer_seconds, m, intervals)


def emulated_step_seconds(steps: Sequence[StepStats], link: IoLink, micro_batches: int = 1) -> float:
    """The emulator's mean decode time per output token over ``steps``, the sampled token's
    return hop included (one link latency, also on one wafer, as ``formulas.round_trip``
    charges ``N`` hops for ``N`` wafers): with one micro-batch, each step's time; with ``M``
    in flight, the same ``formulas.tpot`` as ``predicted_step_seconds`` of the emulated first
    micro-batch's round trip (every wafer's first ``StepStats.in_flight`` exit, I/O of one
    micro-batch), every wafer's emulated interval (the mean gap between its micro-batches' exits) and the I/O
    link's bytes (all boundaries' bytes of the step, one link's worth: an over-estimate with
    several boundaries)."""
    from placer.perf import formulas as f

    ret = link.latency_s
    m = max(1, micro_batches)
    if m == 1:
        return float(np.mean([s.seconds for s in steps])) + ret
    out = []
    for s in steps:
        clock = s.clock_hz
        latency = sum(t[0] for t in s.in_flight.values()) / clock
        interval = max(((t[-1] - t[0]) / (len(t) - 1) for t in s.in_flight.values() if len(t) > 1),
                       default=0.0) / clock
        streamed = s.io_seconds - s.io_hops * link.latency_s  # the step's bytes over one link
        trip = latency + s.io_hops * link.latency_s + streamed / m + ret
        out.append(f.tpot(trip, interval, streamed / m, m))
    return float(np.mean(out))


def predicted_unit_seconds(graph: Graph, target: Any, context: int, prompt: int,
                           batch: int = 1, regions: Rects | None = None) -> dict[str, float]:
    """The performance model's decode seconds per unit (``placer.perf.decode_seconds_by_unit``);
    a unit in ``regions`` on its rectangle (``pricing.unit_seconds_on_rectangle``)."""
    from placer.floorplan.pricing import unit_seconds_on_rectangle
    from placer.perf import decode_seconds_by_unit

    cost = _decode_cost(graph, target, context, prompt)
    regions = regions or {}
    out = decode_seconds_by_unit(cost, target, batch) if batch != 1 else decode_seconds_by_unit(cost, target)
    for u in cost.units:
        if u.name in regions:
            rows, cols = regions[u.name][2:]
            out[u.name] = unit_seconds_on_rectangle(u, target, rows, cols, batch)
    return out


def _model_batches() -> bool:
    """Whether ``placer.perf`` predicts micro-batches (contract C's ``batch`` argument); until
    it does, a batched run prints no prediction."""
    import inspect

    from placer.perf import unit_decode_seconds

    return "batch" in inspect.signature(unit_decode_seconds).parameters


def _batched(feeds: dict[str, np.ndarray], batch: int | None,
             where: str = "inputs") -> tuple[dict[str, np.ndarray], int]:
    """The inputs as a micro-batch of ``batch`` sequences: inputs of one sequence are repeated."""
    held = {int(a.shape[0]) for a in feeds.values() if a.ndim}
    have = held.pop() if len(held) == 1 else 1
    if have > MAX_RUN_BATCH:  # a run's work grows with it (100,000 rows ran past a minute)
        raise UserError(f"{where}: {have:,} sequences (the inputs' leading dimension) are more than "
                        f"placer run emulates at once (placer.runner.MAX_RUN_BATCH, {MAX_RUN_BATCH:,}); "
                        f"split them into runs of at most {MAX_RUN_BATCH:,}")
    if batch is None or batch == have:
        return feeds, have
    if have != 1:
        raise UserError(f"option --batch: the inputs hold {have} sequences; pass --batch {have} "
                        "or inputs of one sequence (repeated to the batch)")
    return {k: np.repeat(a, batch, axis=0) if a.ndim else a for k, a in feeds.items()}, batch


#: Most tokens ``placer run --tokens`` decodes (the emulator takes seconds per token on a real
#: model: more is a typo, not a run).
MAX_DECODE_TOKENS = 65_536
#: Most sequences ``placer run --batch`` emulates at once (each is a copy of the inputs and a KV cache).
MAX_RUN_BATCH = 4096


def run_plan(model: Any, plan: Any, inputs: str | os.PathLike[str] | Mapping[str, np.ndarray], *,
             tokens: int = 0, target: Any = None, predict: bool = True,
             batch: int | None = None, micro_batches: int = 1) -> RunResult:
    """Execute ``model`` under ``plan`` on emulated wafers; greedy-decode ``tokens`` tokens.

    Args:
        model: what ``placer.load_graph`` accepts (an ONNX file for execution with weights).
        plan: a ``Plan``, a plan.json path, or a mapping unit -> wafer.
        inputs: an .npz path or mapping keyed by the graph's input names.
        tokens: tokens to generate after the prefill (needs past/present KV inputs/outputs).
        target: a ``Target`` (default: the plan's).
        batch: sequences per decode step (default: the inputs' leading dimension); inputs of
            one sequence are repeated to it. Each step decodes all of them.
        micro_batches: the step's sequences in this many equal micro-batches in flight (a
            divisor of ``batch``): a wafer laid out in regions works on several at once, a
            rectangle taking the next as soon as it is done with one (``MeshExecutor.run``).

    Raises:
        UserError: bad inputs, a plan that does not match the model, or a PE out of SRAM.
    """
    from placer.ir.verifier import unit_graph
    from placer.pipeline import load_model
    from placer.plan import Plan
    from placer.plan_checks import check_plan_assignment, check_plan_provenance, check_plan_target
    from placer.targets import load_target
    from placer.validate import integer

    integer(tokens, "option --tokens", minimum=0, maximum=MAX_DECODE_TOKENS)
    if batch is not None:
        integer(batch, "option --batch", minimum=1, maximum=MAX_RUN_BATCH)
    source = str(plan) if isinstance(plan, (str, os.PathLike)) else "plan"
    plan = _load_plan(plan)
    spec = getattr(plan, "speculative", None)
    if spec is not None:
        # The emulator runs one model; a speculative plan places a draft's units beside the
        # target's, which the model file does not have (the unknown-unit error would mislead).
        raise UserError(f"{source}: the plan was compiled with --draft {spec.draft} (speculative decoding, "
                        f"draft length {spec.draft_length}); placer run emulates one model: compile the plan "
                        f"without --draft to run it")
    if isinstance(plan, Plan):
        check_plan_target(plan, source)
    assignment, plan_target, granularity = _assignment(plan)
    overridden = target is not None
    target = target or plan_target or load_target("wse-mini")
    loaded = load_model(model, granularity=granularity)
    graph = loaded.graph
    is_plan = isinstance(plan, Plan)
    unit_edges = list(unit_graph(graph).edges)
    assignment = check_plan_assignment(assignment, [u.name for u in graph.units], unit_edges, source,
                                       len(plan.wafers) if is_plan else None, target.wafers)
    target_changes = check_plan_provenance(plan.model.sha256 if is_plan else "", loaded.sha256,
                                           plan_target, target, source, overridden)
    regions = _regions(plan, assignment, target, source)
    feeds, batch = _batched(load_inputs(inputs, graph), batch,
                            "inputs" if isinstance(inputs, Mapping) else str(inputs))
    integer(micro_batches, "option --micro-batches", minimum=1, maximum=batch)
    if batch % micro_batches:
        raise UserError(f"option --micro-batches: {micro_batches} does not divide the {batch} sequences of a "
                        f"step (--batch); pass a divisor of it")
    pairs = kv_pairs(graph)
    if tokens > 0 and not pairs:
        raise UserError("option --tokens: the model has no past/present KV inputs and outputs to decode with")
    if is_plan:
        _check_context(graph, feeds, pairs, tokens, plan.kv.context_tokens, source,
                       "inputs" if isinstance(inputs, Mapping) else str(inputs))
    logits_name = "logits" if "logits" in graph.outputs else graph.outputs[0]
    in_prefill = True
    weights = _weights_from_file(model, graph)
    missing = [n for n, w in graph.weights.items() if w.data is None and n not in weights]
    if missing:
        # an HF config (or a zoo name) has shapes but no values: the emulator has nothing to compute with
        more = f" and {len(missing) - 1:,} more" if len(missing) > 1 else ""
        raise UserError(f"{model if isinstance(model, (str, os.PathLike)) else 'the model'}: weight "
                        f"{missing[0]!r}{more} holds no values, and placer run computes with them; give an "
                        f"ONNX file with its data (for an HF config: placer export MODEL --weights random "
                        f"-o m.onnx, then run m.onnx)")
    check_lookups(graph, feeds, weights, pairs, _sequence_length(graph, feeds, pairs), tokens,
                  str(model) if isinstance(model, (str, os.PathLike)) else "the model",
                  "inputs" if isinstance(inputs, Mapping) else str(inputs))
    try:
        executor = MeshExecutor(graph, MeshSpec.from_target(target), wafer_of_unit=assignment,
                                io=IoLink(target.io_bandwidth_bytes_per_s, target.io_latency_s),
                                weights=weights, regions=regions)
        outputs, prefill = executor.run(feeds, keep=[p for _, p in pairs])
        in_prefill = False
        prefill_outputs = dict(outputs)
        decode_obs = StatsObserver()
        steps: list[StepStats] = []
        generated: list[np.ndarray] = []
        for _ in range(tokens):
            nxt = np.argmax(outputs[logits_name][:, -1, :], axis=-1).astype(np.int64)
            generated.append(nxt)
            if len(generated) == tokens:
                break
            step_feeds = _next_feeds(graph, feeds, outputs, pairs, nxt)
            resident = {past: executor.location.get(present, 0) for past, present in pairs}
            executor.release([p for _, p in pairs])
            outputs, stats = executor.run(step_feeds, resident=resident, keep=[p for _, p in pairs],
                                          decode=True, micro_batches=micro_batches)
            feeds = step_feeds
            steps.append(stats)
            for key, s in executor.step_observer.stats.items():
                decode_obs.stats.setdefault(key, KernelStats()).add(s)
    except SramOverflowError as e:
        raise UserError(f"plan does not fit the emulated PEs: {e}") from None
    except NodeExecutionError as e:
        if isinstance(e.cause, SramOverflowError) and in_prefill:
            # the plan's buffers were sized for its --prompt; a longer prompt in the inputs needs more
            held = _sequence_length(graph, feeds, pairs)
            label = inputs if isinstance(inputs, (str, os.PathLike)) else "inputs"
            # the emulator runs the prompt in one pass (the plan prices it in chunks)
            raise UserError(f"{label}: node {e.node!r} does not fit the emulated PEs with the prompt's "
                            f"{held:,} tokens per sequence in one pass: {e.cause}; shorten the "
                            f"prompt") from None
        raise UserError(f"execution failed: {e}") from None
    except MissingValueError as e:
        raise UserError(f"execution failed: {e}") from None
    n_wafers = len(executor.wafers)
    result = RunResult(outputs, np.stack(generated, axis=1) if generated else None, prefill, steps,
                       decode_obs, n_wafers, {w.name: w.peak_pe_bytes for w in executor.wafers},
                       prefill_outputs=prefill_outputs, batch=batch, target_changes=target_changes,
                       micro_batches=micro_batches)
    if steps:
        result.emulated_step_s = emulated_step_seconds(steps, executor.io, micro_batches)
        units = sorted({u for s in steps for u in s.unit_cycles})
        clock = target.clock_hz
        result.emulated_unit_s = {u: float(np.mean([s.unit_cycles.get(u, 0) for s in steps])) / clock
                                  for u in units}
        if predict and (batch == 1 or _model_batches()):
            context = int(feeds[pairs[0][0]].shape[2]) + 1 if pairs else 1
            result.predicted_step_s = predicted_step_seconds(graph, target, assignment, context, 1, batch,
                                                             regions, micro_batches)
            # a unit's time over the step: each of the M micro-batches of batch / M sequences
            per = predicted_unit_seconds(graph, target, context, 1, batch // micro_batches, regions)
            result.predicted_unit_s = {u: micro_batches * t for u, t in per.items()}
    return result


def _sequence_length(graph: Graph, feeds: Mapping[str, np.ndarray], pairs: list[tuple[str, str]]) -> int:
    """Tokens a sequence holds after the prefill: the given past plus the prompt's tokens (the
    inputs ``_next_feeds`` replaces with the next token; 0 when the model takes none)."""
    past_of = dict(pairs)
    past = int(feeds[pairs[0][0]].shape[2]) if pairs and feeds[pairs[0][0]].ndim > 2 else 0
    prompt = [int(feeds[n].shape[1]) for n in graph.inputs
              if n not in past_of and n not in ("attention_mask", "position_ids") and feeds[n].ndim >= 2]
    return past + max(prompt, default=0)


def _check_context(graph: Graph, feeds: Mapping[str, np.ndarray], pairs: list[tuple[str, str]],
                   tokens: int, context: int, source: str, inputs: str = "inputs") -> None:
    """The prompt and the decoded tokens fit the context the plan was compiled for: its KV
    memory was sized for that many tokens per sequence (a longer run would need SRAM the plan
    does not hold, and its predicted column would be for another context)."""
    if not pairs or context <= 0:
        return
    held = _sequence_length(graph, feeds, pairs)
    if held + tokens > context:
        raise UserError(f"{inputs}: the prompt ({held:,} tokens) and --tokens {tokens:,} need a context of "
                        f"{held + tokens:,} tokens, but the plan {source} was compiled for {context:,} "
                        f"(plan.kv.context_tokens); compile with --context {held + tokens} or decode fewer "
                        f"tokens")


def _next_feeds(graph: Graph, feeds: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray],
                pairs: list[tuple[str, str]], token: np.ndarray) -> dict[str, np.ndarray]:
    """Inputs of the next decode step: the new token, the presents as pasts, grown masks."""
    nxt: dict[str, np.ndarray] = {}
    past_of = dict(pairs)
    for name in graph.inputs:
        if name in past_of:
            nxt[name] = outputs[past_of[name]]
        elif name == "attention_mask":
            nxt[name] = np.concatenate([feeds[name], np.ones_like(feeds[name][:, :1])], axis=1)
        elif name == "position_ids":
            nxt[name] = feeds[name][:, -1:] + 1
        else:
            nxt[name] = token[:, None].astype(feeds[name].dtype)
    return nxt


def format_accounting(result: RunResult, clock_hz: float) -> str:
    """The accounting table: per wafer and per kernel (decode steps), and the comparison."""
    lines = []
    steps = max(len(result.decode), 1)
    obs = result.decode_stats
    if not result.decode:
        lines.append("no decode steps (use --tokens N); prefill only:")
        lines.append(f"  prefill: {sum(result.prefill.cycles.values()):,} cycles, "
                     f"{result.prefill.seconds * 1e6:.2f} us emulated, I/O {result.prefill.io_bytes:,} B")
        return "\n".join(lines)
    per = f", {result.batch} sequences per step" if result.batch > 1 else ""
    if result.micro_batches > 1:
        per += f" in {result.micro_batches} micro-batches in flight"
    lines.append(f"decode accounting, mean per step over {steps} step(s){per}:")
    header = (f"  {'wafer / kernel':<34} {'calls':>7} {'cycles':>12} {'hops':>12} {'link bytes':>14} "
              f"{'peak PE B':>10}")
    lines.append(header)
    for wafer, total in sorted(obs.per_wafer().items()):
        lines.append(f"  {wafer:<34} {total.calls // steps:>7} {total.cycles // steps:>12,} "
                     f"{total.hops // steps:>12,} {total.link_bytes // steps:>14,} "
                     f"{result.peak_pe_bytes.get(wafer, 0):>10,}")
        for kernel, s in obs.per_kernel(wafer).items():
            if s.cycles or s.hops:
                lines.append(f"    {kernel:<32} {s.calls // steps:>7} {s.cycles // steps:>12,} "
                             f"{s.hops // steps:>12,} {s.link_bytes // steps:>14,} {s.peak_pe_bytes:>10,}")
    io_s = float(np.mean([s.io_seconds for s in result.decode]))
    io_b = float(np.mean([s.io_bytes for s in result.decode]))
    lines.append(f"  I/O link: {io_b:,.0f} B per token over the wafer boundaries, {io_s * 1e6:.3f} us")
    if result.micro_batches > 1:
        for wafer, exits in sorted(result.decode[-1].in_flight.items()):
            gaps = np.diff(exits)
            left = ", ".join(f"{t:,}" for t in exits)
            lines.append(f"  {wafer}: micro-batches leave at {left} cycles (last step): "
                         f"latency {exits[0] / clock_hz * 1e6:.3f} us, interval "
                         f"{float(gaps.mean()) / clock_hz * 1e6:.3f} us")
    emu = result.emulated_step_s or 0.0
    lines.append(f"emulated time per token: {emu * 1e6:.3f} us ({1 / emu if emu else 0:,.0f} tokens/s)")
    if result.predicted_step_s:
        pred = result.predicted_step_s
        lines.append(f"performance model:       {pred * 1e6:.3f} us; emulated / predicted = {emu / pred:.3f}")
    if result.predicted_unit_s:
        lines.append(f"  {'unit (on-wafer decode step)':<34} {'emulated us':>12} {'predicted us':>13} "
                     f"{'ratio':>7}")
        for unit, pred in result.predicted_unit_s.items():
            got = result.emulated_unit_s.get(unit, 0.0)
            ratio = f"{got / pred:7.3f}" if pred else f"{'-':>7}"
            lines.append(f"  {unit:<34} {got * 1e6:>12.3f} {pred * 1e6:>13.3f} {ratio}")
    return "\n".join(lines)


def write_run_outputs(result: RunResult, path: str | os.PathLike[str]) -> None:
    """The last step's outputs (and ``tokens`` when decoding) as one .npz, written atomically."""
    import io

    from placer.fileio import write_atomic

    arrays = dict(result.outputs)
    if result.tokens is not None:
        arrays["tokens"] = result.tokens
    buf = io.BytesIO()
    # numpy's stub matches **arrays against savez's own ``allow_pickle: bool`` keyword.
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    write_atomic(path, buf.getvalue())
