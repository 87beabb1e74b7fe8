"""Float vs int8 for each lab: accuracy, model bytes, arena, MACs, latency, front-end time.

    .venv/bin/python bench/labs.py            # both labs at full size (~3 min on 2 cores)
    .venv/bin/python bench/labs.py --quick    # reduced size, as the tests run them

Latency is the TFLM runtime on this host (what the virtual board runs), median of repeated
invocations; a Cortex-M4 at 64 MHz is one to two orders of magnitude slower. Front-end time
is per model input: numpy on the host, and the plain C++ the firmware runs, compiled on the
host with g++ -O2 (an IMU window is a copy and a scale; a log-mel second is 49 FFT frames).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def float_tflite(keras_path: Path) -> bytes:
    """The float32 TFLite model of a saved tf_keras model (the baseline for size and arena)."""
    import tensorflow as tf
    import tf_keras

    model = tf_keras.models.load_model(keras_path)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(model, tmp)
        return tf.lite.TFLiteConverter.from_saved_model(tmp).convert()


def tflm_latency_us(model_bytes: bytes, x: np.ndarray, repeats: int = 200) -> float:
    from tinyml.model.tflm import TflmRunner

    runner = TflmRunner(model_bytes)
    sample = np.asarray(x[0])
    runner.invoke(sample)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        runner.invoke(sample)
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def per_call_us(fn, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) * 1e6 / repeats


IMU_TIMER = r"""
#include <chrono>
#include <stdio.h>
#include "imu_window.h"
int main() {
  static tinyml::ImuWindow window;
  static int8_t input[tinyml::imu::kWindowSamples * tinyml::imu::kChannels];
  float raw[tinyml::imu::kChannels] = {0.1f, -0.9f, 0.2f, 30.0f, -12.0f, 5.0f};
  const int windows = 20000;
  long ready = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < windows * (int)tinyml::imu::kStrideSamples; ++i) {
    raw[0] += 0.001f;
    if (window.push(raw)) { window.quantize_window(input, 0.0165f, 14); ++ready; }
  }
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  printf("%f\n", us / (ready ? ready : 1));
  return input[0] == 127;
}
"""

LOGMEL_TIMER = r"""
#include <chrono>
#include <stdio.h>
#include "logmel.h"
int main() {
  static int16_t pcm[tinyml::logmel::kClipSamples];
  for (size_t i = 0; i < tinyml::logmel::kClipSamples; ++i) pcm[i] = (int16_t)((i * 7919) % 20000 - 10000);
  static tinyml::LogMelFrontEnd front_end;
  static float frame[tinyml::logmel::kMelBins];
  const int clips = 50;
  float sink = 0.0f;
  auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < clips; ++c) {
    for (size_t f = 0; f < tinyml::logmel::kFrameCount; ++f) {
      front_end.compute_frame(&pcm[f * tinyml::logmel::kHopSamples], frame);
      sink += frame[0];
    }
  }
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  printf("%f\n", us / clips);
  return sink == 12345.0f;
}
"""


def cpp_front_end_us(app: str, context: dict, main_source: str, sources: tuple[str, ...]) -> float | None:
    from tinyml.firmware.apps import render_plain_sources
    from tinyml.core.tools import run

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        render_plain_sources(app, context, work)
        (work / "main.cpp").write_text(main_source)
        exe = work / "timer"
        build = run(["g++", "-std=gnu++14", "-O2", "-o", str(exe), str(work / "main.cpp"), *(str(work / s) for s in sources)])
        if build.returncode != 0:
            print(build.stdout, file=sys.stderr)
            return None
        return float(run([str(exe)]).stdout.strip())


def bench(lab, numpy_front_end_us: float, cpp_us: float | None) -> list[list[str]]:
    from tinyml.core.data import load_dataset
    from tinyml.model.tflm import measure_arena

    quantize = lab.deploy.stage("quantize").facts
    inspect = lab.deploy.stage("inspect").facts
    test = load_dataset(lab.out_dir / "test.npz")
    int8_bytes = (lab.out_dir / "deploy" / "model_int8.tflite").read_bytes()
    float_bytes = float_tflite(lab.out_dir / "model_float.h5")
    from tinyml.model.modelfile import read_model
    from tinyml.model.quantization import quantize_input

    x_int8 = quantize_input(test.x[:1], read_model(int8_bytes).inputs[0])
    rows = []
    for kind, accuracy, model_bytes, x in (
        ("float32", quantize["float_accuracy"], float_bytes, test.x[:1].astype(np.float32)),
        ("int8", quantize["int8_accuracy"], int8_bytes, x_int8),
    ):
        rows.append(
            [
                "kws" if lab.name == "keyword_spotting" else lab.name,
                kind,
                f"{accuracy * 100:.1f}%",
                f"{len(model_bytes):,}",
                f"{measure_arena(model_bytes):,}",
                f"{inspect['macs']:,}",
                f"{tflm_latency_us(model_bytes, x):.0f}",
                f"{numpy_front_end_us:.1f}",
                f"{cpp_us:.1f}" if cpp_us is not None else "-",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced-size labs, as in the tests")
    parser.add_argument("--out", default=None, help="folder for the lab runs (default: a temporary folder)")
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from tinyml.features.imu import ImuWindowSpec
    from tinyml.features.logmel import LogMelSpec
    from tinyml.labs.gesture import run_gesture_lab
    from tinyml.labs.keyword_spotting import run_kws_lab
    from tinyml.labs.console import native_stderr_to
    from tinyml.labs.speech import SpeechSettings

    out = Path(args.out or tempfile.mkdtemp(prefix="tinyml-bench-labs-"))
    imu = ImuWindowSpec(stride_samples=50) if args.quick else ImuWindowSpec()
    out.mkdir(parents=True, exist_ok=True)
    with native_stderr_to(out / "tensorflow.log"):  # TensorFlow's absl chatter, not the table
        gesture = run_gesture_lab(out / "gesture", spec=imu, force=True, validate_limit=200, **({"epochs": 8} if args.quick else {}))
        kws = run_kws_lab(out / "kws", force=True, **({"epochs": 25, "settings": SpeechSettings(speakers=16)} if args.quick else {}))

        recording = np.random.default_rng(0).normal(size=(imu.window_samples * 50, 6)).astype(np.float32)
        imu_numpy = per_call_us(lambda: imu.windows(recording), 20) / len(imu.window_starts(recording.shape[0]))
        imu_cpp = cpp_front_end_us("gesture", {"imu": imu.template_context()}, IMU_TIMER, ("imu_window.cpp",))
        logmel = LogMelSpec()
        clip = (np.random.default_rng(1).normal(0, 3000, logmel.clip_samples)).astype(np.int16)
        logmel_numpy = per_call_us(lambda: logmel.features(clip), 50)
        logmel_cpp = cpp_front_end_us("kws", {"logmel": logmel.template_context()}, LOGMEL_TIMER, ("logmel.cpp", "logmel_tables.cpp"))
        rows = bench(gesture, imu_numpy, imu_cpp) + bench(kws, logmel_numpy, logmel_cpp)

    table = Table(title="labs: float vs int8; latency: TFLM on this host (the virtual board); front end: per model input")
    for column in ("lab", "model", "accuracy", "model B", "arena B", "MACs", "latency us", "numpy front us", "C++ front us"):
        table.add_column(column, justify="left" if column in ("lab", "model") else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)
    print(f"lab outputs in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
