"""Mesh emulator benchmarks.

1. Tiny transformers models (tests/models.py) placed on wse-mini across 3 wafers: wall time of
   the emulated prefill + 32 greedy tokens against onnxruntime doing the same loop.
2. One full-size Llama-3.1-8B decoder layer (hidden 4096, 32 heads, 8 KV heads, FFN 14336,
   bf16 random weights, 1,023 past tokens) decode step on the full WSE-3 grid, 762 x 1172 PEs,
   for a micro-batch of B = 1 and B = 8 sequences: wall time, peak RSS, emulated cycles, and
   the emulated step against the performance model's (``placer.perf.unit_decode_seconds``).

Run: ``python benchmarks/bench_mesh.py [--skip-tiny] [--batch B ...]`` (default B = 1 and 8).
"""

from __future__ import annotations

import datetime
import platform
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import ml_dtypes
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))



RUNS = 5  # wall times are medians of this many runs

def bench_tiny(tokens: int = 32) -> None:
    import onnxruntime as ort

    import placer
    from placer.runner import run_plan
    from tests.models import FAMILIES, export_onnx

    print(f"tiny models on wse-mini x 3 wafers, prefill of 6 tokens + {tokens} decode steps; "
          f"wall times are medians of {RUNS} runs")
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                path = export_onnx(family, Path(tmp) / f"{family}.onnx", with_cache=True)
            plan = placer.compile(str(path), target="wse-mini", wafers=3, context=64, prompt=8)
            graph = placer.load_graph(str(path))
            feeds = {"input_ids": np.random.default_rng(0).integers(0, 160, (1, 6)).astype(np.int64)}
            for n in graph.inputs[1:]:
                t = graph.type_of(n)
                feeds[n] = np.zeros((1, int(t.shape[1]), 0, int(t.shape[3])), np.float32)
            times = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                result = run_plan(str(path), plan, feeds, tokens=tokens)
                times.append(time.perf_counter() - t0)
            emulated = statistics.median(times)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [o.name for o in session.get_outputs()]
            times = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                out = dict(zip(names, session.run(None, feeds)))
                for _ in range(tokens - 1):
                    step = {"input_ids": out["logits"][:, -1].argmax(-1)[:, None].astype(np.int64)}
                    step.update({n: out[n.replace("past", "present")] for n in feeds if n.startswith("past")})
                    out = dict(zip(names, session.run(None, step)))
                times.append(time.perf_counter() - t0)
            ort_s = statistics.median(times)
            print(f"  {family:<8} emulated {emulated:7.3f} s  onnxruntime {ort_s * 1e3:7.2f} ms  "
                  f"ratio {emulated / ort_s:8.0f}x  emulated/predicted time per token "
                  f"{result.emulated_step_s / result.predicted_step_s:.3f}")


