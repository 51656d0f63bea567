"""Prefill targets: the hardware a disaggregated prefill runs on (``--prefill-on TARGET``).

A target of a second kind, without mesh fields: a machine described by its roofline (peak
FLOP/s, memory bytes and bandwidth), its link to the wafers and the switch hop between them.
Built-in ones are TOML files in this folder named in ``PREFILL_TARGETS`` (``h100x8.toml``: one
8x H100 SXM server, with sources); a user passes a path to their own. They are read like the
wafer targets (``placer.targets.target.load_target``): through ``placer.validate`` (UTF-8,
bounded nesting, finite numbers, integers), every field known and present, every value in range;
a bad file is a ``UserError`` (exit 2) of one line naming the file and the field. The formulas
that use these fields are ``placer.perf.disagg``'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from placer.errors import UserError
from placer.targets.target import read_target_toml
from placer.validate import finite_number, integer

# The built-in prefill targets (TOML files beside this module).
PREFILL_TARGETS = ("h100x8",)


@dataclass(frozen=True)
class PrefillTarget:
    """One prefill machine (units in the field names: FLOP/s, bytes, bytes/s, seconds, $/hour)."""

    name: str
    description: str
    peak_flops: float                   # dense bf16/fp16 FLOP/s of the whole machine
    memory_bytes: int                   # memory holding the weights and the prompt's KV
    memory_bandwidth_bytes_per_s: float
    link_bandwidth_bytes_per_s: float   # the machine's network bandwidth towards the wafers
    hop_latency_s: float                # one switch hop between the machine and the wafers
    utilisation: float = 1.0            # fraction (0, 1] of peak FLOP/s and bandwidth prefill reaches
    cost_per_hour: float = 0.0          # $ per machine-hour (0 = unknown)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(d: dict[str, Any], source: str = "prefill target") -> PrefillTarget:
        """Checked construction from plain data (a TOML file's or a plan's)."""
        names = {f.name for f in fields(PrefillTarget)}
        optional = {f.name for f in fields(PrefillTarget) if f.default is not dataclasses.MISSING}
        unknown, missing = sorted(set(d) - names), sorted(names - set(d) - optional)
        if unknown:
            raise UserError(f"{source}: unknown field(s) {', '.join(unknown)}; fields: {', '.join(names)}")
        if missing:
            raise UserError(f"{source}: missing field(s) {', '.join(missing)}")
        values = {f.name: _checked(f.name, str(f.type), d[f.name], source) for f in fields(PrefillTarget)
                  if f.name in d}
        # The ignore below: each value was checked and converted to its field's type by _checked;
        # mypy checks the dict's value type (object) against every field.
        return PrefillTarget(**values)  # type: ignore[arg-type]


def _checked(name: str, type_name: str, value: object, source: str) -> object:
    """One field's value converted and range-checked (UserError naming ``source`` and the field)."""
    where = f"{source}: field {name}"
    if type_name == "str":
        if not isinstance(value, str):
            raise UserError(f"{where}: expected a string, got {value!r}")
        return value
    number: float = integer(value, where) if type_name == "int" else finite_number(value, where)
    if name == "utilisation":
        if not 0 < number <= 1:
            raise UserError(f"{where}: must be in (0, 1], got {number:g}")
    elif name in _NON_NEGATIVE:
        if number < 0:
            raise UserError(f"{where}: must be >= 0, got {number:g}")
    elif number <= 0:
        raise UserError(f"{where}: must be > 0, got {number:g}")
    return number


# Fields that may be 0; every other number must be > 0.
_NON_NEGATIVE = {"hop_latency_s", "cost_per_hour"}


def load_prefill_target(name_or_path: str) -> PrefillTarget:
    """A built-in prefill target by name (``PREFILL_TARGETS``) or a TOML file by path.

    Raises:
        UserError: an unknown name, an unreadable file, or a bad field (named with the file).
    """
    data, source = read_target_toml(name_or_path, PREFILL_TARGETS, "prefill target", "option --prefill-on: ")
    return PrefillTarget.from_dict(data, source)
