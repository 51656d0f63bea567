"""Compile options: one frozen, typed object from the CLI or the Python API down to the solver.

``CompileOptions`` holds every choice that shapes a plan, in nested frozen parts: the target
(name and ``--set`` overrides), the ``Workload`` (context, prompt, concurrency, dtypes,
speculative decoding),
``Goal`` (objective and the per-user floor), ``Deployment`` (wafer counts, SRAM reserve,
pins), ``SolverSettings`` (method, deterministic time limit, seed), the placement
``Granularity``, the on-wafer ``Layout`` (``whole``, ``regions``, ``auto``), where prefill runs
(``prefill_on``: a prefill target, ``placer.perf.disagg``) and ``Output``
choices (which do not change the plan and are not recorded).

Build it in Python directly or from the flat keyword names the CLI uses::

    >>> from placer.options import CompileOptions, Objective
    >>> opts = CompileOptions.from_flat(context=4096, concurrency=8, objective="max-throughput")
    >>> opts.workload.context_tokens, opts.goal.objective is Objective.MAX_THROUGHPUT
    (4096, True)

``resolve(target)`` fills every default that depends on the target once (the SRAM reserve,
the wafer limit); the plan's provenance records that resolved object (``to_dict``), so
plan.json shows the values used. This module imports nothing heavy (no ortools), so the CLI
can derive its choices from the enums here.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from placer.errors import UserError
from placer.speculative import speculative_from_flat
from placer.workload import DEFAULT_PROMPT, DtypePolicy, Workload, parse_dtype_option

if TYPE_CHECKING:
    from placer.targets import Target
    from placer.targets.prefill import PrefillTarget


class _Choice(enum.Enum):
    """An enum whose values are the CLI spellings; ``parse`` names the option on bad input."""

    @classmethod
    def parse(cls, value: object, option: str | None = None) -> Any:
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            flag = option or f"--{cls.__name__.lower()}"
            raise UserError(f"option {flag}: expected one of {', '.join(cls.choices())}, "
                            f"got {value!r}") from None

    @classmethod
    def choices(cls) -> tuple[str, ...]:
        return tuple(str(m.value) for m in cls)


class Objective(_Choice):
    """What the solver optimises after keeping as many sequences resident as fit."""

    MIN_WAFERS = "min-wafers"
    MIN_LATENCY = "min-latency"
    MAX_THROUGHPUT = "max-throughput"
    MIN_COST = "min-cost"


class Solver(_Choice):
    CP_SAT = "cp-sat"
    DP = "dp"
    UNIFORM = "uniform"
    GREEDY = "greedy"
    DEEPSPEED = "deepspeed"


class Granularity(_Choice):
    LAYER = "layer"
    BLOCK = "block"
    EXPERT = "expert"


class Layout(_Choice):
    """How a wafer lays out its units (``placer.floorplan.layout``): ``whole`` spreads every
    unit over the full PE grid and runs them in turn; ``regions`` gives each unit its own
    rectangle and runs the wafer as a spatial pipeline; ``auto`` chooses per wafer."""

    WHOLE = "whole"
    REGIONS = "regions"
    AUTO = "auto"


#: The per-user floor placer accepts, tokens/s: one token in 11.6 days to 10^12 tokens/s.
FLOOR_RANGE = (1e-6, 1e12)


@dataclass(frozen=True)
class Goal:
    """``objective``; ``min_tokens_per_s_per_user``: a floor every user's decode must meet."""

    objective: Objective = Objective.MIN_WAFERS
    min_tokens_per_s_per_user: float | None = None

    def __post_init__(self) -> None:
        floor = self.min_tokens_per_s_per_user
        if floor is not None and not 0 < floor < math.inf:
            raise UserError(f"option --min-tokens-per-s-per-user must be a finite number > 0, got {floor}")
        if floor is not None and not FLOOR_RANGE[0] <= floor <= FLOOR_RANGE[1]:
            # its inverse, seconds per token, becomes the solver's 0.1 ns ticks (1e-320 overflowed them)
            raise UserError(f"option --min-tokens-per-s-per-user: {floor:g} is outside placer's range "
                            f"{FLOOR_RANGE[0]:g} to {FLOOR_RANGE[1]:g} tokens/s (placer.options.FLOOR_RANGE)")


