"""``placer run --json``: the run's accounting as plain data (what ``format_accounting`` prints)."""

from __future__ import annotations

from typing import Any

import click


def _stats(s: Any, steps: int) -> dict[str, int]:
    return {"calls": s.calls // steps, "cycles": s.cycles // steps, "hops": s.hops // steps,
            "link_bytes": s.link_bytes // steps, "peak_pe_bytes": s.peak_pe_bytes}


def run_result_dict(model: str, result: Any, target: Any) -> dict[str, Any]:
    """Per decode token (means over the steps): cycles, hops and link bytes per wafer and kernel;
    the prefill; I/O; emulated and predicted seconds per token; the generated token ids."""
    import numpy as np

    steps = max(len(result.decode), 1)
    obs = result.decode_stats
    wafers = {}
    for wafer, total in sorted(obs.per_wafer().items()):
        wafers[wafer] = {**_stats(total, steps), "peak_pe_bytes": result.peak_pe_bytes.get(wafer, 0),
                         "kernels": {k: _stats(s, steps) for k, s in obs.per_kernel(wafer).items()}}
    emu, pred = result.emulated_step_s, result.predicted_step_s
    return {
        "model": model, "target": target.name, "wafers": result.wafers,
        "mesh": [target.mesh_rows, target.mesh_cols],
        "tokens": None if result.tokens is None else result.tokens.tolist(),
        "prefill": {"cycles": int(sum(result.prefill.cycles.values())), "seconds": result.prefill.seconds,
                    "io_bytes": result.prefill.io_bytes},
        "decode_steps": len(result.decode),
        "micro_batches": result.micro_batches,
        "micro_batch_exits_cycles": {w: list(t) for w, t in sorted(result.decode[-1].in_flight.items())}
        if result.decode else {},
        "decode_per_token": wafers,
        "io_bytes_per_token": float(np.mean([s.io_bytes for s in result.decode] or [0])),
        "io_seconds_per_token": float(np.mean([s.io_seconds for s in result.decode] or [0.0])),
        "emulated_seconds_per_token": emu,
        "predicted_seconds_per_token": pred,
        "emulated_over_predicted": emu / pred if emu and pred else None,
    }


def echo_run_json(model: str, result: Any, target: Any, outputs_path: str | None) -> None:
    """Print the run as one JSON object; write ``--outputs`` as the text mode does (keys: output
    names, and ``tokens`` when decoding)."""
    import json

    from placer.runner import write_run_outputs

    click.echo(json.dumps(run_result_dict(model, result, target), sort_keys=True))
    if outputs_path:
        write_run_outputs(result, outputs_path)
