"""Per-wafer layouts: whole, regions, auto; a tiny Llama from its config on wse-mini."""

from __future__ import annotations

import pytest

from placer import perf
from placer.cost_model import annotate_costs
from placer.errors import InfeasibleError
from placer.floorplan import check_floorplan
from placer.floorplan.layout import layout_name, layout_records, layout_wafers
from placer.pipeline import load_graph
from placer.targets import load_target
from placer.workload import Workload

MINI = load_target("wse-mini")
TINY_LLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "torch_dtype": "float32",
}


@pytest.fixture(scope="module")
def tiny():
    return annotate_costs(load_graph(TINY_LLAMA), MINI, Workload(context_tokens=256))


def _layouts(cost, layout, resident=4):
    names = [u.name for u in cost.units]
    return layout_wafers(
        cost,
        MINI,
        [names[:3], names[3:]],
        layout=layout,
        context_tokens=256,
        resident=resident,
        whole_seconds=lambda u: perf.unit_decode_seconds(u, MINI),
        time_limit_s=0.05,
    )


def test_whole_is_the_sum_of_full_grid_unit_times(tiny):
    layouts = _layouts(tiny, "whole")
    assert [x.layout for x in layouts] == ["whole", "whole"] and layout_name(layouts) == "whole"
    first = sum(perf.unit_decode_seconds(u, MINI) for u in tiny.units[:3])
    assert layouts[0].latency_s == layouts[0].interval_s == pytest.approx(first)
    assert layout_records(layouts) == []


def test_regions_floorplans_every_wafer(tiny):
    layouts = _layouts(tiny, "regions")
    assert layout_name(layouts) == "regions"
    records = layout_records(layouts)
    assert [r["unit"] for r in records] == [u.name for u in tiny.units]
    assert [r["wafer"] for r in records] == [0, 0, 0, 1, 1, 1]
    for x in layouts:
        assert (
            x.floorplan is not None
            and check_floorplan(x.floorplan.problem, x.floorplan.floorplan.rects) == []
        )
        fp = x.floorplan.floorplan
        assert (
            x.latency_s == fp.latency_ticks / MINI.clock_hz
            and x.interval_s == fp.interval_ticks / MINI.clock_hz
        )
        assert x.interval_s <= x.latency_s


def test_auto_picks_regions_only_when_they_pass_the_resident_sequences_sooner(tiny):
    whole, regions = _layouts(tiny, "whole"), _layouts(tiny, "regions")
    for s in (1, 4, 64):
        for w, x in enumerate(_layouts(tiny, "auto", resident=s)):
            better = max(regions[w].latency_s, s * regions[w].interval_s) < s * whole[w].latency_s
            assert x.layout == ("regions" if better else "whole")


def test_regions_that_cannot_fit_name_the_wafer(tiny):
    names = [u.name for u in tiny.units]
    with pytest.raises(InfeasibleError, match=r"^wafer 0: unit 'layers.0' needs"):
        layout_wafers(
            tiny,
            MINI,
            [names],
            layout="regions",
            context_tokens=10**7,
            resident=1,
            whole_seconds=lambda u: 0.0,
        )
    (auto,) = layout_wafers(
        tiny, MINI, [names], layout="auto", context_tokens=10**7, resident=1, whole_seconds=lambda u: 0.0
    )
    assert auto.layout == "whole"
