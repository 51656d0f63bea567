"""Progress lines for long work (solves, exports, emulation): shown on an interactive
terminal, silent in CI and when stderr is redirected. Never affects results."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def progress_enabled() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def progress(message: str) -> Iterator[None]:
    """``with progress("solving"):`` prints ``solving ...`` and then the elapsed seconds."""
    if not progress_enabled():
        yield
        return
    start = time.perf_counter()
    sys.stderr.write(f"{message} ...")
    sys.stderr.flush()
    try:
        yield
    finally:
        sys.stderr.write(f" {time.perf_counter() - start:.2f} s\n")
        sys.stderr.flush()


def note(message: str) -> None:
    """One progress line (terminal only)."""
    if progress_enabled():
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