@dataclass(frozen=True)
class Deployment:
    """Wafer counts (``wafers``: exactly N, each used; ``max_wafers``: at most N), the SRAM
    fraction kept free (``reserve``; None = the target's ``default_reserve``), unit pins
    (``PATTERN=WAFER`` specs, a pin file's lines included)."""

    wafers: int | None = None
    max_wafers: int | None = None
    reserve: float | None = None
    pins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.wafers is not None and self.max_wafers is not None:
            raise UserError("options --wafers and --max-wafers exclude each other; give one")
        from placer.validate import integer, number_in_range, show_int

        for name in ("wafers", "max_wafers"):
            value = getattr(self, name)
            if value is None:
                continue
            value = integer(value, f"option --{name.replace('_', '-')}")
            if value < 1:
                raise UserError(f"option --{name.replace('_', '-')} must be >= 1, got {show_int(value)}")
            object.__setattr__(self, name, value)
        if self.reserve is not None:
            number_in_range(self.reserve, "option --reserve", low=0.0)
            if not 0 <= self.reserve < 1:
                raise UserError(f"option --reserve must be in [0, 1), got {self.reserve}")

    @property
    def limit(self) -> int | None:
        """The most wafers a plan may use (None until resolved against a target)."""
        return self.wafers if self.wafers is not None else self.max_wafers


#: ``--seed`` is CP-SAT's ``random_seed``, a 32-bit signed integer.
SEED_LIMIT = 2**31
#: Largest ``--time-limit``: one day of CP-SAT deterministic time per solve (the shipped plans use
#: 10 s; a pasted 1e300 would otherwise let a hard problem run without end).
MAX_TIME_LIMIT_S = 86_400.0


@dataclass(frozen=True)
class SolverSettings:
    """``method``; ``time_limit_s``: CP-SAT deterministic seconds per solve (work, not wall
    time, so a plan does not depend on the machine); ``seed``."""

    method: Solver = Solver.CP_SAT
    time_limit_s: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        from placer.validate import integer, number_in_range

        # CP-SAT takes a finite double for its deterministic time and an int32 for its seed.
        number_in_range(self.time_limit_s, "option --time-limit", low=0.0, low_open=True,
                        high=MAX_TIME_LIMIT_S)
        integer(self.seed, "option --seed", minimum=-SEED_LIMIT, maximum=SEED_LIMIT - 1)


@dataclass(frozen=True)
class Output:
    """Choices about what is produced beside the plan (never recorded: the plan is the same).

    ``compare``: also solve the same problem with every other method (report.md's table)."""

    compare: bool = True


