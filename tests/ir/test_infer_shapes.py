"""The infer-shapes pass on a 405B-shaped graph: every value typed, symbolic, and fast."""

from __future__ import annotations

from placer.ir import attrs as A
from placer.ir.dtypes import DType
from placer.ir.graph import ExternalLocation, GraphBuilder, WeightRole
from placer.ir.ops import OpKind
from placer.ir.passes.classify_weights import ClassifyWeights
from placer.ir.passes.infer_shapes import InferShapes, infer_shapes
from placer.ir.symbolic import Sym
from placer.ir.types import TensorType

batch, seq = Sym.var("batch"), Sym.var("seq")
HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 16384, 128, 8, 128, 53248, 128256


def llama405b_shaped(layers: int = 126):
    """A decomposed Llama-3.1-405B-shaped graph (shape arithmetic included), weights external."""
    b = GraphBuilder("llama405b")
    counter = iter(range(10**6))

    def const(v):
        return b.constant(v, name=f"c{next(counter)}")

    def weight(shape):
        name = f"w{next(counter)}"
        t = TensorType(DType.BFLOAT16, shape)
        return b.weight(name, t, location=ExternalLocation("w.bin", 0, t.dtype.storage_bytes(
            t.numel)))

    ids = b.input("ids", TensorType(DType.INT64, (batch, seq)))
    h = b.op(OpKind.GATHER, [weight((VOCAB, HIDDEN)), ids], A.AxisAttrs(0))
    shape = b.op(OpKind.SHAPE, [ids])
    dims = [b.op(OpKind.UNSQUEEZE, [b.op(OpKind.GATHER, [shape, const(i)], A.AxisAttrs(0)),
                                    const([0])]) for i in (0, 1)]

    def rms(x):
        sq = b.op(OpKind.POW, [x, const(2.0)])
        mean = b.op(OpKind.REDUCE_MEAN, [sq, const([-1])])
        inv = b.op(OpKind.RECIPROCAL, [b.op(OpKind.SQRT, [b.op(OpKind.ADD, [mean, const(1e-5)])])])
        return b.op(OpKind.MUL, [b.op(OpKind.MUL, [x, inv]), weight((HIDDEN,))])

    def heads(x, n):
        target = b.op(OpKind.CONCAT, [*dims, const([n]), const([HEAD_DIM])], A.AxisAttrs(0))
        return b.op(OpKind.TRANSPOSE, [b.op(OpKind.RESHAPE, [x, target])],
                    A.TransposeAttrs((0, 2, 1, 3)))

    for _ in range(layers):
        x = rms(h)
        q = heads(b.op(OpKind.MATMUL, [x, weight((HIDDEN, HEADS * HEAD_DIM))]), HEADS)
        k = heads(b.op(OpKind.MATMUL, [x, weight((HIDDEN, KV_HEADS * HEAD_DIM))]), KV_HEADS)
        v = heads(b.op(OpKind.MATMUL, [x, weight((HIDDEN, KV_HEADS * HEAD_DIM))]), KV_HEADS)
        rep = const([1, HEADS // KV_HEADS, 1, 1])
        k = b.op(OpKind.TILE, [k, rep])
        v = b.op(OpKind.TILE, [v, rep])
        kt = b.op(OpKind.TRANSPOSE, [k], A.TransposeAttrs((0, 1, 3, 2)))
        scores = b.op(OpKind.SOFTMAX, [b.op(OpKind.MUL, [b.op(OpKind.MATMUL, [q, kt]), const(0.088)])])
        att = b.op(OpKind.TRANSPOSE, [b.op(OpKind.MATMUL, [scores, v])], A.TransposeAttrs((0, 2, 1, 3)))
        att = b.op(OpKind.RESHAPE, [att, const([0, 0, -1])])
        h = b.op(OpKind.ADD, [h, b.op(OpKind.MATMUL, [att, weight((HEADS * HEAD_DIM, HIDDEN))])])
        x = rms(h)
        gate = b.op(OpKind.SILU, [b.op(OpKind.MATMUL, [x, weight((HIDDEN, FFN))])])
        up = b.op(OpKind.MATMUL, [x, weight((HIDDEN, FFN))])
        h = b.op(OpKind.ADD, [h, b.op(OpKind.MATMUL, [b.op(OpKind.MUL, [gate, up]),
                                                      weight((FFN, HIDDEN))])])
    logits = b.op(OpKind.MATMUL, [rms(h), weight((HIDDEN, VOCAB))])
    b.output(logits)
    return b.build(), logits


def test_405b_shaped_graph_infers_fast_and_symbolically():
    graph, logits = llama405b_shaped()
    assert len(graph.nodes) > 4500
    typed = infer_shapes(graph)
    values = [o for n in graph.nodes for o in n.outputs]
    assert all(v in typed.types for v in values)
    assert typed.types[logits] == TensorType(DType.BFLOAT16, (batch, seq, VOCAB))
    assert all(typed.types[v].symbols <= {"batch", "seq"} for v in values)


def test_passes_report_change_and_classify_405b_parameters():
    graph, _ = llama405b_shaped(layers=2)
    result = InferShapes().run(graph)
    assert InferShapes.name == "infer-shapes" and result.changed
    assert not InferShapes().run(result.graph).changed
    classified = ClassifyWeights().run(result.graph)
    assert ClassifyWeights.name == "classify-weights" and classified.changed
    params = classified.graph.parameter_count()
    per_layer = 2 * HIDDEN + HIDDEN * HEADS * HEAD_DIM * 2 + 2 * HIDDEN * KV_HEADS * HEAD_DIM \
        + 3 * HIDDEN * FFN
    assert params == 2 * VOCAB * HIDDEN + HIDDEN + 2 * per_layer
    roles = {w.role for w in classified.graph.weights.values()}
    assert roles == {WeightRole.PARAMETER, WeightRole.CONSTANT}
