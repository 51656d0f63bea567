"""``placer inspect MODEL``: placement units, their costs, and the totals."""

from __future__ import annotations

import click

from placer.cli.options import (
    dtype_override_option,
    granularity_option,
    json_option,
    kv_dtype_option,
    resolve_target,
    set_option,
    target_option,
    weights_dtype_option,
)
from placer.progress import progress


@click.command("inspect")
@click.argument("model")
@target_option
@set_option
@granularity_option
@weights_dtype_option
@dtype_override_option
@kv_dtype_option
@click.option("--context", default="8192", show_default=True,
              help="KV length per sequence, tokens (0: the weights alone, no KV).")
@click.option("--unit-overrides", type=click.Path(dir_okay=False), default=None,
              help="TOML or JSON file mapping node-name/scope globs to unit names.")
@json_option
def inspect_command(model: str, target_name: str, target_sets: tuple[str, ...], granularity: str,
                    weights_dtype: str, dtype_overrides: tuple[str, ...], kv_dtype: str, context: str,
                    unit_overrides: str | None, as_json: bool) -> None:
    """Show MODEL's placement units with parameters, weight bytes, KV bytes per token,
    decode FLOPs per token and outgoing activation bytes per token."""
    from placer.inspect import format_inspection, inspect_model, inspection_to_json, parse_workload

    target = resolve_target(target_name, target_sets)
    workload = parse_workload(context=context, weights_dtype=weights_dtype,
                              dtype_overrides=dtype_overrides, kv_dtype=kv_dtype)
    with progress(f"inspecting {model}"):
        result = inspect_model(model, target=target, workload=workload, granularity=granularity,
                               unit_overrides=unit_overrides)
    click.echo(inspection_to_json(result) if as_json else format_inspection(result), nl=not as_json)
