"""Pass ``find-kv-caches``: the tensors attention keeps for every past token.

For each attention core (an ``attention`` node, or the Softmax between ``Q @ K^T`` and
``P @ V``), its K and V operands are traced upstream:

* if they come from a past-KV graph input (``Concat(past_key, k)`` or the ``past_key`` input of
  an ``attention`` node), that input is the cache, and its per-token size is the product of its
  static dims (``[batch, kv_heads, past, head_dim]`` gives ``kv_heads * head_dim``);
* otherwise the dominator chain of the operand is walked back to the K/V projection (the first
  weighted MatMul/Gemm), and the smallest per-token value on it is the cache: after GPT-2's
  ``Split`` of the fused QKV, before GQA's repeat/expand (which multiplies the size).

Graphs that already carry caches (built from configs: MLA latents, sliding windows) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from placer.ir.graph import Graph, KVCache, Node
from placer.ir.ops import ATTENTION_INPUTS, OpKind
from placer.ir.passes.base import PassResult
from placer.ir.passes.group_units import (
    Structure,
    analyze_structure,
    is_weighted_contraction,
    probability_matmul,
)
from placer.ir.symbolic import Dim, Sym, dim_div, dim_prod

_GATHERS = frozenset({OpKind.GATHER, OpKind.GATHER_BLOCK_QUANTIZED})
_SCORE_OPS = frozenset({OpKind.ADD, OpKind.MUL, OpKind.DIV, OpKind.WHERE, OpKind.CAST,
                        OpKind.IDENTITY, OpKind.TANH, OpKind.SUB})
_LAYOUT_UP = frozenset({OpKind.CAST, OpKind.IDENTITY, OpKind.RESHAPE, OpKind.TRANSPOSE,
                        OpKind.UNSQUEEZE, OpKind.SQUEEZE})


@dataclass(frozen=True)
class TokenSymbols:
    """Names of the symbols for batch, new tokens, past tokens, and past+new (mask length)."""

    batch: str | None = None
    seq: str | None = None
    past: str | None = None
    total: tuple[str, ...] = ()
    token_input: str | None = None
    past_inputs: tuple[str, ...] = ()


def _var(d: Dim) -> str | None:
    if isinstance(d, Sym) and len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1:
        return d.terms[0][0][0]
    return None


def find_token_symbols(graph: Graph) -> TokenSymbols:
    """Discover the symbols from graph inputs: token ids ``[batch, seq]``, past KV inputs
    ``[batch, heads, past, head_dim]``, and masks whose length is ``past + seq``."""
    ints = [i for i in graph.inputs if graph.types[i].dtype.is_integer and graph.types[i].rank == 2]
    feeding = {i for i in ints if any(c.op in _GATHERS and c.inputs[1:2] == (i,)
                                      for c in graph.consumers.get(i, []))}
    token = next((i for i in ints if i in feeding), ints[0] if ints else None)
    batch = seq = past = None
    if token is not None:
        shape = graph.types[token].shape
        batch, seq = _var(shape[0]), _var(shape[1])
    pasts = []
    for i in graph.inputs:
        t = graph.types[i]
        if t.dtype.is_float and t.rank == 4:
            p = _var(t.shape[2])
            if p is not None and p not in (batch, seq):
                past = past or p
                pasts.append(i)
    total = set()
    for i in graph.inputs:
        t = graph.types[i]
        if i != token and t.rank == 2 and i not in pasts:
            v = _var(t.shape[1])
            if v is not None and v not in (batch, seq, past):
                total.add(v)
    return TokenSymbols(batch, seq, past, tuple(sorted(total)), token, tuple(pasts))


def elements_per_token(graph: Graph, value: str, syms: TokenSymbols) -> int | None:
    """``numel / (batch * seq)`` of ``value`` when that is an integer, else None."""
    t = graph.types.get(value)
    if t is None:
        return None
    static = 1
    symbolic: list[Dim] = []
    for d in t.shape:
        if isinstance(d, int):
            static *= d
        else:
            symbolic.append(d)
    numel: Dim = dim_prod(symbolic) if symbolic else 1
    for name in (syms.batch, syms.seq):
        if name is None:
            continue
        if isinstance(numel, int) or name not in numel.symbols:
            return None
        quotient = dim_div(numel, Sym.var(name))
        if quotient is None:
            return None
        numel = quotient
    return static * numel if isinstance(numel, int) and numel > 0 else None


@dataclass(frozen=True)
class FindKVCaches:
    """Set ``Graph.kv_caches`` from the attention cores, unless the graph already has them."""

    name: ClassVar[str] = "find-kv-caches"

    def run(self, graph: Graph) -> PassResult:
        if graph.kv_caches:
            return PassResult(graph, False)
        caches = find_kv_caches(graph)
        return PassResult(graph.replace(kv_caches=caches), bool(caches))


def find_kv_caches(graph: Graph, structure: Structure | None = None) -> tuple[KVCache, ...]:
    """The K and V caches of every attention core, in layer order."""
    s = structure or analyze_structure(graph)
    syms = find_token_symbols(graph)
    out: list[KVCache] = []
    for layer, core in enumerate(s.cores):
        node = graph.node_by_name[core]
        operands = _kv_operands(graph, node)
        if operands is None:
            continue
        for role, operand, past in zip(("key", "value"), operands[:2], operands[2:]):
            found = _cached_value(s, operand, past, syms)
            if found is not None:
                value, per_token = found
                out.append(KVCache(f"layers.{layer}.{role}", value, per_token,
                                   graph.type_of(value).dtype))
    return tuple(out)


def _kv_operands(graph: Graph, core: Node) -> tuple[str, str, str, str] | None:
    """(K, V, past K, past V) operands of an attention core; past ones may be ''."""
    if core.op in ATTENTION_INPUTS:
        ins = core.inputs + ("",) * 8
        k, v, pk, pv = (ins[i] for i in ATTENTION_INPUTS[core.op])
        return k or ins[0], v or ins[0], pk, pv  # packed QKV: K and V come in with Q
    qk = _score_matmul(graph, core.inputs[0])
    pv_matmul = probability_matmul(graph, core.outputs[0])
    if qk is None or pv_matmul is None:
        return None
    return qk.inputs[1], pv_matmul.inputs[1], "", ""


def _score_matmul(graph: Graph, scores: str) -> Node | None:
    """The activation MatMul (Q @ K^T) feeding a Softmax's input through scale, mask and cast ops."""
    frontier = [scores]
    for _ in range(6):
        nxt: list[str] = []
        for v in frontier:
            p = graph.producers.get(v)
            if p is None:
                continue
            if p.op is OpKind.MATMUL and not any(i in graph.weights for i in p.inputs):
                return p
            if p.op in _SCORE_OPS:
                nxt.extend(i for i in p.inputs if i and i not in graph.weights)
        frontier = nxt
    return None


