"""Checks at the boundary: every file and option a user gives passes through these before use.

One hand-written module rather than a schema library (pydantic v2 was considered): placer's
inputs are frozen dataclasses already (``Target``, ``Workload``, ``Plan``), and the checks that
matter here are few and the same everywhere: text is UTF-8, structured files are not nested
deeper than any real one, numbers are finite, integers are integers, values sit in their range,
sizes are bounded by a documented cap. Each failure is a ``UserError`` (exit 2) whose one line
names the file or option, the field, what was found and what to do.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tomllib
import types
from pathlib import Path
from typing import Any

from placer.errors import UserError

#: Deepest nesting accepted in a JSON or TOML file (real configs, plans and pin files use < 10).
MAX_NESTING = 64
#: Largest text file placer reads whole (configs, plans, targets, pin, override and sweep files;
#: the largest real one, a plan of a 1,000-unit model, is under 1 MB).
MAX_TEXT_BYTES = 16 * 1024 * 1024


def read_text(path: str | os.PathLike[str], what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The file's text; a ``UserError`` names the file when it is missing, too large or not UTF-8."""
    p = Path(path)
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):  # a fifo or device would block or never end
            raise UserError(f"{p}: {what} is not a regular file (a pipe, socket or device); give a file")
        size = st.st_size
        if size > max_bytes:
            raise UserError(f"{p}: {what} is {size:,} bytes, more than the {max_bytes:,} bytes "
                            f"({max_bytes / 2**20:g} MiB) placer reads in such a file; is this the right "
                            f"file?")
        data = p.read_bytes()
    except IsADirectoryError:
        raise UserError(f"{p}: {what} is a folder, not a file") from None
    except OSError as e:
        raise UserError(f"{p}: cannot read {what} ({e.strerror})") from None
    return decode_utf8(data, f"{p}: {what}")


def decode_utf8(data: bytes, where: str) -> str:
    """UTF-8 text; a leading byte-order mark (as some editors write) is dropped, a NUL byte
    (never in a text file placer reads) is a UserError naming its offset."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{where} is not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r}); "
                        f"save it as UTF-8") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise UserError(f"{where} holds a NUL byte (byte {nul}), which no text file has; is this the right "
                        f"file?")
    return text


def nesting_depth(text: str) -> int:
    """Deepest bracket nesting of JSON/TOML text, ignoring brackets inside strings (linear)."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "\n" and quote == "'":
            quote = ""
    return deepest


def _check_nesting(text: str, where: str) -> None:
    depth = nesting_depth(text)
    if depth > MAX_NESTING:
        raise UserError(f"{where}: nested {depth} levels deep, more than the {MAX_NESTING} placer accepts")


def parse_json(text: str, where: str) -> Any:
    """JSON with bounded nesting, no NaN/Infinity literals and no key twice in one object."""
    _check_nesting(text, where)

    def no_constant(name: str) -> float:
        raise ValueError(f"{name} is not a finite number")

    def one_of_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json keeps the last of a repeated key silently: a config with hidden_size twice was
        # placed with the second, a plan with a unit twice in its assignment likewise
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise UserError(f"{where}: key {key[:200]!r} appears twice in one JSON object "
                                f"({out[key]!r:.40} and {value!r:.40}); keep one")
            out[key] = value
        return out

    try:
        return json.loads(text, parse_constant=no_constant, object_pairs_hook=one_of_each)
    except (ValueError, RecursionError) as e:
        message = str(e).splitlines()[0]
        key = re.search(r'"((?:[^"\\]|\\.){0,200})"\s*:\s*(-?Infinity|NaN)\b', text)
        if "not a finite number" in message and key:
            message = f"field {key.group(1)!r} is {key.group(2)}, not a finite number"
        if "integer string conversion" in message:  # Python's 4,300-digit guard, not the user's business
            long_key = re.search(r'"((?:[^"\\]|\\.){0,200})"\s*:\s*-?\d{4000,}', text)
            message = (f"field {long_key.group(1)!r} is " if long_key else "") + \
                "an integer of more than 4,300 digits, past any real value"
        raise UserError(f"{where}: not valid JSON: {message}") from None


def parse_toml(text: str, where: str) -> dict[str, Any]:
    _check_nesting(text, where)
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise UserError(f"{where}: not valid TOML: {str(e).splitlines()[0]}") from None


