"""Time `tinyml convert` on int8 models of about 10 KiB, 100 KiB and 1 MiB, beside `xxd -i`.

Run: .venv/bin/python bench/convert.py   (prints a table; the models are built once in a temp folder)
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tinyml.firmware.convert import convert_model
from tinyml.core.tools import run

# Dense layers whose int8 weights make a model of about the target size.
TARGETS = {"10 KiB": (96, 96), "100 KiB": (320, 320), "1 MiB": (1024, 1024)}
REPEATS = 5


def build_model(width: int, units: int, path: Path) -> Path:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(units, activation="relu"), keras.layers.Dense(4)])
    calibration = np.random.default_rng(0).uniform(-1, 1, (16, width)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def best_of(fn, repeats: int = REPEATS) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-convert-"))
    xxd = shutil.which("xxd")
    rows = []
    try:
        for label, (width, units) in TARGETS.items():
            model = build_model(width, units, work / f"model_{width}.tflite")
            out = work / f"out_{width}"
            ours = best_of(lambda: convert_model(model, out, force=True))
            theirs = best_of(lambda: run([xxd, "-i", str(model), str(work / "xxd.cc")])) if xxd else None
            rows.append((label, model.stat().st_size, ours, theirs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'model':>8} {'bytes':>10} {'tinyml convert min/median (ms)':>32} {'xxd -i min/median (ms)':>26}")
    for label, size, ours, theirs in rows:
        xxd_text = f"{theirs[0] * 1e3:10.1f} / {theirs[1] * 1e3:7.1f}" if theirs else "xxd not installed".rjust(20)
        print(f"{label:>8} {size:>10} {ours[0] * 1e3:21.1f} / {ours[1] * 1e3:7.1f} {xxd_text:>26}")
    print(f"({REPEATS} runs each; tinyml convert parses the model, writes model_data.h/.cc with tensor facts and labels; "
          "xxd -i only dumps bytes, through a subprocess)")


if __name__ == "__main__":
    main()
