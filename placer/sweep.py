"""``placer sweep``: compile a grid of settings and tabulate every point.

A sweep is models x ``--wafers`` x ``--concurrency`` x ``--context`` x ``--weights-dtype`` x
``--kv-dtype`` x objectives, on one target with fixed other options (``SweepSpec``). Each point
is compiled with ``placer.compiler.compile_model`` exactly as ``placer compile`` would (the same
flat options), and summarised as one row of settings and figures (``point_row``). Rows are
cached by an input hash (``point_key``: the model file's digest, the resolved target, the
options, placer's version and a digest of its source), so a re-run computes only new points and
a killed sweep resumes where it stopped. Execution (local worker processes or Ray) lives in
``placer.sweep_exec``; the Pareto frontier in ``placer.sweep_frontier``.

Lists on the command line and in a TOML sweep file: ``4,8,16``; ``4-16`` (every integer);
``4-16:4`` (step 4); ``1-64:x2`` (1, 2, 4, ..., 64); ``auto`` for wafers (the fewest that fit).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from placer.errors import InfeasibleError, UserError
from placer.options import FLAT_DEFAULTS

# The swept settings, in the order of the grid (and of a row's first columns).
AXES = ("model", "wafers", "concurrency", "context", "weights_dtype", "kv_dtype", "objective", "prefill_on")


#: Most values one list option of a sweep may hold, and most points one sweep may have (a
#: 10,000-point sweep is a cluster's day: docs/sweep.md); both refused before anything is listed.
MAX_AXIS_VALUES = 10_000
MAX_POINTS = 1_000_000


def parse_int_list(text: str | int | Sequence[Any], option: str, allow_auto: bool = False,
                   where: str | None = None) -> tuple[Any, ...]:
    """``"1,2,8-16:4,1-64:x2"`` (or an int, or a TOML list of such items) as a tuple of ints.

    ``auto`` (when ``allow_auto``) becomes None: the compiler picks the count.

    Raises:
        UserError: a malformed item, naming the option (``where``: the label instead of
        ``option OPTION``, e.g. a sweep file and its key).
    """
    label = where or f"option {option}"
    items: list[Any] = list(text) if isinstance(text, (list, tuple)) else [text]
    out: list[Any] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if allow_auto and part == "auto":
                out.append(None)
                continue
            try:
                values = _int_range(part)
            except ValueError:
                raise UserError(f"{label}: expected integers, ranges A-B, A-B:STEP or A-B:xFACTOR"
                                f"{' or auto' if allow_auto else ''}, got {part!r}") from None
            out.extend(values)
            if len(out) > MAX_AXIS_VALUES:
                raise UserError(f"{label}: more than {MAX_AXIS_VALUES:,} values (at {part!r}), past "
                                f"placer sweep's cap per list; give a step (A-B:STEP or A-B:xFACTOR) or a "
                                f"shorter range")
    if not out:
        raise UserError(f"{label}: empty list")
    return tuple(dict.fromkeys(out))   # keep order, drop repeats


def _int_range(part: str) -> list[int]:
    span, _, step = part.partition(":")
    lo_text, dash, hi_text = span.partition("-")
    if not dash:
        if step:
            raise ValueError(part)
        return [int(span)]
    lo, hi = int(lo_text), int(hi_text)
    if hi < lo:
        raise ValueError(part)
    if step.startswith("x"):
        factor = int(step[1:])
        if factor < 2 or lo < 1:
            raise ValueError(part)
        values, v = [], lo
        while v <= hi:
            values.append(v)
            v *= factor
        return values
    stride = int(step) if step else 1
    if stride < 1:
        raise ValueError(part)
    span_values = range(lo, hi + 1, stride)   # listed only up to one past the cap
    return list(span_values[:MAX_AXIS_VALUES + 1])


def parse_str_list(text: str | Sequence[str], option: str, where: str | None = None) -> tuple[str, ...]:
    items = list(text) if isinstance(text, (list, tuple)) else [text]
    out = [p.strip() for item in items for p in str(item).split(",") if p.strip()]
    if not out:
        raise UserError(f"{where or f'option {option}'}: empty list")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class SweepSpec:
    """The grid and the options every point shares (flat ``placer compile`` option names:
    ``target``, ``target_overrides``, ``prompt``, ``granularity``, ``time_limit``, ``seed``,
    ``min_tokens_per_s_per_user``, ...)."""

    models: tuple[str, ...]
    wafers: tuple[int | None, ...] = (None,)
    concurrency: tuple[int, ...] = (1,)
    context: tuple[int, ...] = (8192,)
    weights_dtype: tuple[str, ...] = ("native",)
    kv_dtype: tuple[str, ...] = ("native",)
    objective: tuple[str, ...] = ("min-wafers",)
    prefill_on: tuple[str | None, ...] = (None,)   # None: prefill on the wafers (``none``)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = sorted(set(self.fixed) & (set(AXES) | {"models"}))
        if clash:
            raise UserError(f"sweep options: {', '.join(clash)} is a sweep axis; give it as a list, "
                            "not as a fixed option")
        if not self.models:
            raise UserError("placer sweep: give at least one MODEL")
        n = len(self.models)
        for axis in AXES[1:]:
            n *= len(getattr(self, axis))
        if n > MAX_POINTS:
            raise UserError(f"placer sweep: {n:,} points, past the cap of {MAX_POINTS:,} per sweep; "
                            f"shorten the lists (or split the grid into several sweeps)")
        unknown = sorted(set(self.fixed) - set(FLAT_DEFAULTS))
        if unknown:
            raise UserError(f"sweep options: unknown compile option(s) {', '.join(map(repr, unknown[:5]))}; "
                            f"expected names of placer.options.FLAT_DEFAULTS such as time_limit, seed")
        # Every value of every axis, and the fixed options, pass the option checks that need neither
        # the model nor the target (CompileOptions.from_flat) once here: a bad value (--context past
        # its cap, --time-limit inf, --draft-length 0) is exit 2, not an error row per point.
        # So do the checks against the target (--wafers past its count) and the combinations
        # --draft does not take (a floor, --prefill-on, regions).
        from placer.options import CompileOptions
        from placer.speculative_place import check_draft_options

        first = {axis: getattr(self, axis)[0] for axis in AXES[1:]}
        targets: dict[str, Any] = {}
        for axis in AXES[1:]:
            for value in getattr(self, axis):
                opts = CompileOptions.from_flat(**{**first, axis: value, **self.fixed})
                check_draft_options(opts)
                key = repr((opts.target, opts.target_overrides))
                if key not in targets:
                    targets[key] = opts.load_target()
                opts.resolve(targets[key])

    def points(self) -> list[dict[str, Any]]:
        """Every point as flat compile options plus ``model``, in grid order."""
        grid = itertools.product(self.models, self.wafers, self.concurrency, self.context,
                                 self.weights_dtype, self.kv_dtype, self.objective, self.prefill_on)
        return [{**dict(zip(AXES, values)), **self.fixed} for values in grid]


def load_sweep_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML sweep file as the keyword arguments of ``spec_from_lists``.

    Top-level keys are the axes (``models``, ``wafers``, ``concurrency``, ``context``,
    ``weights_dtype``, ``kv_dtype``, ``objective``, ``prefill_on``; each a list or a range string) and an
    ``[options]`` table of fixed compile options (flat names, e.g. ``time_limit = 10``). Every key
    and value is checked here, so a bad one is exit 2 naming the file and the key: ``models`` a
    non-empty list of strings, the integer axes integers or range strings (or a list of them), the
    other axes strings (or a list of strings), ``[options]`` by ``check_flat_types``."""
    from placer.validate import parse_toml, read_text

    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such sweep file")
    data = parse_toml(read_text(p, "sweep file"), str(p))
    known = {"models", *AXES[1:], "options"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{p}: unknown key(s) {', '.join(unknown)}; expected some of "
                        f"{', '.join(sorted(known))}")
    if "options" in data:
        if not isinstance(data["options"], dict):
            raise UserError(f"{p}: 'options' must be a table ([options]) of compile options, "
                            f"got {type(data['options']).__name__}")
        bad_options = sorted(set(data["options"]) - set(FLAT_DEFAULTS))
        if bad_options:
            raise UserError(f"{p}: unknown key(s) {', '.join(map(repr, bad_options[:5]))} in [options]; "
                            "expected placer compile options by their Python names, such as time_limit, "
                            "seed")
        data["options"] = check_sweep_options(data["options"], f"{p} [options]")
    if "models" in data:
        data["models"] = _file_models(data["models"], f"{p}: models")
    for axis in AXES[1:]:
        if axis in data:
            _check_file_axis(data[axis], axis, f"{p}: {axis}")
    return data


