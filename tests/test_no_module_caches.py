"""Analysis results are handed on explicitly (``LoadedModel.structure``, a per-sweep memo), never
cached in a module keyed by object identity or by a path."""

from __future__ import annotations

import pytest

from placer.cost_model import annotate_costs
from placer.ir.passes.group_units import analyze_structure
from placer.pipeline import load_model
from placer.targets import load_target
from placer.workload import Workload

_MOE = dict(model_type="mixtral", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, vocab_size=100, num_local_experts=8,
            num_experts_per_tok=2)
_DENSE = dict(_MOE, model_type="llama", num_hidden_layers=3)


def test_the_pipelines_structure_costs_like_a_fresh_analysis() -> None:
    target, workload = load_target("wse3"), Workload(context_tokens=256, prompt_tokens=16)
    moe = load_model(_MOE, granularity="expert")
    assert moe.structure is not None
    handed_on = annotate_costs(moe.graph, target, workload, moe.structure)
    load_model(_DENSE)  # another model in between: nothing is remembered across models
    fresh = annotate_costs(moe.graph, target, workload)
    assert fresh == handed_on
    assert [m.unit for m in analyze_structure(moe.graph).moe_layers] == \
        [m.unit for m in moe.structure.moe_layers]


def test_a_structure_of_another_graph_is_refused() -> None:
    moe, dense = load_model(_MOE), load_model(_DENSE)
    with pytest.raises(ValueError, match="describes graph"):
        annotate_costs(dense.graph, load_target("wse3"), Workload(), moe.structure)


def test_a_sweep_key_follows_an_edited_model_file(tmp_path) -> None:
    """Per-sweep memo, not a module cache: a config edited between two sweeps of one process
    gets a new input hash (the row cache must not serve the old model's results)."""
    import json

    from placer.sweep import point_key, point_keys

    config = tmp_path / "config.json"
    config.write_text(json.dumps(_DENSE))
    point = {"model": str(config), "target": "wse3", "wafers": 1}
    before = point_key(point)
    assert point_keys([point, dict(point)]) == [before, before]
    config.write_text(json.dumps(dict(_DENSE, num_hidden_layers=4)))
    assert point_key(point) != before
