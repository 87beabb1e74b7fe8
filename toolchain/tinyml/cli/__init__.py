"""The `tinyml` command line: argument parsing and rendering only, no logic.

Each command lives in its own module in this package with two functions:
`register(subparsers)` adds its parser, and the parser's `run(args) -> int` calls the Python
API. Command modules import nothing heavy at module level, so `tinyml --help` and the commands
that need no TensorFlow start fast.

May import: everything except labs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from tinyml import __version__
from tinyml.core.errors import TinyMLError

# (module in tinyml.cli, one-line summary shown by `tinyml --help`), in pipeline order.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("optimize", "prune, cluster and/or quantization-aware train a Keras model with TFMOT, then quantize it to int8"),
    ("compare", "build and measure optimization variants: accuracy, plain/gzip/TFLM-LUT bytes, sparsity, arena, latency"),
    ("quantize", "convert a trained Keras model to a verified full-integer int8 .tflite"),
    ("inspect", "show a .tflite model's ops, TFLM support, exact tensor arena and fit on a board"),
    ("convert", "write a .tflite model as model_data.h/.cc (C array, tensor facts, labels)"),
    ("render", "render a PlatformIO project of TFLM firmware for a board and a model"),
    ("flash", "build a rendered project and upload it to the board (PlatformIO)"),
    ("boards", "list board profiles, show one, or prepare one for offline builds"),
    ("virtual_board", "serve the firmware's protocol on a pseudo-terminal, running the model on TFLM (not the firmware)"),
    ("emulate", "build a rendered project against the board's TFLM library and run it on an emulated Cortex-M4 (QEMU)"),
    ("capture", "record takes of a board's IMU or microphone (capture firmware) into a dataset folder"),
    ("dataset", "look at a recorded dataset: takes per label and per student, durations, clipping"),
    ("validate", "compare a board's outputs with the host's over serial: metrics, report, exit code for CI"),
    ("monitor", "show a board's live predictions and its INFO, readably"),
    ("deploy", "quantize, inspect, render, flash (or a virtual board) and validate in one resumable run"),
    ("rig", "many boards at once: discover them, validate them all in parallel, report on the results store"),
)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (the problem and where the help is), exit code 2.

    argparse's own error prints the whole usage first, which buries the one line that matters.
    Sub-command parsers are made of the same class, so every command behaves so.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}. Fix: see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="tinyml",
        description="From a trained Keras model to validated TensorFlow Lite Micro firmware on a microcontroller.",
        epilog="Run `tinyml COMMAND --help` for a command's options. Exit codes: 0 ok, 2 bad input, "
        "3 model does not fit the board or TFLM, 4 external tool failed, 5 board or serial link failed, "
        "6 validation threshold failed, 1 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"tinyml {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs and tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="show only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module_name, summary in COMMANDS:
        module = importlib.import_module(f"tinyml.cli.{module_name}")
        module.register(sub, summary)
    return parser


def configure_logging(verbose: bool, quiet: bool = False) -> None:
    """Render the library's `tinyml` logger with rich on stderr (also used by the labs' entry points)."""
    from rich.logging import RichHandler

    from tinyml.cli.console import stderr_console

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(console=stderr_console(), show_time=False, show_path=False, markup=False, rich_tracebacks=verbose)
    logger = logging.getLogger("tinyml")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    # Python warnings (numpy's RuntimeWarnings, libraries' deprecations) are about the code, not
    # the user's input: they become debug log lines, shown with --verbose only.
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.handlers[:] = [handler]
    warnings_logger.setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    warnings_logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tinyml` command; returns the exit code (see tinyml.core.errors)."""
    from tinyml.cli.console import replace_unencodable_output

    replace_unencodable_output()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    configure_logging(args.verbose, args.quiet)
    return run_for_exit_code(lambda: args.run(args), verbose=args.verbose)


def run_for_exit_code(action: Callable[[], int | None], *, verbose: bool) -> int:
    """Run `action` and return the exit code (see tinyml.core.errors); also the labs' entry points.

    A TinyMLError is one line on stderr, the problem and the fix (its traceback goes to the log
    with `verbose`), and its class's exit code; Ctrl-C is 130. Anything else is a bug: it
    propagates, with its traceback.
    """
    try:
        return int(action() or 0)
    except TinyMLError as exc:
        if verbose:
            logging.getLogger("tinyml").exception("%s", exc)
        from tinyml.cli.console import print_error

        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    sys.exit(main())
