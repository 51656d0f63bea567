"""Reference kernels and mesh kernels against onnx.reference.ReferenceEvaluator, one node each."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from placer.backends.executor import MeshExecutor
from placer.backends.kernels import KERNELS
from placer.backends.mesh import MeshSpec
from placer.backends.reference import NodeExecutionError, run_graph
from placer.ir import attrs as A
from placer.ir.dtypes import DType
from placer.ir.graph import GraphBuilder
from placer.ir.ops import OpKind
from placer.ir.types import TensorType

rng = np.random.default_rng(0)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731

# (ONNX op, ONNX attributes, OpKind, IR attrs, inputs, outputs count, opset)
CASES = [
    ("MatMul", {}, OpKind.MATMUL, None, [f32(1, 1, 6), f32(6, 5)], 1, 18),
    ("MatMul", {}, OpKind.MATMUL, None, [f32(2, 3, 6), f32(6, 5)], 1, 18),
    ("MatMul", {}, OpKind.MATMUL, None, [f32(2, 4, 1, 8), f32(2, 4, 8, 7)], 1, 18),
    ("Gemm", {"transB": 1, "alpha": 0.5}, OpKind.GEMM, A.GemmAttrs(alpha=0.5, trans_b=True),
     [f32(3, 6), f32(5, 6), f32(5)], 1, 18),
    ("Add", {}, OpKind.ADD, None, [f32(2, 3, 4), f32(4)], 1, 18),
    ("Div", {}, OpKind.DIV, None, [f32(2, 3), f32(2, 3) + 3], 1, 18),
    ("Pow", {}, OpKind.POW, None, [np.abs(f32(3, 4)), np.array(2.0, np.float32)], 1, 18),
    ("Where", {}, OpKind.WHERE, None, [f32(3, 4) > 0, f32(3, 4), f32(4)], 1, 18),
    ("Sigmoid", {}, OpKind.SIGMOID, None, [f32(3, 4)], 1, 18),
    ("Erf", {}, OpKind.ERF, None, [f32(3, 4)], 1, 18),
    ("Cast", {"to": onnx.TensorProto.FLOAT16}, OpKind.CAST, A.CastAttrs(to=DType.FLOAT16),
     [f32(3, 4)], 1, 18),
    ("Softmax", {"axis": -1}, OpKind.SOFTMAX, A.AxisAttrs(-1), [f32(2, 3, 17)], 1, 18),
    ("Softmax", {"axis": 1}, OpKind.SOFTMAX, A.AxisAttrs(1), [f32(2, 3, 5)], 1, 18),
    ("ReduceMean", {"keepdims": 1}, OpKind.REDUCE_MEAN, A.ReduceAttrs(), [f32(2, 3, 9), i64(-1)], 1, 18),
    ("ReduceSum", {"keepdims": 0}, OpKind.REDUCE_SUM, A.ReduceAttrs(keepdims=False),
     [f32(2, 3, 9), i64(0, 2)], 1, 18),
    ("ReduceMax", {"keepdims": 1}, OpKind.REDUCE_MAX, A.ReduceAttrs(), [f32(4, 5), i64(1)], 1, 18),
    ("LayerNormalization", {"axis": -1, "epsilon": 1e-5}, OpKind.LAYER_NORM, A.NormAttrs(),
     [f32(2, 3, 10), f32(10), f32(10)], 1, 18),
    ("RMSNormalization", {"axis": -1}, OpKind.RMS_NORM, A.NormAttrs(), [f32(2, 3, 10), f32(10)], 1, 23),
    ("Gather", {"axis": 0}, OpKind.GATHER, A.AxisAttrs(0), [f32(11, 6), i64(3, -1, 0)], 1, 18),
    ("Slice", {}, OpKind.SLICE, None, [f32(5, 6), i64(-1, 1), i64(-100, 5), i64(0, 1), i64(-1, 2)], 1, 18),
    ("Split", {"axis": 1, "num_outputs": 3}, OpKind.SPLIT, A.SplitAttrs(axis=1, num_outputs=3),
     [f32(2, 7)], 3, 18),
    ("TopK", {"axis": -1}, OpKind.TOP_K, A.TopKAttrs(), [f32(3, 6), i64(2)], 2, 18),
    ("Trilu", {"upper": 0}, OpKind.TRILU, A.TriluAttrs(upper=False), [f32(4, 4), i64(1)], 1, 18),
    ("Expand", {}, OpKind.EXPAND, None, [f32(3, 1), i64(2, 3, 4)], 1, 18),
    ("GatherND", {"batch_dims": 1}, OpKind.GATHER_ND, A.GatherNDAttrs(1),
     [f32(2, 3, 4), i64(1, 0).reshape(2, 1)], 1, 18),
    ("CumSum", {"exclusive": 1}, OpKind.CUM_SUM, A.CumSumAttrs(exclusive=True),
     [f32(3, 4), np.array(1, np.int64)], 1, 18),
    ("RotaryEmbedding", {"num_heads": 2}, OpKind.ROTARY_EMBEDDING, A.RotaryAttrs(num_heads=2),
     [f32(1, 3, 8), f32(5, 2), f32(5, 2), i64(1, 4, 0).reshape(1, 3)], 1, 23),
    ("Attention", {"is_causal": 1}, OpKind.ATTENTION, A.AttentionAttrs(is_causal=True),
     [f32(1, 4, 2, 8), f32(1, 2, 1, 8), f32(1, 2, 1, 8), None, f32(1, 2, 3, 8), f32(1, 2, 3, 8)], 3, 23),
]


def _onnx_outputs(op: str, attrs: dict, inputs: list, n_out: int, opset: int) -> list[np.ndarray]:
    names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, names, [f"y{i}" for i in range(n_out)], **attrs)
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in zip(names, inputs) if a is not None]
    outs = [helper.make_tensor_value_info(f"y{i}", 0, None) for i in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "g", ins, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    feeds = {n: a for n, a in zip(names, inputs) if a is not None}
    return ReferenceEvaluator(model).run(None, feeds)


def _ir_graph(kind: OpKind, attrs: object, inputs: list, n_out: int):  # noqa: ANN202
    b = GraphBuilder("g")
    names = []
    for i, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        dtype = {"float32": DType.FLOAT32, "int64": DType.INT64, "bool": DType.BOOL}[str(a.dtype)]
        names.append(b.input(f"x{i}", TensorType(dtype, tuple(a.shape))))
    b.op(kind, names, attrs, outputs=[f"y{i}" for i in range(n_out)])
    b.output(*[f"y{i}" for i in range(n_out)])
    return b.build(), {n: a for n, a in zip(names, inputs) if a is not None}


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("backend", ["reference", "mesh"])
def test_kernel_matches_onnx_reference(case: tuple, backend: str) -> None:
    op, onnx_attrs, kind, attrs, inputs, n_out, opset = case
    expected = _onnx_outputs(op, onnx_attrs, inputs, n_out, opset)
    graph, feeds = _ir_graph(kind, attrs, inputs, n_out)
    if backend == "reference":
        got = run_graph(graph, feeds)
    else:
        got, stats = MeshExecutor(graph, MeshSpec(4, 3, 1 << 20, 16, 1, 4, 1e9)).run(feeds)
    for i, e in enumerate(expected):
        g = got[f"y{i}"]
        assert g.shape == e.shape and g.dtype == e.dtype, (g.shape, e.shape, g.dtype, e.dtype)
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_every_op_kind_has_a_kernel() -> None:
    assert set(KERNELS) == set(OpKind)


def test_failure_names_the_node() -> None:
    b = GraphBuilder("g")
    x = b.input("x", TensorType(DType.FLOAT32, (2, 3)))
    y = b.input("y", TensorType(DType.FLOAT32, (4, 5)))
    b.op(OpKind.MATMUL, [x, y], name="bad_matmul", outputs=["z"])
    b.output("z")
    with pytest.raises(NodeExecutionError, match="bad_matmul"):
        run_graph(b.build(), {"x": f32(2, 3), "y": f32(4, 5)})


def test_dead_values_are_freed() -> None:
    b = GraphBuilder("g")
    x = b.input("x", TensorType(DType.FLOAT32, (3,)))
    h = b.op(OpKind.NEG, [x])
    h = b.op(OpKind.EXP, [h])
    b.output(h)
    seen: list[int] = []
    from placer.backends.reference import execute_reference

    def spy(node, args):  # noqa: ANN001, ANN202
        seen.append(len(args))
        return execute_reference(node, args)

    out = run_graph(b.build(), {"x": np.ones(3, np.float32)}, execute=spy)
    np.testing.assert_allclose(out[h], np.exp(-np.ones(3)), rtol=1e-6)


def _sink_attention_numpy(q, k, v, sinks, window: int) -> np.ndarray:  # noqa: ANN001
    """gpt-oss attention written out: causal (and sliding-window) scores, one sink logit per head
    appended to every row, softmax, the sink column dropped, P @ V."""
    rep = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    scores = q.astype(np.float64) @ np.swapaxes(k, 2, 3) / np.sqrt(q.shape[-1])
    i, j = np.arange(q.shape[2])[:, None], np.arange(k.shape[2])[None, :]
    allowed = (j <= i) & ((i - j < window) if window else True)
    scores = np.where(allowed, scores, -np.inf)
    sink = np.broadcast_to(sinks.reshape(1, -1, 1, 1), scores.shape[:-1] + (1,))
    logits = np.concatenate([scores, sink], axis=-1)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (e / e.sum(-1, keepdims=True))[..., :-1]
    return probs @ v


@pytest.mark.parametrize("window", [0, 2])
@pytest.mark.parametrize("backend", ["reference", "mesh"])
def test_attention_sinks_match_direct_formula(backend: str, window: int) -> None:
    q, k, v = f32(1, 4, 5, 8), f32(1, 2, 5, 8), f32(1, 2, 5, 8)
    sinks = f32(4) * 2
    b = GraphBuilder("g")
    names = [b.input(n, TensorType(DType.FLOAT32, a.shape)) for n, a in (("q", q), ("k", k), ("v", v))]
    s = b.input("sinks", TensorType(DType.FLOAT32, (4,)))
    attrs = A.AttentionAttrs(is_causal=True, q_num_heads=4, kv_num_heads=2, window=window)
    b.op(OpKind.ATTENTION, [*names, "", "", "", "", s], attrs, outputs=["y", "pk", "pv", "qk"])
    b.output("y")
    feeds = {"q": q, "k": k, "v": v, "sinks": sinks}
    graph = b.build()
    got = run_graph(graph, feeds) if backend == "reference" else \
        MeshExecutor(graph, MeshSpec(4, 3, 1 << 20, 16, 1, 4, 1e9)).run(feeds)[0]
    np.testing.assert_allclose(got["y"], _sink_attention_numpy(q, k, v, sinks, window), rtol=1e-5, atol=1e-6)
    # The sinks take probability mass: without them the output differs.
    assert not np.allclose(got["y"], _sink_attention_numpy(q, k, v, np.full(4, -np.inf), window), atol=1e-3)


@pytest.mark.parametrize("saturate", [True, False])
def test_cast_to_fp8_saturates_as_onnx_specifies(saturate: bool) -> None:
    x = np.array([0.3, 1e6, -1e6, np.inf, -np.inf, np.nan, 500.0], np.float32)
    pairs = ((DType.FP8_E4M3, onnx.TensorProto.FLOAT8E4M3FN), (DType.FP8_E5M2, onnx.TensorProto.FLOAT8E5M2))
    for to, onnx_to in pairs:
        expected = _onnx_outputs("Cast", {"to": onnx_to, "saturate": int(saturate)}, [x], 1, 21)[0]
        graph, feeds = _ir_graph(OpKind.CAST, A.CastAttrs(to=to, saturate=saturate), [x], 1)
        got = MeshExecutor(graph, MeshSpec(2, 2, 1 << 20, 16, 1, 4, 1e9)).run(feeds)[0]["y0"]
        np.testing.assert_array_equal(got, expected.astype(np.float32))
