"""Plan JSON: required keys, round trip, byte-identical output in one process and across processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from placer.compiler import compile_model, compile_result, write_outputs
from placer.plan import SCHEMA_VERSION, Plan
from tests.solver.factories import llama_cost

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
from placer.compiler import compile_model
from tests.solver.factories import llama_cost
import sys
sys.stdout.write(compile_model(llama_cost("llama-70b", granularity="block"), wafers=4, concurrency=9,
                               objective="min-latency", time_limit=5.0, seed=7).to_json())
"""


@pytest.fixture(scope="module")
def plan() -> Plan:
    return compile_model(llama_cost("llama-70b", granularity="block"), wafers=4, concurrency=9,
                         objective="min-latency", time_limit=5.0, seed=7)


def test_keys(plan):
    d = json.loads(plan.to_json())
    assert d["schema_version"] == SCHEMA_VERSION
    assert set(d["model"]) >= {"name", "sha256", "parameters", "weight_bytes"}
    assert set(d["solver"]) >= {"name", "status", "objective", "bound", "gap", "seed"}
    assert set(d["kv"]) >= {"bytes_per_token", "resident_sequences", "parked_sequences", "swap_in_seconds"}
    assert set(d["performance"]) >= {"time_per_output_token_s", "ttft_s", "tokens_per_s_per_user",
                                     "tokens_per_s_total", "sequences_to_fill_pipeline"}
    for w in d["wafers"]:
        assert set(w) >= {"index", "units", "memory", "io", "stage_seconds"}
        assert set(w["memory"]) == {"weights", "kv", "activations", "reserved", "free"}
        assert set(w["io"]) >= {"bytes_per_token", "utilization"}
    assert d["target"]["sram_bytes"] == 44_000_000_000 and d["workload"]["concurrency"] == 9
    assert d["provenance"]["placer_version"] and d["provenance"]["options"]["solver"]["seed"] == 7
    assert sorted(d["assignment"]) == sorted(u for w in d["wafers"] for u in w["units"])
    assert not re.search(r"20\d\d-\d\d-\d\d|\d\d:\d\d:\d\d", plan.to_json())  # no dates or clock times


def test_round_trip(plan):
    again = Plan.from_json(plan.to_json())
    assert again == plan and again.to_json() == plan.to_json()


def test_same_bytes_in_process_and_across_processes(plan):
    twice = compile_model(llama_cost("llama-70b", granularity="block"), wafers=4, concurrency=9,
                          objective="min-latency", time_limit=5.0, seed=7)
    assert twice.to_json() == plan.to_json()
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout == plan.to_json()


def test_outputs_written(tmp_path):
    result = compile_result(llama_cost("llama-8b", context=1024), context=1024, time_limit=2.0)
    plan_path, report_path = write_outputs(result, tmp_path / "out")
    assert Plan.from_json(plan_path.read_text()) == result.plan
    report = report_path.read_text()
    for method in ("cp-sat", "dp", "uniform", "greedy", "deepspeed"):
        assert f"| {method} |" in report
    assert "## Binding constraints" in report and "solve s" in report
    assert "solve" not in plan_path.read_text().replace("solver", "")  # no solve time in the plan
