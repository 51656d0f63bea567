import pytest

from placer.ir import DType, GraphBuilder, Node, OpKind, TensorType, Unit, UnitKind, VerificationError, verify
from placer.ir.attrs import AxisAttrs, NoAttrs
from tests.ir.graphs import tiny_mlp_graph

T = TensorType(DType.FLOAT32, (2, 3))


def test_valid_graph_passes():
    verify(tiny_mlp_graph(), require_types=True)


def test_dangling_input_names_node_and_shows_context():
    g = tiny_mlp_graph()
    bad = g.nodes[2].replace(inputs=("nope", g.nodes[2].inputs[1]))
    g = g.replace(nodes=g.nodes[:2] + (bad,) + g.nodes[3:])
    with pytest.raises(VerificationError) as info:
        verify(g)
    assert bad.name in info.value.short and "%nope" in info.value.short and "dangling" in info.value.short
    assert ">> " in info.value.context


def test_cycle_detected():
    b = GraphBuilder("cyc")
    x = b.input("x", T)
    b.op(OpKind.ADD, [x, "y"], outputs=["z"], types=[T])
    b.op(OpKind.RELU, ["z"], outputs=["y"], types=[T])
    b.output("y")
    with pytest.raises(VerificationError, match="cycle"):
        verify(b.build())


def test_wrong_attribute_class():
    g = tiny_mlp_graph()
    bad = g.nodes[0].replace(attrs=NoAttrs())
    g = g.replace(nodes=(bad,) + g.nodes[1:])
    with pytest.raises(VerificationError, match="AxisAttrs"):
        verify(g)


def test_duplicate_definition():
    b = GraphBuilder("dup")
    x = b.input("x", T)
    b.op(OpKind.RELU, [x], outputs=["y"], types=[T])
    g = b.build()
    g = g.replace(nodes=g.nodes + (Node("again", OpKind.RELU, (x,), ("y",), NoAttrs()),))
    with pytest.raises(VerificationError, match="defined twice"):
        verify(g)


def test_units_must_be_connected_and_acyclic():
    b = GraphBuilder("u")
    x = b.input("x", T)
    a = b.op(OpKind.RELU, [x], unit="A", types=[T])
    c = b.op(OpKind.RELU, [a], unit="B", types=[T])
    d = b.op(OpKind.RELU, [c], unit="A", types=[T])
    b.output(d)
    g = b.build().replace(units=(Unit("A", UnitKind.LAYER, 0), Unit("B", UnitKind.LAYER, 1)))
    with pytest.raises(VerificationError, match="not connected|cycle"):
        verify(g)


def test_unknown_unit():
    g = tiny_mlp_graph()
    bad = g.nodes[1].replace(unit="nowhere")
    g = g.replace(nodes=(g.nodes[0], bad) + g.nodes[2:])
    with pytest.raises(VerificationError, match="unknown unit 'nowhere'"):
        verify(g)


def test_softmax_attrs_default_axis():
    assert AxisAttrs().axis == -1


def test_builder_constant_without_name():
    b = GraphBuilder("c")
    c1 = b.constant([1, 2, 3])
    c2 = b.constant(0.5)
    x = b.input("x", T)
    y = b.op(OpKind.ADD, [x, c2], types=[T])
    b.output(y)
    g = b.build()
    verify(g)
    assert c1 != c2 and g.weights[c1].data.tolist() == [1, 2, 3]
