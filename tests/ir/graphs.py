"""Small hand-built graphs and a hypothesis strategy of random graphs, for IR tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from placer.ir import DType, GraphBuilder, KVCache, OpKind, Sym, TensorType, Unit, UnitKind, WeightRole
from placer.ir.attrs import AxisAttrs, GemmAttrs, NormAttrs, TransposeAttrs

B, S = Sym.var("batch"), Sym.var("seq")


def tiny_mlp_graph():
    """ids -> embed -> norm -> matmul -> gelu -> matmul -> logits, with two units."""
    b = GraphBuilder("tiny_mlp")
    f32 = DType.FLOAT32
    ids = b.input("ids", TensorType(DType.INT64, (B, S)))
    table = b.weight("embed.weight", TensorType(f32, (32, 8)), role=WeightRole.PARAMETER,
                     data=np.arange(256, dtype=np.float32).reshape(32, 8) / 256)
    scale = b.weight("norm.weight", TensorType(f32, (8,)), role=WeightRole.PARAMETER)
    w1 = b.weight("fc1.weight", TensorType(DType.BFLOAT16, (8, 16)), role=WeightRole.PARAMETER)
    w2 = b.weight("fc2.weight", TensorType(DType.MXFP4, (16, 32)), role=WeightRole.PARAMETER)
    h = b.op(OpKind.GATHER, [table, ids], AxisAttrs(0), unit="embed", scope="model.embed",
             types=[TensorType(f32, (B, S, 8))])
    n = b.op(OpKind.RMS_NORM, [h, scale], NormAttrs(-1, 1e-6), unit="head",
             types=[TensorType(f32, (B, S, 8))])
    x = b.op(OpKind.MATMUL, [n, w1], unit="head", types=[TensorType(f32, (B, S, 16))])
    g = b.op(OpKind.GELU, [x], unit="head", types=[TensorType(f32, (B, S, 16))])
    y = b.op(OpKind.MATMUL, [g, w2], unit="head", outputs=["logits"], types=[TensorType(f32, (B, S, 32))])
    b.output(y)
    b.kv_cache(KVCache("layers.0.k", x, 16, DType.FLOAT32, window=4))
    graph = b.build()
    return graph.replace(units=(Unit("embed", UnitKind.EMBEDDING), Unit("head", UnitKind.HEAD)))


_UNARY = [OpKind.RELU, OpKind.TANH, OpKind.NEG, OpKind.SIGMOID, OpKind.EXP]
_BINARY = [OpKind.ADD, OpKind.MUL, OpKind.SUB, OpKind.MAX]


@st.composite
def random_graphs(draw):
    """Random SSA graphs over [batch, seq, d] tensors with weights, attrs and units."""
    d = draw(st.integers(1, 6))
    b = GraphBuilder(draw(st.sampled_from(["g", "model", "x.y"])))
    t = TensorType(DType.FLOAT32, (B, S, d))
    values = [b.input("x0", t)]
    for i in range(draw(st.integers(0, 2))):
        values.append(b.input(f"in{i}", t))
    n_nodes = draw(st.integers(1, 12))
    units = []
    for i in range(n_nodes):
        unit = f"u{i // 3}"
        if unit not in units:
            units.append(unit)
        choice = draw(st.integers(0, 4))
        if choice == 0:
            v = b.op(draw(st.sampled_from(_UNARY)), [draw(st.sampled_from(values))], unit=unit, types=[t])
        elif choice == 1:
            v = b.op(draw(st.sampled_from(_BINARY)),
                     [draw(st.sampled_from(values)), draw(st.sampled_from(values))], unit=unit, types=[t])
        elif choice == 2:
            w = b.weight(f"w{i}", TensorType(draw(st.sampled_from([DType.FLOAT32, DType.BFLOAT16,
                                                                       DType.MXFP4, DType.INT4])), (d, d)),
                         role=draw(st.sampled_from(list(WeightRole))),
                         data=np.full((d, d), i, np.float32) if draw(st.booleans()) else None)
            v = b.op(OpKind.MATMUL, [draw(st.sampled_from(values)), w], unit=unit, types=[t])
        elif choice == 3:
            v = b.op(OpKind.SOFTMAX, [draw(st.sampled_from(values))], AxisAttrs(draw(st.integers(-3, 2))),
                     unit=unit, scope=f"m.{i}", types=[t])
        else:
            v = b.op(OpKind.TRANSPOSE, [draw(st.sampled_from(values))], TransposeAttrs((0, 1, 2)),
                     unit=unit, types=[t])
        values.append(v)
    if draw(st.booleans()):
        values.append(b.op(OpKind.GEMM, [values[-1], values[-1], ""],
                           GemmAttrs(alpha=draw(st.floats(0.5, 2.0)), trans_b=True), unit=units[-1],
                           types=[t]))
    b.output(values[-1])
    graph = b.build()
    return graph
