"""Options shared by several subcommands, defined once."""

from __future__ import annotations

import click

from placer.errors import UserError
from placer.targets import Target, load_target

target_option = click.option(
    "--target", "target_name", default="wse3", show_default=True,
    help="Built-in target (wse2, wse3, wse-mini) or a TOML file.")
set_option = click.option(
    "--set", "target_sets", multiple=True, metavar="FIELD=VALUE",
    help="Override a target field, e.g. --set clock_hz=9.5e8 (repeatable).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


granularity_option = click.option(
    "--granularity", type=click.Choice(["layer", "block", "expert"]), default="layer", show_default=True,
    help="Placement units: decoder layers, attention/MLP blocks, or MoE experts split into groups.")
weights_dtype_option = click.option(
    "--weights-dtype", default="native", show_default=True, help="native, bf16, fp8, fp4, mxfp4, ...")
dtype_override_option = click.option(
    "--dtype-override", "dtype_overrides", multiple=True, metavar="PATTERN=DTYPE",
    help="Per-weight dtype by glob, e.g. '*.experts.*=mxfp4' (repeatable).")
kv_dtype_option = click.option("--kv-dtype", default="native", show_default=True, help="KV cache dtype.")


def parse_sets(sets: tuple[str, ...]) -> dict[str, object]:
    """``--set FIELD=VALUE`` items as a mapping; a UserError names a malformed item."""
    overrides: dict[str, object] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"option --set: expected FIELD=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def resolve_target(name: str, sets: tuple[str, ...]) -> Target:
    return load_target(name, parse_sets(sets))
