"""The ``placer`` command: a thin layer over the library. One module per subcommand.

User errors (``placer.errors.PlacerError``) print one line on stderr and exit with their code
(2 bad input, 3 infeasible); click's own usage errors also exit 2. With ``--json`` anywhere on
the command line, stdout also gets the error as JSON, ``{"error": "...", "exit": N}``, so that
stdout holds only JSON.
"""

from __future__ import annotations

import importlib
import json
import sys
import warnings
from typing import NoReturn

import click

from placer import __version__
from placer.errors import PlacerError

# (module, attribute) of each subcommand; add one line per new subcommand.
_COMMANDS = [
    ("placer.cli.compile", "compile_command"),
    ("placer.cli.inspect", "inspect_command"),
    ("placer.cli.targets", "targets_command"),
    ("placer.cli.zoo", "zoo_command"),
    ("placer.cli.run", "run_command"),
    ("placer.cli.calibrate", "calibrate_command"),
    ("placer.cli.diff", "diff_command"),
    ("placer.cli.check", "check_command"),
    ("placer.cli.sweep", "sweep_command"),
    ("placer.cli.export", "export_command"),
]


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """placer's own warnings as one line on stderr (``placer: warning: ...``); others as Python
    prints them."""
    from placer._warnings import PlacerWarning

    if issubclass(category, PlacerWarning):
        click.echo(f"placer: warning: {' '.join(str(message).split())}", err=True)
    else:
        _DEFAULT_SHOW(message, category, filename, lineno, file, line)


_DEFAULT_SHOW = warnings.showwarning


def _fail(message: str, code: int, as_json: bool) -> NoReturn:
    """One line on stderr; with --json also ``{"error", "exit"}`` on stdout. Exits."""
    click.echo(f"placer: error: {message}", err=True)
    if as_json:
        click.echo(json.dumps({"error": message, "exit": code}))
    sys.exit(code)


class _Group(click.Group):
    def main(self, args=None, prog_name=None, complete_var=None,
             standalone_mode=True, **extra):
        """click's own usage errors (a bad option value, a missing argument) as one line too."""
        self.as_json = "--json" in (sys.argv[1:] if args is None else list(args))
        shown, warnings.showwarning = warnings.showwarning, _show_warning
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.UsageError as err:
            where = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
            _fail(" ".join(err.format_message().split()) + where, 2, self.as_json)
        except click.exceptions.Abort:
            click.echo("placer: aborted", err=True)
            sys.exit(1)
        except click.exceptions.ClickException as err:
            _fail(" ".join(err.format_message().split()), err.exit_code, self.as_json)
        finally:
            warnings.showwarning = shown
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PlacerError as err:
            _fail(" ".join(str(err).split("\n")[0].split()), err.exit_code, getattr(self, "as_json", False))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="placer")
def cli() -> None:
    """Place LLM layers and KV cache across wafer-scale engines, predict performance,
    and check the placed program on an emulated core mesh."""


for _module, _attr in _COMMANDS:
    cli.add_command(getattr(importlib.import_module(_module), _attr))


def main() -> None:
    cli(prog_name="placer")
