"""User pins: ``--pin "layers.0-9=0"`` or ``--pin-file FILE`` put units on given wafers.

A pin is ``PATTERN=WAFER``. PATTERN is a unit name with shell globs (``*``, ``?``, ``[..]``)
and numeric ranges ``A-B`` (``layers.0-9`` is ``layers.0`` .. ``layers.9``); it matches a unit
by name, and every sub-unit of a matching name (``layers.3`` pins ``layers.3.attn`` and
``layers.3.mlp`` at block granularity). A pin file holds one pin per line; ``#`` starts a
comment. Pins are hard constraints: a bad pin is a ``UserError``, pins that contradict the
DAG order, the wafer count or a wafer's memory are an ``InfeasibleError`` naming the reason.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Sequence

from placer.errors import InfeasibleError, UserError
from placer.solver.problem import Problem
from placer.validate import read_text

_RANGE = re.compile(r"(\d+)-(\d+)")
_LITERAL = re.compile(r"[^*?\[\]-]*")  # no glob characters and no '-' (hence no range A-B)


def read_pin_file(path: str | os.PathLike[str]) -> list[str]:
    text = read_text(path, "pin file (option --pin-file)")
    pins = []
    for number, line in enumerate(text.splitlines(), 1):
        spec = line.split("#", 1)[0].strip()
        if not spec:
            continue
        pattern, sep, wafer = spec.rpartition("=")
        # the syntax here, so that a bad line names the file and line (the units are matched later)
        if not sep or not pattern.strip() or not wafer.strip().isdigit():
            raise UserError(f"{path}: line {number}: expected PATTERN=WAFER with a wafer index >= 0 "
                            f"(e.g. layers.0-9=0), got {spec[:80]!r} (option --pin-file)")
        pins.append(spec)
    return pins


def _split_ranges(pattern: str) -> list[str | tuple[int, int]]:
    """Glob text and numeric ranges ``A-B``; ``[...]`` character classes stay glob text."""
    pieces: list[str | tuple[int, int]] = []
    i, text = 0, ""
    while i < len(pattern):
        if pattern[i] == "[":
            close = pattern.find("]", i + 2)
            if close > 0:
                text += pattern[i:close + 1]
                i = close + 1
                continue
        m = _RANGE.match(pattern, i)
        if m and (i == 0 or not pattern[i - 1].isdigit()):
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise UserError(f"option --pin: range {a}-{b} in {pattern!r} runs backwards")
            pieces += [text, (a, b)]
            text = ""
            i = m.end()
            continue
        text += pattern[i]
        i += 1
    return [*pieces, text]


def pattern_matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate: does a unit name match ``pattern`` (globs and numeric ranges ``A-B``), or is it
    a sub-unit of a name that does (``layers.3`` matches ``layers.3.mlp``)?

    Ranges are matched by value (``layers.0-9`` matches ``layers.7``), never expanded, so the
    work is bounded by the pattern's and the names' lengths, not by the range (``0-100000000``
    costs what ``0-9`` costs)."""
    compiled, ranges = _compile(pattern)

    def matches(name: str) -> bool:
        m = compiled.match(name)
        return m is not None and all(a <= int(m.group(f"range{k}")) <= b for k, (a, b) in enumerate(ranges))
    return matches


def _compile(pattern: str) -> tuple[re.Pattern[str], list[tuple[int, int]]]:
    """``pattern`` as one regex (range ``k`` captured as group ``range<k>``) and its ranges."""
    regex = []
    ranges: list[tuple[int, int]] = []
    for piece in _split_ranges(pattern):
        if isinstance(piece, tuple):
            regex.append(rf"(?P<range{len(ranges)}>\d+)")
            ranges.append(piece)
        elif piece:
            regex.append(fnmatch.translate(piece).removeprefix("(?s:").removesuffix(")\\Z"))
    return re.compile("(?s:" + "".join(regex) + r")(?:\..*)?\Z"), ranges


def _check_range_ends(spec: str, pattern: str, names: Sequence[str]) -> None:
    """A range whose ends no unit has (``layers.30-40`` on 32 layers) is a mistake, not a glob:
    UserError naming the range and the values the units do have."""
    compiled, ranges = _compile(pattern)
    if not ranges:
        return
    seen: list[set[int]] = [set() for _ in ranges]
    for name in names:
        m = compiled.match(name)
        if m is not None:
            values = [int(m.group(f"range{k}")) for k in range(len(ranges))]
            if all(a <= v <= b for v, (a, b) in zip(values, ranges)):
                for k, v in enumerate(values):
                    seen[k].add(v)
    for (a, b), got in zip(ranges, seen):
        if got and (min(got) > a or max(got) < b):
            raise UserError(f"option --pin {spec!r}: the range {a}-{b} runs past the units, which have "
                            f"{min(got)}-{max(got)} there; give {min(got)}-{max(got)} (or a glob)")


