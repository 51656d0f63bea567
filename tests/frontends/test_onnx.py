"""from_onnx on real exports of tiny transformers models, against onnxruntime and torch."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from placer.frontends.onnx import from_onnx, onnx_file_sha256
from placer.ir.graph import WeightRole
from placer.ir.verifier import verify
from tests.models import FAMILIES, parameter_count

BIND = {"batch": 2, "seq": 5, "past": 3}
COMBOS = [(f, d, c) for f in FAMILIES for d in (True, False) for c in (False, True)]
IDS = [f"{f}-{'dynamo' if d else 'legacy'}-{'cache' if c else 'nocache'}" for f, d, c in COMBOS]


def _feeds(graph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    feeds = {}
    for name in graph.inputs:
        t = graph.types[name]
        shape = t.concrete_shape(BIND)
        if t.dtype.is_integer:
            feeds[name] = rng.integers(0, 100, shape).astype(t.dtype.to_numpy())
        else:
            feeds[name] = rng.standard_normal(shape).astype(t.dtype.to_numpy())
    return feeds


@pytest.mark.slow
@pytest.mark.parametrize(("family", "dynamo", "with_cache"), COMBOS, ids=IDS)
def test_import_matches_onnxruntime_shapes(onnx_model, family, dynamo, with_cache):
    path = onnx_model(family, dynamo, with_cache)
    graph = from_onnx(path)
    verify(graph, require_types=True)
    values = [o for n in graph.nodes for o in n.outputs if o]
    assert all(v in graph.types for v in [*graph.inputs, *graph.weights, *values])
    # Expose every ONNX value as an output, run onnxruntime and compare every shape and dtype.
    proto = onnx.load(str(path))
    onnx_values = {o for n in proto.graph.node for o in n.output if o}
    declared = {o.name for o in proto.graph.output}
    for v in values:
        if v in onnx_values and v not in declared:
            proto.graph.output.append(onnx.ValueInfoProto(name=v))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = ort.InferenceSession(proto.SerializeToString())
    results = session.run(None, _feeds(graph, np.random.default_rng(0)))
    checked = 0
    unknown = []
    for out, result in zip(session.get_outputs(), results):
        t = graph.types[out.name]
        if any(s.startswith("unk") for s in t.symbols):
            unknown.append(out.name)
            continue
        result = np.asarray(result)
        assert t.concrete_shape(BIND) == result.shape, f"%{out.name}: {t} vs {result.shape}"
        assert t.dtype.to_numpy() == result.dtype, f"%{out.name}: {t} vs {result.dtype}"
        checked += 1
    assert checked >= 0.97 * len(results), f"{len(unknown)} values have unknown dims: {unknown}"
    for out in graph.outputs:  # graph outputs are always fully symbolic in batch/seq/past
        assert graph.types[out].symbols <= {"batch", "seq", "past"}, graph.types[out]


@pytest.mark.slow
@pytest.mark.parametrize(("family", "dynamo", "with_cache"), COMBOS, ids=IDS)
def test_parameter_count_equals_torch(onnx_model, family, dynamo, with_cache):
    graph = from_onnx(onnx_model(family, dynamo, with_cache))
    assert graph.parameter_count() == parameter_count(family)
    # rotary inv_freq and integer tensors are constants
    for w in graph.weights.values():
        if w.type.dtype.is_integer or w.numel == 1:
            assert w.role is WeightRole.CONSTANT, w.name
        if "inv_freq" in w.name:
            assert w.role is WeightRole.CONSTANT


@pytest.mark.slow
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_scopes_are_module_paths(onnx_model, dynamo):
    graph = from_onnx(onnx_model("llama", dynamo, False))
    scopes = {n.scope for n in graph.nodes}
    assert "model.layers.0.self_attn" in {s.rsplit(".", 1)[0] for s in scopes if "proj" in s}
    assert any(s.startswith("model.layers.1.mlp") for s in scopes)
    matmul_scopes = {n.scope for n in graph.nodes if n.op.value == "matmul"}
    assert "lm_head" in matmul_scopes


@pytest.mark.slow
def test_symbols_come_from_dim_params(onnx_model):
    graph = from_onnx(onnx_model("llama", True, True))
    assert str(graph.types["input_ids"]) == "i64[batch, seq]"
    assert str(graph.types["past_key_0"]) == "f32[batch, 2, past, 16]"
    assert str(graph.types["present_key_0"]) == "f32[batch, 2, past+seq, 16]"
    assert str(graph.types["logits"]) == "f32[batch, seq, 160]"


@pytest.mark.slow
def test_external_data_is_never_read(onnx_model, tmp_path):
    src = onnx_model("qwen2", True, False)
    reference = from_onnx(src)
    proto = onnx.load(str(src))  # with its data, then re-saved with all weights external
    target = tmp_path / "ext.onnx"
    onnx.save_model(proto, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=1024)
    data = tmp_path / "ext.data"
    size = data.stat().st_size
    data.unlink()  # weights gone: import must not notice
    graph = from_onnx(target)
    assert graph.parameter_count() == reference.parameter_count()
    externals = [w for w in graph.weights.values() if w.location is not None]
    assert externals and all(w.data is None for w in externals)
    assert sum(w.nbytes for w in externals) <= size
    for w in externals:
        assert w.nbytes == w.location.length == w.type.dtype.storage_bytes(w.numel)
    for name in graph.weights:
        if name in reference.weights and graph.weights[name].location is not None:
            assert graph.weights[name].role is reference.weights[name].role


def test_sha256_reads_only_the_model_file(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"abc")
    assert onnx_file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_opset23_ops_import():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 64])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [64], np.ones(64, np.float32))
    nodes = [
        helper.make_node("RMSNormalization", ["x", "scale"], ["h"], epsilon=1e-6),
        helper.make_node("Reshape", ["h", "shape4"], ["h4"]),
        helper.make_node("Transpose", ["h4"], ["q"], perm=[0, 2, 1, 3]),
        helper.make_node("RotaryEmbedding", ["q", "cos", "sin", "pos"], ["qr"]),
        helper.make_node("Attention", ["qr", "qr", "q"], ["y"], is_causal=1),
    ]
    shape4 = helper.make_tensor("shape4", TensorProto.INT64, [4], [0, 0, 4, 16])
    cos = helper.make_tensor("cos", TensorProto.FLOAT, [32, 8], np.ones(256, np.float32))
    sin = helper.make_tensor("sin", TensorProto.FLOAT, [32, 8], np.zeros(256, np.float32))
    pos = helper.make_tensor_value_info("pos", TensorProto.INT64, ["batch", "seq"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "g", [x, pos], [y], [scale, shape4, cos, sin])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])
    graph = from_onnx(model)
    assert str(graph.types["y"]) == "f32[batch, 4, seq, 16]"
    assert graph.weights["scale"].role is WeightRole.PARAMETER
    assert graph.weights["cos"].role is WeightRole.CONSTANT
    # the ONNX reference evaluator agrees on the output shape
    from onnx.reference import ReferenceEvaluator

    out = ReferenceEvaluator(model).run(None, {
        "x": np.zeros((2, 5, 64), np.float32), "pos": np.zeros((2, 5), np.int64)})[0]
    assert out.shape == graph.types["y"].concrete_shape({"batch": 2, "seq": 5})
