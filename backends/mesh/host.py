"""Ops that do not run as mesh kernels, and what they cost (the host-side table).

``HOST_OPS`` and ``ops.MESH_KERNELS`` together cover every ``OpKind`` (a test checks it):

- compile-time: shapes and constants are known when the program is compiled (0 cycles).
- metadata: the op reinterprets the tile layout without moving data (0 cycles).
- relayout: data moves to new home PEs; modelled as one neighbour exchange of every PE's tile
  (hops = PEs holding the output, link bytes = output bytes, cycles = one hop plus streaming).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placer.backends.mesh.grid import Wafer
from placer.ir import mesh_physics
from placer.ir.op_semantics import FREE_VIEWS, RELAYOUTS
from placer.ir.ops import ELEMENTWISE, OpKind


@dataclass(frozen=True)
class HostCost:
    kind: str  # "compile-time", "metadata" or "relayout"
    note: str


COMPILE_TIME = HostCost("compile-time", "shape arithmetic, resolved when the program is compiled")
METADATA = HostCost("metadata", "reinterprets the tile layout; no data moves")
RELAYOUT = HostCost("relayout", "moves each PE's tile to its new home: one neighbour exchange")

HOST_OPS: dict[OpKind, HostCost] = {
    OpKind.SHAPE: COMPILE_TIME, OpKind.CONSTANT_OF_SHAPE: COMPILE_TIME, OpKind.RANGE: COMPILE_TIME,
    # Free views (``placer.ir.op_semantics``); Identity runs as an elementwise kernel of 0 FLOPs.
    **{k: METADATA for k in sorted(FREE_VIEWS - ELEMENTWISE, key=lambda k: k.value)},
    **{k: RELAYOUT for k in sorted(RELAYOUTS, key=lambda k: k.value)},
}


def charge_host(wafer: Wafer, cost: HostCost, outputs: tuple) -> None:
    """Charge ``cost`` for producing ``outputs`` on ``wafer``."""
    if cost.kind != "relayout":
        return
    nbytes = sum(np.asarray(o).nbytes for o in outputs if o is not None)
    size = sum(np.asarray(o).size for o in outputs if o is not None)
    holders = min(size, wafer.spec.pes)
    if holders:
        spec = wafer.spec
        cycles = mesh_physics.relayout_cycles(size, nbytes, spec.pes, spec.cycles_per_hop,
                                              spec.link_bytes_per_cycle)
        wafer.charge(holders, nbytes, cycles)
