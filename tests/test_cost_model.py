"""Cost rules and annotate_costs: coverage of every op kind, exact FLOP formulas on small graphs,
unit totals equal graph totals, dtype policies, KV sizes, and parameter counts against torch."""

from __future__ import annotations

import pytest
from placer.ir import DType, GraphBuilder, OpKind, TensorType, WeightRole
from placer.ir.dtypes import DType as D
from placer.ir.passes.find_kv_caches import FindKVCaches
from placer.ir.passes.group_units import group_units
from placer.ir.symbolic import Sym

from placer.cost_model import annotate_costs
from placer.cost_rules import COST_RULES
from placer.frontends.onnx import from_onnx
from placer.synthetic import write_llama_like_onnx
from placer.targets import load_target
from placer.workload import DtypePolicy, Workload
from tests.models import HEADS, HIDDEN, KV_HEADS, LAYERS

TARGET = load_target("wse3")


def test_every_op_kind_has_a_cost_rule() -> None:
    assert [k for k in OpKind if k not in COST_RULES] == []


def _attention_graph(d: int = 8) -> tuple:
    """embed -> q,k,v projections -> softmax(q k^T) v -> head, with symbolic batch/seq."""
    b, s = Sym.var("batch"), Sym.var("seq")
    f32 = DType.FLOAT32
    g = GraphBuilder("att")
    ids = g.input("ids", TensorType(DType.INT64, (b, s)))
    table = g.weight("emb", TensorType(f32, (50, d)), role=WeightRole.PARAMETER)
    h = g.op(OpKind.GATHER, [table, ids], types=[TensorType(f32, (b, s, d))])
    act = TensorType(f32, (b, s, d))
    proj = {}
    for name in ("q", "k", "v", "o"):
        proj[name] = g.weight(f"w{name}", TensorType(f32, (d, d)), role=WeightRole.PARAMETER)
    q = g.op(OpKind.MATMUL, [h, proj["q"]], types=[act])
    k = g.op(OpKind.MATMUL, [h, proj["k"]], types=[act])
    v = g.op(OpKind.MATMUL, [h, proj["v"]], types=[act])
    kt = g.op(OpKind.TRANSPOSE, [k], types=[TensorType(f32, (b, d, s))],
              attrs=__import__("placer.ir.attrs", fromlist=["TransposeAttrs"]).TransposeAttrs((0, 2, 1)))
    scores = g.op(OpKind.MATMUL, [q, kt], types=[TensorType(f32, (b, s, s))])
    probs = g.op(OpKind.SOFTMAX, [scores], types=[TensorType(f32, (b, s, s))])
    ctx = g.op(OpKind.MATMUL, [probs, v], types=[act])
    o = g.op(OpKind.MATMUL, [ctx, proj["o"]], types=[act])
    h2 = g.op(OpKind.ADD, [h, o], types=[act])
    head = g.weight("lm", TensorType(f32, (d, 50)), role=WeightRole.PARAMETER)
    logits = g.op(OpKind.MATMUL, [h2, head], types=[TensorType(f32, (b, s, 50))])
    g.output(logits)
    return g.build(), d


def test_decode_and_prefill_flops_follow_the_formulas() -> None:
    graph, d = _attention_graph()
    graph = group_units(FindKVCaches().run(graph).graph)
    assert [u.name for u in graph.units] == ["embed", "layers.0", "head"]
    C, P = 100, 7
    cost = annotate_costs(graph, TARGET, Workload(context_tokens=C, prompt_tokens=P))
    layer = cost.unit("layers.0")
    proj = 4 * 2 * d * d  # four d x d GEMVs per token
    # Token C+1 attends to C+1 positions: QK^T adds 2d((C+1)^2 - C^2), PV the same.
    attn = 2 * 2 * d * ((C + 1) ** 2 - C ** 2)
    softmax = 5 * ((C + 1) ** 2 - C ** 2)
    assert layer.decode.flops == proj + attn + softmax + d  # + the residual add
    assert layer.prefill.flops == P * proj + 4 * d * P * P + 5 * P * P + P * d
    assert layer.decode.weight_read_bytes == 4 * d * d * 4
    assert layer.decode.collectives == 4 + 1  # four weight GEMVs and one softmax
    assert layer.matmul_shapes == ((d, d),) * 4
    assert cost.unit("head").decode.flops == 2 * d * 50
    assert cost.unit("embed").decode.weight_read_bytes == d * 4  # one row of the table
    assert layer.kv_bytes_per_token == 2 * d * 4
    assert [(e.src, e.dst, e.bytes_per_token) for e in cost.edges] == [
        ("embed", "layers.0", d * 4), ("layers.0", "head", d * 4)]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = write_llama_like_onnx(tmp_path_factory.mktemp("syn") / "m.onnx", layers=3, hidden=64, heads=4,
                                 kv_heads=2, head_dim=16, ffn=96, vocab=100, dtype="f32")
    return group_units(FindKVCaches().run(from_onnx(path)).graph)