def check_sweep_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A sweep's fixed options (a file's ``[options]``, ``--option``): no axis among them, each
    a known compile option of its type (``placer.options.check_flat_types``)."""
    from placer.options import check_flat_types

    clash = sorted(set(options) & (set(AXES) | {"models"}))
    if clash:
        raise UserError(f"{where}: {', '.join(clash)} is a sweep axis; give it as a list at the top of the "
                        f"sweep file or as --{clash[0].replace('_', '-')}, not as a fixed option")
    return check_flat_types(options, where)


def _file_models(value: object, where: str) -> tuple[str, ...]:
    from placer.validate import string_list

    models = string_list(value, where, '["llama-3.1-8b"]', allow_empty=False)
    for model in models:
        if not model.strip():
            raise UserError(f"{where}: holds an empty name; give a zoo name or a model file")
    return tuple(m.strip() for m in models)


def _check_file_axis(value: object, axis: str, where: str) -> None:
    """An axis of a sweep file: of its type, and parsed once here so a bad item names the file."""
    numeric = axis in ("wafers", "concurrency", "context")
    items = value if isinstance(value, list) else [value]
    if not items:
        raise UserError(f"{where}: empty list; give at least one value (or leave the key out)")
    for item in items:
        ok = isinstance(item, str) or (numeric and isinstance(item, int) and not isinstance(item, bool))
        if not ok:
            expected = "integers or range strings such as \"4-16:4\"" if numeric else "strings"
            raise UserError(f"{where}: expected {expected} (or a list of them), got "
                            f"{type(item).__name__} {item!r:.80}")
    if numeric:
        parse_int_list(items, f"--{axis}", allow_auto=axis == "wafers", where=where)
    else:
        values = parse_str_list([str(item) for item in items], f"--{axis.replace('_', '-')}", where=where)
        if axis in ("objective", "weights_dtype", "kv_dtype"):   # choices: named by the file, not the option
            from placer.options import CompileOptions

            for v in values:
                try:
                    CompileOptions.from_flat(**{axis: v})
                except UserError as e:
                    raise UserError(f"{where}: {re.sub(r'^(option )?--[a-z-]+:? ', '', str(e))}") from None


def spec_from_lists(models: Sequence[str] | str, wafers: Any = "auto", concurrency: Any = 1,
                    context: Any = 8192, weights_dtype: Any = "native", kv_dtype: Any = "native",
                    objective: Any = "min-wafers", prefill_on: Any = "none",
                    options: Mapping[str, Any] | None = None) -> SweepSpec:
    """A ``SweepSpec`` from command-line or TOML lists (see ``parse_int_list``; ``prefill_on``:
    prefill targets, ``none`` for prefill on the wafers)."""
    if not [m for m in ([models] if isinstance(models, str) else models) if str(m).strip(" ,")]:
        raise UserError("placer sweep: give at least one MODEL (as arguments, or models = [...] in the "
                        "--file)")
    return SweepSpec(
        models=parse_str_list(models, "MODEL"),
        wafers=parse_int_list(wafers, "--wafers", allow_auto=True),
        concurrency=parse_int_list(concurrency, "--concurrency"),
        context=parse_int_list(context, "--context"),
        weights_dtype=parse_str_list(weights_dtype, "--weights-dtype"),
        kv_dtype=parse_str_list(kv_dtype, "--kv-dtype"),
        objective=parse_str_list(objective, "--objective"),
        prefill_on=tuple(dict.fromkeys(None if p.lower() == "none" else p
                                       for p in parse_str_list(prefill_on, "--prefill-on"))),
        fixed=dict(sorted((options or {}).items())),
    )


# ---------------------------------------------------------------------------------------------
# Input hash


@cache  # the code this process runs does not change while it runs (not an analysis of an input)
def code_digest() -> str:
    """sha256 over placer's own source files (placer, placer.ir, placer.backends): a cached row
    is reused only by the code that computed it, even when ``__version__`` did not change."""
    import placer

    roots = [Path(placer.__file__).parent]
    for sub in ("ir", "backends"):
        try:
            mod = __import__(f"placer.{sub}", fromlist=["__file__"])
            if mod.__file__ is not None:  # None only for a namespace package
                roots.append(Path(mod.__file__).parent)
        except ImportError:
            pass
    h = hashlib.sha256()
    for root in roots:
        for f in sorted(root.rglob("*")):
            if f.suffix in (".py", ".toml", ".json") and "__pycache__" not in f.parts:
                h.update(f.relative_to(root.parent).as_posix().encode())
                h.update(f.read_bytes())
    return h.hexdigest()


def model_fingerprint(model: str) -> str:
    """sha256 of what ``model`` names: a file's bytes (a folder's config.json), or a zoo config."""
    path = Path(model)
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    from placer.zoo import ZOO_MODELS, load_zoo_config

    if model in ZOO_MODELS:
        return hashlib.sha256(json.dumps(load_zoo_config(model), sort_keys=True).encode()).hexdigest()
    raise UserError(f"MODEL {model!r} is not a file, a folder with config.json, or a zoo name "
                    "(run `placer zoo` to list them)")


def _target_key(point: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    overrides = point.get("target_overrides") or {}
    if not isinstance(overrides, Mapping):
        overrides = dict(str(item).split("=", 1) for item in overrides)
    return str(point.get("target", "wse3")), tuple(sorted((str(k), str(v)) for k, v in overrides.items()))


def _resolved_target(name: str, overrides: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Every field of the target after ``--set``."""
    from placer.targets import load_target

    return load_target(name, dict(overrides)).to_dict()


