"""Rich consoles shared by the command modules: results to stdout, logs and errors to stderr."""

from __future__ import annotations

import io
import os
import sys
from functools import cache
from typing import TextIO

from rich.console import Console

from tinyml.core.errors import TinyMLError


# Piped into a file or a CI log, rich would assume 80 columns and cut the summary tables.
PIPED_WIDTH = 120


def _width(stream: TextIO) -> int | None:
    if stream.isatty() or "COLUMNS" in os.environ:
        return None  # rich measures the terminal or honours COLUMNS
    return PIPED_WIDTH


def replace_unencodable_output() -> None:
    """Let stdout and stderr write what their encoding cannot hold as '?' instead of raising.

    A Windows console, or output redirected with PYTHONIOENCODING=cp1252 or ascii, cannot
    encode the summary's Δ and µ, a label in another script, or a path with accents; Python's
    default 'strict' handler would end the command with a UnicodeEncodeError. Rich draws its
    tables in ASCII when the encoding is not UTF-8.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="replace")


@cache
def stdout_console() -> Console:
    replace_unencodable_output()
    return Console(highlight=False, width=_width(sys.stdout))


@cache
def stderr_console() -> Console:
    replace_unencodable_output()
    return Console(stderr=True, highlight=False, width=_width(sys.stderr))


def print_error(exc: TinyMLError) -> None:
    """The one line a user sees for a problem they can fix: what is wrong, then what to do."""
    console = stderr_console()
    text = f"error: {exc.problem}"
    if exc.fix:
        text += f". Fix: {exc.fix}"
    console.print(text, style="bold red", markup=False, soft_wrap=True)