def llama8b_layer(past: int, batch: int = 1):  # noqa: ANN201
    """One Llama-3.1-8B decoder layer, decode of one token per sequence, random bf16 weights."""
    from placer.ir import attrs as A
    from placer.ir.dtypes import DType
    from placer.ir.graph import GraphBuilder, WeightRole
    from placer.ir.ops import OpKind
    from placer.ir.symbolic import Sym
    from placer.ir.types import TensorType

    hidden, heads, kv_heads, hd, ffn = 4096, 32, 8, 128, 14336
    rng = np.random.default_rng(0)
    b = GraphBuilder("llama-3.1-8b-layer")
    f32 = lambda *s: TensorType(DType.FLOAT32, s)  # noqa: E731

    def weight(name: str, *shape: int) -> str:
        data = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16)
        return b.weight(name, TensorType(DType.BFLOAT16, shape), data=data, role=WeightRole.PARAMETER)

    # Symbolic batch and past, as an export has them: the cost model finds the KV cache's token
    # axis and binds the workload's context (the emulator runs the feeds' concrete shapes).
    del past, batch
    bs, ps = Sym.var("batch"), Sym.var("past")
    x = b.input("x", f32(bs, 1, hidden))
    pk = b.input("past_key", f32(bs, kv_heads, ps, hd))
    pv = b.input("past_value", f32(bs, kv_heads, ps, hd))
    cos = b.input("cos", f32(1, 1, hd // 2))
    sin = b.input("sin", f32(1, 1, hd // 2))
    h = b.op(OpKind.RMS_NORM, [x, weight("input_norm", hidden)], A.NormAttrs(epsilon=1e-5))
    q = b.op(OpKind.MATMUL, [h, weight("wq", hidden, heads * hd)])
    k = b.op(OpKind.MATMUL, [h, weight("wk", hidden, kv_heads * hd)])
    v = b.op(OpKind.MATMUL, [h, weight("wv", hidden, kv_heads * hd)])
    q = b.op(OpKind.ROTARY_EMBEDDING, [q, cos, sin], A.RotaryAttrs(num_heads=heads))
    k = b.op(OpKind.ROTARY_EMBEDDING, [k, cos, sin], A.RotaryAttrs(num_heads=kv_heads))
    att = b.op(OpKind.ATTENTION, [q, k, v, "", pk, pv],
               A.AttentionAttrs(is_causal=True, q_num_heads=heads, kv_num_heads=kv_heads),
               outputs=["attn", "present_key", "present_value"])
    o = b.op(OpKind.MATMUL, [att, weight("wo", heads * hd, hidden)])
    x2 = b.op(OpKind.ADD, [x, o])
    h2 = b.op(OpKind.RMS_NORM, [x2, weight("post_norm", hidden)], A.NormAttrs(epsilon=1e-5))
    gate = b.op(OpKind.MATMUL, [h2, weight("w_gate", hidden, ffn)])
    up = b.op(OpKind.MATMUL, [h2, weight("w_up", hidden, ffn)])
    act = b.op(OpKind.MUL, [b.op(OpKind.SILU, [gate]), up])
    down = b.op(OpKind.MATMUL, [act, weight("w_down", ffn, hidden)])
    y = b.op(OpKind.ADD, [x2, down])
    b.output(y, "present_key", "present_value")
    return b.build()


def _predicted_layer_seconds(graph, target, context: int, batch: int) -> float:  # noqa: ANN001
    """The performance model's decode step of the layer's units for ``batch`` sequences."""
    import placer
    from placer.cost_model import annotate_costs
    from placer.perf import unit_decode_seconds
    from placer.workload import Workload

    grouped = placer.load_graph(graph)  # the compile pipeline: shapes, KV caches, units
    cost = annotate_costs(grouped, target, Workload(context_tokens=context, prompt_tokens=1))
    return sum(unit_decode_seconds(u, target, batch) for u in cost.units)


def bench_llama8b_layer(past: int = 1023, batch: int = 1) -> None:
    from placer.backends.executor import MeshExecutor
    from placer.backends.mesh import MeshSpec
    from placer.backends.reference import run_graph
    from placer.targets import load_target

    target = load_target("wse3-physics")  # the emulator runs the physics (no fitted overheads)
    t0 = time.perf_counter()
    graph = llama8b_layer(past, batch)
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((batch, 1, 4096), dtype=np.float32),
             "past_key": rng.standard_normal((batch, 8, past, 128), dtype=np.float32),
             "past_value": rng.standard_normal((batch, 8, past, 128), dtype=np.float32),
             "cos": np.cos(np.arange(64, dtype=np.float32) * 0.01).reshape(1, 1, 64),
             "sin": np.sin(np.arange(64, dtype=np.float32) * 0.01).reshape(1, 1, 64)}
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    executor = MeshExecutor(graph, MeshSpec.from_target(target))
    place = time.perf_counter() - t0
    t0 = time.perf_counter()
    outputs, stats = executor.run(feeds, keep=["present_key", "present_value"], decode=True)
    step = time.perf_counter() - t0
    ref = run_graph(graph, feeds)
    name = graph.outputs[0]
    err = float(np.abs(outputs[name] - ref[name]).max() / np.abs(ref[name]).max())
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    total = executor.step_observer.total()
    emulated = stats.compute_seconds
    predicted = _predicted_layer_seconds(graph, target, past + 1, batch)
    print(f"Llama-3.1-8B decoder layer, decode step of B = {batch} sequence(s), {past + 1} tokens of "
          f"context, wse3 grid {target.mesh_rows} x {target.mesh_cols} = {target.pes:,} PEs")
    print(f"  build graph + random bf16 weights {build:.1f} s; place weights {place:.1f} s; "
          f"decode step {step:.1f} s wall; peak RSS {rss_gb:.2f} GB (process so far)")
    print(f"  emulated: {sum(stats.cycles.values()):,} cycles = {emulated * 1e6:.2f} us; "
          f"hops {total.hops:,}; link bytes {total.link_bytes / 1e9:.3f} GB; "
          f"peak PE memory {executor.wafers[0].ledger.peak:,} B of {target.pe_sram_bytes:,} B")
    print(f"  performance model: {predicted * 1e6:.2f} us; emulated / predicted = {emulated / predicted:.3f}")
    print(f"  max |mesh - reference| / max |reference| = {err:.2e}")
    for kernel, s in executor.step_observer.per_kernel("wafer0").items():
        if s.cycles:
            print(f"    {kernel:<26} calls {s.calls:>3}  cycles {s.cycles:>8,}  hops {s.hops:>12,}")


if __name__ == "__main__":
    print(f"bench_mesh on {platform.node()} ({platform.machine()}, {platform.processor() or 'cpu'}, "
          f"python {platform.python_version()}, numpy {np.__version__}), "
          f"{datetime.datetime.now().isoformat(timespec='seconds')}")
    if "--skip-tiny" not in sys.argv:
        bench_tiny()
    batches = [int(a) for a in sys.argv[sys.argv.index("--batch") + 1:] if a.isdigit()] \
        if "--batch" in sys.argv else [1, 8]
    for b in batches:
        bench_llama8b_layer(batch=b)
