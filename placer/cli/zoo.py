"""``placer zoo``: the built-in model configs with their parameters and KV cache per token."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import click

from placer.cli.options import json_option
from placer.frontends.hf_config import from_config
from placer.ir import Graph, WeightRole
from placer.zoo import ZOO_MODELS, load_zoo_config


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model at its native (checkpoint) precisions. KV bytes are per token of one
    sequence; ``windowed_kv_bytes_per_token`` is the part held by layers capped at ``windows``;
    ``state_bytes_per_sequence`` is held whatever the length (linear-attention state, open
    compression windows)."""

    name: str
    model_type: str
    layers: int
    parameters: int
    weight_bytes: int
    kv_bytes_per_token: int
    windowed_kv_bytes_per_token: int
    windows: tuple[int, ...]
    state_bytes_per_sequence: int = 0


def describe_zoo_model(name: str) -> ZooEntry:
    """Build ``name`` from its config and measure it."""
    config = load_zoo_config(name)
    graph = from_config(config, name=name)
    return summarize_graph(graph, name, str(config["model_type"]))


def summarize_graph(graph: Graph, name: str, model_type: str) -> ZooEntry:
    params = [w for w in graph.weights.values() if w.role is WeightRole.PARAMETER]
    kv = [(c.dtype.storage_bytes(c.elements_per_token) // c.tokens_per_entry, c.window)
          for c in graph.kv_caches]
    state = sum(c.dtype.storage_bytes(c.state_elements) for c in graph.kv_caches)
    layers = len({c.name.rsplit(".", 2)[0] for c in graph.kv_caches})
    return ZooEntry(name, model_type, layers, sum(w.numel for w in params), sum(w.nbytes for w in params),
                    sum(b for b, _ in kv), sum(b for b, w in kv if w), tuple(sorted({w for _, w in kv if w})),
                    state)


def format_entry(e: ZooEntry) -> str:
    kv = f"{e.kv_bytes_per_token:,} B/token"
    if e.windows:
        caps = ", ".join(f"{w:,}" for w in e.windows)
        kv += f" ({e.windowed_kv_bytes_per_token:,} B/token in layers capped at {caps} tokens)"
    if e.state_bytes_per_sequence:
        kv += f" + {e.state_bytes_per_sequence:,} B/sequence state"
    return (f"{e.name:<18} {e.model_type:<12} {e.layers:>4} layers  {e.parameters / 1e9:>8.2f} B params  "
            f"{e.weight_bytes / 1e9:>8.1f} GB native weights  KV {kv}")


@click.command("zoo")
@click.argument("names", nargs=-1)
@json_option
def zoo_command(names: tuple[str, ...], as_json: bool) -> None:
    """List the built-in models (or the named ones): parameters, native weight bytes (GB = 1e9 B)
    and KV cache bytes per token at the native dtype. A zoo name works wherever MODEL is taken."""
    from placer.ir.passes.group_units import paused_gc
    from placer.progress import progress

    # Each entry builds its model's graph (the figures are the graph's, like inspect's): the 17
    # zoo models take ~40 CPU s in all, mostly the large MoE configs; shown per model on a terminal.
    entries = []
    with paused_gc():   # millions of small objects and no cycles, as in load_model
        for n in names or ZOO_MODELS:
            with progress(f"building {n}"):
                entries.append(describe_zoo_model(n))
    if as_json:
        click.echo(json.dumps([asdict(e) for e in entries], indent=2))
        return
    click.echo("\n".join(format_entry(e) for e in entries))
