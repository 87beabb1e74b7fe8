"""Quantize and inspect the test models and print what it costs and gives.

For each model of tests/modelzoo.py (dense, Conv2D, Conv1D, depthwise), trained briefly on a
synthetic pattern task: float and int8 size and their ratio, float and int8 accuracy on the same
held-out samples, the exact TFLM arena and the firmware arena, the wall time of
`quantize_model` and `inspect_model`, and how often TFLM and the TFLite reference differ on
1,000 held-out inputs.

    .venv/bin/python bench/quantize.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np  # noqa: E402
from modelzoo import INPUT_SHAPES, build_keras_model  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tinyml.core.data import Dataset  # noqa: E402
from tinyml.model.inspect import inspect_model  # noqa: E402
from tinyml.model.quantization import quantize_input  # noqa: E402
from tinyml.model.quantize import quantize_model  # noqa: E402

N_CLASSES = 4
PARITY_INPUTS = 1000


def pattern_task(kind: str, count: int, seed: int) -> Dataset:
    """Each class is a fixed random pattern seen through uniform noise (as in tests/test_quantize.py)."""
    rng = np.random.default_rng(seed)
    shape = INPUT_SHAPES[kind]
    patterns = np.random.default_rng(1234).uniform(-1.0, 1.0, size=(N_CLASSES, *shape))
    y = rng.integers(0, N_CLASSES, size=count)
    x = 0.5 * patterns[y] + 0.5 * rng.uniform(-1.0, 1.0, size=(count, *shape))
    return Dataset(x.astype(np.float32), y)


def parity(tflite_bytes: bytes, samples: np.ndarray, input_facts) -> tuple[int, int]:
    """(inputs where TFLM and the TFLite reference differ anywhere, largest difference in LSB)."""
    from tinyml.model.reference import ReferenceInterpreter
    from tinyml.model.tflm import TflmRunner

    tflm, reference = TflmRunner(tflite_bytes), ReferenceInterpreter(tflite_bytes)
    worst, differing = 0, 0
    for q in quantize_input(samples, input_facts):
        diff = int(np.max(np.abs(tflm.invoke(q).astype(int) - reference.invoke(q).astype(int))))
        differing += diff > 0
        worst = max(worst, diff)
    return differing, worst


def main() -> int:
    import keras

    table = Table(title="tinyml quantize + inspect on the test models")
    for column in ("model", "float B", "int8 B", "ratio", "float acc", "int8 acc", "arena B", "firmware arena B", "quantize s", "inspect s", "TFLM != ref"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for kind in INPUT_SHAPES:
        model = build_keras_model(kind, N_CLASSES)
        train = pattern_task(kind, 512, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        model.fit(train.x, train.y, epochs=6, batch_size=32, verbose=0)
        held_out = pattern_task(kind, PARITY_INPUTS, seed=2)

        start = time.perf_counter()
        result = quantize_model(model, pattern_task(kind, 200, seed=1), eval_data=held_out.take(200))
        quantize_seconds = time.perf_counter() - start
        start = time.perf_counter()
        report = inspect_model(result.tflite_bytes)
        inspect_seconds = time.perf_counter() - start
        differing, worst = parity(result.tflite_bytes, held_out.x, result.input)
        table.add_row(
            kind,
            f"{result.float_size_bytes:,}",
            f"{result.int8_size_bytes:,}",
            f"{result.size_ratio:.2f}x",
            f"{result.float_accuracy:.1%}",
            f"{result.int8_accuracy:.1%}",
            f"{report.arena_bytes:,}",
            f"{report.firmware_arena_bytes:,}",
            f"{quantize_seconds:.1f}",
            f"{inspect_seconds:.1f}",
            f"{differing}/{PARITY_INPUTS} (max {worst} LSB)",
        )
    console = Console(width=160)  # a table for logs and CI output, not squeezed to 80 columns
    console.print(table)
    console.print(
        "quantize s: float + int8 conversion and evaluation on 200 samples (TensorFlow already loaded). "
        "inspect s: facts plus the exact arena bisection in the TFLM runtime. "
        "TFLM != ref: held-out inputs where TFLM and the TFLite reference differ in any output element. "
        "These models have a few hundred weights, so the flatbuffer's fixed overhead (tensor names, per-channel "
        "scales, metadata) dominates and the ratio stays near 1; the weights themselves shrink 4x."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