@dataclass(frozen=True)
class CompileOptions:
    """Everything that shapes a plan; see the module docstring."""

    target: str | Target = "wse3"    # a built-in name, a TOML path, or a Target object
    target_overrides: tuple[tuple[str, str], ...] = ()
    workload: Workload = field(default_factory=Workload)
    goal: Goal = field(default_factory=Goal)
    deployment: Deployment = field(default_factory=Deployment)
    solver: SolverSettings = field(default_factory=SolverSettings)
    granularity: Granularity = Granularity.LAYER
    layout: Layout = Layout.WHOLE
    # ``--prefill-on``: a prefill target (built-in name, TOML path or object) that runs the
    # prompt instead of the wafers (``placer.perf.disagg``); None: prefill on the wafers
    prefill_on: str | PrefillTarget | None = None
    output: Output = field(default_factory=Output)

    @property
    def objective(self) -> Objective:
        return self.goal.objective

    def load_target(self) -> Target:
        """The target with the ``--set`` overrides applied (UserError on a bad name or field)."""
        from placer.targets import load_target

        if isinstance(self.target, str):
            return load_target(self.target, dict(self.target_overrides))
        return self.target.with_overrides(dict(self.target_overrides))

    def load_prefill_target(self) -> PrefillTarget | None:
        """The ``--prefill-on`` target (UserError naming the file and field when it is bad)."""
        from placer.targets.prefill import load_prefill_target

        if self.prefill_on is None or not isinstance(self.prefill_on, str):
            return self.prefill_on
        return load_prefill_target(self.prefill_on)

    def resolve(self, target: Target) -> CompileOptions:
        """The same options with every target-dependent default filled in (done once)."""
        d = self.deployment
        if d.limit is not None and d.limit > target.wafers:
            flag = "--wafers" if d.wafers is not None else "--max-wafers"
            from placer.validate import show_int

            raise UserError(f"option {flag} {show_int(d.limit)} exceeds the {target.wafers} wafers of target "
                            f"{target.name!r}; raise it with --set wafers=N")
        reserve = target.default_reserve if d.reserve is None else d.reserve
        max_wafers = d.max_wafers if d.wafers is not None or d.max_wafers is not None else target.wafers
        return dataclasses.replace(self, deployment=dataclasses.replace(
            d, reserve=reserve, max_wafers=None if d.wafers is not None else max_wafers))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for plan.json's provenance (``Output`` left out: it never changes a plan;
        ``layout`` only when it is not ``whole``, so whole-layout plans keep their bytes)."""
        w = self.workload
        out = {
            "target": self.target if isinstance(self.target, str) else self.target.name,
            "target_overrides": [f"{k}={v}" for k, v in self.target_overrides],
            "workload": w.to_dict(),
            "goal": {"objective": self.goal.objective.value,
                     "min_tokens_per_s_per_user": self.goal.min_tokens_per_s_per_user},
            "deployment": {"wafers": self.deployment.wafers, "max_wafers": self.deployment.max_wafers,
                           "reserve": self.deployment.reserve, "pins": list(self.deployment.pins)},
            "solver": {"method": self.solver.method.value, "time_limit_s": self.solver.time_limit_s,
                       "seed": self.solver.seed},
            "granularity": self.granularity.value,
        }
        if self.layout is not Layout.WHOLE:
            out["layout"] = self.layout.value
        if self.prefill_on is not None:
            out["prefill_on"] = self.prefill_on if isinstance(self.prefill_on, str) else self.prefill_on.name
        return out

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> CompileOptions:
        """Inverse of ``to_dict`` (``CompileOptions.from_dict(o.to_dict()).to_dict() == o.to_dict()``)."""
        w, g, dep, s = d["workload"], d["goal"], d["deployment"], d["solver"]
        return CompileOptions(
            target=d["target"],
            target_overrides=tuple(tuple(item.split("=", 1)) for item in d["target_overrides"]),
            workload=Workload.from_dict(w),
            goal=Goal(Objective(g["objective"]), g["min_tokens_per_s_per_user"]),
            deployment=Deployment(dep["wafers"], dep["max_wafers"], dep["reserve"], tuple(dep["pins"])),
            solver=SolverSettings(Solver(s["method"]), s["time_limit_s"], s["seed"]),
            granularity=Granularity(d["granularity"]),
            layout=Layout(d.get("layout", Layout.WHOLE.value)),
            prefill_on=d.get("prefill_on"),
        )

    @staticmethod
    def from_flat(**flat: Any) -> CompileOptions:
        """Options from the CLI's flat names (``FLAT_DEFAULTS`` lists them with their defaults).

        Raises:
            TypeError: an unknown name (as a Python call with a wrong keyword would).
            UserError: a bad value; the message names the CLI option.
        """
        unknown = sorted(set(flat) - set(FLAT_DEFAULTS))
        if unknown:
            raise TypeError(f"unknown compile option(s) {', '.join(unknown)}; "
                            f"expected some of: {', '.join(FLAT_DEFAULTS)}")
        _check_list_and_flag_types(flat)
        v = {**FLAT_DEFAULTS, **flat}
        if v["prompt"] is not None and v["prompt"] == DEFAULT_PROMPT:  # the sentinel, given: not a length
            raise UserError(f"option --prompt must be >= 1, got {v['prompt']}")
        pins = tuple(v["pins"]) + (read_pin_file(v["pin_file"]) if v["pin_file"] else ())
        return CompileOptions(
            target=v["target"],
            target_overrides=_overrides(v["target_overrides"]),
            # the integers unconverted: Workload checks them (int() would truncate 2.5 and raise
            # a bare OverflowError on inf)
            workload=Workload(v["context"], DEFAULT_PROMPT if v["prompt"] is None else v["prompt"],
                              v["concurrency"],
                              DtypePolicy.parse(v["weights_dtype"], tuple(v["dtype_overrides"])),
                              parse_dtype_option(v["kv_dtype"], "--kv-dtype"), v["output_tokens"],
                              speculative_from_flat(v["draft"], v["draft_length"], v["acceptance"])),
            goal=Goal(Objective.parse(v["objective"], "--objective"), v["min_tokens_per_s_per_user"]),
            deployment=Deployment(v["wafers"], v["max_wafers"], v["reserve"], pins),
            solver=SolverSettings(Solver.parse(v["solver"], "--solver"), _as_number(v["time_limit"], float),
                                  _as_number(v["seed"], int)),
            granularity=Granularity.parse(v["granularity"], "--granularity"),
            layout=Layout.parse(v["layout"], "--layout"),
            prefill_on=_prefill_on(v["prefill_on"]),
            output=Output(bool(v["compare"])),
        )


# The flat option names shared by the CLI (``placer/cli/options.py`` declares one click option
# per name, with these defaults) and ``placer.compile(model, **flat)``.
FLAT_DEFAULTS: dict[str, Any] = {
    "target": "wse3",
    "target_overrides": (),
    "objective": Objective.MIN_WAFERS.value,
    "min_tokens_per_s_per_user": None,
    "context": 8192,
    "prompt": None,  # Workload's default: 1,024 tokens, or the context if shorter
    "output_tokens": 256,
    "concurrency": 1,
    "draft": None,
    "draft_length": None,
    "acceptance": None,
    "wafers": None,
    "max_wafers": None,
    "weights_dtype": "native",
    "dtype_overrides": (),
    "kv_dtype": "native",
    "reserve": None,
    "granularity": Granularity.LAYER.value,
    "layout": Layout.WHOLE.value,
    "prefill_on": None,
    "solver": Solver.CP_SAT.value,
    "pins": (),
    "pin_file": None,
    "time_limit": 10.0,
    "seed": 0,
    "compare": True,
}


#: The type of each flat option whose default is None (the others: the type of their default).
_NONE_DEFAULT_KINDS: dict[str, type] = {
    "min_tokens_per_s_per_user": float, "prompt": int, "draft": str, "draft_length": int,
    "acceptance": float, "wafers": int, "max_wafers": int, "reserve": float, "prefill_on": str,
    "pin_file": str,
}
#: Each flat option's type: ``str``, ``int``, ``float``, ``bool`` or ``tuple`` (a list of strings;
#: ``target_overrides`` may also be a table of FIELD = VALUE).
FLAT_KINDS: dict[str, type] = {name: _NONE_DEFAULT_KINDS[name] if default is None else type(default)
                               for name, default in FLAT_DEFAULTS.items()}
_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_EXAMPLES = {"pins": '["layers.0-9=0"]', "dtype_overrides": '["*.experts.*=mxfp4"]',
             "target_overrides": '["clock_hz=9.5e8"] or {clock_hz = 9.5e8}'}


_FLAG_OF = {"pins": "--pin", "dtype_overrides": "--dtype-override", "target_overrides": "--set"}


def _check_list_and_flag_types(flat: Mapping[str, Any]) -> None:
    """The Python API's list and true/false options of their kind (``pins="layers.0=0"`` was
    taken as the pins ``l``, ``a``, ...; ``compare="no"`` as true); the numbers are checked
    where they are used, naming the option."""
    from placer.validate import string_list

    for name, value in flat.items():
        kind, label = FLAT_KINDS[name], f"option {_FLAG_OF.get(name, '--' + name.replace('_', '-'))}"
        if kind is tuple and name != "target_overrides" and value is not None:
            string_list(value, label, _EXAMPLES.get(name, ""))
        elif kind is bool and not isinstance(value, bool):
            raise UserError(f"{label}: expected True or False, got {type(value).__name__} {value!r:.80}")


def check_flat_types(flat: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``flat`` (flat option names, as in a sweep file's ``[options]`` or ``--option NAME=VALUE``)
    with each value checked against its option's type (``FLAT_KINDS``): a string where a string
    is expected, an integer (not a bool, not 2.5) for an int, a finite number for a float, true or
    false for a bool, a list of strings for a list; None only for options whose default is None.
    ``target_overrides`` comes back as a table of strings. ``where`` names the file or option in
    the one-line ``UserError``.
    """
    from placer.validate import finite_number, integer, string_list

    unknown = sorted(set(flat) - set(FLAT_DEFAULTS))
    if unknown:
        raise UserError(f"{where}: unknown compile option(s) {', '.join(map(repr, unknown[:5]))}; expected "
                        f"placer compile options by their Python names, such as time_limit, seed")
    out: dict[str, Any] = {}
    for name, value in flat.items():
        kind, label = FLAT_KINDS[name], f"{where}: {name}"
        if value is None:
            if FLAT_DEFAULTS[name] is not None:
                raise UserError(f"{label}: expected {_KIND_NAMES.get(kind, 'a list of strings')}, got null")
            out[name] = None
        elif name == "target_overrides":
            out[name] = _checked_overrides(value, label)
        elif kind is tuple:
            out[name] = string_list(value, label, _EXAMPLES.get(name, ""))
        elif kind is int:
            out[name] = integer(value, label)
        elif kind is float:
            finite_number(value, label)
            out[name] = value   # as given: an int stays an int in the sweep cache's input hash
        elif kind is bool and not isinstance(value, bool):
            raise UserError(f"{label}: expected true or false, got {type(value).__name__} {value!r:.80}")
        elif kind is str and not isinstance(value, str):
            raise UserError(f"{label}: expected a string, got {type(value).__name__} {value!r:.80}")
        else:
            out[name] = value
    return out


