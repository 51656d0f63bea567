"""Unit override files: TOML or JSON mapping node-name/scope globs to unit names.

Reading files is placer's job, not the IR's: this module parses the file into
``placer.ir.passes.group_units.UnitOverride`` rules, which the group-units pass applies.
"""

from __future__ import annotations

import os
from pathlib import Path

from placer.errors import UserError
from placer.ir.passes.group_units import UnitOverride
from placer.validate import load_structured


def load_unit_overrides(path: str | os.PathLike[str]) -> tuple[UnitOverride, ...]:
    """Read a TOML or JSON file mapping node-name/scope globs to unit names.

    Either a top-level table ``{"pattern" = "unit"}`` or the same under a ``[units]`` table.

    Raises:
        placer.errors.UserError: the file is missing, unreadable, or not such a mapping.
    """
    p = Path(path)
    data = load_structured(p, "unit overrides")
    if isinstance(data, dict) and isinstance(data.get("units"), dict):
        data = data["units"]
    if not isinstance(data, dict) or not data:
        raise UserError(f"{p}: expected a non-empty mapping of node-name/scope patterns to unit names")
    rules = []
    for pattern, unit in data.items():
        if not isinstance(unit, str) or not unit.strip() or not pattern.strip():
            raise UserError(f"{p}: pattern {pattern!r} must map to a unit name (a string)")
        rules.append(UnitOverride(pattern, unit, str(p)))
    return tuple(rules)


