"""The labs' command line (`python -m tinyml.labs.<lab>`): options, progress and the summary.

Rendering only; the lab modules hold the logic. The summary tables are the ones `tinyml
deploy` prints (tinyml.cli.deploy), preceded by the lab's accuracy line.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from tinyml.errors import TinyMLError

Progress = Callable[[int, int], None]
StageListener = Callable[[str, str], None]


def lab_argument_parser(module: str, description: str, *, default_out: str, default_epochs: int, default_board: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--out", default=default_out, help=f"output folder (default: {default_out})")
    parser.add_argument("--board", default=default_board, help=f"board profile id (default: {default_board}; see `tinyml boards`)")
    parser.add_argument("--port", default="virtual", help="serial port of a flashed board, or 'virtual' (default) for the virtual board")
    parser.add_argument("--epochs", type=int, default=default_epochs, help=f"training epochs (default: {default_epochs})")
    parser.add_argument("--limit", type=int, default=None, help="validate on at most this many test samples (default: all)")
    parser.add_argument("--force", action="store_true", help="write into --out even if it holds other files")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs and tracebacks")
    return parser


def _configure_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    from tinyml.cli.console import stderr_console

    handler = RichHandler(console=stderr_console(), show_time=False, show_path=False, markup=False, rich_tracebacks=verbose)
    logger = logging.getLogger("tinyml")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def run_lab_command(args: argparse.Namespace, run: Callable[[Progress, StageListener], Any]) -> int:
    """Run a lab with a progress bar per stage; print the summary; return the exit code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

    from tinyml.cli.console import print_error, stderr_console, stdout_console
    from tinyml.cli.deploy import print_lab_summary

    _configure_logging(args.verbose)
    started = time.monotonic()
    bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=stderr_console(), transient=True)
    task: list[Any] = [None]

    def on_stage(stage: str, status: str) -> None:
        if status == "start":
            task[0] = bar.add_task(stage, total=None)
        elif task[0] is not None and status in ("done", "failed"):
            bar.remove_task(task[0])
            task[0] = None

    def progress(done: int, total: int) -> None:
        if task[0] is not None:
            bar.update(task[0], completed=done, total=total)

    from tinyml.validate import ThresholdFailed

    try:
        with bar:
            result = run(progress, on_stage)
    except ThresholdFailed as failed:
        from tinyml.cli.deploy import print_validation_summary

        print_validation_summary(failed.report, stdout_console())
        print_error(failed)
        return failed.exit_code
    except TinyMLError as exc:
        if args.verbose:
            logging.getLogger("tinyml").exception("%s", exc)
        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print_lab_summary(result, stdout_console(), seconds=time.monotonic() - started)
    return 0
