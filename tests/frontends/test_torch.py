"""from_torch on tiny random-weight transformers models and on a meta-device Llama-3.1-8B.

Oracles: the torch model itself (outputs through the reference interpreter, parameter counts),
placer's own shape inference (every recorded type), and the same model's ONNX export through
from_onnx (units and per-unit costs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from placer.backends.reference import run_graph
from placer.cost_model import annotate_costs
from placer.errors import UserError
from placer.frontends.torch import from_torch
from placer.ir.graph import WeightRole
from placer.ir.passes.infer_shapes import infer_shapes
from placer.ir.symbolic import Sym
from placer.ir.verifier import verify
from placer.pipeline import load_graph
from placer.targets import load_target
from placer.workload import Workload
from tests.models import FAMILIES, _make_exportable, tiny_model

SHAPES = {"input_ids": {0: "batch", 1: "seq"}}
NO_CACHE = {"use_cache": False}


@pytest.fixture(scope="module")
def exported():
    """``exported(family)`` -> (model, graph); each tiny model is exported once per module."""
    cache: dict[str, tuple[torch.nn.Module, object]] = {}

    def get(family: str):
        if family not in cache:
            model = tiny_model(family)
            gen = torch.Generator().manual_seed(0)
            ids = torch.randint(0, model.config.vocab_size, (2, 5), generator=gen)
            cache[family] = (model, from_torch(model, (ids,), dynamic_shapes=SHAPES, example_kwargs=NO_CACHE))
        return cache[family]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_graph_verifies_and_counts_torch_parameters(exported, family):
    model, graph = exported(family)
    verify(graph, require_types=True)
    assert graph.parameter_count() == sum(p.numel() for p in model.parameters())
    names = dict(model.named_parameters())
    params = [w for w in graph.weights.values() if w.role is WeightRole.PARAMETER]
    assert {w.name for w in params} == set(names)
    for w in params:
        assert tuple(w.type.shape) == tuple(names[w.name].shape)
        assert w.data is None  # parameters are references, never copied


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_graph_computes_what_torch_computes(exported, family):
    """At a batch and length other than the export's: the symbolic shapes must hold."""
    model, graph = exported(family)
    ids = torch.randint(0, model.config.vocab_size, (3, 7), generator=torch.Generator().manual_seed(1))
    weights = {k: v.detach().numpy() for k, v in model.named_parameters()}
    out = run_graph(graph, {"input_ids": ids.numpy()}, weights=weights)
    with torch.no_grad():
        expected = model(input_ids=ids, use_cache=False).logits.numpy()
    got = out[graph.outputs[0]]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_recorded_types_equal_inferred_types(exported, family):
    """torch's meta shapes (recorded) and placer's shape rules (re-inferred) agree everywhere."""
    _, graph = exported(family)
    stored = set(graph.inputs) | set(graph.weights)
    bare = graph.replace(types={k: t for k, t in graph.types.items() if k in stored})
    inferred = infer_shapes(bare)
    diff = {k: (str(t), str(inferred.types.get(k)))
            for k, t in graph.types.items() if inferred.types.get(k) != t}
    assert not diff


@pytest.mark.slow
def test_symbols_weights_and_scopes_follow_the_module(exported):
    model, graph = exported("llama")
    assert graph.types["input_ids"].shape == (Sym.var("batch"), Sym.var("seq"))
    inv_freq = graph.weights["model.rotary_emb.inv_freq"]
    assert inv_freq.role is WeightRole.CONSTANT
    np.testing.assert_array_equal(inv_freq.data, model.model.rotary_emb.inv_freq.numpy())
    readers = graph.consumers["model.layers.1.self_attn.q_proj.weight"]
    assert [n.scope for n in readers] == ["model.layers.1.self_attn.q_proj"]
    grouped = load_graph(graph)
    assert [u.name for u in grouped.units] == ["embed", "layers.0", "layers.1", "head"]
    for node in grouped.nodes:  # every weighted contraction is in the unit of its module path
        for w in node.inputs:
            if w.startswith("model.layers.") and graph.weights[w].role is WeightRole.PARAMETER:
                assert node.unit == "layers." + w.split(".")[2], node.name


