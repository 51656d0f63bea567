"""The exit-code contract every fuzz case asserts (developers' guide): exit 0 success, 2 bad input,
3 no feasible placement (1 only for a check/diff regression); for 2 and 3 exactly one line on
stderr; never a traceback; nothing written on failure."""

from __future__ import annotations

import traceback
from pathlib import Path

from click.testing import CliRunner, Result

from placer.cli.main import cli

ALLOWED = {0, 2, 3}


def invoke(args: list[str], out_dir: Path | None = None, allowed: set[int] = ALLOWED) -> Result:
    """Run ``placer ARGS`` in process and assert the contract; returns click's result."""
    result = CliRunner().invoke(cli, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        detail = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"placer {' '.join(args)} raised instead of exiting:\n{detail}")
    code = result.exit_code
    assert code in allowed, f"placer {' '.join(args)} exited {code}; stderr: {result.stderr!r}"
    if code in (2, 3):
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, f"placer {' '.join(args)}: expected one stderr line, got {lines!r}"
        assert "Traceback" not in result.stderr
        if out_dir is not None:
            assert not out_dir.exists() or not any(p.name in ("plan.json", "report.md")
                                                   for p in out_dir.iterdir()), "wrote outputs on failure"
    return result