def test_unit_totals_equal_graph_totals(synthetic) -> None:
    cost = annotate_costs(synthetic, TARGET, Workload())
    params = synthetic.parameter_count()
    assert cost.parameters == sum(u.parameters for u in cost.units) == params
    assert cost.weight_bytes == sum(u.weight_bytes for u in cost.units) == 4 * params
    assert sum(u.constant_bytes for u in cost.units) == sum(
        w.nbytes for w in synthetic.weights.values() if w.role is not WeightRole.PARAMETER)
    assert cost.kv_bytes_per_token == sum(u.kv_bytes_per_token for u in cost.units) == 2 * 3 * 2 * 16 * 4
    out = {u.name: u.activation_out_bytes_per_token for u in cost.units}
    for name, total in out.items():
        assert total == sum(e.bytes_per_token for e in cost.edges if e.src == name)
    # Each layer's GEMVs: (K, N) of q k v o gate up down; decode FLOPs at least 2 K N each.
    layer = cost.unit("layers.1")
    assert sorted(layer.matmul_shapes) == sorted([(64, 64), (64, 32), (64, 32), (64, 64),
                                                  (64, 96), (64, 96), (96, 64)])
    assert layer.decode.flops > 2 * sum(k * n for k, n in layer.matmul_shapes)


def test_weight_and_kv_dtype_policies(synthetic) -> None:
    params = {n: w for n, w in synthetic.weights.items() if w.role is WeightRole.PARAMETER}
    bf16 = annotate_costs(synthetic, TARGET, Workload(weights=DtypePolicy.parse("bf16"), kv_dtype="fp8e4m3"))
    assert bf16.weight_bytes == 2 * sum(w.numel for w in params.values())
    assert bf16.kv_bytes_per_token == 2 * 3 * 2 * 16 * 1
    mx = annotate_costs(synthetic, TARGET, Workload(weights=DtypePolicy.parse("mxfp4")))
    assert mx.weight_bytes == sum(D.MXFP4.storage_bytes(w.numel) for w in params.values())
    # Override: only the MLP down projections (matched by name) stay f32, the rest are fp8.
    policy = DtypePolicy.parse("fp8", ["*down_proj*=f32"])
    mixed = annotate_costs(synthetic, TARGET, Workload(weights=policy))
    down = sum(w.numel for n, w in params.items() if "down_proj" in n)
    assert mixed.weight_bytes == (sum(w.numel for w in params.values()) - down) + 4 * down


@pytest.mark.slow
@pytest.mark.parametrize("family", ["llama", "gpt2", "mixtral"])
def test_parameters_match_torch_and_kv_is_fp32_native(onnx_model, family: str) -> None:
    from tests.models import parameter_count

    graph = group_units(FindKVCaches().run(from_onnx(onnx_model(family))).graph)
    cost = annotate_costs(graph, TARGET, Workload(context_tokens=64))
    assert cost.parameters == parameter_count(family)
    kv_heads = HEADS if family == "gpt2" else KV_HEADS
    assert cost.kv_bytes_per_token == 2 * LAYERS * kv_heads * (HIDDEN // HEADS) * 4


@pytest.mark.slow
def test_cache_and_nocache_exports_agree_on_weights_and_kv(onnx_model) -> None:
    costs = []
    for with_cache in (False, True):
        graph = group_units(FindKVCaches().run(from_onnx(onnx_model("llama", with_cache=with_cache))).graph)
        costs.append(annotate_costs(graph, TARGET, Workload(context_tokens=32)))
    a, b = costs
    for ua, ub in zip(a.units, b.units):
        assert (ua.name, ua.parameters, ua.weight_bytes, ua.kv_bytes_per_token, ua.matmul_shapes) == \
            (ub.name, ub.parameters, ub.weight_bytes, ub.kv_bytes_per_token, ub.matmul_shapes)
        assert ua.decode.weight_read_bytes == ub.decode.weight_read_bytes
