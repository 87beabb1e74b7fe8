"""The labs' command line (`python -m tinyml.labs.<lab>`): options, progress and the summary.

Rendering only; the lab modules hold the logic. The summary tables are the ones `tinyml
deploy` prints (tinyml.cli.deploy), preceded by the lab's accuracy line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any


Progress = Callable[[int, int], None]
StageListener = Callable[[str, str], None]


def lab_argument_parser(module: str, description: str, *, default_out: str, default_epochs: int, default_board: str) -> argparse.ArgumentParser:
    from tinyml.cli import OneLineErrorParser
    from tinyml.cli.options import positive_int

    parser = OneLineErrorParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--out", default=default_out, help=f"output folder (default: {default_out})")
    parser.add_argument("--board", default=default_board, help=f"board profile id (default: {default_board}; see `tinyml boards`)")
    parser.add_argument(
        "--port",
        default="virtual",
        help="serial port of a flashed board; 'emulator' for the emulated board (the firmware on QEMU, library from $TINYML_TFLM_LIBRARY); 'virtual' (default) for the virtual board (the model in TFLM)",
    )
    parser.add_argument("--data", metavar="DIR", help="train on a dataset you recorded with `tinyml capture` instead of the shipped one")
    parser.add_argument("--epochs", type=positive_int, default=default_epochs, help=f"training epochs (default: {default_epochs})")
    parser.add_argument("--limit", type=positive_int, default=None, help="validate on at most this many test samples (default: all)")
    parser.add_argument("--force", action="store_true", help="write into --out even if it holds other files")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs and tracebacks")
    return parser


def lab_main(
    argv: Sequence[str] | None, run_lab: Callable[..., Any], *, module: str, description: str, default_out: str, default_epochs: int, default_board: str
) -> int:
    """A lab's `main`: parse its options, run `run_lab` with them (run_gesture_lab, run_kws_lab, ...), return the exit code."""
    from tinyml.cli.console import replace_unencodable_output

    replace_unencodable_output()
    args = lab_argument_parser(module, description, default_out=default_out, default_epochs=default_epochs, default_board=default_board).parse_args(argv)
    return run_lab_command(
        args,
        lambda progress, on_stage: run_lab(
            args.out,
            epochs=args.epochs,
            board=args.board,
            port=args.port,
            validate_limit=args.limit,
            force=args.force,
            progress=progress,
            on_stage=on_stage,
            dataset=args.data,
        ),
    )


@contextlib.contextmanager
def native_stderr_to(path: Path) -> Iterator[None]:
    """Send what C++ libraries write on fd 2 (TensorFlow's absl logs) to `path`; Python keeps the terminal.

    TensorFlow's native start-up and converter messages ignore TF_CPP_MIN_LOG_LEVEL since it
    moved to absl logging, and would bury the lab's own output. sys.stderr (the logs and the
    progress bar) is re-pointed at a copy of the original terminal descriptor.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, 2)
    os.close(target)
    original = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(original, "encoding", None) or "utf-8", errors="replace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)


def run_lab_command(args: argparse.Namespace, run: Callable[[Progress, StageListener], Any]) -> int:
    """Run a lab with a progress bar per stage; print the summary; return the exit code."""
    from tinyml.cli import configure_logging, run_for_exit_code
    from tinyml.cli.console import stdout_console
    from tinyml.cli.deploy import StageBar, print_lab_summary, print_validation_summary
    from tinyml.validation.report import ThresholdFailed

    configure_logging(args.verbose)
    started = time.monotonic()
    bar = StageBar()
    native_log = Path(tempfile.gettempdir()) / f"tinyml-lab-{os.getpid()}-native.log"
    quiet = contextlib.nullcontext() if args.verbose else native_stderr_to(native_log)

    def run_and_summarise() -> int:
        try:
            with quiet, bar:
                result = run(bar.progress, bar.on_stage)
        except ThresholdFailed as failed:
            print_validation_summary(failed.report, stdout_console())
            raise
        native_log.unlink(missing_ok=True)
        print_lab_summary(result, stdout_console(), seconds=time.monotonic() - started)
        return 0

    try:
        return run_for_exit_code(run_and_summarise, verbose=args.verbose)
    except BaseException:
        if native_log.is_file():
            print(f"TensorFlow's own log of this run: {native_log}", file=sys.stderr)
        raise
