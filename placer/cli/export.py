"""``placer export MODEL -o model.onnx``: an HF folder, config.json or zoo name to an ONNX file
with dynamic batch/seq/past dims and past/present KV, which placer and onnxruntime both run."""

from __future__ import annotations

import click

from placer.progress import progress


@click.command("export")
@click.argument("model")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .onnx file to write (weights go to OUTPUT.data beside it).")
@click.option("--weights", type=click.Choice(["from-dir", "random", "none"]), default="random",
              show_default=True,
              help="from-dir: the HF folder's checkpoint; random: seeded random weights; none: a "
                   "meta-device export whose weights are external references only (full-size models).")
@click.option("--layers", type=click.IntRange(min=1), default=None,
              help="Keep only the first N decoder layers.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --weights random.")
def export_command(model: str, output: str, weights: str, layers: int | None, seed: int) -> None:
    """Export MODEL to ONNX (needs the export extra: torch and transformers)."""
    from placer.export import export_model
    from placer.fileio import check_output_file

    check_output_file(output, "-o/--output")
    with progress(f"exporting {model}"):
        result = export_model(model, output, weights=weights, seed=seed, layers=layers)
    click.echo(f"wrote {result.path} ({result.layers} layers, {result.parameters:,} parameters, "
               f"weights {weights}) in {result.seconds:.1f} s")
