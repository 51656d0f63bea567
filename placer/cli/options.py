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


def resolve_target(name: str, sets: tuple[str, ...]) -> Target:
    overrides: dict[str, object] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"option --set: expected FIELD=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return load_target(name, overrides)
