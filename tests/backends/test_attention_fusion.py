"""Attention per KV head group with the softmax's sum after P @ V (``placer.ir.mesh_physics``:
"Attention per KV head group", "Softmax sum after P @ V"): the emulated kernel against the
reference kernel (numpy, the same as onnxruntime's Attention), and its fabric cycles against
the performance model's (the cost rule's collectives through ``placer.perf.fabric_cycles``)."""

from __future__ import annotations

import numpy as np
import pytest

from placer.backends.kernels import KERNELS
from placer.backends.mesh import MeshSpec, StatsObserver, Wafer
from placer.backends.mesh.ops import MESH_KERNELS
from placer.cost_rules import COST_RULES, OpCall, Operand
from placer.costs import CollectiveKind
from placer.ir import attrs as A
from placer.ir import mesh_physics as mp
from placer.ir.dtypes import DType
from placer.ir.graph import Node
from placer.ir.ops import OpKind
from placer.perf import fabric_cycles
from placer.targets import load_target


def _node(heads: int, kv: int, *, sinks: bool = False, softcap: float = 0.0, mode: int = 0) -> Node:
    ins = ["q", "k", "v", "", "past_key", "past_value"] + (["", "sinks"] if sinks else [])
    return Node("attn", OpKind.ATTENTION, tuple(ins), ("y", "present_key", "present_value", "qk"),
                A.AttentionAttrs(is_causal=True, q_num_heads=heads, kv_num_heads=kv, softcap=softcap,
                                 qk_matmul_output_mode=mode))


