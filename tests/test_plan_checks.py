"""A tampered or mismatched plan is refused before anything runs."""

from __future__ import annotations

import pytest

from placer.errors import UserError
from placer.plan_checks import check_plan_assignment, check_plan_provenance
from placer.targets import load_target

UNITS = ["embed", "layers.0", "layers.1", "head"]
EDGES = [("embed", "layers.0"), ("layers.0", "layers.1"), ("layers.1", "head")]
GOOD = {"embed": 0, "layers.0": 0, "layers.1": 1, "head": 1}


def test_a_good_plan_passes():
    assert check_plan_assignment(GOOD, UNITS, EDGES, "p.json", plan_wafers=2, max_wafers=4) == GOOD


@pytest.mark.parametrize("change, message", [
    ({"layers.1": 10**7}, "outside the plan's wafers 0..1"),
    ({"layers.1": -1}, "outside the plan's wafers"),
    ({"layers.1": "1"}, "not an integer"),
    ({"layers.1": True}, "not an integer"),
    ({"layers.0": 1, "layers.1": 0}, "activations never flow back"),
    ({"ghost": 0}, "unknown unit"),
])
def test_tampered_assignments(change, message):
    with pytest.raises(UserError, match=message) as info:
        check_plan_assignment({**GOOD, **change}, UNITS, EDGES, "p.json", plan_wafers=2)
    assert "p.json" in str(info.value)


def test_missing_unit_empty_wafer_and_too_many_wafers():
    partial = dict(GOOD)
    del partial["head"]
    with pytest.raises(UserError, match="head have no wafer"):
        check_plan_assignment(partial, UNITS, EDGES, "p.json")
    with pytest.raises(UserError, match="wafer 1 of the plan holds no unit"):
        check_plan_assignment({u: 0 for u in UNITS} | {"head": 2}, UNITS, EDGES, "p.json", plan_wafers=3)
    with pytest.raises(UserError, match="uses 10,000,000 wafers but the target has 16"):
        check_plan_assignment(GOOD, UNITS, EDGES, "p.json", plan_wafers=10**7, max_wafers=16)


def test_provenance_model_and_target():
    wse3, other = load_target("wse3"), load_target("wse3", {"clock_hz": 9e8})
    with pytest.raises(UserError, match="another model file"):
        check_plan_provenance("a" * 64, "b" * 64, wse3, wse3, "p.json")
    with pytest.raises(UserError, match="target differs from the run's in clock_hz"):
        check_plan_provenance("a" * 64, "a" * 64, wse3, other, "p.json")
    assert check_plan_provenance("a" * 64, "a" * 64, wse3, other, "p.json", target_overridden=True) == [
        "clock_hz: plan 1100000000.0 -> run 900000000.0"]
    assert check_plan_provenance("a" * 64, "a" * 64, wse3, wse3, "p.json") == []
