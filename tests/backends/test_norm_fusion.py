"""Norms fused into the GEMVs they feed (``placer.ir.norm_fusion``): the pattern, the emulated
fused algorithm against numpy, its cycles against ``mesh_physics``, and the model's charge."""

from __future__ import annotations

import numpy as np
import pytest

from placer.backends.executor import MeshExecutor
from placer.backends.mesh import MeshSpec, StatsObserver, Wafer, collectives
from placer.ir import attrs as A
from placer.ir import mesh_physics as mp
from placer.ir.dtypes import DType
from placer.ir.graph import GraphBuilder, WeightRole
from placer.ir.norm_fusion import fused_norms
from placer.ir.ops import OpKind
from placer.ir.types import TensorType

HIDDEN, N1, N2 = 40, 24, 17


def _graph(op: OpKind, *, bias: bool = False, extra_reader: bool = False, batch: int = 1):  # noqa: ANN202
    rng = np.random.default_rng(0)
    b = GraphBuilder("norm-gemv")
    f32 = lambda *s: TensorType(DType.FLOAT32, s)  # noqa: E731

    def weight(name: str, *shape: int) -> str:
        data = rng.standard_normal(shape).astype(np.float32)
        return b.weight(name, f32(*shape), data=data, role=WeightRole.PARAMETER)

    x = b.input("x", f32(batch, 1, HIDDEN))
    ins = [x, weight("gamma", HIDDEN)] + ([weight("beta", HIDDEN)] if bias else [])
    h = b.op(op, ins, A.NormAttrs(epsilon=1e-5))
    q = b.op(OpKind.MATMUL, [h, weight("wq", HIDDEN, N1)])
    k = b.op(OpKind.MATMUL, [h, weight("wk", HIDDEN, N2)])
    outs = [q, k] + ([b.op(OpKind.RELU, [h])] if extra_reader else [])
    b.output(*outs)
    return b.build()


def _reference(x: np.ndarray, g, op: OpKind, bias: bool) -> list[np.ndarray]:  # noqa: ANN001
    w = {n: np.asarray(v.data) for n, v in g.weights.items()}
    mean = x.mean(-1, keepdims=True) if op is OpKind.LAYER_NORM else 0
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + 1e-5) * w["gamma"] + (w["beta"] if bias else 0)
    return [y @ w["wq"], y @ w["wk"]]


def test_pattern_fuses_a_norm_read_only_by_gemvs() -> None:
    graph = _graph(OpKind.RMS_NORM)
    assert list(fused_norms(graph).values()) == [graph.nodes[0].outputs[0]]
    assert fused_norms(_graph(OpKind.LAYER_NORM, bias=True))
    assert not fused_norms(_graph(OpKind.RMS_NORM, extra_reader=True))


@pytest.mark.parametrize("op,bias", [(OpKind.RMS_NORM, False), (OpKind.LAYER_NORM, False),
                                     (OpKind.LAYER_NORM, True)])
@pytest.mark.parametrize("batch", [1, 3])
def test_fused_norm_equals_numpy_and_hides_its_statistics(op: OpKind, bias: bool, batch: int) -> None:
    g = _graph(op, bias=bias, batch=batch)
    rows, cols = 7, 5
    spec = MeshSpec(rows, cols, 1 << 20, 16.0, 1, 4, 1e9)
    x = np.random.default_rng(1).standard_normal((batch, 1, HIDDEN)).astype(np.float32) + 0.5
    ex = MeshExecutor(g, spec)
    assert ex.fused_norms
    out, _ = ex.run({"x": x}, decode=True)
    for got, want in zip([out[o] for o in g.outputs], _reference(x, g, op, bias)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
    # against the same graph with the norm unfused: the statistics' row all-reduce is gone
    plain = MeshExecutor(g, spec)
    plain.fused_norms = frozenset()
    ref_out, _ = plain.run({"x": x}, decode=True)
    for o in g.outputs:
        np.testing.assert_allclose(out[o], ref_out[o], rtol=2e-4, atol=2e-4)
    fused_cycles = ex.step_observer.total().cycles
    plain_cycles = plain.step_observer.total().cycles
    stats = 2 if op is OpKind.LAYER_NORM else 1
    allreduce = mp.allreduce_cycles(cols, mp.row_tile_bytes(batch, 1, rows, 4), 1, 4)
    assert plain_cycles - fused_cycles >= stats * allreduce - 3 * batch  # the scaling at the root: compute


@pytest.mark.parametrize("rows,cols", [(1, 1), (1, 7), (7, 1), (7, 5), (13, 16), (762, 1172)])
@pytest.mark.parametrize("tile", [4, 8, 32])
def test_statistic_path_cycles_equal_the_model(rows: int, cols: int, tile: int) -> None:
    obs = StatsObserver()
    wafer = Wafer(MeshSpec(rows, cols, 1 << 20, 16.0, 1, 4, 1e9), "w", [obs])
    state = np.random.default_rng(rows).standard_normal((rows, 1, tile // 4)).astype(np.float32)
    with wafer.kernel("s"):
        value, cycles = collectives.statistic_path(wafer, state)
    np.testing.assert_allclose(value, state.sum(0)[0], rtol=1e-4, atol=1e-4)
    assert cycles == mp.norm_statistic_cycles(rows, cols, tile, 1, 4)
    assert obs.stats[("w", "s")].cycles == 0  # charged beside the GEMV, not here
    # on the full wse3 grid one statistic is hidden behind a decode GEMV's collective
    if (rows, cols) == (762, 1172) and tile == 4:  # one statistic (B = 1)
        tin, tout = mp.gemv_tile_bytes(1, 4096, 4096, rows, cols, 2)
        assert mp.fused_norm_extra_cycles(cycles, mp.gemv_collective_cycles(rows, cols, tin, tout, 1, 4)) == 0
