"""Terminal output through rich: tables and Markdown rendered on a terminal, plain text otherwise
(a pipe, a file, ``$GITHUB_STEP_SUMMARY``), so redirected output stays machine-readable."""

from __future__ import annotations

import sys

import click


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def echo_markdown(text: str) -> None:
    """Markdown rendered by rich on a terminal, the Markdown source otherwise."""
    if stdout_is_terminal():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(text))
    else:
        click.echo(text, nl=False)