def resolve_pins(specs: Sequence[str], unit_names: Sequence[str]) -> list[tuple[int, int]]:
    """(unit index, wafer) for every pinned unit; UserError for bad syntax or unknown units."""
    pinned: dict[int, tuple[int, str]] = {}
    # A literal pattern (no glob, no range) is looked up, not matched against every name: a pin file
    # of 400,000 lines took 22 s compiling one regex per line. ``under[p]``: p and its sub-units.
    under: dict[str, list[int]] = {}
    for i, name in enumerate(unit_names):
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            under.setdefault(".".join(parts[:k]), []).append(i)
    for spec in dict.fromkeys(specs):  # a repeated line pins the same units again
        pattern, sep, wafer_text = spec.rpartition("=")
        pattern = pattern.strip()
        if not sep or not pattern:
            raise UserError(f"option --pin: expected PATTERN=WAFER (e.g. layers.0-9=0), got {spec!r}")
        try:
            wafer = int(wafer_text)
        except ValueError:
            raise UserError(f"option --pin {spec!r}: wafer must be an integer >= 0, "
                            f"got {wafer_text!r}") from None
        if wafer < 0:
            raise UserError(f"option --pin {spec!r}: wafer must be >= 0")
        if _LITERAL.fullmatch(pattern):
            hits = under.get(pattern, [])
        else:
            matches = pattern_matcher(pattern)
            hits = [i for i, name in enumerate(unit_names) if matches(name)]
        if hits:
            _check_range_ends(spec, pattern, [unit_names[i] for i in hits])
        if not hits:
            tail = ["...", unit_names[-1]] if len(unit_names) > 3 else []
            sample = ", ".join(list(unit_names[:3]) + tail)
            raise UserError(f"option --pin {spec!r}: matches no unit (units: {sample})")
        for i in hits:
            if i in pinned and pinned[i][0] != wafer:
                raise UserError(f"option --pin: unit {unit_names[i]} pinned to wafer {pinned[i][0]} by "
                                f"{pinned[i][1]!r} and to wafer {wafer} by {spec!r}")
            pinned[i] = (wafer, spec)
    return sorted((i, w) for i, (w, _) in pinned.items())


def check_pins(problem: Problem) -> None:
    """Raise ``InfeasibleError`` when the pins alone rule out every placement (a pin to a wafer
    past the allowed count is bad input: ``UserError``, exit 2)."""
    p = problem
    pin = dict(p.pins)
    for u, w in p.pins:
        if w >= p.max_wafers:
            raise UserError(f"option --pin: pin puts {p.names[u]} on wafer {w} but only wafers "
                            f"0..{p.max_wafers - 1} are allowed; raise --wafers/--max-wafers or change "
                            f"the pin")
    # latest[v]: (highest pinned wafer among v and its ancestors, that unit); edges are sorted
    # by source, so latest[src] is final when its out-edges are read
    latest: list[tuple[int, int]] = [(pin[u], u) if u in pin else (-1, -1) for u in range(p.n)]
    for e in p.edges:
        wafer, unit = latest[e.src]
        if e.dst in pin and wafer > pin[e.dst]:
            raise InfeasibleError(
                f"infeasible: pins contradict the DAG order: {p.names[unit]} (wafer {wafer}) feeds "
                f"{p.names[e.dst]} (wafer {pin[e.dst]}); activations never flow back; change --pin")
        if wafer > latest[e.dst][0]:
            latest[e.dst] = (wafer, unit)
    load: dict[int, int] = {}
    buffer: dict[int, int] = {}
    for u, w in p.pins:
        load[w] = load.get(w, 0) + p.size(u, 1)
        buffer[w] = max(buffer.get(w, 0), p.act_bytes[u])
    load = {w: x + buffer[w] for w, x in load.items()}
    for w, used in sorted(load.items()):
        if used > p.capacity:
            raise InfeasibleError(f"infeasible: pins put {used / 1e9:.3f} GB (with one sequence's KV) "
                                  f"on wafer {w}, more than its {p.capacity / 1e9:.3f} GB usable; "
                                  f"change --pin")
