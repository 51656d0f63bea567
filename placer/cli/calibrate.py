"""``placer calibrate POINTS.toml --target wse3 -o calibrated.toml``: fit a target's overheads."""

from __future__ import annotations

import json

import click

from placer.cli.options import json_option, resolve_target, set_option
from placer.progress import progress


@click.command("calibrate")
@click.argument("points", type=click.Path(dir_okay=False))
@click.option("--target", "target_name", default="wse3", show_default=True,
              help="Target whose physics is calibrated (a built-in or a TOML file); its overheads are "
                   "reset to 0 before the fit.")
@set_option
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Target TOML to write (atomically).")
@click.option("--name", default=None, help="Name of the written target (default: the output file's stem).")
@click.option("--fit", "fit_names", default=None, metavar="NAME,...",
              help="Overheads to consider (default: all; only those the points identify are fitted).")
@click.option("--time-limit", default=10.0, show_default=True, help="CP-SAT deterministic seconds per solve.")
@json_option
def calibrate_command(points: str, target_name: str, target_sets: tuple[str, ...], output: str,
                      name: str | None, fit_names: str | None, time_limit: float, as_json: bool) -> None:
    """Fit the overhead fields of a target to POINTS' calibration points by least squares on
    log ratios (every constant >= 0); print which constants the points identify and why, each
    point's predicted / measured ratio before and after, and a leave-one-out ratio per point;
    write the calibrated target."""
    # Errors go through placer.cli.main (one stderr line, and the JSON document under --json).
    _run(points, target_name, target_sets, output, name, fit_names, time_limit, as_json)


def _run(points: str, target_name: str, target_sets: tuple[str, ...], output: str, name: str | None,
         fit_names: str | None, time_limit: float, as_json: bool) -> None:
    from placer.calibrate import (
        PointPredictor,
        calibrate,
        calibration_json,
        render_calibration,
        target_toml,
    )
    from placer.calibrate_points import load_points
    from placer.errors import UserError
    from placer.fileio import check_output_file, write_atomic
    from placer.options import MAX_TIME_LIMIT_S
    from placer.validate import number_in_range

    number_in_range(time_limit, "option --time-limit", low=0.0, low_open=True, high=MAX_TIME_LIMIT_S)
    candidates = [n.strip() for n in fit_names.split(",") if n.strip()] if fit_names is not None else None
    if name is not None and not name.strip():
        raise UserError("option --name: empty; give the written target's name, or leave --name out to use "
                        "the output file's stem")
    if candidates is not None and not candidates:
        raise UserError(f"option --fit: empty list ({fit_names!r}); give overhead names separated by commas, "
                        "or leave --fit out to fit the default ones")
    point_set = load_points(points)
    base = resolve_target(target_name, target_sets)
    out = check_output_file(output, "-o/--output")
    target_name_out = name or out.stem
    command = f"placer calibrate {points} --target {target_name} -o {output}" + \
        (f" --fit {fit_names}" if fit_names else "") + (f" --name {name}" if name else "")
    with progress(f"calibrating {base.name} to {points}"):
        result = calibrate(point_set, base, name=target_name_out, candidates=candidates, command=command,
                           predictor=PointPredictor(point_set, base, time_limit=time_limit))
    header = [f"Written by placer calibrate: {result.target.calibration}.",
              f"The physics-only variant ({base.name} with its overheads reset) has every overhead 0 "
              f"and prefill_utilisation 1."]
    write_atomic(out, target_toml(result.target, header))
    if as_json:
        click.echo(json.dumps({**calibration_json(result), "output": str(out)}, indent=2, sort_keys=True))
    else:
        click.echo(render_calibration(result))
        click.echo(f"\nwrote {out} (target {result.target.name!r})")
