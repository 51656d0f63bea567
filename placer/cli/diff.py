"""``placer diff A B``: what moved between two plans; exit 1 on a regression beyond thresholds."""

from __future__ import annotations

import json

import click

from placer.cli.options import json_option


@click.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--max-added-wafers", type=int, default=0, show_default=True,
              help="Added wafers allowed before B counts as a regression.")
@click.option("--max-added-parked", type=int, default=0, show_default=True,
              help="Added parked sequences allowed.")
@click.option("--max-tokens-per-s-drop", type=float, default=1.0, show_default=True, metavar="PCT",
              help="Allowed drop of tokens/s (per user and in total), percent.")
@click.option("--max-tpot-rise", type=float, default=None, metavar="PCT",
              help="Allowed rise of time per output token, percent (default: not checked).")
@click.option("--max-ttft-rise", type=float, default=None, metavar="PCT",
              help="Allowed rise of time to first token, percent (default: not checked).")
@json_option
def diff_command(a: str, b: str, max_added_wafers: int, max_added_parked: int, max_tokens_per_s_drop: float,
                 max_tpot_rise: float | None, max_ttft_rise: float | None, as_json: bool) -> None:
    """Compare plan B against baseline A (plan.json files or folders holding one).

    Prints Markdown (for a CI job summary) or --json; exits 1 when B regresses beyond the
    thresholds, 2 when a plan cannot be read (another schema version included)."""
    from placer.diff import Thresholds, diff_plans, read_plan

    thresholds = Thresholds(max_added_wafers, max_added_parked, max_tokens_per_s_drop, max_tpot_rise,
                            max_ttft_rise)
    result = diff_plans(read_plan(a), read_plan(b), thresholds, a, b)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        from placer.cli.console import echo_markdown

        echo_markdown(result.to_markdown())
    raise SystemExit(result.exit_code)
