"""Rich consoles shared by the command modules: results to stdout, logs and errors to stderr."""

from __future__ import annotations

from functools import cache

from rich.console import Console

from tinyml.errors import TinyMLError


@cache
def stdout_console() -> Console:
    return Console(highlight=False)


@cache
def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_error(exc: TinyMLError) -> None:
    """The one line a user sees for a problem they can fix: what is wrong, then what to do."""
    console = stderr_console()
    text = f"error: {exc.problem}"
    if exc.fix:
        text += f". Fix: {exc.fix}"
    console.print(text, style="bold red", markup=False, soft_wrap=True)
