"""User-facing errors. The CLI prints ``str(err)`` on one line and exits with ``exit_code``.

A user's mistake (bad file, bad option, unsupported op) is a ``UserError`` (exit 2); a problem
with no feasible placement is an ``InfeasibleError`` (exit 3). Anything else is a bug in placer
and keeps its traceback.
"""

from __future__ import annotations


class PlacerError(Exception):
    exit_code = 1


class UserError(PlacerError):
    """Bad input: names the file, node, op or option at fault and what to do."""

    exit_code = 2


class InfeasibleError(PlacerError):
    """No placement satisfies the constraints; the message says which binds and what to change."""

    exit_code = 3
