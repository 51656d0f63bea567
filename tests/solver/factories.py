"""Analytic ModelCost factories for solver tests and benchmarks (until the real pipeline is used).

``llama_cost`` builds a Llama-shaped chain (embed, N decoder layers or attn/mlp blocks, head)
with exact parameter counts, bf16 bytes, GQA KV bytes per token and per-token decode costs;
``moe_cost`` a DAG with one unit per expert; ``random_problem`` small integer problems.
"""

from __future__ import annotations

import random

from placer.costs import Collective, EdgeCost, KVCost, ModelCost, NodeCost, UnitCost
from placer.ir.graph import UnitKind
from placer.solver.problem import Edge, Objective, Problem

SHAPES = {
    # name: layers, hidden, ffn, heads, kv_heads, vocab
    "llama-8b": (32, 4096, 14336, 32, 8, 128256),
    "llama-70b": (80, 8192, 28672, 64, 8, 128256),
    "llama-405b": (126, 16384, 53248, 128, 8, 128256),
}


def _unit(name, kind, layer, params, wbytes, kv, context, prompt, hidden, gemvs, attn_heads_dim=0):
    act = hidden * 2 * 4
    kv_read = sum(k.bytes_for(context) for k in kv)
    gemv = (Collective.gemv(hidden, hidden, 2),) * gemvs
    decode = NodeCost(flops=2 * params + 4 * context * attn_heads_dim, weight_read_bytes=params * wbytes,
                      activation_bytes=act, kv_read_bytes=kv_read, collectives=gemv)
    prefill = NodeCost(flops=2 * params * prompt + 2 * prompt * prompt * attn_heads_dim,
                       weight_read_bytes=params * wbytes, activation_bytes=act * prompt, collectives=gemv)
    return UnitCost(name=name, kind=kind, layer=layer, parameters=params, weight_bytes=params * wbytes,
                    constant_bytes=0, kv=tuple(kv), decode=decode, prefill=prefill,
                    activation_out_bytes_per_token=hidden * 2)


def llama_cost(shape: str = "llama-70b", *, granularity: str = "layer", context: int = 8192,
               prompt: int = 1024, wbytes: int = 2, kvbytes: int = 2, layers: int | None = None) -> ModelCost:
    n_layers, hidden, ffn, heads, kv_heads, vocab = SHAPES[shape]
    n_layers = layers or n_layers
    head_dim = hidden // heads
    attn = 2 * hidden * hidden + 2 * hidden * kv_heads * head_dim + hidden
    mlp = 3 * hidden * ffn + hidden
    kv = [KVCost("k", kv_heads * head_dim * kvbytes), KVCost("v", kv_heads * head_dim * kvbytes)]
    units = [_unit("embed", UnitKind.EMBEDDING, -1, vocab * hidden, wbytes, [], context, prompt, hidden, 0)]
    for i in range(n_layers):
        if granularity == "layer":
            units.append(_unit(f"layers.{i}", UnitKind.LAYER, i, attn + mlp, wbytes,
                               [KVCost(f"layers.{i}.{k.name}", k.bytes_per_token) for k in kv],
                               context, prompt, hidden, 9, heads * head_dim))
        else:
            units.append(_unit(f"layers.{i}.attn", UnitKind.ATTENTION, i, attn, wbytes,
                               [KVCost(f"layers.{i}.{k.name}", k.bytes_per_token) for k in kv],
                               context, prompt, hidden, 6, heads * head_dim))
            units.append(_unit(f"layers.{i}.mlp", UnitKind.MLP, i, mlp, wbytes, [], context, prompt,
                               hidden, 4))
    units.append(_unit("head", UnitKind.HEAD, -1, vocab * hidden + hidden, wbytes, [], context, prompt,
                       hidden, 2))
    edges = tuple(EdgeCost(a.name, b.name, hidden * 2) for a, b in zip(units, units[1:]))
    return ModelCost(model=f"{shape}-{granularity}", units=tuple(units), edges=edges,
                     parameters=sum(u.parameters for u in units),
                     weight_bytes=sum(u.weight_bytes for u in units),
                     kv_bytes_per_token=sum(u.kv_bytes_per_token for u in units))


