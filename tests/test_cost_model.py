"""Cost rules and annotate_costs: coverage of every op kind, exact FLOP formulas on small graphs,
unit totals equal graph totals, dtype policies, KV sizes, and parameter counts against torch."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest

from placer.cost_model import annotate_costs
from placer.cost_rules import COST_RULES
from placer.costs import CollectiveKind, NodeCost
from placer.frontends.onnx import from_onnx
from placer.ir import DType, GraphBuilder, OpKind, TensorType, WeightRole
from placer.ir.dtypes import DType as D
from placer.ir.graph import UnitKind
from placer.ir.op_semantics import FLOPS_PER_ELEMENT
from placer.ir.passes.find_kv_caches import FindKVCaches
from placer.ir.passes.group_units import group_units
from placer.ir.symbolic import Sym
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
    # The graph computes all seq x seq scores; decoding with a KV cache, token C+1 computes
    # only its own row over C+1 positions: QK^T 2d(C+1), PV the same, softmax per score.
    attn = 2 * 2 * d * (C + 1)
    per_score = FLOPS_PER_ELEMENT[OpKind.SOFTMAX]
    softmax = per_score * (C + 1)
    assert layer.decode.flops == proj + attn + softmax + d  # + the residual add
    assert layer.prefill.flops == P * proj + 4 * d * P * P + per_score * P * P + P * d
    assert layer.decode.weight_read_bytes == 4 * d * d * 4
    # Four weight GEMVs, QK^T and PV over the context (GEMV collectives), softmax max and sum
    # (row all-reduces), per token, in program order; q, k and v share one broadcast input;
    # the transpose of k moves its d elements per token (a relayout, as the emulator runs it).
    G, R, L = CollectiveKind.GEMV, CollectiveKind.ROW_ALLREDUCE, CollectiveKind.RELAYOUT
    for c, keys in ((layer.decode, C + 1), (layer.prefill, P)):
        assert [(x.kind, x.in_elements, x.out_elements, x.element_bytes) for x in c.collectives] == [
            (G, d, d, 4)] * 3 + [(L, d, d, 4), (G, d, keys, 4), (R, 1, 1, 4), (R, 1, 1, 4), (G, keys, d, 4),
                                 (G, d, d, 4)]
        assert (c.gemv_collectives, c.row_collectives) == (4 + 2, 2)
        assert len({x.input_key for x in c.collectives[:3]}) == 1 and c.collectives[4].input_key != ""
    assert layer.decode.kv_read_bytes == C * 2 * d * 4 and layer.prefill.kv_read_bytes == 0
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


# --- Mixture of experts: a token uses k of the E routed experts --------------------------------

_MIXTRAL = dict(model_type="mixtral", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, vocab_size=100, num_local_experts=8,
                num_experts_per_tok=2)
_DEEPSEEK = dict(model_type="deepseek_v3", hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                 num_attention_heads=4, num_key_value_heads=4, vocab_size=100, moe_intermediate_size=32,
                 first_k_dense_replace=1, n_routed_experts=6, num_experts_per_tok=2, n_shared_experts=1,
                 q_lora_rank=32, kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=16,
                 v_head_dim=16, n_group=2, topk_group=1)
_MOE_WORKLOAD = Workload(context_tokens=40, prompt_tokens=5)


def _moe_cost(config: dict, granularity: str = "layer", size: int = 0,
              workload: Workload = _MOE_WORKLOAD):
    from placer.pipeline import load_graph

    graph = load_graph(dict(config), granularity=granularity, expert_group_size=size)
    return graph, annotate_costs(graph, TARGET, workload)


def _routed_weight_bytes(graph, layer: int) -> int:
    """Bytes of the routed experts' weights of a layer, from the checkpoint-style names alone."""
    return sum(w.nbytes for n, w in graph.weights.items()
               if f"layers.{layer}." in n and ".experts." in n and w.role is WeightRole.PARAMETER)


def _round_half_up(x) -> int:
    from fractions import Fraction

    x = Fraction(x)
    return (2 * x.numerator + x.denominator) // (2 * x.denominator)