def _args(batch: int, heads: int, kv: int, d: int, past: int, seq: int = 1, *, sinks: bool = False,
          seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    args = [f(batch, seq, heads * d), f(batch, seq, kv * d), f(batch, seq, kv * d), None,
            f(batch, kv, past, d), f(batch, kv, past, d)]
    return args + ([None, f(heads)] if sinks else [])


def _emulate(node: Node, args: list, rows: int, cols: int, decode: bool = True) -> tuple[tuple, int]:
    obs = StatsObserver()
    wafer = Wafer(MeshSpec(rows, cols, 1 << 24, 16.0, 1, 4, 1e9), "w", [obs])
    wafer.decode = decode
    with wafer.kernel("attn"):
        out = MESH_KERNELS[OpKind.ATTENTION](wafer, node, args)
    return out, obs.per_wafer()["w"].comm_cycles


CASES = [  # batch, heads, kv heads, head dim, past keys, grid rows, grid cols
    (1, 4, 2, 6, 9, 6, 10), (3, 4, 2, 6, 9, 6, 10), (1, 8, 8, 5, 12, 7, 5), (2, 6, 3, 4, 17, 13, 16),
    (1, 8, 2, 16, 40, 1, 7), (1, 4, 4, 8, 6, 7, 1), (2, 12, 4, 8, 30, 5, 3),
]


@pytest.mark.parametrize("batch,heads,kv,d,past,rows,cols", CASES)
@pytest.mark.parametrize("sinks", [False, True])
def test_grouped_attention_equals_the_reference(batch: int, heads: int, kv: int, d: int, past: int,
                                                rows: int, cols: int, sinks: bool) -> None:
    node = _node(heads, kv, sinks=sinks, softcap=30.0 if sinks else 0.0)
    args = _args(batch, heads, kv, d, past, sinks=sinks)
    want = KERNELS[OpKind.ATTENTION](node, *args)
    for decode in (True, False):  # fused, and the softmax's sum all-reduce before P @ V
        got, _ = _emulate(node, args, rows, cols, decode=decode or batch == 1)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_a_prefill_of_several_rows_keeps_the_sum_all_reduce_and_matches() -> None:
    node = _node(4, 2)
    args = _args(1, 4, 2, 6, 5, seq=3)
    want = KERNELS[OpKind.ATTENTION](node, *args)
    got, _ = _emulate(node, args, 6, 10, decode=False)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def _model_cycles(node: Node, batch: int, heads: int, kv: int, d: int, past: int, rows: int,
                  cols: int, seq: int = 1) -> int:
    """The model's fabric cycles of ``node``: a decode step of ``batch`` sequences, or (``seq``
    > 1) a prefill chunk of ``seq`` tokens."""
    f32 = lambda *s: Operand(s, DType.FLOAT32)  # noqa: E731
    ins = (f32(1, seq, heads * d), f32(1, seq, kv * d), f32(1, seq, kv * d), None, f32(1, kv, past, d),
           f32(1, kv, past, d))
    outs = (f32(1, seq, heads * d), f32(1, kv, past + seq, d), f32(1, kv, past + seq, d), None)
    cost = COST_RULES[OpKind.ATTENTION](OpCall(node, ins, outs, seq))
    target = load_target("wse3-physics", {"mesh_rows": rows, "mesh_cols": cols, "cycles_per_hop": 1,
                                          "link_bytes_per_cycle": 4})
    return fabric_cycles(cost, target, seq if seq > 1 else batch, prefill=seq > 1)


@pytest.mark.parametrize("rows,cols", [(6, 10), (13, 16), (1, 7)])
def test_a_prefill_chunks_attention_cycles_equal_the_model(rows: int, cols: int) -> None:
    """A chunk of 3 tokens: per KV group on bands, the softmax's sum a row all-reduce."""
    node = _node(4, 2)
    _, emulated = _emulate(node, _args(1, 4, 2, 6, 5, seq=3), rows, cols, decode=False)
    assert emulated == _model_cycles(node, 1, 4, 2, 6, 5, rows, cols, seq=3)


@pytest.mark.parametrize("batch,heads,kv,d,past,rows,cols", CASES)
def test_emulated_attention_cycles_equal_the_model(batch: int, heads: int, kv: int, d: int, past: int,
                                                   rows: int, cols: int) -> None:
    node = _node(heads, kv)
    _, emulated = _emulate(node, _args(batch, heads, kv, d, past), rows, cols)
    assert emulated == _model_cycles(node, batch, heads, kv, d, past, rows, cols)


def test_the_cost_rule_has_no_sum_all_reduce_and_groups_by_kv_head() -> None:
    f32 = lambda *s: Operand(s, DType.FLOAT32)  # noqa: E731
    for mode, fused in ((0, True), (3, False)):
        node = _node(32, 8, mode=mode)
        ins = (f32(1, 1, 32 * 128), f32(1, 1, 8 * 128), f32(1, 1, 8 * 128), None, f32(1, 8, 99, 128),
               f32(1, 8, 99, 128))
        cost = COST_RULES[OpKind.ATTENTION](OpCall(node, ins, (f32(1, 1, 4096),), 1))
        kinds = [c.kind for c in cost.collectives]
        assert kinds.count(CollectiveKind.ROW_ALLREDUCE) == (1 if fused else 2)
        qk, pv = (c for c in cost.collectives if c.kind is CollectiveKind.GEMV)
        assert (qk.heads, qk.groups, qk.in_elements, qk.out_elements) == (32, 8, 32 * 128, 32 * 100)
        assert (pv.sums, pv.in_elements, pv.out_elements) == (fused, 32 * 100, 32 * 128)


def test_on_wse3_a_kv_group_reduces_over_its_band() -> None:
    """Llama-3.1-8B's 8 KV groups on 762 rows: bands of 95 rows; QK^T and P @ V each shorter
    than the whole-column GEMV they replace, the sums hidden behind P @ V."""
    assert mp.kv_bands(762, 8) == (8, 95, 1)
    assert mp.kv_bands(3, 8) == (3, 1, 3)
    tiles = mp.gemv_tile_bytes(1, 32 * 128, 32 * 8193, 762, 1172, 2)
    whole = mp.gemv_collective_cycles(762, 1172, *tiles, 1, 4)
    band = mp.attention_gemv_cycles(762, 1172, 32, 8, 128, 8193, 1, 2, 1, 4)
    assert band < whole
    pv = mp.attention_gemv_cycles(762, 1172, 32, 8, 8193, 128, 1, 2, 1, 4)
    assert mp.attention_gemv_cycles(762, 1172, 32, 8, 8193, 128, 1, 2, 1, 4, sums=True) == pv


def _decomposed(heads: int = 3, keys: int = 11, d: int = 5, extra_reader: bool = False):  # noqa: ANN202
    from placer.ir.graph import GraphBuilder
    from placer.ir.types import TensorType

    b = GraphBuilder("decomposed")
    f32 = lambda *s: TensorType(DType.FLOAT32, s)  # noqa: E731
    q, kt = b.input("q", f32(1, heads, 1, d)), b.input("kt", f32(1, heads, d, keys))
    v = b.input("v", f32(1, heads, keys, d))
    p = b.op(OpKind.SOFTMAX, [b.op(OpKind.MATMUL, [q, kt])], A.AxisAttrs(axis=-1))
    y = b.op(OpKind.MATMUL, [p, v])
    b.output(*([y, b.op(OpKind.RELU, [p])] if extra_reader else [y]))
    return b.build()


def test_a_decomposed_softmax_feeding_pv_is_fused_in_the_emulator_and_the_model() -> None:
    from placer.backends.executor import MeshExecutor
    from placer.ir.norm_fusion import fused_norms

    graph = _decomposed()
    assert list(fused_norms(graph)) == [graph.nodes[1].name]
    assert not fused_norms(_decomposed(extra_reader=True))
    rng = np.random.default_rng(3)
    feeds = {n: rng.standard_normal(tuple(int(x) for x in graph.type_of(n).shape)).astype(np.float32)
             for n in graph.inputs}
    s = feeds["q"] @ feeds["kt"]
    e = np.exp(s - s.max(-1, keepdims=True))
    want = (e / e.sum(-1, keepdims=True)) @ feeds["v"]
    rows, cols = 6, 10
    spec = MeshSpec(rows, cols, 1 << 20, 16.0, 1, 4, 1e9)
    fused = MeshExecutor(graph, spec)
    out, _ = fused.run(feeds, decode=True)
    np.testing.assert_allclose(out[graph.outputs[0]], want, rtol=1e-5, atol=1e-6)
    plain = MeshExecutor(graph, spec)
    plain.fused_norms = frozenset()
    plain.run(feeds, decode=True)
    # the sum all-reduce is gone; the sums' path (3 heads x 4 bytes) runs beside P @ V
    pv = mp.gemv_collective_cycles(rows, cols, *mp.gemv_tile_bytes(1, 3 * 11, 3 * 5, rows, cols, 4), 1, 4)
    saved = (mp.allreduce_cycles(cols, mp.row_tile_bytes(3, 1, rows, 4), 1, 4)
             - mp.fused_norm_extra_cycles(mp.norm_statistic_cycles(rows, cols, 3 * 4, 1, 4), pv))
    comm = lambda ex: ex.step_observer.total().comm_cycles  # noqa: E731
    assert saved > 0 and comm(plain) - comm(fused) == saved
