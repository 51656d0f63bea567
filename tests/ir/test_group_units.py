"""group-units: units found from structure on real exports, synthetic ONNX and config-built IR.

Invariants checked everywhere: every node is in a unit, units are connected and form a DAG
(``verify(require_units=True)``), and blanking every scope changes nothing.
"""

from __future__ import annotations

import json

import pytest

from placer.errors import UserError
from placer.frontends.hf_config import from_config
from placer.frontends.onnx import from_onnx
from placer.ir import Graph, UnitKind, verify
from placer.ir.passes.group_units import GroupUnits, UnitOverrideError, group_units
from placer.pipeline import load_graph
from placer.synthetic import write_llama_like_onnx
from placer.unit_overrides import load_unit_overrides
from tests.models import FAMILIES, LAYERS


def _blank(graph: Graph) -> Graph:
    return graph.replace(nodes=tuple(n.replace(scope="") for n in graph.nodes))


def _grouped(graph: Graph, granularity: str = "layer", **kw: object) -> Graph:
    out = GroupUnits(granularity=granularity, **kw).run(graph).graph  # type: ignore[arg-type]
    verify(out, require_units=True)
    return out


def _layer_names(n: int) -> list[str]:
    return ["embed", *(f"layers.{i}" for i in range(n)), "head"]


@pytest.mark.slow
@pytest.mark.parametrize("with_cache", [False, True], ids=["nocache", "cache"])
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
@pytest.mark.parametrize("family", FAMILIES)
def test_real_exports_group_into_layers(onnx_model, family: str, dynamo: bool, with_cache: bool) -> None:
    graph = from_onnx(onnx_model(family, dynamo=dynamo, with_cache=with_cache))
    layered = _grouped(graph)
    assert [u.name for u in layered.units] == _layer_names(LAYERS)
    # The LM head's contraction and the embedding gather land in head and embed.
    assert layered.nodes_of_unit("embed") and layered.nodes_of_unit("head")
    blank = _grouped(_blank(graph))
    assert [n.unit for n in blank.nodes] == [n.unit for n in layered.nodes]
    blocks = _grouped(graph, "block")
    expected = ["embed"] + [f"layers.{i}.{b}" for i in range(LAYERS) for b in ("attn", "mlp")] + ["head"]
    assert [u.name for u in blocks.units] == expected
    # Every attention core is in an attn unit; the MLP's weighted MatMuls are in mlp units.
    for n in blocks.nodes:
        if n.op.value == "softmax" and blocks.unit_by_name[n.unit].kind is UnitKind.ATTENTION:
            break
    else:
        pytest.fail("no softmax in an attention unit")


def test_synthetic_onnx_layers_blocks_and_blank_scopes(tmp_path) -> None:
    path = write_llama_like_onnx(tmp_path / "m.onnx", layers=3, hidden=64, heads=4, kv_heads=2,
                                 head_dim=16, ffn=96, vocab=100, dtype="f32")
    graph = from_onnx(path)
    layered = _grouped(_blank(graph))
    assert [u.name for u in layered.units] == _layer_names(3)
    # Each layer unit holds exactly its 7 projections (q k v o gate up down).
    for i in range(3):
        mm = [n for n in layered.nodes_of_unit(f"layers.{i}")
              if n.op.value == "matmul" and any(x in graph.weights for x in n.inputs[1:2])
              and graph.weights[n.inputs[1]].role.value == "parameter"]
        assert len(mm) == 7
    blocks = _grouped(graph, "block")
    attn = blocks.nodes_of_unit("layers.1.attn")
    mlp = blocks.nodes_of_unit("layers.1.mlp")
    assert any(n.op.value == "softmax" for n in attn) and not any(n.op.value == "softmax" for n in mlp)
    # The norm before each block goes with it: both blocks hold a ReduceMean.
    assert any(n.op.value == "reduce_mean" for n in attn)
    assert any(n.op.value == "reduce_mean" for n in mlp)


_MOE = dict(model_type="mixtral", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, vocab_size=100, num_local_experts=8,
            num_experts_per_tok=2)
_SHARED = dict(model_type="deepseek_v3", hidden_size=64, intermediate_size=128, num_hidden_layers=3,
               num_attention_heads=4, num_key_value_heads=4, vocab_size=100, moe_intermediate_size=32,
               first_k_dense_replace=1, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=2,
               q_lora_rank=32, kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=16,
               v_head_dim=16, n_group=2, topk_group=1)


