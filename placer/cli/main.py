"""The ``placer`` command: a thin layer over the library. One module per subcommand.

User errors (``placer.errors.PlacerError``) print one line on stderr and exit with their code
(2 bad input, 3 infeasible); click's own usage errors also exit 2.
"""

from __future__ import annotations

import importlib
import sys

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
]


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PlacerError as err:
            message = " ".join(str(err).split("\n")[0].split())
            click.echo(f"placer: error: {message}", err=True)
            sys.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="placer")
def cli() -> None:
    """Place LLM layers and KV cache across wafer-scale engines, predict performance,
    and check the placed program on an emulated core mesh."""


for _module, _attr in _COMMANDS:
    cli.add_command(getattr(importlib.import_module(_module), _attr))


def main() -> None:
    cli(prog_name="placer")