def moe_cost(layers: int = 40, experts: int = 256, hidden: int = 7168, expert_ffn: int = 2048,
             wbytes: int = 1, context: int = 0) -> ModelCost:
    """A DAG: attn_L -> each expert of layer L -> attn_{L+1}; embed first, head last."""
    heads = 128
    attn = 4 * hidden * hidden
    units = [_unit("embed", UnitKind.EMBEDDING, -1, 129280 * hidden, wbytes, [], context, 1, hidden, 0)]
    edges = []
    prev = ["embed"]
    for i in range(layers):
        a = _unit(f"layers.{i}.attn", UnitKind.ATTENTION, i, attn, wbytes, [KVCost(f"l{i}", 1152)],
                  context, 1, hidden, 6, heads * 128)
        units.append(a)
        edges += [EdgeCost(p, a.name, hidden * 2 // max(1, len(prev) // 8)) for p in prev]
        prev = []
        for e in range(experts):
            x = _unit(f"layers.{i}.experts.{e}", UnitKind.EXPERTS, i, 3 * hidden * expert_ffn, wbytes, [],
                      context, 1, hidden, 3)
            units.append(x)
            edges.append(EdgeCost(a.name, x.name, hidden * 2 * 8 // experts))
            prev.append(x.name)
    h = _unit("head", UnitKind.HEAD, -1, 129280 * hidden, wbytes, [], context, 1, hidden, 2)
    units.append(h)
    edges += [EdgeCost(p, "head", hidden * 2 * 8 // experts) for p in prev]
    return ModelCost(model=f"moe-{layers}x{experts}", units=tuple(units), edges=tuple(edges),
                     parameters=sum(u.parameters for u in units),
                     weight_bytes=sum(u.weight_bytes for u in units),
                     kv_bytes_per_token=sum(u.kv_bytes_per_token for u in units))


def random_problem(rng: random.Random, n: int, *, chain: bool, objective: Objective, concurrency: int = 1,
                   max_wafers: int = 4, exact: bool = False, floor: bool = False) -> Problem:
    """A small integer problem: random sizes, KV, times and edge I/O."""
    if chain:
        pairs = [(i, i + 1) for i in range(n - 1)]
    else:
        pairs = sorted({(i, i + 1) for i in range(n - 1)} | {(a, b) for a in range(n) for b in range(a + 2, n)
                                                              if rng.random() < 0.3})
    capacity = 100
    ticks = tuple(rng.randint(1, 20) for _ in range(n))
    p = Problem(
        names=tuple(f"u{i}" for i in range(n)),
        layers=tuple(range(n)),
        parameters=tuple(rng.randint(1, 50) for _ in range(n)),
        weight_bytes=tuple(rng.randint(5, 60) for _ in range(n)),
        act_bytes=tuple(rng.randint(0, 3) for _ in range(n)),
        kv_bytes=tuple(rng.choice([0, 0, 1, 2, 5]) for _ in range(n)),
        ticks=ticks,
        edges=tuple(Edge(a, b, 10 * w, w) for a, b in pairs for w in [rng.randint(0, 6)]),
        capacity=capacity,
        hop_ticks=rng.randint(0, 8),
        concurrency=concurrency,
        objective=objective,
        min_wafers=max_wafers if exact else 1,
        max_wafers=max_wafers,
        max_tpot_ticks=(sum(ticks) + rng.randint(5, 60)) if floor else None,
    )
    return p


def realistic_problem(rng: random.Random, n: int, *, chain: bool, objective: Objective,
                      concurrency: int = 8, max_wafers: int | None = None) -> Problem:
    """A problem with a real model's magnitudes (Llama-3.1-8B on wse3 at 8192 context): GB
    weights, 16.8 MB KV steps, 8-25 MB activation buffers, 1e5-tick layers, a zero-tick embedding,
    44 GB-class or small capacities; ``chain=False`` adds residual-like skip edges."""
    inner = n - 2
    weights = [rng.randint(5, 12) * 10**8, *(rng.randint(3, 8) * 10**8 + rng.randint(0, 999)
                                             for _ in range(inner)), rng.randint(5, 12) * 10**8]
    kv = [0, *(rng.choice([0, 1, 2, 4]) * 16_777_216 for _ in range(inner)), 0]
    ticks = [rng.choice([0, 0, 30_000]), *(rng.randint(100_000, 200_000) for _ in range(inner)),
             rng.randint(0, 50_000)]
    pairs = {(i, i + 1) for i in range(n - 1)}
    if not chain:
        pairs |= {(a, b) for a in range(n) for b in range(a + 2, n) if rng.random() < 0.2}
    edges = tuple(Edge(a, b, size, size // 15) for a, b in sorted(pairs)
                  for size in [rng.choice([512, 8192, 8704, 16384])])
    return Problem(
        names=tuple(f"u{i}" for i in range(n)),
        layers=tuple(range(n)),
        parameters=tuple(w // 2 for w in weights),
        weight_bytes=tuple(weights),
        act_bytes=tuple(rng.choice([0, 8_454_144, 24_834_048]) for _ in range(n)),
        kv_bytes=tuple(kv),
        ticks=tuple(ticks),
        edges=edges,
        capacity=rng.choice([41_800_000_000, 3_000_000_000, 2_000_000_000]),
        hop_ticks=rng.choice([0, 5_000, 50_000]),
        concurrency=concurrency,
        objective=objective,
        max_wafers=max_wafers or rng.randint(2, 8),
    )
