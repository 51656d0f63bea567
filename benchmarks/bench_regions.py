"""Execution on rectangles (issue 9, item 4): one Llama-3.1-8B decoder layer's decode step
emulated on its ``--layout regions`` rectangle of one WSE-3 wafer, against the model.

The floorplan is the compiler's: ``placer.compile("llama-3.1-8b", target=..., wafers=1,
context=1024, concurrency=1, layout="regions")``; the layer (``bench_mesh.llama8b_layer``: hidden
4096, 32 heads, 8 KV heads, FFN 14336, bf16 random weights, 1,023 past tokens) runs on the
rectangle of ``layers.0`` (``MeshExecutor(regions=...)``), and its emulated cycles are compared
with ``placer.floorplan.pricing.unit_seconds_on_rectangle`` on the same rectangle. The target is
``wse3-physics`` (the WSE-3 without the fitted per-kernel overheads of the calibrated ``wse3``,
which the emulator does not model).

Second (``--step``): one whole decode step of Llama-3.1-8B, all 32 layers with embedding and
head on one wafer, each unit on its plan rectangle; the 16 GB of bf16 weights are never held
at once: ``MeshExecutor(weight_source=...)`` makes each unit's random weights when the unit
runs (``streamed_weights``: per weight, a generator seeded by (seed, weight index)) and drops
them when the next unit starts. Wall time and peak RSS (goals < 60 s, < 8 GB), and the
emulated time of the wafer against the floorplan's latency on the same rectangles.

Run: ``python benchmarks/bench_regions.py [--batch B ...]`` (default B = 1), or ``--step``.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

# numpy asks for transparent huge pages on its large buffers (NUMPY_MADVISE_HUGEPAGE); on this
# shared VM the kernel then compacts memory to find them, which cost the whole step ~8 s of
# system time for the 1 GB of weight buffers, more than the huge pages save. Before numpy loads.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_mesh import llama8b_layer  # noqa: E402
from benchmarks.common import machine_header  # noqa: E402

TARGET = "wse3-physics"
PAST = 1023


def bench_layer_on_rectangle(batch: int = 1) -> None:
    import placer
    from placer.backends.executor import MeshExecutor
    from placer.backends.mesh import MeshSpec
    from placer.backends.reference import run_graph
    from placer.cost_model import annotate_costs
    from placer.floorplan.pricing import unit_seconds_on_rectangle
    from placer.workload import Workload

    t0 = time.perf_counter()
    plan = placer.compile("llama-3.1-8b", target=TARGET, wafers=1, context=PAST + 1, concurrency=1,
                          layout="regions")
    compile_s = time.perf_counter() - t0
    rect = next(r for r in plan.floorplan if r.unit == "layers.0")
    target = plan.target
    graph = placer.load_graph(llama8b_layer(PAST, batch))
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((batch, 1, 4096), dtype=np.float32),
             "past_key": rng.standard_normal((batch, 8, PAST, 128), dtype=np.float32),
             "past_value": rng.standard_normal((batch, 8, PAST, 128), dtype=np.float32),
             "cos": np.cos(np.arange(64, dtype=np.float32) * 0.01).reshape(1, 1, 64),
             "sin": np.sin(np.arange(64, dtype=np.float32) * 0.01).reshape(1, 1, 64)}
    regions = {u.name: (rect.row, rect.col, rect.rows, rect.cols) for u in graph.units}
    t0 = time.perf_counter()
    executor = MeshExecutor(graph, MeshSpec.from_target(target), regions=regions)
    place_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outputs, stats = executor.run(feeds, keep=["present_key", "present_value"], decode=True)
    step_s = time.perf_counter() - t0
    ref = run_graph(graph, feeds)
    name = graph.outputs[0]
    err = float(np.abs(outputs[name] - ref[name]).max() / np.abs(ref[name]).max())
    cost = annotate_costs(graph, target, Workload(context_tokens=PAST + 1, prompt_tokens=1))
    predicted = sum(unit_seconds_on_rectangle(u, target, rect.rows, rect.cols, batch) for u in cost.units)
    emulated = stats.compute_seconds
    total = executor.step_observer.total()
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(f"Llama-3.1-8B layer, decode step of B = {batch}, {PAST + 1} tokens of context, {target.name}: "
          f"{len(plan.floorplan)} rectangles on one {target.mesh_rows} x {target.mesh_cols} wafer "
          f"(compile {compile_s:.1f} s); layers.0 at (row {rect.row}, col {rect.col}), "
          f"{rect.rows} x {rect.cols} = {rect.rows * rect.cols:,} PEs")
    print(f"  place weights {place_s:.1f} s; decode step {step_s:.1f} s wall; peak RSS {rss_gb:.2f} GB")
    print(f"  emulated {sum(stats.cycles.values()):,} cycles = {emulated * 1e6:.3f} us; hops {total.hops:,}; "
          f"peak PE memory {executor.wafers[0].peak_pe_bytes:,} B of {target.pe_sram_bytes:,} B")
    print(f"  model on the rectangle {predicted * 1e6:.3f} us; "
          f"emulated / predicted = {emulated / predicted:.3f}")
    print(f"  max |mesh - reference| / max |reference| = {err:.2e}")
    for kernel, s in executor.step_observer.per_kernel("wafer0").items():
        if s.cycles:
            print(f"    {kernel:<26} calls {s.calls:>3}  cycles {s.cycles:>8,}  hops {s.hops:>12,}")


HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 4096, 32, 8, 128, 14336, 128256


def llama8b_model(layers: int = 32):  # noqa: ANN201
    """Llama-3.1-8B as one decode-step graph (embedding gather, ``layers`` decoder layers of
    ``bench_mesh.llama8b_layer``'s form with past KV inputs, final norm, LM head), units named
    as the compiler names them (``embed``, ``layers.N``, ``head``). Weights carry no data:
    ``streamed_weights`` makes each unit's when it runs."""
    from placer.ir import attrs as A
    from placer.ir.dtypes import DType
    from placer.ir.graph import GraphBuilder, WeightRole
    from placer.ir.ops import OpKind
    from placer.ir.symbolic import Sym
    from placer.ir.types import TensorType

    b = GraphBuilder("llama-3.1-8b-decode")
    bs, ps = Sym.var("batch"), Sym.var("past")
    f32 = lambda *s: TensorType(DType.FLOAT32, s)  # noqa: E731
    bf16 = lambda *s: TensorType(DType.BFLOAT16, s)  # noqa: E731

    def weight(name: str, *shape: int) -> str:
        return b.weight(name, TensorType(DType.BFLOAT16, shape), role=WeightRole.PARAMETER)

    ids = b.input("input_ids", TensorType(DType.INT64, (bs, 1)))
    cos = b.input("cos", f32(1, 1, HEAD_DIM // 2))
    sin = b.input("sin", f32(1, 1, HEAD_DIM // 2))
    x = b.op(OpKind.GATHER, [weight("embed_tokens", VOCAB, HIDDEN), ids], A.AxisAttrs(axis=0), unit="embed")
    presents = []
    for i in range(layers):
        u, w = f"layers.{i}", f"layers.{i}."
        # A bf16 KV cache, as the model's: the residual stream stays bf16 (f32 past values
        # would promote it, and it would travel between rectangles at twice the bytes).
        pk = b.input(f"past_key_{i}", bf16(bs, KV_HEADS, ps, HEAD_DIM))
        pv = b.input(f"past_value_{i}", bf16(bs, KV_HEADS, ps, HEAD_DIM))
        h = b.op(OpKind.RMS_NORM, [x, weight(w + "input_norm", HIDDEN)], A.NormAttrs(epsilon=1e-5), unit=u)
        q = b.op(OpKind.MATMUL, [h, weight(w + "wq", HIDDEN, HEADS * HEAD_DIM)], unit=u)
        k = b.op(OpKind.MATMUL, [h, weight(w + "wk", HIDDEN, KV_HEADS * HEAD_DIM)], unit=u)
        v = b.op(OpKind.MATMUL, [h, weight(w + "wv", HIDDEN, KV_HEADS * HEAD_DIM)], unit=u)
        q = b.op(OpKind.ROTARY_EMBEDDING, [q, cos, sin], A.RotaryAttrs(num_heads=HEADS), unit=u)
        k = b.op(OpKind.ROTARY_EMBEDDING, [k, cos, sin], A.RotaryAttrs(num_heads=KV_HEADS), unit=u)
        present = [f"present_key_{i}", f"present_value_{i}"]
        att = b.op(OpKind.ATTENTION, [q, k, v, "", pk, pv],
                   A.AttentionAttrs(is_causal=True, q_num_heads=HEADS, kv_num_heads=KV_HEADS),
                   outputs=[f"attn_{i}", *present], unit=u)
        o = b.op(OpKind.MATMUL, [att, weight(w + "wo", HEADS * HEAD_DIM, HIDDEN)], unit=u)
        x2 = b.op(OpKind.ADD, [x, o], unit=u)
        h2 = b.op(OpKind.RMS_NORM, [x2, weight(w + "post_norm", HIDDEN)], A.NormAttrs(epsilon=1e-5), unit=u)
        gate = b.op(OpKind.MATMUL, [h2, weight(w + "w_gate", HIDDEN, FFN)], unit=u)
        up = b.op(OpKind.MATMUL, [h2, weight(w + "w_up", HIDDEN, FFN)], unit=u)
        act = b.op(OpKind.MUL, [b.op(OpKind.SILU, [gate], unit=u), up], unit=u)
        down = b.op(OpKind.MATMUL, [act, weight(w + "w_down", FFN, HIDDEN)], unit=u)
        x = b.op(OpKind.ADD, [x2, down], unit=u)
        presents += present
    h = b.op(OpKind.RMS_NORM, [x, weight("norm", HIDDEN)], A.NormAttrs(epsilon=1e-5), unit="head")
    logits = b.op(OpKind.MATMUL, [h, weight("lm_head", HIDDEN, VOCAB)], outputs=["logits"], unit="head")
    b.output(logits, *presents)
    return b.build()


def streamed_weights(graph, seed: int = 0):  # noqa: ANN001, ANN201
    """Random bf16 weights of one unit, made when the unit runs: unit -> {weight: values}.
    Each weight's values come from an SFC64 generator seeded by (seed, its index in the graph),
    as random bit patterns with sign and mantissa uniform and the exponent fixed to 2^-7
    (|w| in [0.0078, 0.0156)), drawn as raw 64-bit words (four elements each) a block at a
    time and masked while the block is in cache; the same seed gives the same weights
    whenever, and how often, a unit runs. (SFC64 rather than numpy's default PCG64: its raw
    words cost a quarter of the time, and the step draws 7.5 G elements.)"""
    import ml_dtypes

    index = {name: i for i, name in enumerate(graph.weights)}
    readers: dict[str, list[str]] = {}
    for node in graph.nodes:
        for v in node.inputs:
            if v in graph.weights and node.unit not in readers.setdefault(v, []):
                readers[v].append(node.unit)
    block = 1 << 17  # 64-bit words per draw: 1 MB, in cache while it is masked
    # One arena for a unit's weights, refilled by the next unit once nothing but this list
    # refers to it (the executor drops a unit's weights before it asks for the next unit's):
    # fresh pages cost the kernel a zeroing pass, about as much as drawing the numbers.
    arena: list[np.ndarray] = []

    def make(unit: str) -> dict[str, np.ndarray]:
        names = [name for name, units in readers.items() if units[0] == unit]
        shapes = [tuple(int(d) for d in graph.weights[name].type.shape) for name in names]
        sizes = [int(np.prod(shape)) for shape in shapes]
        total = sum(-(-size // 4) for size in sizes)
        if not (arena and arena[0].size >= total and sys.getrefcount(arena[0]) == 2):
            arena[:] = [np.empty(total, np.uint64)]  # (2: the list's reference and the call's)
        out, start = {}, 0
        for name, shape, size in zip(names, shapes, sizes):
            words = arena[0][start:start + -(-size // 4)]
            start += words.size
            bits = np.random.SFC64([seed, index[name]])
            for w0 in range(0, words.size, block):
                raw = bits.random_raw(min(block, words.size - w0))
                raw &= np.uint64(0x807F_807F_807F_807F)
                raw |= np.uint64(0x3C00_3C00_3C00_3C00)
                words[w0:w0 + raw.size] = raw
            out[name] = words.view(np.uint16)[:size].reshape(shape).view(ml_dtypes.bfloat16)
        return out

    return make


def bench_decode_step(layers: int = 32) -> None:
    """One decode step of the whole model (B = 1, 1,024 tokens of context) on one wafer, every
    unit on its plan rectangle, weights streamed (``streamed_weights``)."""
    import placer
    from placer.backends.executor import MeshExecutor
    from placer.backends.mesh import MeshSpec
    from placer.cost_model import annotate_costs
    from placer.floorplan import placed_seconds
    from placer.floorplan.pricing import unit_seconds_on_rectangle
    from placer.workload import Workload

    plan = placer.compile("llama-3.1-8b", target=TARGET, wafers=1, context=PAST + 1, concurrency=1,
                          layout="regions")
    target = plan.target
    graph = placer.load_graph(llama8b_model(layers))  # shapes and types inferred, units kept
    rects = {r.unit: (r.row, r.col, r.rows, r.cols) for r in plan.floorplan}
    rng = np.random.default_rng(1)
    feeds = {"input_ids": np.array([[1234]], np.int64),
             "cos": np.cos(np.arange(64, dtype=np.float32) * 0.01).reshape(1, 1, 64),
             "sin": np.sin(np.arange(64, dtype=np.float32) * 0.01).reshape(1, 1, 64)}
    for i in range(layers):
        for kind in ("key", "value"):
            feeds[f"past_{kind}_{i}"] = rng.standard_normal((1, KV_HEADS, PAST, HEAD_DIM), dtype=np.float32)
    make = streamed_weights(graph)
    making = [0.0]

    def source(unit: str) -> dict[str, np.ndarray]:
        c = time.process_time()
        try:
            return make(unit)
        finally:
            making[0] += time.process_time() - c

    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    executor = MeshExecutor(graph, MeshSpec.from_target(target), regions=rects, weight_source=source)
    outputs, stats = executor.run(feeds, keep=[o for o in graph.outputs if o.startswith("present")],
                                  decode=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    load1 = os.getloadavg()[0]
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    # The model: the cost of the same graph, on the plan's rectangles.
    workload = Workload(context_tokens=PAST + 1, prompt_tokens=1)
    cost = annotate_costs(graph, target, workload)
    order = [u.name for u in cost.units if u.name in rects]
    latency, interval = placed_seconds(cost, target, [([u], *rects[u]) for u in order],
                                       context_tokens=PAST + 1)
    emulated = stats.compute_seconds
    by_unit = {u.name: unit_seconds_on_rectangle(u, target, *rects[u.name][2:]) for u in cost.units}
    link = executor.step_observer.per_kernel("wafer0").get("region-link")
    print(f"Llama-3.1-8B decode step (B = 1, {PAST + 1} tokens of context), all {layers} layers + embed "
          f"+ head on one {target.name} wafer, {len(rects)} rectangles, bf16 weights streamed per unit")
    print(f"  wall {wall:.1f} s, CPU {cpu:.1f} s (weights made, tiled and run; making the weights "
          f"{making[0]:.1f} s CPU; 1-min load {load0:.1f} at the start, {load1:.1f} at the end); "
          f"peak RSS {rss_gb:.2f} GB; logits finite: {bool(np.isfinite(outputs['logits']).all())}")
    print(f"  emulated {stats.cycles['wafer0']:,} cycles = {emulated * 1e6:.2f} us per token on the wafer; "
          f"region links {link.calls if link else 0} ({link.hops if link else 0:,} hops); "
          f"peak PE memory {executor.wafers[0].peak_pe_bytes:,} B of {target.pe_sram_bytes:,} B")
    print(f"  model (floorplan latency on the same rectangles) {latency * 1e6:.2f} us; "
          f"emulated / predicted = {emulated / latency:.3f}; interval {interval * 1e6:.2f} us")
    clock = target.clock_hz
    for name in ("embed", "layers.0", f"layers.{layers - 1}", "head"):
        got = stats.unit_cycles.get(name, 0)
        print(f"    {name:<10} emulated {got:>7,} cycles, model {by_unit[name] * clock:>9,.0f} cycles")
    if link:
        print(f"    region-link: {link.comm_cycles:,} cycles in {link.calls} routes")


if __name__ == "__main__":
    print(machine_header())
    if "--step" in sys.argv:
        bench_decode_step()
        sys.exit(0)
    batches = [int(a) for a in sys.argv[sys.argv.index("--batch") + 1:] if a.isdigit()] \
        if "--batch" in sys.argv else [1]
    for b in batches:
        bench_layer_on_rectangle(b)
