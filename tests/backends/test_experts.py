"""Expert weights gathered for a MatMul run as GEMVs on resident expert tiles (Mixtral exports)."""

from __future__ import annotations

import numpy as np
import pytest

from placer.backends.executor import MeshExecutor
from placer.backends.mesh import MeshSpec
from placer.backends.mesh.linalg import gemv_hops
from placer.ir import attrs as A
from placer.ir import mesh_physics
from placer.ir.dtypes import DType
from placer.ir.graph import GraphBuilder
from placer.ir.ops import OpKind
from placer.ir.types import TensorType

SPEC = MeshSpec(4, 3, 1 << 20, 16.0, 1, 4, 1e9)
E, OUT, IN = 5, 7, 6


def _moe_graph(select: str, operand: int):  # noqa: ANN202
    """``W`` [E, OUT, IN] (operand 0: W[e] @ x) or [E, IN, OUT] (operand 1: x @ W[e]) selected
    by ``select`` (gather / gather_nd / expand), then a batched MatMul with ``x``."""
    rng = np.random.default_rng(3)
    shape = (E, OUT, IN) if operand == 0 else (E, IN, OUT)
    w = rng.standard_normal(shape).astype(np.float32)
    b = GraphBuilder("moe")
    wname = b.weight("experts", TensorType(DType.FLOAT32, shape), data=w)
    pairs = 3 if select != "expand" else E
    xshape = (pairs, IN, 1) if operand == 0 else (pairs, 1, IN)
    x = b.input("x", TensorType(DType.FLOAT32, xshape))
    if select == "expand":
        b.input("ids", TensorType(DType.INT64, (1,)))
        sel = b.op(OpKind.EXPAND, [wname, b.constant(np.array((E, 1, 1), np.int64))])
    elif select == "gather":
        ids = b.input("ids", TensorType(DType.INT64, (pairs,)))
        sel = b.op(OpKind.GATHER, [wname, ids], A.AxisAttrs(0))
    else:
        ids = b.input("ids", TensorType(DType.INT64, (pairs, 1)))
        sel = b.op(OpKind.GATHER_ND, [wname, ids], A.GatherNDAttrs(0))
    y = b.op(OpKind.MATMUL, [sel, x] if operand == 0 else [x, sel], outputs=["y"])
    b.output(y)
    feeds = {"x": rng.standard_normal(xshape).astype(np.float32)}
    feeds["ids"] = np.array([3, -1, 3] if select == "gather" else [[3], [0], [3]] if select == "gather_nd"
                            else [0], np.int64)
    return b.build(), w, feeds


def _expected(w: np.ndarray, feeds: dict, select: str, operand: int) -> np.ndarray:
    ids = np.arange(E) if select == "expand" else feeds["ids"].reshape(-1) % E
    mats = w[ids]
    return mats @ feeds["x"] if operand == 0 else feeds["x"] @ mats


@pytest.mark.parametrize("select", ["gather", "gather_nd", "expand"])
@pytest.mark.parametrize("operand", [0, 1])
def test_selected_experts_run_as_gemvs_on_resident_tiles(select: str, operand: int) -> None:
    graph, w, feeds = _moe_graph(select, operand)
    executor = MeshExecutor(graph, SPEC)
    out, _ = executor.run(feeds)
    np.testing.assert_allclose(out["y"], _expected(w, feeds, select, operand), rtol=1e-5, atol=1e-5)
    stats = executor.observer.per_kernel("wafer0")
    # Every expert is resident (tiled over the whole grid), no weight matrix moves as data.
    assert ("experts", "experts", operand) in executor.wafers[0].resident
    assert not any("relayout" in k or k == "attention-matmul" for k in stats)
    pairs = feeds["x"].shape[0]
    gemv = stats["expert-gemv"]
    # One pipelined broadcast + reduction, with the groups mesh_physics chooses.
    groups = mesh_physics.reduce_groups(SPEC.rows, 0, SPEC.cycles_per_hop, SPEC.link_bytes_per_cycle)
    assert gemv.hops == gemv_hops(SPEC.rows, SPEC.cols, groups=groups)
    kt, nt = -(-IN // SPEC.rows), -(-OUT // SPEC.cols)
    # Only the selected experts' tiles are multiplied: one GEMV tile product per pair.
    assert gemv.compute_cycles == int(np.ceil(2 * pairs * kt * nt / SPEC.flops_per_cycle_per_pe))
    placed = executor.wafers[0].ledger.tiles["weight:experts"]
    assert placed == E * kt * nt * 4


def test_gather_with_other_consumers_stays_a_relayout() -> None:
    graph, w, feeds = _moe_graph("gather", 1)
    b = GraphBuilder("moe2")
    for name in graph.inputs:
        b.input(name, graph.type_of(name))
    b.weight("experts", graph.weights["experts"].type, data=w)
    sel = b.op(OpKind.GATHER, ["experts", "ids"], A.AxisAttrs(0), outputs=["sel"])
    b.op(OpKind.MATMUL, ["x", sel], outputs=["y"])
    b.output("y", "sel")  # the selected matrices are a graph output: they must exist as data
    executor = MeshExecutor(b.build(), SPEC)
    out, _ = executor.run(feeds)
    np.testing.assert_allclose(out["y"], _expected(w, feeds, "gather", 1), rtol=1e-5, atol=1e-5)
    assert not executor.expert_gathers
    assert "expert-gemv" not in executor.observer.per_kernel("wafer0")