def _experts_in(graph: Graph, unit: str) -> set[int]:
    """Expert indices whose weights a unit reads (from the checkpoint-style weight names)."""
    out = set()
    for n in graph.nodes_of_unit(unit):
        for i in n.inputs:
            if ".experts." in i:
                out.add(int(i.split(".experts.")[1].split(".")[0]))
    return out


@pytest.mark.parametrize("blank", [False, True], ids=["scopes", "blank"])
def test_expert_granularity_splits_router_and_expert_groups(blank: bool) -> None:
    graph = from_config(_MOE)
    if blank:
        graph = _blank(graph)
    g = _grouped(graph, "expert", expert_group_size=2)
    names = [u.name for u in g.units]
    assert names[:7] == ["embed", "layers.0.attn", "layers.0.router", "layers.0.experts.0",
                         "layers.0.experts.1", "layers.0.experts.2", "layers.0.experts.3"]
    assert names[-1] == "head" and len(names) == 1 + 2 * 6 + 1
    # Weight names (independent of scopes) show each group holds 2 whole experts.
    groups = [_experts_in(g, f"layers.1.experts.{k}") for k in range(4)]
    assert sorted(map(sorted, groups)) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert not _experts_in(g, "layers.1.router") and not _experts_in(g, "layers.1.attn")
    default = _grouped(graph, "expert")  # 0: at most 8 groups, here one expert each
    assert sum(u.name.startswith("layers.0.experts.") for u in default.units) == 8


def test_shared_experts_get_their_own_unit_and_dense_layers_stay_whole() -> None:
    for graph in (from_config(_SHARED), _blank(from_config(_SHARED))):
        g = _grouped(graph, "expert", expert_group_size=4)
        names = [u.name for u in g.units]
        assert "layers.0.mlp" in names and "layers.0.router" not in names  # first layer dense
        for i in (1, 2):
            assert {f"layers.{i}.router", f"layers.{i}.shared", f"layers.{i}.experts.0"} <= set(names)
            shared = [i for n in g.nodes_of_unit(f"layers.{i}.shared") for i in n.inputs if "shared" in i]
            assert shared and not _experts_in(g, f"layers.{i}.shared")
            assert _experts_in(g, f"layers.{i}.experts.0") == {0, 1, 2, 3}


def test_non_moe_graph_at_expert_granularity_equals_block() -> None:
    graph = from_config(dict(_MOE, model_type="llama"))
    a, b = _grouped(graph, "expert"), _grouped(graph, "block")
    assert [n.unit for n in a.nodes] == [n.unit for n in b.nodes]


def test_unit_overrides_move_nodes_and_reject_mistakes(tmp_path) -> None:
    graph = _grouped(from_config(dict(_MOE, model_type="llama")))
    norm = next(n for n in graph.nodes if n.scope == "model.norm")
    toml = tmp_path / "units.toml"
    toml.write_text('[units]\n"model.norm" = "layers.1"\n')
    moved = group_units(graph, overrides=load_unit_overrides(toml))
    assert moved.node_by_name[norm.name].unit == "layers.1"
    verify(moved, require_units=True)
    js = tmp_path / "units.json"
    js.write_text(json.dumps({"model.norm*": "nowhere"}))
    with pytest.raises(UnitOverrideError, match=r"units\.json.*model\.norm\*.*unknown unit 'nowhere'"):
        group_units(graph, overrides=load_unit_overrides(js))
    js.write_text(json.dumps({"no.such.node.*": "head"}))
    with pytest.raises(UnitOverrideError, match=r"units\.json.*'no\.such\.node\.\*' matches no node"):
        group_units(graph, overrides=load_unit_overrides(js))
    toml.write_text("units = [")
    with pytest.raises(UserError, match=r"units\.toml: not valid TOML"):
        load_unit_overrides(toml)
    with pytest.raises(UserError, match="cannot read"):
        load_unit_overrides(tmp_path / "missing.toml")
    # Moving a middle layer's node to the head breaks the DAG: a one-line error, no traceback.
    js.write_text(json.dumps({"model.layers.0.mlp*": "head"}))
    with pytest.raises(UnitOverrideError, match=r"units\.json: unit overrides break the units"):
        group_units(graph, overrides=load_unit_overrides(js))
    # Through the pipeline the same mistake is a one-line UserError (exit 2 on the CLI).
    with pytest.raises(UserError, match=r"units\.json: unit overrides break the units"):
        load_graph(dict(_MOE, model_type="llama"), unit_overrides=js)
