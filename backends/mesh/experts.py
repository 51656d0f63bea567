"""Mixture-of-experts weights on the mesh: a gather of whole expert matrices feeding a MatMul.

Exporters write an MoE layer as ``Gather``/``GatherND`` (or ``Expand``) of a stacked weight
``W [E, A, B]`` by expert id, followed by a batched MatMul with the tokens' activations. Run
literally, that moves whole expert matrices as activations. On a wafer the experts' weights
are resident: each expert matrix is tiled over the whole grid in the GEMV layout (the ledger
holds all E experts), the selection only tells the PEs which expert's tiles to use, and the
MatMul runs as one GEMV per (token, selected expert) on those resident tiles. Only the
selected experts' tiles are computed.

The selection is recovered exactly by applying the gather node itself to the expert numbering
``arange(E).reshape(W.shape[:-2])`` in place of ``W`` (so Gather on any leading axis, GatherND
of any depth that leaves the last two axes, and batch-only Expand are all covered).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from placer.backends.kernels import KERNELS
from placer.backends.mesh import linalg
from placer.backends.mesh.grid import Wafer
from placer.backends.mesh.tiling import tile_matrix
from placer.ir.attrs import GatherNDAttrs
from placer.ir.expert_selection import ExpertSelection, expert_selections
from placer.ir.graph import Graph, Node
from placer.ir.ops import OpKind


@dataclass(frozen=True)
class ExpertView:
    """A value that is ``W[ids]``: expert matrices of ``weight`` resident on ``wafer``; ``ids``
    has the value's batch shape and holds flat expert numbers."""

    weight: str
    operand: int
    ids: np.ndarray


def find_expert_gathers(graph: Graph, node_wafer: Mapping[str, int]) -> dict[str, ExpertSelection]:
    """The graph's expert selections (``placer.ir.expert_selection``) whose MatMuls run on the
    same wafer (or rectangle of PEs) as the selection: they run on resident expert tiles."""
    return {name: sel for name, sel in expert_selections(graph).items()
            if all(node_wafer[u] == node_wafer[name] for u in sel.users)}


def stack_experts(weight: np.ndarray) -> np.ndarray:
    """``W`` as [E, A, B] (E = product of its leading axes; 1 for a matrix)."""
    return weight.reshape((-1,) + weight.shape[-2:])


def expert_tiles(weight: np.ndarray, operand: int, rows: int, cols: int) -> np.ndarray:
    """Resident GEMV tiles [R, C, E, Kt, Nt] of every expert: ``W[e]`` as the K x N matrix of
    ``x @ W[e]`` (operand 1) or ``W[e]^T`` for ``W[e] @ x`` (operand 0, computed as x^T W^T)."""
    stacked = stack_experts(weight)
    return tile_matrix(stacked if operand == 1 else np.swapaxes(stacked, 1, 2), rows, cols)


def selected_experts(node: Node, args: list, out: np.ndarray) -> np.ndarray | None:
    """Flat expert ids with ``out``'s batch shape, or None if ``out`` is not whole matrices."""
    weight = np.asarray(args[0])
    table = np.arange(int(np.prod(weight.shape[:-2], dtype=np.int64))).reshape(weight.shape[:-2])
    if out.ndim < 2 or out.shape[-2:] != weight.shape[-2:]:
        return None
    if node.op is OpKind.EXPAND:
        # Expand the numbering with the matrix axes held at 1 (they must not broadcast).
        dims = np.asarray(args[1]).astype(np.int64).copy()
        dims[-2:] = 1
        ids = KERNELS[OpKind.EXPAND](node, table[..., None, None], dims)[..., 0, 0]
        return ids if ids.shape == out.shape[:-2] else None
    if node.op is OpKind.GATHER_ND:
        depth = np.asarray(args[1]).shape[-1]
        if node.attrs_as(GatherNDAttrs).batch_dims + depth > weight.ndim - 2:
            return None
    ids = KERNELS[node.op](node, table, *args[1:])
    return ids if ids.shape == out.shape[:-2] else None


def charge_selection(wafer: Wafer, ids: np.ndarray) -> None:
    """The selected ids reach every PE over a spanning tree: R*C - 1 hops, the farthest PE
    (R - 1) + (C - 1) hops away."""
    R, C = wafer.spec.rows, wafer.spec.cols
    nbytes = ids.size * 4
    hops = R * C - 1
    wafer.charge(hops, hops * nbytes, wafer.transfer_cycles(R + C - 2, nbytes))


def expert_matmul(wafer: Wafer, tiles: np.ndarray, view: ExpertView, x: np.ndarray,
                  dims: tuple[int, int]) -> np.ndarray:
    """``W[ids] @ x`` (operand 0) or ``x @ W[ids]`` (operand 1) as GEMVs on resident tiles.

    Args:
        tiles: ``expert_tiles`` of the weight, [R, C, E, Kt, Nt].
        view: the selected experts.
        x: the other MatMul operand (rank >= 2).
        dims: (A, B), the shape of one expert matrix.
    """
    a_dim, b_dim = dims
    batch = np.broadcast_shapes(view.ids.shape, x.shape[:-2])
    ids = np.broadcast_to(view.ids, batch).reshape(-1)
    if view.operand == 1:                                    # x [.., m, A] @ W[e] [A, B]
        x3 = np.broadcast_to(x, batch + x.shape[-2:]).reshape((-1,) + x.shape[-2:])
        out = linalg.gemv(wafer, x3, tiles[:, :, ids], b_dim)
        return out.reshape(batch + out.shape[1:])
    # W[e] [A, B] @ x [.., B, n]  ==  (x^T [n, B] @ W[e]^T [B, A])^T
    xt = np.swapaxes(np.broadcast_to(x, batch + x.shape[-2:]), -1, -2).reshape((-1, x.shape[-1], x.shape[-2]))
    out = linalg.gemv(wafer, xt, tiles[:, :, ids], a_dim)
    return np.swapaxes(out, 1, 2).reshape(batch + (a_dim, x.shape[-1]))