def _cached_value(s: Structure, operand: str, past: str, syms: TokenSymbols) -> tuple[str, int] | None:
    graph = s.graph
    if past and past in graph.inputs:
        return past, _static_product(graph, past)
    past_input = _past_input_of(s, operand, syms)
    if past_input is not None:
        return past_input, _static_product(graph, past_input)
    ancestors = _ancestors(s, operand)
    best: tuple[int, int, str] | None = None  # (elements, steps from the operand, value)
    value = operand
    node = graph.producers.get(operand)
    pos = 0
    while node is not None and node.name in s.reachable and node.name not in s.chain_pos:
        for out in node.outputs:
            if out and (out == value or out in ancestors):
                n = elements_per_token(graph, out, syms)
                if n is not None and (best is None or (n, pos) < best[:2]):
                    best = (n, pos, out)
        if is_weighted_contraction(graph, node):
            break
        pos += 1
        node = graph.node_by_name.get(s.idom[node.name])
    return (best[2], best[0]) if best else None


def _ancestors(s: Structure, value: str, limit: int = 400) -> set[str]:
    """Values upstream of ``value`` within its layer, stopping at projections."""
    graph = s.graph
    seen: set[str] = set()
    stack = [value]
    while stack and len(seen) < limit:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        p = graph.producers.get(v)
        if p is None or p.name in s.chain_pos or is_weighted_contraction(graph, p):
            continue
        stack.extend(i for i in p.inputs if i and i not in graph.weights)
    return seen


def _past_input_of(s: Structure, operand: str, syms: TokenSymbols) -> str | None:
    """The past-KV graph input concatenated into ``operand`` upstream, if any."""
    if not syms.past_inputs:
        return None
    graph = s.graph
    pasts = set(syms.past_inputs)
    for v in _ancestors(s, operand):
        p = graph.producers.get(v)
        if p is not None and p.op is OpKind.CONCAT:
            for i in p.inputs:
                root = _through_layout(graph, i)
                if root in pasts:
                    return root
    return None


def _through_layout(graph: Graph, value: str) -> str:
    for _ in range(8):
        p = graph.producers.get(value)
        if p is None or p.op not in _LAYOUT_UP:
            return value
        value = p.inputs[0]
    return value


def _static_product(graph: Graph, value: str) -> int:
    out = 1
    for d in graph.type_of(value).shape[1:]:  # dim 0 is the batch
        if isinstance(d, int):
            out *= d
    return out
