"""``placer run MODEL --plan plan.json --inputs in.npz``: execute the placed model on emulated
wafers and print the accounting beside the performance model's prediction."""

from __future__ import annotations

import click

from placer.cli.options import json_option, parse_sets, set_option
from placer.progress import progress


@click.command("run")
@click.argument("model")
@click.option("--plan", "plan_path", required=True,
              help="plan.json written by placer compile (or its folder).")
@click.option("--inputs", "inputs_path", required=True, help=".npz keyed by the model's input names.")
@click.option("--outputs", "outputs_path", default=None,
              help="Write the last step's outputs (keys: output names; 'tokens' when decoding) to this .npz.")
@click.option("--tokens", default=0, show_default=True, type=click.IntRange(min=0),
              help="Greedy-decode this many tokens with the KV cache after the prefill (at most 65,536).")
@click.option("--batch", default=None, type=click.IntRange(min=1),
              help="Sequences per decode step (default: the inputs' batch; one sequence is repeated; "
                   "at most 4,096).")
@click.option("--micro-batches", "micro_batches", default=1, show_default=True, type=click.IntRange(min=1),
              help="Split each decode step's sequences into this many micro-batches in flight at once (a "
                   "divisor of --batch): a wafer laid out in regions pipelines them through its rectangles.")
@set_option
@json_option
def run_command(model: str, plan_path: str, inputs_path: str, outputs_path: str | None, tokens: int,
                batch: int | None, target_sets: tuple[str, ...], as_json: bool = False,
                micro_batches: int = 1) -> None:
    """Execute MODEL under a plan on the numpy mesh emulator (one emulated wafer per plan wafer)."""
    from placer.fileio import check_output_file
    from placer.runner import _assignment, format_accounting, run_plan, write_run_outputs

    if outputs_path is not None:   # "" too: an empty path is a mistake, not "no outputs"
        check_output_file(outputs_path, "--outputs")
    _, plan_target, _ = _assignment(plan_path)
    target = plan_target
    if target_sets and target is not None:
        target = target.with_overrides(parse_sets(target_sets))
    with progress(f"emulating {model} on {target.name if target is not None else 'the plan target'}"):
        result = run_plan(model, plan_path, inputs_path, tokens=tokens, target=target, batch=batch,
                          micro_batches=micro_batches)
    if as_json:
        from placer.cli.run_json import echo_run_json

        return echo_run_json(model, result, target, outputs_path)
    click.echo(f"{model}: {result.wafers} emulated wafer(s) of {target.mesh_rows} x {target.mesh_cols} PEs "
               f"({target.name})")
    if result.target_changes:
        click.echo("target fields changed from the plan's (--set): " + "; ".join(result.target_changes))
    if result.tokens is not None:
        for i, seq in enumerate(result.tokens.tolist()):
            label = f" (sequence {i})" if len(result.tokens) > 1 else ""
            click.echo(f"generated token ids{label}: " + " ".join(str(t) for t in seq))
    click.echo(format_accounting(result, target.clock_hz))
    if outputs_path:
        write_run_outputs(result, outputs_path)
        click.echo(f"wrote {outputs_path}")
