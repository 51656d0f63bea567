"""Targets: one wafer's description plus how many wafers exist.

Built-in targets are TOML files in this folder (``wse2.toml``, ``wse3.toml``, ``wse-mini.toml``);
a user passes a path to their own TOML file, and every field can be overridden
(``--set clock_hz=9.5e8`` on the CLI, ``Target.with_overrides`` in Python). Units are in the
field names: bytes, hertz, seconds, cycles.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from placer.errors import UserError


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
    external_kv_bytes: int           # external KV store capacity (0 = none)
    default_reserve: float = 0.05    # fraction of SRAM kept for code, buffers, routing tables

    @property
    def pes(self) -> int:
        return self.mesh_rows * self.mesh_cols

    @property
    def peak_flops(self) -> float:
        return self.pes * self.flops_per_cycle_per_pe * self.clock_hz

    def with_overrides(self, overrides: dict[str, object]) -> Target:
        """A copy with fields replaced; values are converted to the field's type."""
        types = {f.name: f.type for f in fields(self)}
        changes: dict[str, object] = {}
        for key, value in overrides.items():
            if key not in types:
                raise UserError(f"target {self.name!r} has no field {key!r}; "
                                f"fields: {', '.join(types)}")
            changes[key] = _convert(key, str(types[key]), value)
        out = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        out.validate()
        return out

    def validate(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if f.name == "default_reserve":
                    if not 0 <= v < 1:
                        raise UserError(f"target {self.name!r}: default_reserve must be in [0, 1), got {v}")
                elif f.name in ("external_kv_bytes", "io_latency_s"):
                    if v < 0:
                        raise UserError(f"target {self.name!r}: {f.name} must be >= 0, got {v}")
                elif v <= 0:
                    raise UserError(f"target {self.name!r}: {f.name} must be > 0, got {v}")

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _convert(key: str, type_name: str, value: object) -> object:
    try:
        if "int" in type_name:
            f = float(value)  # type: ignore[arg-type]
            if f != int(f):
                raise ValueError
            return int(f)
        if "float" in type_name:
            return float(value)  # type: ignore[arg-type]
        return str(value)
    except (TypeError, ValueError):
        raise UserError(f"target field {key!r} needs a {type_name}, got {value!r}") from None


BUILTIN_TARGETS = ("wse2", "wse3", "wse-mini")


def load_target(name_or_path: str, overrides: dict[str, object] | None = None) -> Target:
    """A built-in target by name, or a TOML file by path, with optional field overrides."""
    if name_or_path in BUILTIN_TARGETS:
        text = resources.files("placer.targets").joinpath(f"{name_or_path}.toml").read_text()
        source = f"built-in target {name_or_path!r}"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"unknown target {name_or_path!r}: not a built-in "
                            f"({', '.join(BUILTIN_TARGETS)}) and no such TOML file")
        text = path.read_text()
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{source}: not valid TOML ({e})") from None
    names = {f.name for f in fields(Target)}
    missing = sorted(n for n in names - set(data) if n != "default_reserve")
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{source}: unknown field(s) {', '.join(unknown)}")
    if missing:
        raise UserError(f"{source}: missing field(s) {', '.join(missing)}")
    base = Target(**{f.name: data[f.name] for f in fields(Target) if f.name in data})
    base = base.with_overrides({})  # converts and validates
    return base.with_overrides(overrides or {})