def point_keys(points: Iterable[Mapping[str, Any]]) -> list[str]:
    """``point_key`` of each point; each model is hashed and each target resolved once per call.

    The memo lives in this call (one sweep), not in the module: a model file or target TOML
    edited between two sweeps of one process is read again.
    """
    fingerprints: dict[str, str] = {}
    targets: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    prefills: dict[str, dict[str, Any]] = {}
    out = []
    for point in points:
        model, target = str(point["model"]), _target_key(point)
        if model not in fingerprints:
            fingerprints[model] = model_fingerprint(model)
        if target not in targets:
            targets[target] = _resolved_target(*target)
        prefill = str(point["prefill_on"]) if point.get("prefill_on") else ""
        if prefill and prefill not in prefills:
            prefills[prefill] = _resolved_prefill(prefill)
        draft = str(point["draft"]) if point.get("draft") else ""
        if draft and draft not in fingerprints:
            fingerprints[draft] = model_fingerprint(draft)  # an edited draft file is a new point
        out.append(_key(point, fingerprints[model], targets[target], prefills.get(prefill),
                        fingerprints.get(draft)))
    return out


def _resolved_prefill(name: str) -> dict[str, Any]:
    """Every field of a ``--prefill-on`` target (a TOML file's content enters the hash)."""
    from placer.targets.prefill import load_prefill_target

    return load_prefill_target(name).to_dict()


