"""Shape rules: coverage, per-op shapes against onnxruntime, and symbolic cases ONNX loses."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from placer.frontends.onnx import from_onnx
from placer.ir import attrs as A
from placer.ir.dtypes import DType
from placer.ir.graph import GraphBuilder
from placer.ir.ops import OpKind
from placer.ir.passes.infer_shapes import infer_shapes
from placer.ir.shape_rules import SHAPE_RULES, ShapeError
from placer.ir.symbolic import Sym
from placer.ir.types import TensorType
from placer.ir.verifier import VerificationError

F, I = TensorProto.FLOAT, TensorProto.INT64


def test_every_op_kind_has_a_rule():
    missing = [k.value for k in OpKind if k not in SHAPE_RULES]
    assert missing == []


def _t(name, dtype, values):
    arr = np.asarray(values)
    return helper.make_tensor(name, dtype, list(arr.shape), arr.reshape(-1).tolist())


# (op, {input name: shape (float input) or ("const", dtype, values)}, attributes, n outputs)
CASES = [
    ("MatMul", {"a": [2, 3, 4], "b": [4, 5]}, {}, 1),
    ("MatMul", {"a": [4], "b": [2, 4, 5]}, {}, 1),
    ("MatMul", {"a": [3, 1, 2, 4], "b": [5, 4, 6]}, {}, 1),
    ("Gemm", {"a": [4, 3], "b": [5, 4], "c": [5]}, {"transA": 1, "transB": 1}, 1),
    ("Add", {"a": [2, 1, 4], "b": [3, 1]}, {}, 1),
    ("Less", {"a": [2, 1], "b": [3]}, {}, 1),
    ("Where", {"c": ("const", TensorProto.BOOL, [True, False, True]), "a": [2, 1], "b": [3]}, {}, 1),
    ("Sigmoid", {"a": [2, 3]}, {}, 1),
    ("Cast", {"a": [2, 3]}, {"to": TensorProto.FLOAT16}, 1),
    ("Softmax", {"a": [2, 3]}, {"axis": 0}, 1),
    ("LayerNormalization", {"a": [2, 3, 4], "s": [3, 4], "b": [3, 4]}, {"axis": 1}, 3),
    ("ReduceMean", {"a": [2, 3, 4], "axes": ("const", I, [-1, 0])}, {}, 1),
    ("ReduceSum", {"a": [2, 3, 4], "axes": ("const", I, [1])}, {"keepdims": 0}, 1),
    ("ReduceMax", {"a": [2, 3, 4]}, {"keepdims": 0}, 1),
    ("ArgMax", {"a": [2, 3, 4]}, {"axis": 1, "keepdims": 0}, 1),
    ("TopK", {"a": [2, 7], "k": ("const", I, [3])}, {}, 2),
    ("Reshape", {"a": [2, 3, 4], "s": ("const", I, [0, -1])}, {}, 1),
    ("Transpose", {"a": [2, 3, 4]}, {"perm": [2, 0, 1]}, 1),
    ("Concat", {"a": [2, 3], "b": [2, 5]}, {"axis": -1}, 1),
    ("Split", {"a": [2, 10], "s": ("const", I, [3, 7])}, {"axis": 1}, 2),
    ("Split", {"a": [2, 10]}, {"axis": 1, "num_outputs": 3}, 3),
    ("Slice", {"a": [5, 20], "st": ("const", I, [1, -4]), "en": ("const", I, [100, -1]),
               "ax": ("const", I, [0, 1]), "sp": ("const", I, [2, 1])}, {}, 1),
    ("Slice", {"a": [5, 20], "st": ("const", I, [-1]), "en": ("const", I, [-100]),
               "ax": ("const", I, [1]), "sp": ("const", I, [-3])}, {}, 1),
    ("Squeeze", {"a": [1, 3, 1], "ax": ("const", I, [0])}, {}, 1),
    ("Unsqueeze", {"a": [3, 4], "ax": ("const", I, [0, -1])}, {}, 1),
    ("Expand", {"a": [3, 1], "s": ("const", I, [2, 1, 4])}, {}, 1),
    ("Flatten", {"a": [2, 3, 4]}, {"axis": 2}, 1),
    ("Tile", {"a": [2, 3], "r": ("const", I, [2, 3])}, {}, 1),
    ("Gather", {"a": [5, 6], "i": ("const", I, [[0, 1], [2, 3]])}, {"axis": 1}, 1),
    ("GatherND", {"a": [2, 3, 4], "i": ("const", I, [[0, 1], [1, 2]])}, {}, 1),
    ("GatherElements", {"a": [2, 3], "i": ("const", I, [[0], [1]])}, {"axis": 1}, 1),
    ("ScatterND", {"a": [4, 3], "i": ("const", I, [[1]]), "u": [1, 3]}, {}, 1),
    ("OneHot", {"i": ("const", I, [1, 2]), "d": ("const", I, [5]),
                "v": ("const", F, [0.0, 1.0])}, {"axis": 0}, 1),
    ("Trilu", {"a": [3, 4]}, {"upper": 0}, 1),
    ("Shape", {"a": [2, 3, 4]}, {"start": 1}, 1),
    ("ConstantOfShape", {"s": ("const", I, [2, 3])}, {}, 1),
    ("Range", {"s": ("const", I, 1), "l": ("const", I, 10), "d": ("const", I, 3)}, {}, 1),
    ("CumSum", {"a": [2, 3], "ax": ("const", I, 1)}, {"exclusive": 1}, 1),
]


@pytest.mark.parametrize(("op", "inputs", "attrs", "n_out"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_matches_onnxruntime(op, inputs, attrs, n_out):
    graph_inputs, inits, feeds = [], [], {}
    rng = np.random.default_rng(0)
    for name, spec in inputs.items():
        if isinstance(spec, tuple):
            inits.append(_t(name, spec[1], spec[2]))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, F, spec))
            feeds[name] = rng.standard_normal(spec).astype(np.float32)
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, list(inputs), outs, name="n", **attrs)
    g = helper.make_graph([node], "g", graph_inputs,
                          [onnx.ValueInfoProto(name=o) for o in outs],
                          inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    graph = from_onnx(model)
    expected = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    for o, r in zip(outs, expected):
        assert graph.types[o].shape == np.asarray(r).shape, f"{op} {o}"
        assert graph.types[o].dtype.to_numpy() == np.asarray(r).dtype, f"{op} {o}"


# --- symbolic cases ---------------------------------------------------------------------------

batch, seq, past = Sym.var("batch"), Sym.var("seq"), Sym.var("past")


class _Builder(GraphBuilder):
    """GraphBuilder.constant() without a name claims its fresh name twice (see report);
    name constants explicitly."""

    def constant(self, value, name=None, dtype=None):  # noqa: ANN001, ANN201
        self._counter += 1
        return super().constant(value, name or f"c{self._counter}", dtype)


def _hidden_builder():
    b = _Builder("g")
    x = b.input("x", TensorType(DType.FLOAT32, (batch, seq, 4096)))
    return b, x


def _shape_of(b, x, index):
    s = b.op(OpKind.SHAPE, [x])
    d = b.op(OpKind.GATHER, [s, b.constant(index)], A.AxisAttrs(0))
    return b.op(OpKind.UNSQUEEZE, [d, b.constant([0])])


def test_shape_gather_unsqueeze_concat_reshape():
    b, x = _hidden_builder()
    parts = [_shape_of(b, x, 0), _shape_of(b, x, 1), b.constant([32]), b.constant([128])]
    target = b.op(OpKind.CONCAT, parts, A.AxisAttrs(0))
    y = b.op(OpKind.RESHAPE, [x, target])
    b.output(y)
    g = infer_shapes(b.build())
    assert g.types[y].shape == (batch, seq, 32, 128)


def test_reshape_minus_one_divides_polynomials():
    b, x = _hidden_builder()
    y = b.op(OpKind.RESHAPE, [x, b.constant([-1, 4096])])
    z = b.op(OpKind.RESHAPE, [y, b.constant([-1, 32, 128])])
    b.output(z)
    g = infer_shapes(b.build())
    assert g.types[y].shape == (batch * seq, 4096)
    assert g.types[z].shape == (batch * seq, 32, 128)


def test_reshape_minus_one_by_a_sum():
    b = _Builder("g")
    k = b.input("k", TensorType(DType.FLOAT32, (batch, 4, past + seq, 16)))
    s = b.op(OpKind.SHAPE, [k])
    total = b.op(OpKind.SLICE, [s, b.constant([2]), b.constant([3])])
    target = b.op(OpKind.CONCAT, [b.constant([-1]), total, b.constant([16])], A.AxisAttrs(0))
    y = b.op(OpKind.RESHAPE, [k, target])
    b.output(y)
    assert infer_shapes(b.build()).types[y].shape == (4 * batch, past + seq, 16)


def test_range_over_seq():
    b, x = _hidden_builder()
    s = b.op(OpKind.SHAPE, [x])
    n = b.op(OpKind.GATHER, [s, b.constant(1)], A.AxisAttrs(0))
    r = b.op(OpKind.RANGE, [b.constant(0), n, b.constant(1)])
    shifted = b.op(OpKind.RANGE, [b.constant(3), b.op(OpKind.ADD, [n, b.constant(3)]),
                                  b.constant(1)])
    b.output(r, shifted)
    g = infer_shapes(b.build())
    assert g.types[r] == TensorType(DType.INT64, (seq,))
    assert g.types[shifted] == TensorType(DType.INT64, (seq,))


def test_slice_with_dynamic_end_keeps_symbols():
    b = _Builder("g")
    cache = b.constant(np.zeros((256, 16), np.float32), name="cos_cache")
    k = b.input("k", TensorType(DType.FLOAT32, (batch, 2, past, 16)))
    ids = b.input("ids", TensorType(DType.INT64, (batch, seq)))
    p = b.op(OpKind.GATHER, [b.op(OpKind.SHAPE, [k]), b.constant([2])], A.AxisAttrs(0))
    s = b.op(OpKind.GATHER, [b.op(OpKind.SHAPE, [ids]), b.constant([1])], A.AxisAttrs(0))
    end = b.op(OpKind.ADD, [p, s])
    rows = b.op(OpKind.SLICE, [cache, b.constant([0]), end, b.constant([0])])
    last = b.op(OpKind.SLICE, [ids, b.constant([-1]), b.constant([2**63 - 1]), b.constant([1])])
    tail = b.op(OpKind.SLICE, [k, p, b.constant([2**63 - 1]), b.constant([2])])
    b.output(rows, last, tail)
    g = infer_shapes(b.build())
    assert g.types[rows].shape == (past + seq, 16)
    assert g.types[last].shape == (batch, 1)
    assert g.types[tail].shape == (batch, 2, 0, 16)


def test_symbolic_broadcast_and_matmul():
    b = GraphBuilder("g")
    q = b.input("q", TensorType(DType.FLOAT32, (batch, 4, seq, 16)))
    k = b.input("k", TensorType(DType.FLOAT32, (batch, 4, past + seq, 16)))
    mask = b.input("mask", TensorType(DType.FLOAT32, (1, 1, seq, past + seq)))
    kt = b.op(OpKind.TRANSPOSE, [k], A.TransposeAttrs((0, 1, 3, 2)))
    scores = b.op(OpKind.MATMUL, [q, kt])
    masked = b.op(OpKind.ADD, [scores, mask])
    b.output(masked)
    assert infer_shapes(b.build()).types[masked].shape == (batch, 4, seq, past + seq)


@pytest.mark.parametrize(("a", "b_", "op"), [
    ((batch, 3), (batch, 4), OpKind.ADD),
    ((seq, 4), (5, 7), OpKind.MATMUL),
])
def test_mismatch_raises_shape_error_naming_node(a, b_, op):
    b = GraphBuilder("g")
    x = b.input("x", TensorType(DType.FLOAT32, a))
    y = b.input("y", TensorType(DType.FLOAT32, b_))
    z = b.op(op, [x, y], name="culprit")
    b.output(z)
    with pytest.raises(ShapeError) as info:
        infer_shapes(b.build())
    assert isinstance(info.value, VerificationError)
    assert info.value.node == "culprit"
    assert "culprit" in str(info.value) and ">>" in str(info.value)