@pytest.mark.parametrize("config", [_MIXTRAL, _DEEPSEEK], ids=["mixtral", "deepseek"])
def test_moe_layer_reads_k_of_e_experts_weights(config) -> None:
    from fractions import Fraction

    graph, cost = _moe_cost(config)
    E = config.get("num_local_experts") or config["n_routed_experts"]
    k, P = config["num_experts_per_tok"], _MOE_WORKLOAD.prompt_tokens
    assert cost.weight_bytes == sum(w.nbytes for w in graph.weights.values()
                                    if w.role is WeightRole.PARAMETER)  # every expert resident
    moe_layers = 0
    for unit in cost.units:
        if unit.layer < 0:
            continue
        routed = _routed_weight_bytes(graph, unit.layer)
        rest = unit.weight_bytes - routed  # attention, norms, router, shared experts: read whole
        moe_layers += routed > 0
        assert unit.decode.weight_read_bytes == rest + _round_half_up(Fraction(routed * k, E))
        # A prompt of P tokens reads an expert's weights once if any token picks it.
        used = 1 - Fraction(E - k, E) ** P
        assert unit.prefill.weight_read_bytes == rest + _round_half_up(routed * used)
    assert moe_layers == (2 if config is _MIXTRAL else 2)


def _by_layer(cost, field: str) -> dict[int, object]:
    """``field`` summed per layer; a cost's norm fusion marks (``Collective.feeds``) cleared:
    a norm fuses only with GEMVs of its own unit, so splitting a layer's experts into units of
    their own unfuses the norm that feeds them (the same collectives, paid unfused); input keys
    cleared too: they are unit-local labels (``v0``, ...), meaningless across units."""
    out: dict[int, object] = {}
    for u in cost.units:
        if u.layer >= 0:
            v = getattr(u, field)
            if isinstance(v, NodeCost):
                v = dataclasses.replace(v, collectives=tuple(dataclasses.replace(c, feeds="", input_key="")
                                                             for c in v.collectives))
            out[u.layer] = out[u.layer] + v if u.layer in out else v
    return out


@pytest.mark.parametrize("config", [_MIXTRAL, _DEEPSEEK], ids=["mixtral", "deepseek"])
def test_moe_layer_totals_equal_the_sum_of_its_expert_units(config) -> None:
    _, layer = _moe_cost(config, "layer")
    for size in (1, 4):  # 4: uneven groups of 4 and 2 (and of 4 and 4 for Mixtral)
        graph, expert = _moe_cost(config, "expert", size)
        assert any(u.name.endswith(".experts.1") for u in expert.units)
        for field in ("prefill", "weight_bytes", "parameters", "kv_bytes_per_token"):
            assert _by_layer(expert, field) == _by_layer(layer, field), field
        # decode: the same work; a unit's active experts run batched (one collective per op of
        # the expert, elements times the count), so the elements add up over the groups, and
        # every group that runs experts launches the expert's kernels itself
        grouped, whole = _by_layer(expert, "decode"), _by_layer(layer, "decode")
        assert list(grouped) == list(whole)
        for i, (a, b) in enumerate(zip(grouped.values(), whole.values())):
            assert (a.flops, a.weight_read_bytes, a.activation_bytes, a.kv_read_bytes) == \
                (b.flops, b.weight_read_bytes, b.activation_bytes, b.kv_read_bytes), i
            assert _elements(a) == _elements(b) and a.kernels >= b.kernels
        for name in ("embed", "head"):
            assert expert.unit(name) == layer.unit(name)


def _elements(cost) -> dict:
    """Elements per token of ``cost``'s collectives, summed per kind."""
    out: dict = {}
    for c in cost.collectives:
        out[c.kind] = out.get(c.kind, 0) + c.in_elements + c.out_elements
    return out


def test_a_tokens_active_experts_run_as_one_batched_step() -> None:
    """Mixtral, k = 2 of E = 8: each MoE layer's decode holds every op of one expert once, with
    k times its elements (w1 and w3: hidden -> intermediate, w2: back, from the config), not k
    copies; without routing the unit holds the same GEMVs less these three."""
    from placer.costs import CollectiveKind

    _, cost = _moe_cost(_MIXTRAL)
    k, h, f = _MIXTRAL["num_experts_per_tok"], _MIXTRAL["hidden_size"], _MIXTRAL["intermediate_size"]
    _, plain = _moe_cost({**_MIXTRAL, "model_type": "mistral"})  # the same layer with a dense MLP
    for name in ("layers.0", "layers.1"):
        gemvs = [c for c in cost.unit(name).decode.collectives if c.kind is CollectiveKind.GEMV]
        dense = [c for c in plain.unit(name).decode.collectives if c.kind is CollectiveKind.GEMV]
        routed = gemvs[-3:]
        assert len(gemvs) == len(dense) - 3 + 1 + 3  # attention's as before, the router, one expert
        assert sorted((c.in_elements, c.out_elements) for c in routed) == \
            sorted([(k * h, k * f), (k * h, k * f), (k * f, k * h)])
        # w1 and w3 read the normed hidden state, which every active expert shares: its key stays
        up = [c for c in routed if c.out_elements == k * f]
        assert up[0].input_key == up[1].input_key != ""


