"""``placer compile MODEL ... -o DIR``: place a model and write plan.json and report.md."""

from __future__ import annotations

import click

from placer.cli.options import compile_options, compile_options_from, json_option
from placer.progress import progress


@click.command("compile")
@click.argument("model")
@compile_options
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for plan.json and report.md.")
@json_option
def compile_command(model: str, out_dir: str, as_json: bool, **params: object) -> None:
    """Place MODEL's layers and KV cache across wafers; write DIR/plan.json and DIR/report.md."""
    from placer.compiler import compile_result, write_outputs

    options = compile_options_from(params)
    with progress(f"placing {model}"):
        result = compile_result(model, options)
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
