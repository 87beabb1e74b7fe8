"""What several commands share: the Keras-model and fine-tuning options, and quieting TensorFlow.

Kept as plain text and numbers so that `tinyml --help` imports no stage (and no TensorFlow).
"""

from __future__ import annotations

import argparse
import os

# The optimize stage's fine-tuning defaults (tinyml.optimize.tfmot DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE).
EPOCHS = 3
BATCH_SIZE = 32


def add_keras_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="trained Keras model (.keras or .h5; Keras 3 or tf_keras)")


def add_fine_tuning(parser: argparse.ArgumentParser, *, epochs_note: str = "") -> None:
    """--epochs and --batch-size; `epochs_note` is added to the epochs' help after the default."""
    parser.add_argument("--epochs", type=int, default=EPOCHS, metavar="E", help=f"fine-tuning epochs per technique (default {EPOCHS}{epochs_note})")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, metavar="B", help=f"fine-tuning batch size (default {BATCH_SIZE})")


def add_board(parser: argparse.ArgumentParser) -> None:
    """--board: quantize for that board's TFLM library (tinyml.firmware.boards.quantize_options)."""
    parser.add_argument(
        "--board",
        metavar="ID",
        help="quantize for this board's TFLM library (e.g. per-tensor Dense weights where it lacks per-channel FULLY_CONNECTED)",
    )


def quiet_tensorflow(args: argparse.Namespace) -> None:
    """TensorFlow's C++ start-up chatter is not for this audience; --verbose keeps it."""
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