def _dense_edge_bytes(graph, src: str, dst: str) -> int:
    """Bytes per decode token of the values crossing src -> dst, from the verifier's unit DAG;
    a value with no parameter upstream (networkx ancestors, Shape ops reading no data) costs
    the graph inputs it reads instead, when they are smaller."""
    import networkx as nx

    from placer.ir.nxview import to_networkx
    from placer.ir.verifier import unit_graph

    def nbytes(v: str) -> int:
        numel = 1
        for d in graph.types[v].shape:
            numel *= d if isinstance(d, int) else d.evaluate({"batch": 1, "seq": 1})
        return graph.types[v].dtype.storage_bytes(numel)

    flow = to_networkx(graph, include_values=True)
    flow.remove_edges_from([e for n in graph.nodes if n.op is OpKind.SHAPE for e in flow.in_edges(n.name)])
    params = {"%" + n for n, w in graph.weights.items() if w.role is WeightRole.PARAMETER}
    total, sources = 0, set()
    for v in unit_graph(graph).edges[src, dst]["values"]:
        above = nx.ancestors(flow, "%" + v)
        inputs = {a[1:] for a in above if a[1:] in graph.inputs}
        if above & params or sum(map(nbytes, inputs)) >= nbytes(v):
            total += nbytes(v)
        else:
            sources |= inputs
    return total + sum(map(nbytes, sources))


def _brute_force_use(E: int, k: int, group: set[int]):
    """P(a uniformly random k-subset of E experts meets ``group``), by enumeration."""
    from fractions import Fraction
    from itertools import combinations

    subsets = list(combinations(range(E), k))
    return Fraction(sum(bool(group & set(s)) for s in subsets), len(subsets))


def test_expert_group_traffic_is_scaled_by_the_probability_the_group_is_used() -> None:
    E, k, size = 8, 2, 3  # groups of 3, 3, 2 experts
    graph, cost = _moe_cost(_MIXTRAL, "expert", size)
    edges = {(e.src, e.dst): e.bytes_per_token for e in cost.edges}
    for i in range(2):
        group = {g: set(range(3 * g, min(3 * g + 3, E))) for g in range(3)}
        use = {g: _brute_force_use(E, k, group[g]) for g in range(3)}
        assert 0 < use[2] < use[0] < 1
        router, nxt = f"layers.{i}.router", ("head" if i == 1 else "layers.1.attn")
        expected = {  # (src, dst) -> share of the dense bytes that crosses per token
            **{(router, f"layers.{i}.experts.{g}"): use[g] for g in range(3)},        # x and gates
            **{(f"layers.{i}.experts.{g}", f"layers.{i}.experts.{g + 1}"): use[g] for g in range(2)},
            # The residual stream passes through the last group (which adds the MoE output): dense.
            (f"layers.{i}.attn", f"layers.{i}.experts.2"): 1,
            (f"layers.{i}.experts.2", nxt): 1,
        }
        touching = {e for e in edges if any(u.startswith(f"layers.{i}.experts.") for u in e)}
        assert touching == set(expected)
        for (src, dst), share in expected.items():
            dense = _dense_edge_bytes(graph, src, dst)
            assert dense > 0 and abs(edges[src, dst] - dense * share) <= 0.5, (src, dst)
    for u in cost.units:
        assert u.activation_out_bytes_per_token == sum(b for (s, _), b in edges.items() if s == u.name)


def test_routing_every_expert_is_dense_and_dense_models_are_unchanged() -> None:
    # k = E: every expert computes every token, so nothing may be scaled.
    graph, cost = _moe_cost(dict(_MIXTRAL, num_local_experts=4, num_experts_per_tok=4), "expert", 1)
    for u in cost.units:
        if u.layer >= 0:
            assert u.decode.weight_read_bytes == u.weight_bytes
    for e in cost.edges:
        assert e.bytes_per_token == _dense_edge_bytes(graph, e.src, e.dst)
    # A dense model: every parameter read once per decode token; expert granularity == block.
    llama = dict(_MIXTRAL, model_type="llama")
    _, block = _moe_cost(llama, "block")
    graph, expert = _moe_cost(llama, "expert")
    assert expert == block
    for u in block.units:
        if u.layer >= 0:
            assert u.decode.weight_read_bytes == u.weight_bytes
    for e in block.edges:
        assert e.bytes_per_token == _dense_edge_bytes(graph, e.src, e.dst)


