"""Published serving points as data: the strict reader of ``POINTS.toml`` files.

A points file (the shipped one is ``placer/calibration/published.toml``) holds ``schema = 1``,
an ``[assumed]`` table and one ``[[point]]`` table per published figure. A point writes every
setting its source states and the string ``"not stated"`` for every one it does not; the
``[assumed]`` table gives the value a prediction uses in that case (placer's assumption, kept
apart from what the source says). Every field of a point is required, so a file says
explicitly what is unknown, except ``layout``: placer's ``--layout`` for predicting the point
(``whole``, ``regions`` or ``auto``), a choice of the prediction rather than a setting of the
source, ``whole`` unless the point or ``[assumed]`` says otherwise. Errors are one line naming
the file, the point and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from placer.errors import UserError
from placer.validate import parse_toml, read_text
from placer.workload import parse_dtype_option

NOT_STATED = "not stated"
SETS = ("calibration", "validation", "reference")
QUANTITIES = ("tokens_per_s_per_user", "ttft_s")  # what a point can measure
# Settings a prediction needs, and what an [assumed] value must be.
_SETTINGS = ("wafers", "weights_dtype", "kv_dtype", "context_tokens", "prompt_tokens", "concurrency",
             "speculative", "layout")
# Fields a point may leave out: ``layout`` is how placer lays out the wafers to predict the point
# (``--layout``), not a setting a source states; absent, it is "not stated" (the [assumed] value,
# else ``whole``).
_OPTIONAL = {"layout": NOT_STATED}
_DEFAULTS = {"layout": "whole"}
LAYOUTS = ("whole", "regions", "auto")
_FIELDS = ("id", "set", "model", "target", *_SETTINGS, *QUANTITIES, "date", "source", "remark")
_SPECULATIVE_FIELDS = ("draft", "draft_length", "acceptance")
PUBLISHED = "published.toml"


@dataclass(frozen=True)
class SpeculativeSetting:
    """Speculative decoding as a point states it; any field may be ``"not stated"``."""

    draft: str
    draft_length: int | str
    acceptance: float | str

    @property
    def complete(self) -> bool:
        return NOT_STATED not in (self.draft, self.draft_length, self.acceptance)


@dataclass(frozen=True)
class Point:
    """One published figure and the settings it was measured under.

    ``speculative`` is ``"none"`` (stated: no speculative decoding), ``"not stated"``, or a
    ``SpeculativeSetting`` (speculative decoding was used). Quantities are floats or
    ``"not stated"``; at least one is stated.
    """

    id: str
    set: str
    model: str
    target: str
    wafers: int | str
    weights_dtype: str
    kv_dtype: str
    context_tokens: int | str
    prompt_tokens: int | str
    concurrency: int | str
    speculative: str | SpeculativeSetting
    tokens_per_s_per_user: float | str
    ttft_s: float | str
    date: str
    source: str
    remark: str
    layout: str = NOT_STATED  # placer's --layout for this point (not a setting of the source)

    def measured(self) -> dict[str, float]:
        """The quantities this point states, by name (``QUANTITIES`` order)."""
        return {q: float(getattr(self, q)) for q in QUANTITIES if getattr(self, q) != NOT_STATED}


@dataclass(frozen=True)
class PointSet:
    """The points of one file and its assumptions for settings a point does not state."""

    source: str
    points: tuple[Point, ...]
    assumed: dict[str, Any] = field(default_factory=dict)

    def of_set(self, name: str) -> tuple[Point, ...]:
        return tuple(p for p in self.points if p.set == name)

    def setting(self, point: Point, name: str) -> Any:
        """The value a prediction uses for ``name``: the point's own, else the assumption."""
        value = getattr(point, name)
        if value != NOT_STATED:
            return value
        if name not in self.assumed:
            if name in _DEFAULTS:
                return _DEFAULTS[name]
            raise UserError(f"{self.source}: point {point.id!r} does not state {name!r} and [assumed] "
                            f"has no {name!r}; add one")
        return self.assumed[name]

    def is_assumed(self, point: Point, name: str) -> bool:
        return getattr(point, name) == NOT_STATED


