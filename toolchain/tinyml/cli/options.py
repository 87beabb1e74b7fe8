"""What several commands share: the Keras-model and fine-tuning options, and the value types
of numeric options.

Kept as plain text and numbers so that `tinyml --help` imports no stage (and no TensorFlow).

Every numeric option takes one of the types below, so that a negative timeout, a zero count
or a NaN is refused by the parser, in one line, before any work starts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(convert: Callable[[str], float], accept: Callable[[float], bool], what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or not accept(value):
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _number(int, lambda v: v > 0, "a whole number above 0")
non_negative_int = _number(int, lambda v: v >= 0, "a whole number of 0 or more")
finite_float = _number(float, lambda v: True, "a finite number")
positive_float = _number(float, lambda v: v > 0, "a number above 0")
non_negative_float = _number(float, lambda v: v >= 0, "a number of 0 or more")
fraction = _number(float, lambda v: 0 <= v <= 1, "a fraction from 0 to 1")
probability = _number(float, lambda v: 0 <= v < 1, "a probability from 0 up to (not including) 1")

# The optimize stage's fine-tuning defaults (tinyml.optimize.tfmot DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE).
EPOCHS = 3
BATCH_SIZE = 32


def add_keras_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="trained Keras model (.keras or .h5; Keras 3 or tf_keras)")


def add_fine_tuning(parser: argparse.ArgumentParser, *, epochs_note: str = "") -> None:
    """--epochs and --batch-size; `epochs_note` is added to the epochs' help after the default."""
    parser.add_argument("--epochs", type=positive_int, default=EPOCHS, metavar="E", help=f"fine-tuning epochs per technique (default {EPOCHS}{epochs_note})")
    parser.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE, metavar="B", help=f"fine-tuning batch size (default {BATCH_SIZE})")


def add_board(parser: argparse.ArgumentParser) -> None:
    """--board: quantize for that board's TFLM library (tinyml.firmware.boards.quantize_options)."""
    parser.add_argument(
        "--board",
        metavar="ID",
        help="quantize for this board's TFLM library (e.g. per-tensor Dense weights where it lacks per-channel FULLY_CONNECTED)",
    )

