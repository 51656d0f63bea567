"""Targets: one wafer's description plus how many wafers exist.

Built-in targets are TOML files in this folder (``wse2.toml``, ``wse3.toml``, ``wse-mini.toml``);
a user passes a path to their own TOML file, and every field can be overridden
(``--set clock_hz=9.5e8`` on the CLI, ``Target.with_overrides`` in Python). Units are in the
field names: bytes, hertz, seconds, cycles.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from placer.errors import UserError
from placer.validate import finite_number, integer, parse_toml, read_text, show_int


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    wafers: int                      # how many wafers exist (upper bound on a plan's wafer count)
    sram_bytes: int                  # on-wafer SRAM per wafer
    mesh_rows: int                   # PE grid usable by programs
    mesh_cols: int
    pe_sram_bytes: int               # SRAM per PE
    clock_hz: float
    flops_per_cycle_per_pe: float    # dense fp16/bf16
    sram_bandwidth_bytes_per_s: float
    link_bytes_per_cycle: int        # per direction per neighbour link
    cycles_per_hop: int              # fabric propagation per hop
    routing_colors: int
    io_bandwidth_bytes_per_s: float  # off-wafer I/O per wafer
    io_latency_s: float              # fixed latency of one inter-wafer hop
    external_kv_bytes: int           # external KV store per system (one KVSS node per CS-3; 0 = none)
    default_reserve: float = 0.05    # fraction of SRAM kept for code, buffers, routing tables
    # Overheads the physics leaves out (issue 10; fitted by `placer calibrate`, 0 and
    # utilisation 1 in a `-physics` target, which is what the emulator is compared against):
    kernel_overhead_cycles: float = 0.0      # fixed cycles each kernel (mesh op) of a step costs
    collective_overhead_cycles: float = 0.0  # fixed cycles each grid collective costs
    host_overhead_s_per_token: float = 0.0   # host time per output token (sampling, scheduling)
    request_overhead_s: float = 0.0          # per-request time in TTFT (request handling)
    hop_overhead_s: float = 0.0              # fixed time each inter-wafer hop costs beyond io_latency_s
                                             # (host/driver-mediated synchronisation of the pipeline)
    prefill_utilisation: float = 1.0         # fraction (0, 1] of the mesh GEMM rate prefill reaches
    calibration: str = ""                    # how the overheads were fitted (empty: not fitted)
    cost_per_hour: float = 0.0       # $ per system-hour, KV node included (0 = unknown; min-cost needs it)

    @property
    def pes(self) -> int:
        return self.mesh_rows * self.mesh_cols

    @property
    def peak_flops(self) -> float:
        return self.pes * self.flops_per_cycle_per_pe * self.clock_hz

    @property
    def hop_latency_s(self) -> float:
        """Seconds of one inter-wafer hop before its bytes stream: the link's physical
        ``io_latency_s`` plus the fitted ``hop_overhead_s`` (0 on a ``-physics`` target). Every
        formula that charges a hop uses this, never ``io_latency_s`` alone."""
        return self.io_latency_s + self.hop_overhead_s

    def overheads_description(self) -> str:
        """Which variant this is, for reports: physics only, or the overheads and their origin."""
        values = {name: getattr(self, name) for name in OVERHEAD_FIELDS}
        if not any(values.values()) and self.prefill_utilisation == 1.0:
            return "physics only (every overhead 0, prefill utilisation 1)"
        shown = ", ".join(f"{k} = {v:.6g}" for k, v in values.items() if v)
        if self.prefill_utilisation != 1.0:
            shown += f"{', ' if shown else ''}prefill_utilisation = {self.prefill_utilisation:.6g}"
        return f"overheads {shown}; " + (self.calibration or "not fitted (set by hand)")

    def with_overrides(self, overrides: dict[str, object]) -> Target:
        """A copy with fields replaced; values are converted to the field's type."""
        types = {f.name: f.type for f in fields(self)}
        changes: dict[str, object] = {}
        for key, value in overrides.items():
            if key not in types:
                raise UserError(f"target {self.name!r} has no field {key!r}; "
                                f"fields: {', '.join(types)}")
            changes[key] = _convert(key, str(types[key]), value)
        # The ignore below: changes are fields of several types, each converted to its field's type
        # by _convert; mypy checks the dict's value type (object) against every field.
        out = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        out.validate()
        return out

    def validate(self) -> None:
        """Every number finite and in range, integers integral, sizes within placer's caps."""
        if not self.name.strip():
            raise UserError("target: field name is empty; give the target a name")
        if not self.name.isprintable() or len(self.name) > 200:  # it heads one-line summaries and reports
            raise UserError(f"target: field name {self.name[:60]!r} has a control character (a newline or "
                            f"tab) or is longer than 200 characters; give a short one-line name")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                where = f"target {self.name!r}: field {f.name}"
                if isinstance(v, float) and not math.isfinite(v):
                    raise UserError(f"{where} must be a finite number, got {v}")
                if f.name == "default_reserve":
                    if not 0 <= v < 1:
                        raise UserError(f"target {self.name!r}: default_reserve must be in [0, 1), got {v}")
                elif f.name == "prefill_utilisation":
                    if not 0 < v <= 1:
                        raise UserError(f"target {self.name!r}: prefill_utilisation must be in (0, 1], "
                                        f"got {v}")
                elif f.name in _NON_NEGATIVE or f.name in OVERHEAD_FIELDS:
                    if v < 0:
                        raise UserError(f"target {self.name!r}: {f.name} must be >= 0, got {v}")
                elif v <= 0:
                    raise UserError(f"target {self.name!r}: {f.name} must be > 0, got {v}")
                cap = _CAPS.get(f.name)
                if cap is not None and v > cap:
                    raise UserError(f"{where} is {_show(v)}, above "
                                    f"placer's cap of {cap:,} (placer.targets.target._CAPS); is the value "
                                    f"in the right unit?")
                low, high = _RANGES.get(f.name, (0, math.inf))
                if 0 < v < low or v > high:
                    raise UserError(f"{where} is {_show(v)}, outside placer's range {_show(low)} to "
                                    f"{_show(high)} for it (placer.targets.target._RANGES, far around any "
                                    f"built machine); is the value in the right unit?")

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _show(v: float) -> str:
    return show_int(v) if isinstance(v, int) else f"{v:g}"