@pytest.mark.slow
def test_tied_weights_count_once(exported):
    model, graph = exported("gpt2")
    assert model.lm_head.weight is model.transformer.wte.weight
    assert "transformer.wte.weight" in graph.weights and "lm_head.weight" not in graph.weights
    readers = {n.op.value for n in graph.consumers["transformer.wte.weight"]}
    assert readers == {"gather", "gemm"}  # the embedding and the LM head read one weight


def test_torch_dim_objects_name_symbols():
    class Scale(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(8, 4)

        def forward(self, x):
            return torch.softmax(self.proj(x).reshape(x.shape[0], -1), dim=-1)

    dims = {"x": {0: torch.export.Dim("rows"), 1: torch.export.Dim("cols")}}
    graph = from_torch(Scale(), (torch.randn(3, 5, 8),), dynamic_shapes=dims)
    assert graph.types["x"].shape == (Sym.var("rows"), Sym.var("cols"), 8)
    assert graph.types[graph.outputs[0]].shape == (Sym.var("rows"), 4 * Sym.var("cols"))
    assert graph.parameter_count() == 8 * 4 + 4


def test_unsupported_op_is_a_user_error_naming_op_and_node():
    class Sorts(torch.nn.Module):
        def forward(self, x):
            return torch.sort(x, dim=-1).values

    with pytest.raises(UserError, match=r"aten op aten\.sort\.default \(node sort"):
        from_torch(Sorts(), (torch.randn(2, 3),))


def test_bad_dynamic_shapes_is_a_user_error():
    with pytest.raises(UserError, match="dynamic_shapes names ids"):
        from_torch(torch.nn.Linear(4, 4), (torch.randn(2, 4),), dynamic_shapes={"ids": {0: "batch"}})
    with pytest.raises(UserError, match="sizes >= 2"):
        from_torch(torch.nn.Linear(4, 4), (torch.randn(1, 4),), dynamic_shapes={"input": {0: "batch"}})


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_same_units_and_costs_as_the_onnx_export(exported, onnx_model, family):
    """Parameters, weight bytes and KV bytes are exact. Decode FLOPs differ by the attention
    core only: from_torch keeps ``scaled_dot_product_attention`` as one ATTENTION node, whose
    rule counts QK^T, softmax and PV; the ONNX exporter decomposes it and adds per-score mask
    adds, a NaN guard (IsNaN + Where) and scale multiplies. GPT-2 (eager attention) is exact
    in its layers."""
    _, graph = exported(family)
    target, workload = load_target("wse3"), Workload(context_tokens=64, prompt_tokens=16)
    ours = annotate_costs(load_graph(graph), target, workload)
    theirs = annotate_costs(load_graph(onnx_model(family)), target, workload)
    assert [(u.name, u.kind, u.layer) for u in ours.units] == \
        [(u.name, u.kind, u.layer) for u in theirs.units]
    for a, b in zip(ours.units, theirs.units):
        assert (a.parameters, a.weight_bytes, a.kv_bytes_per_token) == \
            (b.parameters, b.weight_bytes, b.kv_bytes_per_token), a.name
        assert a.decode.flops == pytest.approx(b.decode.flops, rel=0.02, abs=2), a.name
        # Exact for every family: GPT-2's tied LM head reads the embedding table through a
        # Transpose in the ONNX graph (a parameter view, charged as the table's read), and the
        # ONNX Mixtral gathers its top-2 experts with GatherND (charged like GATHER).
        assert a.decode.weight_read_bytes == b.decode.weight_read_bytes, a.name
        if family == "gpt2" and a.name == "head":
            # The whole table every token, and its own final norm.
            assert a.decode.weight_read_bytes == 160 * 64 * 4 + a.weight_bytes
        if family == "mixtral" and a.layer >= 0:
            # A decode token reads its top-2 experts' gate_up [192, 64] and down [64, 96] rows.
            assert a.decode.weight_read_bytes >= 2 * (192 * 64 + 64 * 96) * 4, a.name
        if family == "gpt2" and a.layer >= 0:
            assert a.decode.flops == b.decode.flops
    assert ours.parameters == theirs.parameters


@pytest.mark.slow
def test_past_kv_inputs_decode_like_torch_and_cost_like_onnx(onnx_model):
    """Flat past K/V inputs (dynamic ``past``): a decode step (seq 1 after 6 tokens) matches
    torch, the KV caches are found on the past inputs, and costs match the ONNX export's."""
    model = _make_exportable(tiny_model("llama"), with_cache=True)
    cfg = model.config
    n = 2 * cfg.num_hidden_layers
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    past = tuple(torch.randn(2, cfg.num_key_value_heads, 3, head_dim) for _ in range(n))
    dims = ({0: "batch", 1: "seq"}, tuple({0: "batch", 2: "past"} for _ in range(n)))
    graph = from_torch(model, (torch.randint(0, cfg.vocab_size, (2, 5)), *past), dynamic_shapes=dims)
    assert str(graph.types[graph.outputs[1]]) == "f32[batch, 2, past+seq, 16]"
    ids = torch.randint(0, cfg.vocab_size, (3, 1))
    past = tuple(torch.randn(3, cfg.num_key_value_heads, 6, head_dim) for _ in range(n))
    feeds = {name: t.numpy() for name, t in zip(graph.inputs, (ids, *past))}
    out = run_graph(graph, feeds, weights={k: v.detach().numpy() for k, v in model.named_parameters()})
    with torch.no_grad():
        expected = model(ids, *past)
    for name, ref in zip(graph.outputs, expected):
        np.testing.assert_allclose(out[name], ref.numpy(), rtol=1e-5, atol=1e-5)
    grouped = load_graph(graph)
    assert sorted(kv.value for kv in grouped.kv_caches) == sorted(graph.inputs[1:])
    target, workload = load_target("wse3"), Workload(context_tokens=64, prompt_tokens=16)
    ours = annotate_costs(grouped, target, workload)
    theirs = annotate_costs(load_graph(onnx_model("llama", True, True)), target, workload)
    assert [u.name for u in ours.units] == [u.name for u in theirs.units]
    for a, b in zip(ours.units, theirs.units):
        assert (a.parameters, a.weight_bytes, a.kv_bytes_per_token) == \
            (b.parameters, b.weight_bytes, b.kv_bytes_per_token), a.name
        # QK^T, softmax and PV agree exactly (17,940 FLOPs per layer here); the ONNX exporter's
        # SDPA also multiplies the whole K cache by sqrt(scale) each step (heads x keys x
        # head_dim = 4,160), adds the mask and guards NaNs (3 x heads x keys): about 6% of a
        # tiny layer, negligible at full size.
        assert a.decode.flops == pytest.approx(b.decode.flops, rel=0.06, abs=2), a.name


@pytest.mark.slow
def test_meta_device_llama_3_1_8b():
    """The published Llama-3.1-8B sizes on the meta device: no weight memory, exact count."""
    import transformers as tr

    cfg = tr.LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                         rope_theta=500000.0, max_position_embeddings=131072)
    with torch.device("meta"):
        model = tr.LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    ids = torch.zeros((2, 8), dtype=torch.long, device="meta")
    graph = from_torch(model, (ids,), dynamic_shapes=SHAPES, example_kwargs=NO_CACHE)
    assert graph.parameter_count() == 8_030_261_248 == sum(p.numel() for p in model.parameters())
    cost = annotate_costs(load_graph(graph), load_target("wse3"), Workload())
    assert len(cost.units) == 34
    assert cost.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2  # 128 KiB in bf16 (HARDWARE.md)
    assert cost.weight_bytes == 2 * 8_030_261_248