def load_structured(path: str | os.PathLike[str], what: str) -> Any:
    """A ``.json`` or ``.toml`` file (by suffix; other suffixes are tried as TOML)."""
    p = Path(path)
    text = read_text(p, what)
    return parse_json(text, str(p)) if p.suffix.lower() == ".json" else parse_toml(text, str(p))


def finite_number(value: object, where: str) -> float:
    """A finite int or float (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
    try:
        number = float(value)
    except OverflowError:   # an int past float's range
        raise UserError(f"{where}: expected a finite number, got {show_int(int(value))}") from None
    if not math.isfinite(number):
        raise UserError(f"{where}: expected a finite number, got {value!r}")
    return number


def show_int(value: int) -> str:
    """``value`` with thousands separators, or ``about 10^N`` past 2^60 (a pasted 400-digit
    number stays a short message; Python refuses to print more than 4,300 digits at all)."""
    bits = abs(value).bit_length()
    return f"{value:,}" if bits <= 60 else f"{'-' if value < 0 else ''}about 10^{int(bits * math.log10(2))}"


def integer(value: object, where: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (an integral float such as 2.0 is accepted) within ``[minimum, maximum]``."""
    if isinstance(value, bool):
        raise UserError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise UserError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise UserError(f"{where}: must be >= {minimum}, got {show_int(value)}")
    if maximum is not None and value > maximum:
        raise UserError(f"{where}: must be <= {maximum:,}, got {show_int(value)}")
    return value


def number_in_range(value: object, where: str, low: float | None = None, high: float | None = None,
                    low_open: bool = False, high_open: bool = False) -> float:
    """A finite number in the given (closed unless ``*_open``) range."""
    number = finite_number(value, where)
    if low is not None and (number < low or (low_open and number == low)):
        raise UserError(f"{where}: must be {'>' if low_open else '>='} {low:g}, got {number:g}")
    if high is not None and (number > high or (high_open and number == high)):
        raise UserError(f"{where}: must be {'<' if high_open else '<='} {high:g}, got {number:g}")
    return number


def string_list(value: object, where: str, example: str = "", allow_empty: bool = True) -> tuple[str, ...]:
    """A list of strings (a TOML or JSON array); a plain string is refused, not split into its
    characters (``pins = "layers.0=0"`` was taken as the pins ``l``, ``a``, ...)."""
    hint = f" such as {example}" if example else ""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        shown = f"{type(value).__name__} {value!r:.80}"
        raise UserError(f"{where}: expected a list of strings{hint}, got {shown}")
    for item in value:
        if not isinstance(item, str):
            raise UserError(f"{where}: expected a list of strings{hint}, but it holds "
                            f"{type(item).__name__} {item!r:.80}")
    if not value and not allow_empty:
        raise UserError(f"{where}: empty list; give at least one")
    return tuple(value)


def typed_fields(cls: type, data: object, where: str, non_negative: bool = False) -> dict[str, Any]:
    """``data`` checked against dataclass ``cls``'s field annotations, as keyword arguments.

    Fields annotated ``int``, ``float``, ``str`` or ``bool`` (or one of them ``| None``) must hold
    that type (an ``int`` is a ``float``; numbers finite, ``>= 0`` with ``non_negative``); other
    fields pass unchecked. Unknown keys and missing required fields are errors too, so a hand-edited
    file fails here with its field named instead of deep inside the code that uses it.
    """
    import dataclasses
    import typing

    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a table of fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(map(repr, unknown[:5]))}")
    out: dict[str, Any] = {}
    for name, f in known.items():
        label = f"{where}: field {name!r}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise UserError(f"{label} is missing")
            continue
        value, hint = data[name], hints[name]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        args = set(typing.get_args(hint)) if union else {hint}
        if value is None and type(None) in args:
            out[name] = None
            continue
        scalar = args & {int, float, str, bool}
        if len(scalar) != 1:
            out[name] = value
            continue
        kind = scalar.pop()
        if kind is str and not isinstance(value, str):
            raise UserError(f"{label}: expected a string, got {type(value).__name__} {value!r}")
        if kind is bool and not isinstance(value, bool):
            raise UserError(f"{label}: expected true or false, got {value!r}")
        if kind is int:
            value = integer(value, label, minimum=0 if non_negative else None)
        if kind is float:
            value = number_in_range(value, label, low=0.0 if non_negative else None)
        out[name] = value
    return out
