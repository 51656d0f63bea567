"""onnxruntime's com.microsoft ops, one at a time: placer's reference and mesh kernels against
onnxruntime itself on random inputs, and the exact stored bytes of quantized weights."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.backends.executor import MeshExecutor
from placer.backends.mesh import MeshSpec
from placer.backends.reference import run_graph
from placer.errors import UserError
from placer.frontends.onnx import from_onnx
from placer.ir.graph import WeightRole
from placer.ir.ops import OpKind

ort = pytest.importorskip("onnxruntime")
SPEC = MeshSpec(4, 4, 1 << 22, 16.0, 1, 4, 1e9)
F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21),
                                               helper.make_opsetid("com.microsoft", 1)])


def _check(model: onnx.ModelProto, feeds: dict[str, np.ndarray], rtol: float = 1e-5) -> None:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    graph = from_onnx(model)
    ref = run_graph(graph, feeds)
    mesh, _ = MeshExecutor(graph, SPEC).run(feeds)
    for name, w in zip([o.name for o in model.graph.output], want):
        for got in (ref[name], mesh[name]):
            assert got.shape == w.shape, name
            np.testing.assert_allclose(got, w, rtol=rtol, atol=rtol * max(1.0, float(np.abs(w).max())))


def _quantize(w: np.ndarray, bits: int, block: int, zero_points: bool, rng: np.random.Generator):
    """Random packed MatMulNBits operands for a [K, N] weight: B [N, blocks, bytes], scales, zp."""
    k, n = w.shape
    blocks = -(-k // block)
    q = rng.integers(0, 2 ** bits, (n, blocks * block)).astype(np.uint8)
    scales = rng.uniform(0.01, 0.1, (n, blocks)).astype(np.float32)
    if bits == 4:
        packed = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8)
    else:
        packed = q
    zp = None
    if zero_points:
        z = rng.integers(0, 2 ** bits, (n, blocks + (blocks % 2 if bits == 4 else 0))).astype(np.uint8)
        zp = (z[:, 0::2] | (z[:, 1::2] << 4)).astype(np.uint8) if bits == 4 else z
    return packed.reshape(n, blocks, block * bits // 8), scales.reshape(-1), zp


@pytest.mark.parametrize("bits,block,k,zp,accuracy,bias", [
    (4, 32, 64, False, 4, False), (4, 16, 48, True, 0, False), (4, 128, 100, True, 4, True),
    (8, 32, 64, True, 0, False), (8, 64, 64, False, 4, False),
])
def test_matmul_nbits_matches_onnxruntime(bits, block, k, zp, accuracy, bias) -> None:
    rng = np.random.default_rng(bits * block + k)
    n = 24
    packed, scales, zeros = _quantize(np.zeros((k, n)), bits, block, zp, rng)
    inits = [numpy_helper.from_array(packed, "B"), numpy_helper.from_array(scales, "S")]
    ins = ["A", "B", "S"]
    if zeros is not None:
        inits.append(numpy_helper.from_array(zeros.reshape(-1), "Z"))
        ins.append("Z")
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(size=n).astype(np.float32), "bias"))
        ins += [""] * (5 - len(ins)) + ["bias"]
    node = helper.make_node("MatMulNBits", ins, ["Y"], domain="com.microsoft", K=k, N=n, bits=bits,
                            block_size=block, accuracy_level=accuracy)
    model = _model([node], [helper.make_tensor_value_info("A", F, ["m", k])],
                   [helper.make_tensor_value_info("Y", F, ["m", n])], inits)
    _check(model, {"A": rng.normal(size=(3, k)).astype(np.float32)}, rtol=1e-5)
    graph = from_onnx(model)
    b, s = graph.weights["B"], graph.weights["S"]
    assert b.role is WeightRole.PARAMETER and b.numel == k * n  # the [K, N] matrix it stands for
    assert b.nbytes == packed.nbytes and s.role is WeightRole.QUANTIZATION and s.nbytes == scales.nbytes
    if zeros is not None:
        assert graph.weights["Z"].nbytes == zeros.nbytes
    assert graph.parameter_count() == k * n + (n if bias else 0)


def test_matmul_nbits_weight_bytes_in_costs() -> None:
    """Weight bytes are exactly the packed bits + scales + zero points, parameters K * N."""
    from placer.cost_rules import COST_RULES, OpCall, Operand
    from placer.ir import attrs as A
    from placer.ir.dtypes import DType
    from placer.ir.graph import Node

    k, n, block = 256, 64, 32
    node = Node("q", OpKind.MATMUL_NBITS, ("a", "b", "s", "z"), ("y",), A.MatMulNBitsAttrs(k, n, 4, block))
    b_bytes, s_bytes, z_bytes = n * k // 2, n * (k // block) * 2, n * (k // block) // 2
    call = OpCall(node, (Operand((1, k), DType.FLOAT16),
                         Operand((k, n), DType.UINT4, stored_bytes=b_bytes),
                         Operand((n, k // block), DType.FLOAT16, stored_bytes=s_bytes),
                         Operand((n, k // block), DType.UINT4, stored_bytes=z_bytes)),
                  (Operand((1, n), DType.FLOAT16),))
    cost = COST_RULES[OpKind.MATMUL_NBITS](call)
    assert cost.weight_read_bytes == b_bytes + s_bytes + z_bytes
    assert cost.flops == 2 * k * n + 2 * k * n  # the GEMV and the dequantization


@pytest.mark.parametrize("packed,zp", [(True, False), (True, True), (False, False)])
def test_gather_block_quantized_matches_onnxruntime(packed, zp) -> None:
    rng = np.random.default_rng(3)
    vocab, hidden, block = 10, 64, 16
    blocks = hidden // block
    q = rng.integers(0, 16, (vocab, hidden)).astype(np.uint8)
    scales = rng.uniform(0.01, 0.1, (vocab, blocks)).astype(np.float32)
    if packed:
        data = numpy_helper.from_array((q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8), "D")
    else:
        data = helper.make_tensor("D", TensorProto.UINT4, [vocab, hidden], q.reshape(-1).tolist())
    inits = [data, numpy_helper.from_array(scales, "S")]
    ins = ["D", "ids", "S"]
    if zp:
        z = rng.integers(0, 16, (vocab, blocks)).astype(np.uint8)
        inits.append(numpy_helper.from_array((z[:, 0::2] | (z[:, 1::2] << 4)).astype(np.uint8), "Z"))
        ins.append("Z")
    node = helper.make_node("GatherBlockQuantized", ins, ["Y"], domain="com.microsoft",
                            block_size=block, bits=4, gather_axis=0, quantize_axis=1)
    model = _model([node], [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])],
                   [helper.make_tensor_value_info("Y", F, ["b", "s", hidden])], inits)
    _check(model, {"ids": rng.integers(0, vocab, (2, 3)).astype(np.int64)})
    graph = from_onnx(model)
    assert graph.weights["D"].numel == vocab * hidden
    assert graph.weights["D"].nbytes == vocab * hidden // 2


def _gqa_model(heads: int, kvh: int, head: int, packed: bool, rotary: bool, window: int = -1,
               softcap: float = 0.0) -> tuple[onnx.ModelProto, list[str]]:
    q_dim = (heads + 2 * kvh) * head if packed else heads * head
    ins = [helper.make_tensor_value_info("q", F, ["b", "s", q_dim])]
    names = ["q", "" if packed else "k", "" if packed else "v", "pk", "pv", "seqlens", "total"]
    if not packed:
        ins += [helper.make_tensor_value_info(n, F, ["b", "s", kvh * head]) for n in ("k", "v")]
    ins += [helper.make_tensor_value_info(n, F, ["b", kvh, "p", head]) for n in ("pk", "pv")]
    ins += [helper.make_tensor_value_info("seqlens", TensorProto.INT32, ["b"]),
            helper.make_tensor_value_info("total", TensorProto.INT32, [])]
    inits = []
    if rotary:
        pos = np.arange(64)[:, None] * (1e4 ** (-np.arange(head // 2) / (head // 2)))[None, :]
        inits = [numpy_helper.from_array(np.cos(pos).astype(np.float32), "cos"),
                 numpy_helper.from_array(np.sin(pos).astype(np.float32), "sin")]
        names += ["cos", "sin"]
    node = helper.make_node("GroupQueryAttention", names, ["y", "present_k", "present_v"],
                            domain="com.microsoft", num_heads=heads, kv_num_heads=kvh,
                            do_rotary=int(rotary), local_window_size=window, softcap=softcap)
    outs = [helper.make_tensor_value_info("y", F, ["b", "s", heads * head]),
            helper.make_tensor_value_info("present_k", F, ["b", kvh, "t", head]),
            helper.make_tensor_value_info("present_v", F, ["b", kvh, "t", head])]
    return _model([node], ins, outs, inits), [n for n in names if n and n not in ("cos", "sin")]


@pytest.mark.parametrize("packed,rotary,past,seq,window,softcap", [
    (True, True, 0, 5, -1, 0.0), (True, True, 4, 1, -1, 0.0), (False, False, 3, 2, -1, 0.0),
    (False, True, 6, 1, 3, 0.0), (True, False, 2, 3, -1, 30.0),
])
def test_group_query_attention_matches_onnxruntime(packed, rotary, past, seq, window, softcap) -> None:
    heads, kvh, head = 4, 2, 16
    batch = 1 if past and seq > 1 else 2  # onnxruntime's CPU kernel: batch 1 for a prompt with past
    model, names = _gqa_model(heads, kvh, head, packed, rotary, window, softcap)
    rng = np.random.default_rng(past * 10 + seq)
    q_dim = (heads + 2 * kvh) * head if packed else heads * head
    feeds = {"q": rng.normal(size=(batch, seq, q_dim)).astype(np.float32),
             "pk": rng.normal(size=(batch, kvh, past, head)).astype(np.float32),
             "pv": rng.normal(size=(batch, kvh, past, head)).astype(np.float32),
             "seqlens": np.full(batch, past + seq - 1, np.int32),
             "total": np.array(past + seq, np.int32)}
    if not packed:
        feeds["k"] = rng.normal(size=(batch, seq, kvh * head)).astype(np.float32)
        feeds["v"] = rng.normal(size=(batch, seq, kvh * head)).astype(np.float32)
    _check(model, {n: feeds[n] for n in names}, rtol=1e-5)


def test_multi_head_attention_matches_onnxruntime() -> None:
    heads, head, batch, seq, past = 2, 8, 2, 3, 4
    d = heads * head
    rng = np.random.default_rng(5)
    ins = [helper.make_tensor_value_info(n, F, ["b", "s", d]) for n in ("q", "k", "v")]
    ins += [helper.make_tensor_value_info(n, F, ["b", heads, "p", head]) for n in ("pk", "pv")]
    bias = numpy_helper.from_array(rng.normal(size=3 * d).astype(np.float32), "bias")
    node = helper.make_node("MultiHeadAttention", ["q", "k", "v", "bias", "", "", "pk", "pv"],
                            ["y", "present_k", "present_v"], domain="com.microsoft", num_heads=heads,
                            unidirectional=1)
    outs = [helper.make_tensor_value_info("y", F, ["b", "s", d]),
            helper.make_tensor_value_info("present_k", F, ["b", heads, "t", head]),
            helper.make_tensor_value_info("present_v", F, ["b", heads, "t", head])]
    model = _model([node], ins, outs, [bias])
    feeds = {n: rng.normal(size=(batch, seq, d)).astype(np.float32) for n in ("q", "k", "v")}
    feeds |= {n: rng.normal(size=(batch, heads, past, head)).astype(np.float32) for n in ("pk", "pv")}
    _check(model, feeds)


@pytest.mark.parametrize("interleaved,rank", [(False, 3), (True, 3), (False, 4)])
def test_ms_rotary_embedding_matches_onnxruntime(interleaved, rank) -> None:
    heads, head, batch, seq = 2, 8, 2, 3
    rng = np.random.default_rng(7)
    shape = ["b", "s", heads * head] if rank == 3 else ["b", heads, "s", head]
    pos = np.arange(32)[:, None] * rng.uniform(0.01, 1.0, head // 2)[None, :]
    inits = [numpy_helper.from_array(np.cos(pos).astype(np.float32), "cos"),
             numpy_helper.from_array(np.sin(pos).astype(np.float32), "sin")]
    node = helper.make_node("RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"], domain="com.microsoft",
                            interleaved=int(interleaved), num_heads=heads if rank == 3 else 0)
    model = _model([node], [helper.make_tensor_value_info("x", F, shape),
                            helper.make_tensor_value_info("pos", TensorProto.INT64, ["b", "s"])],
                   [helper.make_tensor_value_info("y", F, shape)], inits)
    x = rng.normal(size=(batch, seq, heads * head) if rank == 3 else (batch, heads, seq, head))
    _check(model, {"x": x.astype(np.float32), "pos": rng.integers(0, 32, (batch, seq)).astype(np.int64)})


@pytest.mark.parametrize("op,bias,attrs", [("FastGelu", False, {}), ("FastGelu", True, {}),
                                           ("QuickGelu", False, {"alpha": 1.5}), ("BiasGelu", True, {})])
def test_gelu_forms_match_onnxruntime(op, bias, attrs) -> None:
    rng = np.random.default_rng(9)
    inits = [numpy_helper.from_array(rng.normal(size=16).astype(np.float32), "bias")] if bias else []
    node = helper.make_node(op, ["x", "bias"] if bias else ["x"], ["y"], domain="com.microsoft", **attrs)
    model = _model([node], [helper.make_tensor_value_info("x", F, ["b", 16])],
                   [helper.make_tensor_value_info("y", F, ["b", 16])], inits)
    _check(model, {"x": rng.normal(size=(3, 16)).astype(np.float32)}, rtol=1e-5)


@pytest.mark.parametrize("op,beta,bias", [("SkipSimplifiedLayerNormalization", False, False),
                                          ("SkipSimplifiedLayerNormalization", False, True),
                                          ("SkipLayerNormalization", True, True),
                                          ("SimplifiedLayerNormalization", False, False)])
def test_layer_norm_forms_match_onnxruntime(op, beta, bias) -> None:
    rng = np.random.default_rng(11)
    d = 16
    inits = [numpy_helper.from_array(rng.normal(size=d).astype(np.float32), "gamma")]
    simplified = op == "SimplifiedLayerNormalization"
    if simplified:
        node = helper.make_node(op, ["x", "gamma"], ["y"], epsilon=1e-5)  # onnxruntime: default domain
        outs = [helper.make_tensor_value_info("y", F, ["b", "s", d])]
        ins = [helper.make_tensor_value_info("x", F, ["b", "s", d])]
    else:
        names = ["x", "skip", "gamma"]
        if beta:
            inits.append(numpy_helper.from_array(rng.normal(size=d).astype(np.float32), "beta"))
            names.append("beta")
        if bias:
            inits.append(numpy_helper.from_array(rng.normal(size=d).astype(np.float32), "bias"))
            names += ([] if beta or op == "SkipSimplifiedLayerNormalization" else [""]) + ["bias"]
        node = helper.make_node(op, names, ["y", "", "", "sum"], domain="com.microsoft", epsilon=1e-5)
        ins = [helper.make_tensor_value_info(n, F, ["b", "s", d]) for n in ("x", "skip")]
        outs = [helper.make_tensor_value_info(n, F, ["b", "s", d]) for n in ("y", "sum")]
    model = _model([node], ins, outs, inits)
    feeds = {i.name: rng.normal(size=(2, 3, d)).astype(np.float32) for i in ins}
    _check(model, feeds)
    kinds = [n.op for n in from_onnx(model).nodes]
    assert kinds[-1] in (OpKind.RMS_NORM, OpKind.LAYER_NORM)
    assert kinds.count(OpKind.ADD) == (0 if simplified else 1 + bias)


def test_unknown_op_names_op_domain_and_node() -> None:
    node = helper.make_node("FusedConv", ["x"], ["y"], name="conv_7", domain="com.microsoft")
    model = _model([node], [helper.make_tensor_value_info("x", F, [2])],
                   [helper.make_tensor_value_info("y", F, [2])])
    with pytest.raises(UserError, match=r"'conv_7'.*com\.microsoft\.FusedConv.*domain com\.microsoft"):
        from_onnx(model)


def test_cast_like_takes_the_type_of_its_second_input() -> None:
    like = numpy_helper.from_array(np.zeros(1, np.float16), "like")
    node = helper.make_node("CastLike", ["x", "like"], ["y"])
    model = _model([node], [helper.make_tensor_value_info("x", F, [3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [3])], [like])
    _check(model, {"x": np.array([1.5, -2.25, 3.0], np.float32)})


@pytest.mark.parametrize("family", ["llama", "gpt2", "mixtral"])
def test_unoptimised_dynamo_exports_match_onnxruntime(tmp_path, family) -> None:
    """The dynamo exporter without its optimizer (CastLike, Constant, Identity, CumSum, Not,
    SplitToSequence/SequenceAt): exact parameter counts and onnxruntime's logits."""
    from placer.pipeline import load_graph
    from placer.runner import _weights_from_file
    from tests.models import export_onnx, parameter_count

    path = export_onnx(family, tmp_path / "model.onnx", with_cache=True, optimize=False)
    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    assert {"CastLike", "Constant"} <= ops
    graph = from_onnx(path)
    assert graph.parameter_count() == parameter_count(family)
    assert len(load_graph(path).kv_caches) == 4
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: (rng.integers(0, 100, (1, 3)) if i.type == "tensor(int64)" else
                      rng.normal(size=(1, i.shape[1], 2, i.shape[3])).astype(np.float32))
             for i in sess.get_inputs()}
    want = sess.run(None, feeds)[0]
    got = run_graph(graph, feeds, weights=_weights_from_file(path, graph))["logits"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
