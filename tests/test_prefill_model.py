"""Prefill: the performance model charges what the emulator runs.

A prompt's weight GEMMs run as ``mesh_physics.prefill_gemm`` chooses (Cannon, or a GEMV of the
prompt's rows on the resident tiles); the emulator executes that algorithm and the model
charges its cycles. Oracles: the emulator's per-unit prefill cycles (tiny models, wse-mini,
the prompt in one chunk), and brute-force minima of the two closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from placer.ir import mesh_physics as mp

FAMILIES = ("llama", "mistral", "qwen2", "gpt2", "mixtral")
PROMPT = 8


def _emulated_prefill(path):  # noqa: ANN001, ANN202
    import placer
    from placer.runner import run_plan
    from placer.targets import load_target

    graph = placer.load_graph(str(path))
    ids = np.random.default_rng(0).integers(0, 160, (1, PROMPT)).astype(np.int64)
    feeds = {"input_ids": ids}
    for name in graph.inputs:
        if name != "input_ids":
            t = graph.type_of(name)
            feeds[name] = np.zeros((1, int(t.shape[1]), 0, int(t.shape[3])), np.float32)
    # every unit on one wafer: the prefill's unit cycles, without I/O between wafers
    result = run_plan(str(path), {u.name: 0 for u in graph.units}, feeds, tokens=0,
                      target=load_target("wse-mini"))
    return graph, result.prefill


@pytest.mark.parametrize("family", FAMILIES)
def test_predicted_prefill_matches_the_emulator(onnx_model, family: str) -> None:  # noqa: ANN001
    from placer.cost_model import annotate_costs
    from placer.perf import unit_prefill_chunk_seconds
    from placer.targets import load_target
    from placer.workload import Workload

    target = load_target("wse-mini")
    path = onnx_model(family, with_cache=True)
    graph, stats = _emulated_prefill(path)
    cost = annotate_costs(graph, target, Workload(context_tokens=64, prompt_tokens=PROMPT))
    predicted = {u.name: unit_prefill_chunk_seconds(u, target, PROMPT, PROMPT) * target.clock_hz
                 for u in cost.units}
    emulated = {name: cycles for name, cycles in stats.unit_cycles.items() if name in predicted}
    assert set(emulated) == set(predicted)
    ratio = sum(emulated.values()) / sum(predicted.values())
    assert 0.9 <= ratio <= 1.1, (ratio, emulated, predicted)


@pytest.mark.parametrize(("m", "k", "n", "rows", "cols"), [
    (8, 64, 64, 16, 16), (64, 64, 64, 4, 4), (512, 32, 32, 4, 4), (1024, 4096, 14336, 762, 1172),
    (5, 7, 11, 3, 5), (4096, 64, 64, 8, 8),
])
def test_prefill_gemm_is_the_cheaper_algorithm(m: int, k: int, n: int, rows: int, cols: int) -> None:
    algorithm, cycles = mp.prefill_gemm(m, k, n, rows, cols, 4, 1, 4, 15.9)
    cannon = mp.cannon_gemm_cycles(m, k, n, min(rows, cols), 4, 1, 4, 15.9)
    gemv = mp.gemv_gemm_cycles(m, k, n, rows, cols, 4, 1, 4, 15.9)
    assert cycles == min(cannon, gemv)
    assert algorithm == ("cannon" if cannon < gemv else "gemv")


def test_cannon_is_chosen_for_long_chunks_of_small_matrices() -> None:
    # Bandwidth: Cannon streams max(m k, k n) / p per PE, the GEMV m k / rows + m n / cols;
    # for m far above k n / (k + n) Cannon must win, for one row never.
    assert mp.prefill_gemm(4096, 64, 64, 8, 8, 4, 1, 4, 15.9)[0] == "cannon"
    assert mp.prefill_gemm(1, 64, 64, 8, 8, 4, 1, 4, 15.9)[0] == "gemv"
    # at the chunk placer plans on wse3 (1,024 tokens) every Llama-3.1-8B weight runs as a GEMV
    for k, n in ((4096, 6144), (4096, 4096), (4096, 28672), (14336, 4096)):
        assert mp.prefill_gemm(1024, k, n, 762, 1172, 2, 1, 4, 15.9)[0] == "gemv"


def test_cannon_prefill_in_the_model_replaces_its_gemv_and_its_flops() -> None:
    from placer.costs import Collective, NodeCost
    from placer.perf import step_parts
    from placer.targets import load_target

    target = load_target("wse-mini")
    k = n = 64
    rows = 4096
    gemm = NodeCost(flops=2 * k * n * rows, collectives=(Collective.gemv(k, n, 4, "x", matrix=True),))
    parts = step_parts(gemm, target, rows, 1.0 / rows, prefill=True)
    _, cycles = mp.prefill_gemm(rows, k, n, target.mesh_rows, target.mesh_cols, 4, target.cycles_per_hop,
                                target.link_bytes_per_cycle, target.flops_per_cycle_per_pe)
    assert parts.compute == 0.0
    assert math.isclose(parts.fabric, cycles / target.clock_hz)
    # a decode micro-batch of the same rows stays a GEMV
    decode = step_parts(gemm, target, rows, 1.0 / rows)
    assert decode.compute > 0
