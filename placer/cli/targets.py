"""``placer targets``: the built-in targets and every value they use, with units."""

from __future__ import annotations

import json

import click

from placer.cli.options import json_option, resolve_target, set_option
from placer.targets import BUILTIN_TARGETS, Target

_ROWS = [
    ("wafers", "wafers available", lambda t: f"{t.wafers}"),
    ("sram_bytes", "SRAM per wafer", lambda t: f"{t.sram_bytes / 1e9:.3f} GB"),
    ("mesh", "PE grid (rows x cols)", lambda t: f"{t.mesh_rows} x {t.mesh_cols} = {t.pes:,} PEs"),
    ("pe_sram_bytes", "SRAM per PE", lambda t: f"{t.pe_sram_bytes / 1024:.0f} KiB"),
    ("clock_hz", "clock", lambda t: f"{t.clock_hz / 1e9:.3f} GHz"),
    ("peak", "dense fp16 peak", lambda t: f"{t.peak_flops / 1e15:.3f} PFLOP/s "
                                          f"({t.flops_per_cycle_per_pe} FLOP/cycle/PE)"),
    ("sram_bandwidth_bytes_per_s", "SRAM bandwidth",
     lambda t: f"{t.sram_bandwidth_bytes_per_s / 1e15:.3f} PB/s"),
    ("link_bytes_per_cycle", "fabric link", lambda t: f"{t.link_bytes_per_cycle} B/cycle/direction"),
    ("cycles_per_hop", "hop latency", lambda t: f"{t.cycles_per_hop} cycle(s)"),
    ("routing_colors", "routing colours", lambda t: f"{t.routing_colors}"),
    ("io_bandwidth_bytes_per_s", "off-wafer I/O", lambda t: f"{t.io_bandwidth_bytes_per_s / 1e9:.1f} GB/s"),
    ("io_latency_s", "I/O hop latency", lambda t: f"{t.io_latency_s * 1e6:.2f} us"),
    ("external_kv_bytes", "external KV store", lambda t: f"{t.external_kv_bytes / 1e12:.3f} TB"),
    ("default_reserve", "default SRAM reserve", lambda t: f"{t.default_reserve * 100:.1f} %"),
    ("overheads", "overheads (fitted)",
     lambda t: f"{t.kernel_overhead_cycles:g} cycles/kernel, "
               f"{t.collective_overhead_cycles:g} cycles/collective, "
               f"{t.host_overhead_s_per_token * 1e6:.3g} us/token host, "
               f"{t.request_overhead_s * 1e3:.3g} ms/request, "
               f"{t.hop_overhead_s * 1e6:.3g} us/hop, "
               f"prefill utilisation {t.prefill_utilisation:.3g}"),
    ("cost_per_hour", "cost",
     lambda t: f"${t.cost_per_hour:,.2f} per system-hour (one wafer, KV node included)" if t.cost_per_hour
     else "not set"),
    ("calibration", "calibration", lambda t: t.calibration or "none (physics only)"),
]


def format_target(t: Target) -> str:
    lines = [f"{t.name}: {t.description}"]
    for _, label, fmt in _ROWS:
        lines.append(f"  {label:<22} {fmt(t)}")
    return "\n".join(lines)


@click.command("targets")
@click.argument("names", nargs=-1)
@set_option
@json_option
def targets_command(names: tuple[str, ...], target_sets: tuple[str, ...], as_json: bool) -> None:
    """List built-in targets (or the named ones / TOML files) with their values and units."""
    targets = [resolve_target(n, target_sets) for n in (names or BUILTIN_TARGETS)]
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in targets], indent=2))
        return
    click.echo("\n\n".join(format_target(t) for t in targets))
