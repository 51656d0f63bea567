"""Multi-wafer execution of a graph on emulated meshes, with an emulated I/O link between wafers.

Each node runs on the wafer of its placement unit (``wafer_of_unit``); weights are placed
(tiled and entered in the SRAM ledger) on every wafer that reads them before anything runs.
An activation produced on one wafer and read on another crosses the I/O link once; each pair
of wafers that exchanges data in a step pays the link latency once plus bytes / bandwidth
(one I/O hop per wafer boundary per token). Values named in ``resident`` (the KV cache) stay
on their wafer between steps and never cross the link. Wafers form a chain (pipeline): data
skipping a wafer is relayed through it and loads every boundary it crosses.

Regions (``--layout regions``): a unit given a rectangle in ``regions`` runs on that rectangle
of its wafer (``Wafer.region``; its weights are tiled over the rectangle and its KV tiles kept
there, both in the rectangle's window of the wafer's SRAM ledger). An activation produced on
one rectangle and read on another of the same wafer is routed between their centres over the
fabric (``Wafer.route``: hops and link bytes counted). A wafer's time in a step is then the
finish of its last node when each node starts as soon as its rectangle is free and its inputs
have arrived: rectangles with no data between them overlap, and a chain of rectangles takes
the sum of their steps and routes (the spatial pipeline of ``placer.perf.regions`` for one
token). On a whole-layout wafer every node runs on the full grid one after the other, and its
time is the sum of its kernels' cycles.

Streamed weights (``weight_source``, for models whose weights do not fit the host's memory):
weights without values are made by ``weight_source(unit)`` when the unit's first node needs
them, tiled onto the unit's grids, and dropped (host arrays and tiles) when the next streamed
unit starts and at the end of the step. Their ledger entries stay: on the wafer the tiles are
resident; only the emulator's copy goes. One streamed unit's weights are held at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from placer.backends.mesh import experts
from placer.backends.mesh.grid import MeshSpec, Wafer
from placer.backends.mesh.host import COMPILE_TIME, HOST_OPS, charge_host
from placer.backends.mesh.observer import StatsObserver
from placer.backends.mesh.ops import MESH_KERNELS
from placer.backends.mesh.tiling import MatrixTiles, ceil_div, per_pe_bytes
from placer.backends.reference import execute_reference, run_graph, to_compute, weight_values
from placer.ir.attrs import GemmAttrs
from placer.ir.dtypes import DType
from placer.ir.graph import Graph, Node
from placer.ir.norm_fusion import fused_norms
from placer.ir.ops import OpKind


@dataclass(frozen=True)
class IoLink:
    """The off-wafer link: bandwidth and fixed latency of one inter-wafer hop."""

    bandwidth_bytes_per_s: float
    latency_s: float

    def seconds(self, nbytes: int) -> float:
        return self.latency_s + nbytes / self.bandwidth_bytes_per_s


@dataclass
class StepStats:
    """One execution (a prefill or one decode step): cycles per wafer and I/O."""

    cycles: dict[str, int] = field(default_factory=dict)
    unit_cycles: dict[str, int] = field(default_factory=dict)  # by placement unit ("" ungrouped)
    io_bytes: int = 0
    io_hops: int = 0
    io_seconds: float = 0.0
    clock_hz: float = 1.0
    # Per wafer: the cycle (from the start of its step) each micro-batch of the step left it
    # (its last node's end so far), in order; the first is the wafer's latency, the gaps its
    # interval (on a whole-grid wafer, micro-batches run one after another).
    in_flight: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def compute_seconds(self) -> float:
        # One sequence: wafers run one after the other along the pipeline.
        return sum(self.cycles.values()) / self.clock_hz

    @property
    def seconds(self) -> float:
        return self.compute_seconds + self.io_seconds


_STORAGE = {DType.FLOAT16: np.float16, DType.BFLOAT16: ml_dtypes.bfloat16,
            DType.FP8_E4M3: ml_dtypes.float8_e4m3fn, DType.FP8_E5M2: ml_dtypes.float8_e5m2}


def storage_array(values: np.ndarray, dtype: DType) -> np.ndarray:
    """Values as stored on the PEs: bf16 and 8-bit floats as such (ml_dtypes), fp16 as fp16."""
    values = np.asarray(values)
    return values.astype(_STORAGE.get(dtype, values.dtype), copy=False)


def _is_index_math(node: Node, args: list) -> bool:
    """Integer/boolean-only nodes compute shapes, positions and masks' indices: compile-time."""
    arrays = [a for a in args if a is not None]
    return bool(arrays) and all(np.asarray(a).dtype.kind in "iub" for a in arrays) and \
        node.op is not OpKind.GATHER