def point_key(point: Mapping[str, Any]) -> str:
    """The input hash of a point: model digest, resolved target, options, placer version, code."""
    return point_keys([point])[0]


def _key(point: Mapping[str, Any], fingerprint: str, target: dict[str, Any],
         prefill: dict[str, Any] | None, draft: str | None = None) -> str:
    from placer import __version__

    options = {k: v for k, v in point.items() if k != "model"}
    payload = {"model": fingerprint, "target": target,
               "options": options, "placer_version": __version__, "code": code_digest()}
    if prefill is not None:
        payload["prefill_target"] = prefill
    if draft is not None:
        payload["draft"] = draft
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# One point


def compile_options(point: Mapping[str, Any]) -> dict[str, Any]:
    """The flat ``compile_model`` keyword options of a point."""
    return {k: v for k, v in point.items() if k != "model"}


def check_models_load(spec: SweepSpec) -> None:
    """Load each MODEL file or folder of ``spec`` once before any point is compiled: one that
    placer cannot read is bad input for every point (exit 2 naming it), not a table of error rows
    with exit 0. Zoo names are placer's own configs and are not loaded twice."""
    from placer.options import FLAT_DEFAULTS
    from placer.pipeline import load_model
    from placer.zoo import ZOO_MODELS

    granularity = str(spec.fixed.get("granularity") or FLAT_DEFAULTS["granularity"])
    for model in dict.fromkeys(spec.models):
        if model in ZOO_MODELS and not os.path.lexists(model):
            continue
        load_model(model, granularity=granularity)


