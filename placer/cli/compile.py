"""``placer compile MODEL ... -o DIR``: place a model and write plan.json and report.md."""

from __future__ import annotations

from pathlib import Path

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
    from placer.compiler import OUTPUT_NAMES, compile_result, output_files
    from placer.outputs import open_output_folder

    options = compile_options_from(params)
    with open_output_folder(out_dir, names=OUTPUT_NAMES) as folder:  # checked and locked before the solve
        with progress(f"placing {model}"):
            result = compile_result(model, options)
        folder.commit(output_files(result))
    plan_path, report_path = Path(out_dir) / "plan.json", Path(out_dir) / "report.md"
    if as_json:
        click.echo(result.plan.to_json(), nl=False)
        return
    p = result.plan
    click.echo(f"{p.model.name}: {len(p.wafers)} wafer(s) of {p.target.name}, solver {p.solver.name} "
               f"{p.solver.status}; {p.performance.time_per_output_token_s * 1e3:.4f} ms per token, "
               f"{p.performance.tokens_per_s_per_user:,.1f} tokens/s per user, "
               f"{p.performance.tokens_per_s_total:,.1f} in total (micro-batch {p.performance.micro_batch}), "
               f"{p.kv.resident_sequences} resident / {p.kv.parked_sequences} parked sequences")
    if p.speculative is not None:
        s = p.speculative
        click.echo(f"speculative decoding: draft {s.draft} (k = {s.draft_length}, a = {s.acceptance:g}) "
                   f"{s.placement()}: {s.expected_tokens_per_step:.3f} tokens per verification step, "
                   f"{s.tokens_per_s_per_user:,.1f} effective tokens/s per user ({s.speedup:.2f}x the "
                   f"target alone); target on wafer(s) {', '.join(map(str, s.target_wafers))}, draft on "
                   f"wafer(s) {', '.join(map(str, s.draft_wafers))}")
    click.echo(f"wrote {plan_path} and {report_path}")