def test_each_expert_unit_costs_k_over_e_of_its_dense_flops() -> None:
    from fractions import Fraction

    H, I, E, k = 64, 96, 8, 2
    _, cost = _moe_cost(_MIXTRAL, "expert", 1)
    for i in range(2):
        for e in range(E):
            # gate, up, down GEMVs; SiLU and the gating product; times its gate;
            # the partial-sum add (none for expert 0).
            dense = 3 * 2 * H * I + FLOPS_PER_ELEMENT[OpKind.SILU] * I + I + H + (H if e else 0)
            flops = cost.unit(f"layers.{i}.experts.{e}").decode.flops
            residual_add = H if e == E - 1 else 0  # the layer's residual add, always computed
            assert abs(flops - residual_add - Fraction(dense * k, E)) <= 1, (i, e)


# --- Collectives: what the mesh emulator does on a whole-wafer layout ---------------------------

def _mesh_layer(past: int = 5):
    """A decoder layer with every collective kind: RMSNorm, q/k/v GEMVs, rotary, fused
    attention over a past KV cache, LayerNorm, a decomposed attention (MatMul, Softmax, MatMul),
    a gated MLP and a ReduceMean."""
    import numpy as np

    from placer.ir import attrs as A

    hidden, heads, kv_heads, hd, ffn = 24, 4, 2, 6, 40
    rng = np.random.default_rng(0)
    b = GraphBuilder("mesh-layer")
    f32 = lambda *s: TensorType(DType.FLOAT32, s)  # noqa: E731

    def weight(name: str, *shape: int) -> str:
        data = rng.standard_normal(shape).astype(np.float32) * 0.1
        return b.weight(name, f32(*shape), data=data, role=WeightRole.PARAMETER)

    x = b.input("x", f32(1, 1, hidden))
    pk, pv = (b.input(n, f32(1, kv_heads, past, hd)) for n in ("past_key", "past_value"))
    cos, sin = (b.input(n, f32(1, 1, hd // 2)) for n in ("cos", "sin"))
    h = b.op(OpKind.RMS_NORM, [x, weight("norm1", hidden)], A.NormAttrs(epsilon=1e-5))
    q = b.op(OpKind.MATMUL, [h, weight("wq", hidden, heads * hd)])
    k = b.op(OpKind.MATMUL, [h, weight("wk", hidden, kv_heads * hd)])
    v = b.op(OpKind.MATMUL, [h, weight("wv", hidden, kv_heads * hd)])
    q = b.op(OpKind.ROTARY_EMBEDDING, [q, cos, sin], A.RotaryAttrs(num_heads=heads))
    att = b.op(OpKind.ATTENTION, [q, k, v, "", pk, pv],
               A.AttentionAttrs(is_causal=True, q_num_heads=heads, kv_num_heads=kv_heads),
               outputs=["attn", "present_key", "present_value"])
    x2 = b.op(OpKind.ADD, [x, b.op(OpKind.MATMUL, [att, weight("wo", heads * hd, hidden)])])
    h2 = b.op(OpKind.LAYER_NORM, [x2, weight("ln_w", hidden), weight("ln_b", hidden)],
              A.NormAttrs(epsilon=1e-5))
    # Decomposed attention of one head over the rows of a [8, hidden] context memory.
    mem = b.input("memory", f32(8, hidden))
    scores = b.op(OpKind.MATMUL, [h2, b.op(OpKind.TRANSPOSE, [mem], A.TransposeAttrs((1, 0)))])
    probs = b.op(OpKind.SOFTMAX, [scores], A.AxisAttrs(axis=-1))
    x3 = b.op(OpKind.ADD, [x2, b.op(OpKind.MATMUL, [probs, mem])])
    act = b.op(OpKind.MUL, [b.op(OpKind.SILU, [b.op(OpKind.MATMUL, [x3, weight("wg", hidden, ffn)])]),
                            b.op(OpKind.MATMUL, [x3, weight("wu", hidden, ffn)])])
    y = b.op(OpKind.ADD, [x3, b.op(OpKind.MATMUL, [act, weight("wd", ffn, hidden)])])
    mean = b.op(OpKind.REDUCE_MEAN, [y], A.ReduceAttrs(axes=(-1,), keepdims=True))
    b.output(b.op(OpKind.SUB, [y, mean]), "present_key", "present_value")
    return b.build()


def test_collectives_are_the_mesh_emulators_reductions(monkeypatch) -> None:
    """Oracle: the emulator's reductions on a 6 x 10 grid. Reductions along grid axis 0
    (columns of ``rows`` PEs) are GEMV collectives, along axis 1 (rows of ``cols`` PEs) row
    all-reduces; the cost model must count the same of each."""
    import numpy as np

    from placer.backends.executor import MeshExecutor
    from placer.backends.mesh import MeshSpec, collectives
    from placer.ir.passes.infer_shapes import infer_shapes

    graph = _mesh_layer()
    seen: Counter = Counter()
    reduce = collectives.reduce

    def counting_reduce(wafer, state, axis, *args, **kwargs):  # noqa: ANN001, ANN202
        seen[axis] += 1
        return reduce(wafer, state, axis, *args, **kwargs)

    statistic_path = collectives.statistic_path

    def counting_statistics(wafer, state, *args, **kwargs):  # noqa: ANN001, ANN202
        if kwargs.get("every_line"):  # an attention's softmax sums, beside its P @ V
            seen["sums"] += 1
        else:
            seen["fused"] += state.shape[-1]  # one statistic per row all-reduce it replaces
        return statistic_path(wafer, state, *args, **kwargs)

    monkeypatch.setattr(collectives, "reduce", counting_reduce)
    monkeypatch.setattr(collectives, "statistic_path", counting_statistics)
    rng = np.random.default_rng(1)
    feeds = {n: rng.standard_normal(tuple(int(d) for d in graph.type_of(n).shape)).astype(np.float32)
             for n in graph.inputs}
    MeshExecutor(graph, MeshSpec.from_target(TARGET, rows=6, cols=10)).run(feeds)
    grouped = group_units(FindKVCaches().run(infer_shapes(graph)).graph)
    total = NodeCost()
    for u in annotate_costs(grouped, TARGET, Workload(context_tokens=5)).units:
        total = total + u.decode
    # 7 weight GEMVs, QK^T and PV of both attentions; RMSNorm 1 (read only by GEMVs: fused,
    # its statistic reduced beside them, placer.ir.norm_fusion), softmax 1 + 1 (the max; each
    # softmax's sum rides beside its P @ V: mesh_physics "Softmax sum after P @ V", the
    # decomposed one's one row as a fused statistic), LayerNorm 2, ReduceMean 1.
    assert (seen[0], seen[1], seen["fused"], seen["sums"]) == (7 + 4, 2 + 2 + 1, 1 + 1, 1)
    assert (total.gemv_collectives, total.row_collectives) == (seen[0], seen[1] + seen["fused"])
    assert sum(1 for c in total.collectives if c.feeds) == seen["fused"]
    assert sum(1 for c in total.collectives if c.sums) == seen["sums"]


# --- Recomputable values: rotary tables and masks are recomputed, not shipped ---------------------

def test_recomputed_tables_leave_only_the_hidden_state_on_the_405b_edges(tmp_path) -> None:
    import os

    from placer.ir.graph import UnitKind
    from placer.ir.verifier import unit_graph

    hidden, layers = 16384, 126
    path = write_llama_like_onnx(tmp_path / "m.onnx", layers=layers, hidden=hidden, heads=128, kv_heads=8,
                                 head_dim=128, ffn=53248, vocab=128256)
    try:
        graph = group_units(FindKVCaches().run(from_onnx(path)).graph)
    finally:
        os.unlink(str(path) + ".data")
    cost = annotate_costs(graph, TARGET, Workload())
    # The verifier's unit DAG: layers.0 computes the rotary tables and the causal mask that
    # every later layer reads (the traffic that used to be shipped).
    crossing = unit_graph(graph).edges["layers.0", "layers.5"]["values"]
    assert crossing and all(graph.producers[v].unit == "layers.0" for v in crossing)
    edges = {(e.src, e.dst): e.bytes_per_token for e in cost.edges}
    assert edges["layers.0", "layers.5"] == 0  # token count only, which every wafer knows
    for u in cost.units:
        if u.kind is UnitKind.LAYER:
            assert u.activation_out_bytes_per_token == hidden * 2, u.name  # bf16 hidden state
        assert u.activation_out_bytes_per_token == sum(b for (s, _), b in edges.items() if s == u.name)
    # Every later layer recomputes the tables it reads, so they all cost the same; layers.0
    # also does the index arithmetic (positions, shapes) that the recomputation leaves out.
    later = [u for u in cost.units if u.kind is UnitKind.LAYER and u.layer > 0]
    # Keys are unit-local labels, so identical layers have equal costs, keys and all (and are
    # priced once by the solver's DecodeTimes and the floorplan's candidate shapes).
    assert len({(u.decode, u.prefill) for u in later}) == 1
    assert any(c.input_key for c in later[0].decode.collectives)
    first = cost.unit("layers.0")
    assert 0 <= first.decode.flops - later[0].decode.flops <= 16
    assert first.decode.activation_bytes - later[0].decode.activation_bytes <= 1024
    # Stored bytes still add up to the graph's.
    assert cost.parameters == graph.parameter_count()
    assert sum(u.constant_bytes for u in cost.units) == sum(
        w.nbytes for w in graph.weights.values() if w.role is not WeightRole.PARAMETER)
    assert cost.weight_bytes == sum(w.nbytes for w in graph.weights.values()
                                    if w.role is WeightRole.PARAMETER)


def test_a_position_input_crosses_instead_of_its_table() -> None:
    """A table computed from a ``pos`` input (read as data) costs the input's bytes on the edge,
    and the reader is charged its recomputation; a parameter-free value whose sources are
    larger than itself (a ReduceSum of a wide input) is shipped."""
    from dataclasses import replace

    import numpy as np

    from placer.ir import attrs as A
    from placer.ir.graph import Unit, UnitKind

    b, s = Sym.var("batch"), Sym.var("seq")
    f32, i64, d = DType.FLOAT32, DType.INT64, 8
    g = GraphBuilder("pos")
    ids = g.input("ids", TensorType(i64, (b, s)))
    pos = g.input("pos", TensorType(i64, (b, s)))
    wide = g.input("wide", TensorType(f32, (b, s, 64)))
    freq = g.constant(np.ones(d, np.float32), "freq")
    act = TensorType(f32, (b, s, d))
    h = g.op(OpKind.GATHER, [g.weight("emb", TensorType(f32, (50, d)), role=WeightRole.PARAMETER), ids],
             types=[act], unit="embed")
    l0 = "layers.0"
    posf = g.op(OpKind.CAST, [pos], A.CastAttrs(to=f32), types=[TensorType(f32, (b, s))], unit=l0)
    posf = g.op(OpKind.UNSQUEEZE, [posf, g.constant([-1], "axis", i64)], types=[TensorType(f32, (b, s, 1))],
                unit=l0)
    table = g.op(OpKind.COS, [g.op(OpKind.MUL, [posf, freq], types=[act], unit=l0)], types=[act], unit=l0)
    summed = g.op(OpKind.REDUCE_SUM, [wide, g.constant([-1], "axes", i64)], A.ReduceAttrs(keepdims=True),
                  types=[TensorType(f32, (b, s, 1))], unit=l0)
    for i in range(2):
        unit = f"layers.{i}"
        w = g.weight(f"w{i}", TensorType(f32, (d, d)), role=WeightRole.PARAMETER)
        mixed = g.op(OpKind.MUL, [h, table], types=[act], unit=unit)
        mixed = g.op(OpKind.ADD, [mixed, summed], types=[act], unit=unit)
        out = g.op(OpKind.MATMUL, [mixed, w], types=[act], unit=unit)
        h = g.op(OpKind.ADD, [h, out], types=[act], unit=unit)
    lm = g.weight("lm", TensorType(f32, (d, 50)), role=WeightRole.PARAMETER)
    g.output(g.op(OpKind.MATMUL, [h, lm], types=[TensorType(f32, (b, s, 50))], unit="head"))
    graph = replace(g.build(), units=(Unit("embed", UnitKind.EMBEDDING), Unit(l0, UnitKind.LAYER, 0),
                                      Unit("layers.1", UnitKind.LAYER, 1), Unit("head", UnitKind.HEAD)))
    cost = annotate_costs(graph, TARGET, Workload(context_tokens=10, prompt_tokens=3))
    edge = {(e.src, e.dst): e.bytes_per_token for e in cost.edges}
    # hidden state (d f32), the pos input (1 int64) instead of the table (d f32), the 4-byte sum
    # shipped (its source, 64 f32, is larger).
    assert edge[l0, "layers.1"] == d * 4 + 8 + 4
    # layers.1 recomputes the table (Cast 1, Mul d, Cos d FLOPs), not the ReduceSum (64).
    assert cost.unit("layers.1").decode.flops == cost.unit(l0).decode.flops - 64


@pytest.mark.parametrize("causal,window,right", [(True, 0, -1), (True, 3, -1), (False, 0, -1), (False, 4, -1),
                                                 (False, 0, 2), (False, 5, 1), (True, 1, -1)])
def test_attended_keys_counts_the_pairs_a_mask_allows(causal, window, right) -> None:
    from placer.cost_rules import attended_keys

    for keys in range(0, 12):
        for queries in range(0, keys + 1):
            brute = sum(1 for p in range(keys - queries, keys) for j in range(keys)
                        if (j <= p if causal else (right < 0 or j <= p + right))
                        and (not window or p - j < window))
            assert attended_keys(queries, keys, causal=causal, window=window, right_window=right) == brute


def _attention_layers(cfg: dict) -> list[tuple[int, int, int, int]]:
    """(heads, d_qk, d_v, window) per layer, read from a published config as the HF modelling
    code reads it (0 = no window); MLA in its decompressed form (q.k over the nope and rope
    dims, values of v_head_dim), the form placer's graph computes."""
    t = cfg.get("text_config", cfg)
    n, heads = t["num_hidden_layers"], t["num_attention_heads"]
    if "kv_lora_rank" in t:
        return [(heads, t["qk_nope_head_dim"] + t["qk_rope_head_dim"], t["v_head_dim"], 0)] * n
    d = t.get("head_dim") or t["hidden_size"] // heads
    if t.get("attention_chunk_size"):  # llama4: RoPE layers attend within chunks, every 4th is global
        rope = t.get("no_rope_layers") or [int((i + 1) % 4 != 0) for i in range(n)]
        windows = [t["attention_chunk_size"] if r else 0 for r in rope]
    elif "layer_types" in t:
        windows = [t["sliding_window"] if k == "sliding_attention" else 0 for k in t["layer_types"]]
    elif t.get("use_sliding_window", True) and t.get("sliding_window"):
        windows = [t["sliding_window"]] * n
    else:
        windows = [0] * n
    return [(heads, d, d, w) for w in windows]


def _first_layers(cfg: dict, layers: int = 4, experts: int = 4) -> dict:
    """``cfg`` cut to its first ``layers`` layers and ``experts`` routed experts (attention
    untouched), so that every zoo model's attention is checked in a second."""
    cfg = json.loads(json.dumps(cfg))
    t = cfg.get("text_config", cfg)
    t["num_hidden_layers"] = min(t["num_hidden_layers"], layers)
    for key in ("layer_types", "no_rope_layers"):
        if t.get(key):
            t[key] = t[key][:layers]
    for key in ("num_local_experts", "n_routed_experts", "num_experts"):
        if t.get(key):
            t[key] = min(t[key], experts)
            t["num_experts_per_tok"] = min(t.get("num_experts_per_tok", 1), 2)
            t["experts_per_token"] = t["num_experts_per_tok"]
    if t.get("n_group"):
        t["n_group"] = t["topk_group"] = 1
    return cfg


def test_zoo_attention_flops_match_an_independent_count() -> None:
    """Per layer, what one decoded token's attention adds at context C over context 0 (where
    it attends only itself): 2 x heads x (d_qk + d_v) FLOPs (QK^T and P @ V) plus the softmax's
    per attended key beyond the first, keys capped at the layer's window; KV reads the
    layer's window-capped KV bytes."""
    from importlib import resources

    from placer.cost_rules import SOFTMAX_FLOPS_PER_SCORE
    from placer.ir.graph import UnitKind
    from placer.pipeline import load_graph
    from placer.zoo import ZOO_MODELS

    C = 65536
    for name in ZOO_MODELS:
        cfg = _first_layers(json.loads(resources.files("placer.zoo").joinpath(f"{name}.json").read_text()))
        if cfg.get("model_type") == "deepseek_v4":
            continue  # window + compressed entries + indexer: not this formula (see test_hf_config)
        graph = load_graph(cfg)
        at = {c: {u.layer: u for u in annotate_costs(graph, TARGET, Workload(c, prompt_tokens=1)).units
                  if u.kind is UnitKind.LAYER} for c in (0, C)}
        layers = _attention_layers(cfg)
        assert sorted(at[C]) == list(range(len(layers))), name
        for i, (heads, d_qk, d_v, window) in enumerate(layers):
            extra = (min(C + 1, window) if window else C + 1) - 1
            expected = heads * (2 * (d_qk + d_v) + SOFTMAX_FLOPS_PER_SCORE) * extra
            assert at[C][i].decode.flops - at[0][i].decode.flops == expected, (name, i)
            assert at[C][i].decode.kv_read_bytes == at[C][i].kv_bytes(C), (name, i)
            assert at[C][i].kv_bytes(C) == at[C][i].kv_bytes_per_token * (min(C, window) if window else C)


def test_window_caps_in_flops_and_kv_inspect_and_compile_agree() -> None:
    """A gpt-oss-shaped model, sliding (window 8) and full layers alternating: past the window
    a sliding layer's decode FLOPs and KV reads stop growing; `inspect` and `compile` report
    the same window-capped KV bytes per sequence and the same decode FLOPs."""
    from placer.compiler import compile_result
    from placer.cost_rules import SOFTMAX_FLOPS_PER_SCORE
    from placer.inspect import inspect_model, inspection_to_dict

    cfg = dict(model_type="gpt_oss", hidden_size=64, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=100,
               num_local_experts=4, num_experts_per_tok=2, sliding_window=8, torch_dtype="float32",
               layer_types=["sliding_attention", "full_attention"])
    kv_token = 2 * 2 * 16 * 4  # K and V, 2 KV heads x 16, f32
    flops = {}
    for context in (7, 8, 64):
        seen = inspect_model(dict(cfg), workload=Workload(context_tokens=context, prompt_tokens=1))
        sliding, full = (seen.cost.unit(f"layers.{i}") for i in (0, 1))
        flops[context] = (sliding.decode.flops, full.decode.flops)
        assert sliding.decode.kv_read_bytes == kv_token * min(context, 8)
        assert full.decode.kv_read_bytes == kv_token * context
        report = inspection_to_dict(seen)
        assert report["totals"]["kv_bytes"] == kv_token * (min(context, 8) + context)
        plan = compile_result(dict(cfg), context=context, prompt=1, compare=False)
        assert plan.plan.kv.bytes_per_sequence == report["totals"]["kv_bytes"]
        assert [u.decode for u in plan.cost.units] == [u.decode for u in seen.cost.units]
    # Token 8 (context 7) is the first to see a full window; past it the sliding layer is flat.
    assert flops[7][0] == flops[8][0] == flops[64][0]
    per_key = 4 * (2 * (16 + 16) + SOFTMAX_FLOPS_PER_SCORE)
    assert flops[64][1] - flops[8][1] == per_key * (64 - 8)


def test_cost_rules_count_flops_and_statistics_from_the_op_semantics_table() -> None:
    """The cost rules and the mesh kernels read one table (``placer.ir.op_semantics``)."""
    from placer.cost_rules import OpCall, Operand, cost_of
    from placer.ir.attrs import ATTRIBUTES
    from placer.ir.graph import Node
    from placer.ir.op_semantics import FREE_VIEWS, REDUCTIONS, ROW_STATISTICS

    x = Operand((2, 3, 5), DType.FLOAT32)
    for op, per_element in FLOPS_PER_ELEMENT.items():
        attrs = ATTRIBUTES[op]() if op in ATTRIBUTES else None
        node = Node("n", op, ("x",), ("y",), attrs) if attrs is not None else Node("n", op, ("x",), ("y",))
        out = Operand((2, 3, 1), DType.FLOAT32) if op in REDUCTIONS else x
        cost = cost_of(OpCall(node, (x,), (out,)))
        assert cost.flops == per_element * x.numel, op
        assert cost.row_collectives == ROW_STATISTICS.get(op, 0) == len(cost.collectives), op
    for op in FREE_VIEWS:
        assert cost_of(OpCall(Node("n", op, ("x",), ("y",)), (x,), (x,))) == NodeCost(), op


def test_decoding_a_graph_without_a_cache_costs_the_new_tokens_row(onnx_model) -> None:
    """The same tiny Llama exported with and without past KV inputs: decoding costs one row of
    attention either way (without the fix, the cache-less graph's seq x seq scores, softmax and
    P @ V were charged (C+1)^2 - C^2 = 2C+1 keys per token: about 1.5x the cached graph here).
    The cached export also rescales the whole K cache each step (heads x keys x head_dim)."""
    from placer.pipeline import load_graph

    workload = Workload(context_tokens=1024, prompt_tokens=16)
    cached = annotate_costs(load_graph(onnx_model("llama", True, True)), TARGET, workload)
    plain = annotate_costs(load_graph(onnx_model("llama", True, False)), TARGET, workload)
    def moves(cost):  # noqa: ANN001, ANN202  (relayouts differ by design: see below)
        return [(c.kind, c.in_elements, c.out_elements) for c in cost.collectives
                if c.kind is not CollectiveKind.RELAYOUT]

    for a, b in zip(cached.units, plain.units):
        assert a.name == b.name and a.decode.kv_read_bytes == b.decode.kv_read_bytes
        assert moves(a.decode) == moves(b.decode), a.name
        if a.kind is UnitKind.LAYER:  # the cached export concatenates its past K and V each step
            relayouts = [c.in_elements for c in a.decode.collectives if c.kind is CollectiveKind.RELAYOUT]
            assert max(relayouts) >= workload.context_tokens * HIDDEN * KV_HEADS // HEADS
        if a.kind is UnitKind.LAYER:
            rescale = HEADS * 1025 * (HIDDEN // HEADS)
            assert abs(a.decode.flops - rescale - b.decode.flops) <= 0.01 * b.decode.flops, a.name