def point_row(point: Mapping[str, Any], loaded: Any = None) -> dict[str, Any]:
    """Compile one point and summarise it: settings, then figures (or why it has none).

    ``status`` is ``ok``, ``infeasible`` (exit 3 of placer compile; ``message`` says why) or
    ``error`` (exit 2: bad input for this point). ``loaded``: the point's model already loaded
    at its granularity (``placer.pipeline.LoadedModel``; the same plan as from the name)."""
    from placer.compiler import compile_model

    settings = {k: point.get(k) for k in AXES}
    try:
        plan = compile_model(point["model"] if loaded is None else loaded, **compile_options(point))
    except InfeasibleError as e:
        return {**settings, "status": "infeasible", "message": str(e).split("\n")[0]}
    except UserError as e:
        return {**settings, "status": "error", "message": str(e).split("\n")[0]}
    return {**settings, "status": "ok", "message": "", **plan_figures(plan)}


def point_rows(points: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """The rows of ``points``, in order, as each is compiled; consecutive points of one model
    and granularity share one loaded graph. Loading a large MoE config costs about as much as
    costing it (gpt-oss-120b: ~8 s of ~13 s per point on the 2-core CI machine), and costing a
    second workload of the same graph object is cheaper again (its cached analyses are reused);
    the plan is the same as from the model's name."""
    from placer.options import FLAT_DEFAULTS
    from placer.pipeline import load_model

    last: tuple[str, str] | None = None
    loaded: Any = None
    for point in points:
        key = (str(point["model"]), str(point.get("granularity") or FLAT_DEFAULTS["granularity"]))
        if key != last:
            last, loaded = key, None
            try:
                loaded = load_model(key[0], granularity=key[1])
            except UserError:
                pass   # each point compiles from the name and reports the error as its row
        yield point_row(point, loaded)


def plan_figures(plan: Any) -> dict[str, Any]:
    """The figures of a plan that a sweep tabulates; every number's unit is in its name."""
    from placer.plan import round_float

    perf, kv = plan.performance, plan.kv
    n = len(plan.wafers)
    return {
        "wafers_used": n,
        "time_per_output_token_ms": round_float(perf.time_per_output_token_s * 1e3),
        "ttft_ms": round_float(perf.ttft_s * 1e3),
        "tokens_per_s_per_user": perf.tokens_per_s_per_user,
        "tokens_per_s_total": perf.tokens_per_s_total,
        "tokens_per_s_per_wafer": round_float(perf.tokens_per_s_total / n),
        "resident_sequences": kv.resident_sequences,
        "parked_sequences": kv.parked_sequences,
        "bottleneck": perf.bottleneck,
        "weights_gb": round_float(plan.model.weight_bytes / 1e9),
        "kv_gb_per_sequence": round_float(kv.bytes_per_sequence / 1e9),
        "min_free_sram_gb": round_float(min(w.memory.free for w in plan.wafers) / 1e9),
        "mean_free_sram_gb": round_float(sum(w.memory.free for w in plan.wafers) / n / 1e9),
        "swap_in_ms": round_float(kv.swap_in_seconds * 1e3),
        # activations of every prompt and output token of one request cross every boundary once
        "io_mb_per_request": round_float(sum(w.io.out_bytes_per_token for w in plan.wafers) * (
            plan.workload.prompt_tokens + plan.workload.output_tokens) / 1e6),
        **cost_figures(plan),
        **prefill_figures(plan),
        **speculative_figures(plan),
    }


def speculative_figures(plan: Any) -> dict[str, Any]:
    """A speculative plan's columns (``--draft``; ``placer.speculative``): the draft, k, a, the
    expected tokens per verification step and the effective tokens/s per user (the rate a user
    sees; ``tokens_per_s_per_user`` stays the target alone on the same wafers); empty without."""
    from placer.plan import round_float

    s = plan.speculative
    if s is None:
        return {}
    return {"draft": s.draft, "draft_length": s.draft_length, "acceptance": s.acceptance,
            "expected_tokens_per_step": round_float(s.expected_tokens_per_step),
            "effective_tokens_per_s_per_user": s.tokens_per_s_per_user,
            "draft_wafers": ",".join(map(str, s.draft_wafers))}


def cost_figures(plan: Any) -> dict[str, Any]:
    """$ per million output and input tokens (and per request), from the targets' ``cost_per_hour``
    ($ per wafer-hour; the prefill machine's per machine-hour); a figure is left out when its
    hardware has no cost. Every formula is the performance model's (``placer.perf``; the
    attribution is in docs/sweep.md):

    * output tokens: ``Performance.usd_per_million_tokens`` (decode keeps the N wafers busy for
      ``tokens_per_s_total`` tokens per second);
    * input tokens, prefill on the wafers: ``placer.perf.usd_per_million_input_tokens``, the
      wafer time of the whole prompt's prefill (``ceil(prompt / chunk)`` chunks on every wafer; a
      plan's ``prefill_seconds`` is one chunk, ``prefill_interval_seconds`` the gap between chunks
      on a regions wafer) shared by the prompt's tokens;
    * input tokens, ``--prefill-on``: ``placer.perf.disagg.usd_per_million_input_tokens``, the
      prefill machine's time at its ``cost_per_hour``;
    * a request of ``output_tokens``: ``placer.perf.usd_per_request`` (when both rates are known)."""
    from placer.perf import disagg, usd_per_million_input_tokens, usd_per_request
    from placer.plan import round_float

    perf, workload = plan.performance, plan.workload
    usd_out = perf.usd_per_million_tokens if plan.target.cost_per_hour else 0.0
    usd_in: float | None = None
    if plan.prefill is not None:
        usd_in = disagg.usd_per_million_input_tokens(plan.prefill)
    elif usd_out:
        usd_in = usd_per_million_input_tokens(
            plan.target, [w.prefill_seconds for w in plan.wafers], workload.prompt_tokens,
            perf.prefill_chunk_tokens,
            [w.prefill_seconds if w.prefill_interval_seconds is None else w.prefill_interval_seconds
             for w in plan.wafers])
    figures = {}
    if usd_out:
        figures["usd_per_million_output_tokens"] = round_float(usd_out)
    if usd_in is not None:
        figures["usd_per_million_input_tokens"] = round_float(usd_in)
    if usd_out and usd_in is not None and workload.output_tokens:
        figures["usd_per_request"] = round_float(usd_per_request(usd_in, workload.prompt_tokens, usd_out,
                                                                 workload.output_tokens))
    return figures


def prefill_figures(plan: Any) -> dict[str, Any]:
    """A disaggregated plan's prefill columns (``placer.perf.disagg``): the three TTFT terms and
    which path bounds the KV transfer; empty when prefill is on the wafers."""
    from placer.plan import round_float

    d = plan.prefill
    if d is None:
        return {}
    return {"prefill_ms": round_float(d.prefill_s * 1e3),
            "kv_transfer_ms": round_float(d.kv_transfer_s * 1e3),
            "prefill_hops_ms": round_float(d.hops_s * 1e3), "kv_transfer_bound": d.transfer_bound}


def precision_of(row: Mapping[str, Any]) -> str:
    """The precision group of a row for the per-precision frontier: ``weights/kv``."""
    return f"{row['weights_dtype']}/{row['kv_dtype']}"


def rows_in_order(points: Iterable[Mapping[str, Any]], rows_by_key: Mapping[str, dict[str, Any]],
                  keys: Sequence[str]) -> list[dict[str, Any]]:
    """Rows in grid order (the table is the same whichever executor ran the points, in any order)."""
    return [rows_by_key[k] for _, k in zip(points, keys)]
