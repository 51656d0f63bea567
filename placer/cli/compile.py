"""``placer compile MODEL ... -o DIR``: place a model and write plan.json and report.md."""

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

# Literal lists keep `placer --help` and every other subcommand from importing ortools;
# tests/cli/test_compile.py checks them against placer.solver.
OBJECTIVES = ("min-wafers", "min-latency", "max-throughput")
SOLVERS = ("cp-sat", "dp", "uniform", "greedy", "deepspeed")


@click.command("compile")
@click.argument("model")
@target_option
@set_option
@click.option("--objective", type=click.Choice(OBJECTIVES), default="min-wafers",
              show_default=True,
              help="What to optimise (after keeping as many sequences resident as possible).")
@click.option("--context", type=int, default=8192, show_default=True, help="KV length per sequence, tokens.")
@click.option("--prompt", type=int, default=1024, show_default=True, help="Prompt length for TTFT, tokens.")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Sequences served at once.")
@click.option("--wafers", type=int, default=None, help="Use exactly N wafers, each holding units.")
@click.option("--max-wafers", type=int, default=None,
              help="Use at most N wafers (default: the target's count).")
@weights_dtype_option
@dtype_override_option
@kv_dtype_option
@click.option("--reserve", type=float, default=None, help="SRAM fraction kept free (default: the target's).")
@granularity_option
@click.option("--solver", type=click.Choice(SOLVERS), default="cp-sat", show_default=True)
@click.option("--min-tokens-per-s-per-user", type=float, default=None,
              help="Per-user decode floor, tokens/s.")
@click.option("--pin", "pins", multiple=True, metavar="PATTERN=WAFER",
              help="Pin units to a wafer, e.g. 'layers.0-9=0' (ranges, globs; repeatable).")
@click.option("--pin-file", type=click.Path(dir_okay=False), default=None, help="One PATTERN=WAFER per line.")
@click.option("--time-limit", type=float, default=10.0, show_default=True,
              help="Limit per CP-SAT solve in CP-SAT's deterministic seconds (work, not wall time: "
                   "the plan is the same on any machine under any load; wall time varies).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for plan.json and report.md.")
@json_option
def compile_command(model: str, target_name: str, target_sets: tuple[str, ...], objective: str, context: int,
                    prompt: int, concurrency: int, wafers: int | None, max_wafers: int | None,
                    weights_dtype: str, dtype_overrides: tuple[str, ...], kv_dtype: str,
                    reserve: float | None, granularity: str,
                    solver: str, min_tokens_per_s_per_user: float | None, pins: tuple[str, ...],
                    pin_file: str | None, time_limit: float, seed: int, out_dir: str, as_json: bool) -> None:
    """Place MODEL's layers and KV cache across wafers; write DIR/plan.json and DIR/report.md."""
    from placer.compiler import compile_result, write_outputs

    target = resolve_target(target_name, target_sets)
    with progress(f"placing {model}"):
        result = compile_result(
            model, target=target, objective=objective, context=context, prompt=prompt,
            concurrency=concurrency, wafers=wafers, max_wafers=max_wafers, weights_dtype=weights_dtype,
            dtype_overrides=dtype_overrides, kv_dtype=kv_dtype, reserve=reserve, granularity=granularity,
            solver=solver,
            min_tokens_per_s_per_user=min_tokens_per_s_per_user, pins=pins, pin_file=pin_file,
            time_limit=time_limit, seed=seed)
    plan_path, report_path = write_outputs(result, out_dir)
    if as_json:
        click.echo(result.plan.to_json(), nl=False)
        return
    p = result.plan
    click.echo(f"{p.model.name}: {len(p.wafers)} wafer(s) of {p.target.name}, solver {p.solver.name} "
               f"{p.solver.status}; {p.performance.time_per_output_token_s * 1e3:.4f} ms per token, "
               f"{p.performance.tokens_per_s_per_user:,.1f} tokens/s per user, "
               f"{p.kv.resident_sequences} resident / {p.kv.parked_sequences} parked sequences")
    click.echo(f"wrote {plan_path} and {report_path}")