def load_points(path: str | Path) -> PointSet:
    """Read and check a points file.

    Raises:
        UserError: the file is missing, not TOML, or a field is unknown, missing or mistyped
            (the message names the file, the point and the field).
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"points file {str(p)!r} not found")
    return parse_points(read_text(p, "points file"), str(p))


def load_published_points() -> PointSet:
    """The published points shipped with placer (``placer/calibration/published.toml``)."""
    text = resources.files("placer.calibration").joinpath(PUBLISHED).read_text(encoding="utf-8")
    return parse_points(text, f"placer/calibration/{PUBLISHED}")


def parse_points(text: str, source: str) -> PointSet:
    """Parse the text of a points file; ``source`` names it in errors."""
    data = parse_toml(text, source)
    _no_unknown(data, ("schema", "assumed", "point"), source)
    if data.get("schema") != 1:
        raise UserError(f"{source}: field 'schema' must be 1, got {data.get('schema')!r}")
    assumed = _check_assumed(data.get("assumed", {}), source)
    raw = data.get("point")
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{source}: no [[point]] tables")
    points, seen = [], set()
    for i, table in enumerate(raw):
        point = _check_point(table, f"{source}: point {i + 1}")
        if point.id in seen:
            raise UserError(f"{source}: point {i + 1}: field 'id': {point.id!r} is used twice")
        seen.add(point.id)
        points.append(point)
    return PointSet(source, tuple(points), assumed)


def _no_unknown(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _check_point(table: Any, where: str) -> Point:
    if not isinstance(table, dict):
        raise UserError(f"{where}: expected a table")
    if isinstance(table.get("id"), str):
        where = f"{where} ({table['id']!r})"
    _no_unknown(table, _FIELDS, where)
    table = {**_OPTIONAL, **table}
    missing = [f for f in _FIELDS if f not in table]
    if missing:
        raise UserError(f"{where}: missing field(s) {', '.join(missing)} (write \"{NOT_STATED}\" for a "
                        f"setting the source does not state)")
    v = {name: table[name] for name in _FIELDS}
    for name in ("id", "model", "target", "source"):
        v[name] = _text(v[name], name, where, stated=True)
    for name in ("date", "remark"):
        v[name] = _text(v[name], name, where, stated=False)
    from placer.targets import BUILTIN_TARGETS

    if v["target"] not in BUILTIN_TARGETS:  # the machine the source measured: a built-in one
        raise UserError(f"{where}: field 'target' is {v['target']!r}, not a built-in target (one of "
                        f"{', '.join(sorted(BUILTIN_TARGETS))}); name the machine the source measured")
    if v["set"] not in SETS:
        raise UserError(f"{where}: field 'set' must be one of {', '.join(SETS)}, got {v['set']!r}")
    v["wafers"] = _integer(v["wafers"], "wafers", where, low=1)
    v["context_tokens"] = _integer(v["context_tokens"], "context_tokens", where, low=0)
    v["prompt_tokens"] = _integer(v["prompt_tokens"], "prompt_tokens", where, low=1)
    v["concurrency"] = _integer(v["concurrency"], "concurrency", where, low=1)
    for name in ("weights_dtype", "kv_dtype"):
        v[name] = _dtype(v[name], name, where)
    v["speculative"] = _speculative(v["speculative"], where)
    v["layout"] = _layout(v["layout"], where)
    for name in QUANTITIES:
        value = v[name]
        if value != NOT_STATED and (isinstance(value, bool) or not isinstance(value, (int, float))
                                    or not 0 < value < math.inf):
            raise UserError(f"{where}: field {name!r} must be a number > 0 or \"{NOT_STATED}\", "
                            f"got {value!r}")
        v[name] = value if value == NOT_STATED else float(value)
    if all(v[q] == NOT_STATED for q in QUANTITIES):
        raise UserError(f"{where}: states no measured quantity (one of {', '.join(QUANTITIES)})")
    return Point(**v)


def _text(value: Any, name: str, where: str, *, stated: bool) -> str:
    if not isinstance(value, str) or not value.strip() or (stated and value == NOT_STATED):
        need = "a non-empty string" + (f" (not \"{NOT_STATED}\")" if stated else "")
        raise UserError(f"{where}: field {name!r} must be {need}, got {value!r}")
    return value


def _integer(value: Any, name: str, where: str, *, low: int) -> int | str:
    if value == NOT_STATED:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{where}: field {name!r} must be an integer >= {low} or \"{NOT_STATED}\", "
                        f"got {value!r}")
    return value


def _dtype(value: Any, name: str, where: str) -> str:
    if value == NOT_STATED:
        return value
    if not isinstance(value, str):
        raise UserError(f"{where}: field {name!r} must be a dtype name or \"{NOT_STATED}\", got {value!r}")
    try:
        return parse_dtype_option(value, name)
    except UserError as e:
        raise UserError(f"{where}: field {name!r}: {e}") from None


def _layout(value: Any, where: str) -> str:
    if value != NOT_STATED and value not in LAYOUTS:
        raise UserError(f"{where}: field 'layout' must be one of {', '.join(LAYOUTS)} or \"{NOT_STATED}\", "
                        f"got {value!r}")
    return str(value)


def _speculative(value: Any, where: str) -> str | SpeculativeSetting:
    if value in ("none", NOT_STATED):
        return str(value)
    if not isinstance(value, dict):
        raise UserError(f"{where}: field 'speculative' must be \"none\", \"{NOT_STATED}\" or a table with "
                        f"{', '.join(_SPECULATIVE_FIELDS)}, got {value!r}")
    inner = f"{where}: field 'speculative'"
    _no_unknown(value, _SPECULATIVE_FIELDS, inner)
    missing = [f for f in _SPECULATIVE_FIELDS if f not in value]
    if missing:
        raise UserError(f"{inner}: missing field(s) {', '.join(missing)}")
    draft = _text(value["draft"], "speculative.draft", where, stated=False)
    k = _integer(value["draft_length"], "speculative.draft_length", where, low=1)
    a = value["acceptance"]
    if a != NOT_STATED and (isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 <= a < 1):
        raise UserError(f"{inner}: field 'acceptance' must be a number in [0, 1) or \"{NOT_STATED}\", "
                        f"got {a!r}")
    return SpeculativeSetting(draft, k, a if a == NOT_STATED else float(a))


def _check_assumed(table: Any, source: str) -> dict[str, Any]:
    where = f"{source}: [assumed]"
    if not isinstance(table, dict):
        raise UserError(f"{where}: expected a table")
    _no_unknown(table, _SETTINGS, where)
    out: dict[str, Any] = {}
    for name, value in table.items():
        if value == NOT_STATED:
            raise UserError(f"{where}: field {name!r}: an assumption must be a value, not \"{NOT_STATED}\"")
        if name == "wafers":
            if value != "fewest":
                value = _integer(value, name, where, low=1)
        elif name in ("context_tokens", "prompt_tokens", "concurrency"):
            value = _integer(value, name, where, low=0 if name == "context_tokens" else 1)
        elif name in ("weights_dtype", "kv_dtype"):
            value = _dtype(value, name, where)
        elif name == "layout":
            value = _layout(value, where)
        else:
            value = _speculative(value, where)
        out[name] = value
    return out
