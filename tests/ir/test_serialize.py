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
