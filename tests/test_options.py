"""CompileOptions: flat names, validation naming the option, resolution once, and the round trip."""

from __future__ import annotations

import pytest

from placer.errors import UserError
from placer.options import CompileOptions, Objective, Solver
from placer.targets import load_target


def test_round_trip_through_plain_data():
    opts = CompileOptions.from_flat(context=4096, prompt=8, concurrency=3, objective="max-throughput",
                                    wafers=2, reserve=0.1, solver="dp", pins=["layers.0=0"], seed=3,
                                    target_overrides=["clock_hz=1e9"], dtype_overrides=["*.mlp.*=fp8"])
    again = CompileOptions.from_dict(opts.to_dict())
    assert again.to_dict() == opts.to_dict()
    assert again.goal.objective is Objective.MAX_THROUGHPUT and again.solver.method is Solver.DP


def test_resolve_fills_target_defaults_once():
    target = load_target("wse3")
    opts = CompileOptions.from_flat().resolve(target)
    assert opts.deployment.reserve == target.default_reserve and opts.deployment.max_wafers == target.wafers
    assert opts.resolve(target) == opts
    exact = CompileOptions.from_flat(wafers=3).resolve(target)
    assert exact.deployment.limit == 3 and exact.deployment.max_wafers is None


@pytest.mark.parametrize("flat, option", [
    ({"objective": "fastest"}, "--objective"), ({"solver": "magic"}, "--solver"),
    ({"granularity": "atom"}, "--granularity"), ({"reserve": 1.5}, "--reserve"),
    ({"wafers": 2, "max_wafers": 3}, "--wafers and --max-wafers"), ({"time_limit": 0}, "--time-limit"),
    ({"min_tokens_per_s_per_user": -1.0}, "--min-tokens-per-s-per-user"),
    ({"concurrency": 0}, "--concurrency"),
    ({"target_overrides": ["clock_hz"]}, "--set"),
])
def test_bad_values_name_the_option(flat, option):
    with pytest.raises(UserError, match=option):
        CompileOptions.from_flat(**flat)


def test_more_wafers_than_the_target_has():
    with pytest.raises(UserError, match="--max-wafers 65 exceeds the 64 wafers"):
        CompileOptions.from_flat(max_wafers=65).resolve(load_target("wse3"))