def _checked_overrides(value: object, label: str) -> dict[str, str]:
    """``target_overrides``: a table of FIELD = VALUE (strings or finite numbers), or a list of
    ``"FIELD=VALUE"`` strings; as a table of strings (the form ``--set`` gives)."""
    from placer.validate import finite_number, string_list

    if not isinstance(value, Mapping):
        pairs: dict[str, str] = {}
        for item in string_list(value, label, _EXAMPLES["target_overrides"]):
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise UserError(f"{label}: expected FIELD=VALUE items, got {item!r:.80}")
            pairs[key.strip()] = val.strip()
        return pairs
    out = {}
    for key, val in value.items():
        if isinstance(val, bool) or not isinstance(val, str | int | float):
            raise UserError(f"{label}: field {str(key)!r:.80} must be a string or a number, got "
                            f"{type(val).__name__} {val!r:.80}")
        if not isinstance(val, str):
            finite_number(val, f"{label}: field {str(key)!r:.80}")
        out[str(key)] = str(val)
    return out


def _overrides(value: Mapping[str, object] | Sequence[str] | Sequence[tuple[str, object]]
               ) -> tuple[tuple[str, str], ...]:
    """``--set`` items (``"FIELD=VALUE"`` strings, pairs or a mapping) as sorted string pairs."""
    pairs: list[tuple[str, str]] = []
    items = value.items() if isinstance(value, Mapping) else value
    for item in items:
        if isinstance(item, str):
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise UserError(f"option --set: expected FIELD=VALUE, got {item!r}")
            pairs.append((key.strip(), val.strip()))
        else:
            name, given = item
            pairs.append((str(name), str(given)))
    return tuple(sorted(dict(pairs).items()))


def _as_number(value: Any, kind: type) -> Any:
    """``kind(value)`` for a numeric string such as ``"10"``; anything else unchanged, so that
    ``SolverSettings`` names the option (``float("x")`` was a bare ValueError traceback)."""
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            return value
    if isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int):
        return float(value)  # an API time_limit=2 records 2.0, as the CLI's --time-limit 2 does
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _prefill_on(value: object) -> Any:
    """``--prefill-on``: None, ``""`` and ``"none"`` keep prefill on the wafers (a sweep's
    co-located points spell it ``none``)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return value.strip() if isinstance(value, str) else value


def read_pin_file(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The ``PATTERN=WAFER`` lines of a pin file (``#`` comments and blank lines skipped)."""
    from placer.pins import read_pin_file as read

    return tuple(read(path))
