"""Pins: syntax, matching, honoured as hard constraints, or rejected with the reason."""

from __future__ import annotations

import pytest

from placer.compiler import compile_result
from placer.errors import InfeasibleError, UserError
from placer.pins import pattern_matcher, read_pin_file, resolve_pins
from tests.solver.factories import llama_cost

NAMES = ["embed", *[f"layers.{i}.{b}" for i in range(12) for b in ("attn", "mlp")], "head"]


def test_ranges_globs_and_sub_units():
    matches = pattern_matcher("layers.0-2")
    assert [n for n in ("layers.0", "layers.2", "layers.3", "layers.10", "layers.1.mlp") if matches(n)] == [
        "layers.0", "layers.2", "layers.1.mlp"]
    pins = resolve_pins(["layers.0-1=0", "layers.[5-9].mlp=1", "head=2"], NAMES)
    named = {NAMES[i]: w for i, w in pins}
    assert named["layers.0.attn"] == 0 and named["layers.1.attn"] == 0
    assert named["layers.5.mlp"] == 1 and "layers.5.attn" not in named and named["head"] == 2


@pytest.mark.parametrize("spec, message", [
    ("layers.99=0", "matches no unit"), ("layers.0", "PATTERN=WAFER"), ("embed=x", "integer"),
    ("layers.5-2=0", "backwards"), ("embed=-1", ">= 0"),
    # a range past the last (or before the first) unit was accepted for the units it did match
    ("layers.10-40=0", "the range 10-40 runs past the units, which have 10-11 there"),
    ("layers.[1-9].attn=0", None), ("layers.0-11.mlp=0", None)])
def test_bad_pins_are_user_errors(spec, message):
    if message is None:  # the good neighbours of a bad case: a class, a range that fits
        assert resolve_pins([spec], NAMES)
        return
    with pytest.raises(UserError, match=message):
        resolve_pins([spec], NAMES)


def test_conflicting_pins_on_one_unit():
    with pytest.raises(UserError, match="pinned to wafer 0"):
        resolve_pins(["layers.3=0", "layers.3.mlp=1"], NAMES)


def test_pins_are_honoured_and_cost_balance():
    cost = llama_cost("llama-70b", granularity="layer", context=0)
    free = compile_result(cost, wafers=4, context=0, objective="min-latency", compare=False).plan
    pinned = compile_result(cost, wafers=4, context=0, objective="min-latency", compare=False,
                            pins=["layers.0-9=0", "layers.70=3"]).plan
    for i in range(10):
        assert pinned.wafer_of(f"layers.{i}") == 0
    assert pinned.wafer_of("layers.70") == 3
    assert pinned.performance.max_stage_s >= free.performance.max_stage_s


def test_pin_file(tmp_path):
    f = tmp_path / "pins.txt"
    f.write_text("# first wafer\nembed=0\nlayers.0-4=0  # a comment\n")
    plan = compile_result(llama_cost("llama-70b", context=0), wafers=4, context=0, pin_file=f,
                          compare=False).plan
    assert all(plan.wafer_of(f"layers.{i}") == 0 for i in range(5))


def test_pins_against_dag_order_memory_and_wafer_count():
    cost = llama_cost("llama-70b", context=0)
    with pytest.raises(InfeasibleError, match="contradict the DAG order.*layers.5.*layers.6"):
        compile_result(cost, wafers=4, context=0, pins=["layers.5=2", "layers.6=1"], compare=False)
    with pytest.raises(InfeasibleError, match="pins put .* on wafer 0"):
        compile_result(cost, wafers=4, context=0, pins=["layers.0-39=0"], compare=False)
    with pytest.raises(UserError, match="option --pin: .*head on wafer 4 but only wafers 0..3"):
        compile_result(cost, wafers=4, context=0, pins=["head=4"], compare=False)


def test_a_huge_range_costs_what_a_small_one_costs():
    # a range is matched by value, never expanded (10^8 used to build 10^8 strings): its ends
    # are checked against the values the units have, not by walking the range
    assert len(resolve_pins(["layers.0-11=0"], NAMES)) == 24
    with pytest.raises(UserError, match="the range 0-100000000 runs past the units, which have 0-11"):
        resolve_pins(["layers.0-100000000=0"], NAMES)


def test_pin_file_that_is_not_utf8_is_a_user_error(tmp_path):
    bad = tmp_path / "pins.txt"
    bad.write_bytes(b"layers.0=0\n\xff\xfe=1\n")
    with pytest.raises(UserError, match="not UTF-8"):
        read_pin_file(bad)
