"""Floorplans of real models: Llama-3.1-8B from its config on one WSE-3 wafer, the plan's records
and the SVG picture."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from placer.cost_model import annotate_costs
from placer.errors import InfeasibleError
from placer.floorplan import check_floorplan, floorplan_records, floorplan_svg, floorplan_wafer
from placer.floorplan.pricing import region_pe_bytes
from placer.pipeline import load_graph
from placer.targets import load_target
from placer.workload import Workload
from placer.zoo import load_zoo_config

WSE3 = load_target("wse3")


@pytest.fixture(scope="module")
def llama8b():
    return annotate_costs(load_graph(load_zoo_config("llama-3.1-8b")), WSE3, Workload())


def test_llama_3_1_8b_on_one_wse3_wafer(llama8b):
    names = [u.name for u in llama8b.units]
    runs = []
    for _ in range(2):
        wf = floorplan_wafer(llama8b, WSE3, names, context_tokens=8192, time_limit_s=0.05)
        records = floorplan_records(wf.problem, wf.floorplan, wafer=0)
        runs.append((json.dumps(records, sort_keys=True), floorplan_svg(wf.problem, wf.floorplan, "llama")))
    assert runs[0] == runs[1]  # byte-identical records and picture
    assert check_floorplan(wf.problem, wf.floorplan.rects) == []  # inside, no overlap, bytes, colours
    assert [r["unit"] for r in records] == names and len(names) == 34
    by_name = {u.name: u for u in llama8b.units}
    for r in records:  # every PE within 48 KB, recomputed from the record
        nbytes = region_pe_bytes([by_name[r["unit"]]], WSE3, r["rows"], r["cols"], 8192, 1)
        assert nbytes <= WSE3.pe_sram_bytes == 49_152
    assert set(records[0]) == {"unit", "wafer", "row", "col", "rows", "cols"}
    # The slowest region sets the interval.
    assert wf.floorplan.interval_ticks == max(
        next(s.ticks for s in wf.problem.regions[r.region].shapes if (s.rows, s.cols) == (r.rows, r.cols))
        for r in wf.floorplan.rects
    )


def test_a_long_context_names_the_unit_that_does_not_fit(llama8b):
    with pytest.raises(
        InfeasibleError,
        match=r"unit 'layers.0' needs [\d,]+ B per PE even on 762 x 1172 PEs; "
        r"the target has 49,152 B per PE",
    ):
        floorplan_wafer(llama8b, WSE3, ["layers.0"], context_tokens=20_000_000)


def test_svg_draws_every_region_shaded_by_sram_and_the_path(llama8b):
    names = [u.name for u in llama8b.units][:6]
    wf = floorplan_wafer(llama8b, WSE3, names, context_tokens=8192, time_limit_s=0.05)
    text = floorplan_svg(wf.problem, wf.floorplan, "llama-3.1-8b <wafer 0>", clock_hz=WSE3.clock_hz)
    root = ET.fromstring(text)
    ns = "{http://www.w3.org/2000/svg}"
    groups = root.findall(f"{ns}g")
    assert len(groups) == 6
    titles = [g.find(f"{ns}title").text for g in groups]
    assert titles[1].startswith("layers.0: ") and "B per PE of 49,152" in titles[1] and " us, " in titles[1]
    labels = [t.text for g in groups for t in g.findall(f"{ns}text")]
    assert "layers.0" in labels
    fills = {g.find(f"{ns}title").text.split(":")[0]: g.find(f"{ns}rect").get("fill") for g in groups}
    assert len(set(fills.values())) > 1  # embed (a table) and the layers use SRAM differently
    arrows = [e for e in root.findall(f"{ns}line") if e.get("marker-end")]
    assert len(arrows) == 5  # embed -> layers.0 -> ... -> layers.4
    assert "llama-3.1-8b &lt;wafer 0&gt;" in text