def _convert(key: str, type_name: str, value: object, source: str = "") -> object:
    where = f"{source}: field {key!r}" if source else f"target field {key!r}"
    if "int" in type_name or "float" in type_name:
        if isinstance(value, str) and source:  # a file has number syntax; only --set text is parsed
            raise UserError(f"{where} needs a {type_name}, got the string {value!r}; write it without quotes")
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value.lower() for c in ".en") else int(value)
            except ValueError:
                raise UserError(f"{where} needs a {type_name}, got {value!r}") from None
        if "int" in type_name:
            return integer(value, where)
        return finite_number(value, where)
    if not isinstance(value, str):
        raise UserError(f"{where} needs a string, got {value!r}")
    return value


# Fields that may be 0; every other number must be > 0.
_NON_NEGATIVE = {"external_kv_bytes", "io_latency_s", "cost_per_hour"}
# Caps on sizes that placer allocates or loops over (the emulator builds per-PE arrays; the
# solver loops over wafer counts). Far above any built machine: WSE-3 has 762 x 1172 PEs.
_CAPS: dict[str, float] = {"wafers": 4096, "mesh_rows": 16384, "mesh_cols": 16384, "routing_colors": 4096,
                           "cycles_per_hop": 10**6, "link_bytes_per_cycle": 1 << 20}


# Ranges of the other numbers (``low``: the smallest value above 0, for the fields time or memory
# is divided by; 0 keeps the rules above): the solver counts time in 0.1 ns ticks and bytes in
# 64-bit integers, so a clock of 1e-300 Hz or 1e40 bytes of SRAM overflowed it (tracebacks). Each
# range spans many orders of magnitude around WSE-3's value.
_RANGES: dict[str, tuple[float, float]] = {
    "sram_bytes": (1, 2**50), "pe_sram_bytes": (1, 2**40), "clock_hz": (1e6, 1e12),
    "flops_per_cycle_per_pe": (1e-3, 1e6), "sram_bandwidth_bytes_per_s": (1e6, 1e21),
    "io_bandwidth_bytes_per_s": (1e3, 1e18), "prefill_utilisation": (1e-6, 1.0),
    "io_latency_s": (0, 10.0), "external_kv_bytes": (0, 2**60), "kernel_overhead_cycles": (0, 1e9),
    "collective_overhead_cycles": (0, 1e9), "host_overhead_s_per_token": (0, 10.0),
    "request_overhead_s": (0, 1e3), "hop_overhead_s": (0, 10.0), "cost_per_hour": (0, 1e9),
}


# Fields a `-physics` target leaves at their defaults (no overhead); see the class.
OVERHEAD_FIELDS = ("kernel_overhead_cycles", "collective_overhead_cycles", "host_overhead_s_per_token",
                   "request_overhead_s", "hop_overhead_s")

BUILTIN_TARGETS = ("wse2", "wse3", "wse3-physics", "wse3-rented", "wse-mini")


def read_target_toml(name_or_path: str, builtins: tuple[str, ...], kind: str = "target",
                     option: str = "") -> tuple[dict[str, Any], str]:
    """(the parsed TOML, its source label) of a built-in ``kind`` by name (one of ``builtins``,
    shipped in ``placer/targets/``) or of a TOML file by path; ``option`` prefixes the error."""
    if name_or_path in builtins:
        text = resources.files("placer.targets").joinpath(f"{name_or_path}.toml").read_text()
        source = f"built-in {kind} {name_or_path!r}"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"{option}unknown {kind} {name_or_path!r}: not a built-in "
                            f"({', '.join(builtins)}) and no such TOML file")
        text = read_text(path, f"{kind} file")
        source = str(path)
    return parse_toml(text, source), source


def load_target(name_or_path: str, overrides: dict[str, object] | None = None) -> Target:
    """A built-in target by name, or a TOML file by path, with optional field overrides."""
    data, source = read_target_toml(name_or_path, BUILTIN_TARGETS)
    names = {f.name for f in fields(Target)}
    optional = {f.name for f in fields(Target) if f.default is not dataclasses.MISSING}
    missing = sorted(names - set(data) - optional)
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{source}: unknown field(s) {', '.join(unknown)}")
    if missing:
        raise UserError(f"{source}: missing field(s) {', '.join(missing)}")
    # every field of the file converted to its type (a string clock_hz, a TOML date or table, a
    # float wafer count were tracebacks deep in the cost model) and validated, as --set values are
    typed = {f.name: _convert(f.name, str(f.type), data[f.name], source) for f in fields(Target)
             if f.name in data}
    base = Target(**typed)  # type: ignore[arg-type]  # each value converted to its field's type above
    try:
        base.validate()
    except UserError as e:
        if name_or_path in BUILTIN_TARGETS:
            raise
        # a copy of a built-in file keeps its name: the message must say which file is at fault
        raise UserError(f"{source}: {e}") from None
    return base.with_overrides(overrides or {})
