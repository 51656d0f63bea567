"""``placer check plan.json --max-wafers N ...``: exit 1 with one line naming a broken budget."""

from __future__ import annotations

import json

import click

from placer.cli.options import json_option


@click.command("check")
@click.argument("plan_path", metavar="PLAN")
@click.option("--max-wafers", type=int, default=None, help="At most N wafers.")
@click.option("--min-tokens-per-s-per-user", type=float, default=None,
              help="Per-user decode floor, tokens/s (a --draft plan: its effective tokens/s per user).")
@click.option("--min-total-tokens-per-s", type=float, default=None, help="Total decode floor, tokens/s.")
@click.option("--max-time-per-output-token-ms", type=float, default=None, help="TPOT ceiling, ms.")
@click.option("--max-ttft-ms", type=float, default=None, help="Time-to-first-token ceiling, ms.")
@click.option("--all-resident", is_flag=True, help="Fail when any sequence is parked off-wafer.")
@json_option
def check_command(plan_path: str, max_wafers: int | None, min_tokens_per_s_per_user: float | None,
                  min_total_tokens_per_s: float | None, max_time_per_output_token_ms: float | None,
                  max_ttft_ms: float | None, all_resident: bool, as_json: bool) -> None:
    """Check PLAN (a plan.json or a folder holding one) against budgets; exit 1 if one is broken."""
    from placer.check import Budgets, check_plan
    from placer.diff import read_plan

    budgets = Budgets(max_wafers, min_tokens_per_s_per_user, min_total_tokens_per_s,
                      None if max_time_per_output_token_ms is None else max_time_per_output_token_ms / 1e3,
                      None if max_ttft_ms is None else max_ttft_ms / 1e3, all_resident)
    result = check_plan(read_plan(plan_path), budgets, plan_path)
    if as_json:
        click.echo(json.dumps({**result.to_dict(), "exit": result.exit_code}, indent=2, sort_keys=True))
    else:
        click.echo(result.line())
    raise SystemExit(result.exit_code)