class MeshExecutor:
    """Runs ``graph`` over ``n_wafers`` emulated wafers.

    Args:
        graph: a graph whose nodes carry ``unit`` names (ungrouped nodes follow their inputs).
        spec: the mesh of each wafer.
        wafer_of_unit: unit name -> wafer index (missing units run on wafer 0).
        io: the inter-wafer link.
        weights: values of weights without inline data.
        weight_dtypes: storage dtype per weight name (default: the graph's weight dtype).
        regions: unit name -> ``(row, col, rows, cols)``, the rectangle of its wafer's PEs it
            runs on (top-left PE, height, width); units not named use the whole grid.
        weight_source: unit name -> values of the weights it reads, for weights with no
            values otherwise (streamed, see the module docstring).

    Raises:
        ValueError: a rectangle leaves the grid.
    """

    def __init__(self, graph: Graph, spec: MeshSpec, *, wafer_of_unit: Mapping[str, int] | None = None,
                 io: IoLink | None = None, weights: Mapping[str, np.ndarray] | None = None,
                 weight_dtypes: Mapping[str, DType] | None = None,
                 regions: Mapping[str, tuple[int, int, int, int]] | None = None,
                 weight_source: Callable[[str], Mapping[str, np.ndarray]] | None = None) -> None:
        self.graph, self.spec = graph, spec
        self.io = io or IoLink(150e9, 5e-6)
        units = dict(wafer_of_unit or {})
        self.node_wafer = self._assign_nodes(graph, units)
        self.views: dict[str, experts.ExpertView] = {}
        count = max([0, *units.values(), *self.node_wafer.values()]) + 1
        self.observer = StatsObserver()
        self.step_observer = StatsObserver()
        self.wafers = [Wafer(spec, f"wafer{i}", [self.observer, self.step_observer]) for i in range(count)]
        self.node_grid = self._assign_grids(graph, regions or {})
        # Norms whose statistics run beside the GEMVs they feed, all on the norm's grid.
        grid = self.node_grid
        self.fused_norms = frozenset(n for n, y in fused_norms(graph).items()
                                     if all(grid[c.name] is grid[n] for c in graph.consumers[y]))
        # Resident expert tiles serve a selection whose MatMuls run on the same grid.
        grid_ids = {n: id(g) for n, g in self.node_grid.items()}
        self.expert_gathers = experts.find_expert_gathers(graph, grid_ids)
        values = weight_values(graph, weights)
        self.weight_dtypes = dict(weight_dtypes or {})
        self.weights = {k: self._stored(k, to_compute(v)) for k, v in values.items()}
        self.source = weight_source
        self.streamed = {n for n in graph.weights if n not in self.weights} if weight_source else set()
        self._unit_nodes: dict[str, list[Node]] = {}
        for node in graph.nodes:
            self._unit_nodes.setdefault(node.unit or "", []).append(node)
        self._streaming: tuple[str, list[str], list[tuple[Wafer, object]]] | None = None
        self._compute: dict[str, np.ndarray] = {}
        self._place_weights(graph.nodes)
        self.location: dict[str, int] = {}

    @staticmethod
    def _assign_nodes(graph: Graph, units: Mapping[str, int]) -> dict[str, int]:
        where: dict[str, int] = {}
        node_wafer: dict[str, int] = {}
        for node in graph.nodes:
            if node.unit in units:
                w = units[node.unit]
            else:
                w = max([where.get(v, 0) for v in node.inputs if v] or [0])
            node_wafer[node.name] = w
            for o in node.outputs:
                where[o] = w
        return node_wafer

    def _assign_grids(self, graph: Graph,
                      regions: Mapping[str, tuple[int, int, int, int]]) -> dict[str, Wafer]:
        """The grid each node runs on: its unit's rectangle, else the grid of the input it
        follows to its wafer (ungrouped nodes), else its wafer's whole grid."""
        grid_of: dict[str, Wafer] = {}
        out: dict[str, Wafer] = {}
        for node in graph.nodes:
            wafer = self.wafers[self.node_wafer[node.name]]
            if node.unit in regions:
                grid = wafer.region(*regions[node.unit])
            elif node.unit:
                grid = wafer
            else:
                near = [grid_of[v] for v in node.inputs if v in grid_of and grid_of[v].name == wafer.name]
                grid = near[-1] if near else wafer
            out[node.name] = grid
            for o in node.outputs:
                grid_of[o] = grid
        return out

    def _stored(self, name: str, values: np.ndarray) -> np.ndarray:
        return storage_array(values, self.weight_dtypes.get(name, self.graph.weights[name].type.dtype))

    def _place_weights(self, nodes: Sequence[Node]) -> list[tuple[Wafer, object]]:
        """Tile every weight (with values) that ``nodes`` read onto each grid (wafer or
        rectangle) reading it and enter it in that grid's ledger; returns what was placed."""
        placed: list[tuple[Wafer, object]] = []
        for node in nodes:
            wafer = self.node_grid[node.name]
            for pos, name in enumerate(node.inputs):
                if name not in self.weights:
                    continue
                w = self.graph.weights[name]
                dtype = self.weight_dtypes.get(name, w.type.dtype)
                data = self.weights[name]
                key, tiles = self._layout(node, pos, name, data, wafer.spec)
                if key in wafer.resident:
                    continue
                wafer.resident[key] = tiles
                placed.append((wafer, key))
                if tiles is not None and tiles.ndim == 5:
                    per_pe = ceil_div(int(np.prod(tiles.shape[2:])) * dtype.bits, 8)
                else:
                    per_pe = ceil_div(ceil_div(data.size, wafer.spec.pes) * dtype.bits, 8)
                with wafer.kernel("place-weights"):
                    wafer.ledger.allocate(f"weight:{name}", per_pe)
        return placed

    def _fetch(self, node: Node, name: str) -> np.ndarray:
        """A streamed weight's compute values for ``node``: its unit's weights are made and
        placed first when another unit's are held (those are dropped).

        Raises:
            KeyError: ``name`` is not a streamed weight of the node's unit.
        """
        if name not in self.streamed:
            raise KeyError(name)
        unit = node.unit or ""
        if self._streaming is None or self._streaming[0] != unit:
            self._drop_streamed()
            assert self.source is not None, "weights are streamed only with a weight_source"
            made = {k: self._stored(k, np.asarray(v)) for k, v in self.source(unit).items()
                    if k in self.streamed}
            self.weights.update(made)
            self._streaming = (unit, list(made), self._place_weights(self._unit_nodes.get(unit, [])))
        if name not in self.weights:
            raise KeyError(name)
        grid = self.node_grid[node.name]
        if grid.decode and node.op in (OpKind.MATMUL, OpKind.GEMM) and tuple(node.inputs[1:2]) == (name,):
            if (name, "gemv") in grid.resident or (name + ":T", "gemv") in grid.resident:
                # A decode GEMV multiplies its resident tiles, not these values
                # (``ops.matmul_array``): only the shape is passed on, so no 4-byte copy of a
                # large matrix is made (tests compare the step with held weights).
                return np.broadcast_to(np.zeros((), np.float32), self.weights[name].shape)
        if node.op is OpKind.GATHER and node.inputs[0] == name and (name, "table") in grid.resident:
            # An embedding table as stored: the mesh gather converts only the rows it picks
            # (``ops.gather``), not the whole table.
            return self.weights[name]
        if name not in self._compute:
            self._compute[name] = to_compute(self.weights[name])
        return self._compute[name]

    def _drop_streamed(self) -> None:
        """Let go of the streamed unit's host arrays and tiles (its ledger entries stay)."""
        if self._streaming is None:
            return
        _, names, placed = self._streaming
        for grid, key in placed:
            grid.resident.pop(key, None)
        for name in names:
            self.weights.pop(name, None)
        self._compute.clear()
        self._streaming = None

    def _layout(self, node: Node, pos: int, name: str, data: np.ndarray,
                spec: MeshSpec) -> tuple[object, np.ndarray | MatrixTiles | None]:
        R, C = spec.rows, spec.cols
        if pos == 1 and data.ndim == 2 and node.op in (OpKind.MATMUL, OpKind.GEMM):
            trans = node.op is OpKind.GEMM and node.attrs_as(GemmAttrs).trans_b
            mat = data.T if trans else data
            # Cut from the stored matrix when a GEMV reads them (``MatrixTiles``): no padded
            # copy of the matrix, which the host would hold besides the stored one.
            return ((name + ":T" if trans else name), "gemv"), MatrixTiles(mat[None], R, C)
        if pos == 0 and node.name in self.expert_gathers:
            operand = self.expert_gathers[node.name].operand
            return (name, "experts", operand), experts.expert_tiles(data, operand, R, C)
        if pos == 0 and node.op is OpKind.GATHER:
            return (name, "table"), None
        return (name, "flat"), None

    # --- running ----------------------------------------------------------------------------
    def run(self, inputs: Mapping[str, np.ndarray], *, resident: Mapping[str, int] | None = None,
            keep: Iterable[str] = (), decode: bool = False,
            micro_batches: int = 1) -> tuple[dict[str, np.ndarray], StepStats]:
        """One execution. ``resident``: inputs that already live on a wafer (KV cache);
        ``keep``: outputs that stay resident afterwards (entered in their wafer's ledger);
        ``decode``: a decode step of a micro-batch (the leading axis of the inputs holds its
        sequences): weight MatMuls run as B-row GEMVs, whose collectives are paid once.
        ``micro_batches``: with ``decode``, the step's sequences split along the leading axis
        into this many equal micro-batches, all in flight at once: each runs through the graph
        in turn, and on a wafer laid out in regions a rectangle takes micro-batch ``m + 1`` as
        soon as it has finished ``m`` (the spatial pipeline; ``StepStats.in_flight`` has when
        each micro-batch left each such wafer). The outputs are the micro-batches' joined."""
        m = max(1, micro_batches)
        feeds = [inputs]
        if m > 1:
            sizes = {int(np.asarray(a).shape[0]) for a in inputs.values() if np.asarray(a).ndim}
            if not decode or len(sizes) != 1 or next(iter(sizes)) % m:
                raise ValueError(f"micro_batches={m} needs a decode step whose inputs share a leading "
                                 f"axis divisible by {m} (got {sorted(sizes)})")
            split = {k: np.split(np.asarray(a), m) if np.asarray(a).ndim else [a] * m
                     for k, a in inputs.items()}
            feeds = [{k: pieces[i] for k, pieces in split.items()} for i in range(m)]
        self.step_observer.reset()
        self.location = {name: (resident or {}).get(name, 0) for name in self.graph.inputs}
        stats = StepStats(clock_hz=self.spec.clock_hz)
        self._crossings: dict[tuple[int, int], int] = {}
        moved: set[tuple[str, int]] = set()
        # Timing within each wafer (cycles from the start of its step): when each grid is free
        # (kept across micro-batches: the pipeline), and per micro-batch when each value is
        # ready on its grid and when it has arrived on another grid.
        free: dict[int, int] = {}
        finish: dict[int, int] = {}
        ready: dict[str, int] = {}
        grid_of: dict[str, Wafer] = {}
        arrived: dict[tuple[str, int], int] = {}

        def execute(node: Node, args: list) -> tuple:
            w = self.node_wafer[node.name]
            grid = self.node_grid[node.name]
            start = free.get(id(grid), 0)
            for pos, v in enumerate(node.inputs):
                if not v or v in self.graph.weights:
                    continue
                src = self.location.get(v, w)
                if src != w:  # from another wafer: over the I/O link (below), there at the start
                    if (v, w) not in moved:
                        moved.add((v, w))
                        nbytes = np.asarray(args[pos]).nbytes
                        self._crossings[(src, w)] = self._crossings.get((src, w), 0) + nbytes
                    continue
                t = ready.get(v, 0)
                origin = grid_of.get(v)
                if origin is not None and origin is not grid:
                    key = (v, id(grid))
                    if key not in arrived:
                        nbytes = self._stored_bytes(v, args[pos])
                        arrived[key] = t + self.wafers[w].route(nbytes, origin, grid)
                    t = arrived[key]
                start = max(start, t)
            before = grid.cycles
            out = self._execute(grid, node, args)
            spent = grid.cycles - before
            unit = node.unit or ""
            stats.unit_cycles[unit] = stats.unit_cycles.get(unit, 0) + spent
            free[id(grid)] = end = start + spent
            finish[w] = max(finish.get(w, 0), end)
            for o in node.outputs:
                self.location[o] = w
                ready[o] = end
                grid_of[o] = grid
            return out

        parts: list[dict[str, np.ndarray]] = []
        left: dict[int, list[int]] = {}
        weights = {k: to_compute(v) for k, v in self.weights.items()}
        for feed in feeds:
            for wafer in self.wafers:
                for grid in (wafer, *wafer.regions):
                    grid.decode = decode
                    grid.broadcast_inputs = set()
                    grid.fused_norms = self.fused_norms
                    grid.pending_norms = {}
            self.views = {}
            ready.clear()
            arrived.clear()
            moved.clear()
            self._drop_streamed()
            try:
                parts.append(run_graph(self.graph, feed, weights=weights, execute=execute,
                                       fetch=self._fetch if self.streamed else None))
            finally:
                self._drop_streamed()
            for w, t in finish.items():
                left.setdefault(w, []).append(t)
        outputs = parts[0] if m == 1 else {
            k: np.concatenate([p[k] for p in parts]) if np.asarray(v).ndim else v
            for k, v in parts[0].items()}
        # Wafers form a chain; data skipping a wafer is relayed through it, so it loads every
        # boundary it crosses. Each boundary used pays its latency once per step.
        boundary: dict[int, int] = {}
        for (src, dst), nbytes in sorted(self._crossings.items()):
            for b in range(min(src, dst), max(src, dst)):
                boundary[b] = boundary.get(b, 0) + nbytes
        for _, nbytes in sorted(boundary.items()):
            stats.io_hops += 1
            stats.io_bytes += nbytes
            stats.io_seconds += self.io.seconds(nbytes)
        for name in keep:  # KV tiles stay on the grid (rectangle) that produced them
            grid = grid_of.get(name, self.wafers[self.location.get(name, 0)])
            arr = outputs[name]
            grid.ledger.allocate(f"kv:{name}", per_pe_bytes(arr.size, arr.dtype.itemsize, grid.spec.pes))
        for wafer_name, s in self.step_observer.per_wafer().items():
            stats.cycles[wafer_name] = s.cycles
        for w, wafer in enumerate(self.wafers):
            if wafer.regions and wafer.name in stats.cycles:
                stats.cycles[wafer.name] = finish.get(w, 0)
            if w in left:
                stats.in_flight[wafer.name] = tuple(left[w])
        return outputs, stats

    def _stored_bytes(self, name: str, value: np.ndarray) -> int:
        """Bytes of a value as it travels: its graph type's storage (a bf16 value is computed
        in float32 here but moves as bf16), else the array's."""
        arr = np.asarray(value)
        t = self.graph.types.get(name)
        return t.dtype.storage_bytes(arr.size) if t is not None and t.dtype.is_float else arr.nbytes

    def release(self, names: Iterable[str]) -> None:
        """Free resident KV tiles (before the next step re-enters the grown cache)."""
        for wafer in self.wafers:
            for grid in (wafer, *wafer.regions):
                for name in names:
                    if grid.ledger.holds(f"kv:{name}"):
                        grid.ledger.free(f"kv:{name}")

    def _execute(self, wafer: Wafer, node: Node, args: list) -> tuple:
        if node.name in self.expert_gathers:
            return self._select_experts(wafer, node, args)
        if node.op is OpKind.MATMUL and any(v in self.views for v in node.inputs):
            return self._expert_matmul(wafer, node, args)
        if node.op in MESH_KERNELS and not _is_index_math(node, args):
            with wafer.kernel(kernel_label(node, args, wafer.decode)):
                return MESH_KERNELS[node.op](wafer, node, args)
        out = execute_reference(node, args)
        cost = COMPILE_TIME if _is_index_math(node, args) else HOST_OPS.get(node.op, COMPILE_TIME)
        with wafer.kernel(f"{node.op.value} ({cost.kind})"):
            charge_host(wafer, cost, out)
        return out

    def _select_experts(self, wafer: Wafer, node: Node, args: list) -> tuple:
        """A gather of whole expert matrices: only the ids travel; the tiles stay resident."""
        out = execute_reference(node, args)
        ids = experts.selected_experts(node, args, np.asarray(out[0]))
        if ids is None:  # not whole matrices at these shapes: a plain relayout
            with wafer.kernel(f"{node.op.value} (relayout)"):
                charge_host(wafer, HOST_OPS.get(node.op, COMPILE_TIME), out)
            return out
        spec = self.expert_gathers[node.name]
        self.views[node.outputs[0]] = experts.ExpertView(spec.weight, spec.operand, ids)
        with wafer.kernel("expert-select"):
            experts.charge_selection(wafer, ids)
        return out

    def _expert_matmul(self, wafer: Wafer, node: Node, args: list) -> tuple:
        """MatMul of selected experts: GEMVs on the resident expert tiles."""
        operand = next(i for i, v in enumerate(node.inputs[:2]) if v in self.views)
        view = self.views[node.inputs[operand]]
        x = np.asarray(args[1 - operand])
        if x.ndim < 2:
            with wafer.kernel(kernel_label(node, args, wafer.decode)):
                return MESH_KERNELS[node.op](wafer, node, args)
        weight = self.weights[view.weight]
        tiles = wafer.resident[(view.weight, "experts", view.operand)]
        assert isinstance(tiles, np.ndarray), "expert matrices are always placed as tiles (_layout)"
        with wafer.kernel("expert-gemv"):
            y = experts.expert_matmul(wafer, tiles, view, x, weight.shape[-2:])
        return (y.astype(np.asarray(args[operand]).dtype, copy=False),)


def kernel_label(node: Node, args: list, decode: bool = False) -> str:
    """Accounting label: MatMul splits into gemv (B-row GEMVs of a decode step too) / gemm /
    attention-matmul."""
    if node.op in (OpKind.MATMUL, OpKind.GEMM):
        a, b = np.asarray(args[0]), np.asarray(args[1])
        if b.ndim > 2:
            return "attention-matmul"
        return "gemv" if decode or int(np.prod(a.shape[:-1])) <= 1 else "gemm"
    return node.op.value
