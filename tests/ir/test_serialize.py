from hypothesis import given

from placer.ir import from_json, graphs_equal, to_json, verify
from tests.ir.graphs import random_graphs, tiny_mlp_graph


def test_round_trip_tiny_graph_exact():
    g = tiny_mlp_graph()
    text = to_json(g)
    g2 = from_json(text)
    assert graphs_equal(g, g2)
    assert to_json(g2) == text
    assert g2.weights["embed.weight"].data.tobytes() == g.weights["embed.weight"].data.tobytes()


@given(random_graphs())
def test_round_trip_random_graphs(graph):
    verify(graph)
    again = from_json(to_json(graph))
    assert graphs_equal(graph, again)
    assert to_json(again) == to_json(graph)


def test_round_trip_keeps_scalar_and_ml_dtypes_data():
    import ml_dtypes
    import numpy as np

    from placer.ir import DType, GraphBuilder, OpKind, TensorType, WeightRole

    b = GraphBuilder("g")
    x = b.input("x", TensorType(DType.FLOAT32, (2,)))
    s = b.constant(np.int64(7), name="scalar")
    w = b.weight("w", TensorType(DType.BFLOAT16, (2,)), role=WeightRole.PARAMETER,
                 data=np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16))
    b.output(b.op(OpKind.ADD, [x, w], types=[TensorType(DType.FLOAT32, (2,))]), s)
    g = b.build()
    again = from_json(to_json(g))
    assert again.weights["scalar"].data.shape == ()
    assert again.weights["w"].data.dtype == np.dtype(ml_dtypes.bfloat16)
    assert graphs_equal(g, again)
