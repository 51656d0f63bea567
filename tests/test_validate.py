"""Boundary checks: encodings, nesting, finite numbers, integers and ranges, one line each."""

from __future__ import annotations

import math

import pytest

from placer.errors import UserError
from placer.unit_overrides import load_unit_overrides
from placer.validate import (
    MAX_NESTING,
    finite_number,
    integer,
    load_structured,
    nesting_depth,
    number_in_range,
    parse_json,
)


def test_nesting_depth_ignores_brackets_in_strings():
    assert nesting_depth('{"a": [1, {"b": "[[[[{"}]}') == 3
    assert nesting_depth("a = ['[[[', 2]\n[t]\nb = {c = [1]}") == 2


@pytest.mark.parametrize("suffix, text", [
    (".json", "[" * 100_000 + "]" * 100_000),
    (".toml", "a = " + "[" * 5000 + "]" * 5000),
])
def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path, suffix, text):
    path = tmp_path / f"deep{suffix}"
    path.write_text(text)
    with pytest.raises(UserError, match=f"more than the {MAX_NESTING}") as info:
        load_structured(path, "test file")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_invalid_utf8_names_the_file_and_byte(tmp_path):
    path = tmp_path / "units.toml"
    path.write_bytes(b'"layers.*" = "x"\n\xc3\x28 = 1\n')
    with pytest.raises(UserError, match=r"units.toml: unit overrides is not UTF-8 text \(byte 17"):
        load_unit_overrides(path)


def test_json_nan_and_infinity_are_refused():
    for text in ('{"a": NaN}', '{"a": Infinity}', '[-Infinity]'):
        with pytest.raises(UserError, match="not a finite number"):
            parse_json(text, "x.json")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "3", None, True])
def test_finite_number_refuses(value):
    with pytest.raises(UserError, match="field"):
        finite_number(value, "field")


def test_integer_and_ranges():
    assert integer(4.0, "n") == 4
    for bad in (4.5, math.nan, "4", False):
        with pytest.raises(UserError, match="expected an integer"):
            integer(bad, "n")
    with pytest.raises(UserError, match="must be <= 1,000"):
        integer(10**30, "n", maximum=1000)
    with pytest.raises(UserError, match="must be < 1"):
        number_in_range(1.0, "reserve", 0.0, 1.0, high_open=True)
    assert number_in_range(0.0, "reserve", 0.0, 1.0, high_open=True) == 0.0


@pytest.mark.parametrize("text, message", [
    ('{"units": {"a*": ""}}', "must map to a unit name"),
    ('{"a*": 3}', "must map to a unit name"),
    ("[]", "non-empty mapping"),
])
def test_unit_override_shapes(tmp_path, text, message):
    path = tmp_path / "o.json"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_unit_overrides(path)
