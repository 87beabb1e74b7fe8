"""Log-mel front end: numpy (training) and the board's C++ agree within the stated tolerance."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tool

from tinyml.core.errors import InputError
from tinyml.firmware.apps import render_plain_sources
from tinyml.features.logmel import PARITY_TOLERANCE, LogMelSpec

# Reads int16 PCM from argv[1]; writes the float features of every hop (argv[2]) and, once the
# window is full, the int8 model input for scale argv[3], zero point argv[4] (argv[5]).
LOGMEL_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "logmel.h"

int main(int argc, char** argv) {
  using namespace tinyml;
  if (argc != 6) return 2;
  static int16_t pcm[1 << 20];
  FILE* in = fopen(argv[1], "rb");
  if (!in) return 3;
  const size_t n = fread(pcm, sizeof(int16_t), sizeof(pcm) / sizeof(int16_t), in);
  fclose(in);
  static LogMelFrontEnd front_end;
  static FeatureWindow window;
  static float frame[logmel::kMelBins];
  static int8_t input[logmel::kFrameCount * logmel::kMelBins];
  FILE* features = fopen(argv[2], "wb");
  for (size_t start = 0; start + logmel::kWindowSamples <= n; start += logmel::kHopSamples) {
    front_end.compute_frame(&pcm[start], frame);
    window.push_frame(frame);
    fwrite(frame, sizeof(float), logmel::kMelBins, features);
  }
  fclose(features);
  if (window.full()) {
    window.quantize_window(input, strtof(argv[3], nullptr), static_cast<int32_t>(strtol(argv[4], nullptr, 10)));
    FILE* out = fopen(argv[5], "wb");
    fwrite(input, 1, sizeof(input), out);
    fclose(out);
  }
  return 0;
}
"""

SPEC = LogMelSpec()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gxx = require_tool("g++")
    build = tmp_path_factory.mktemp("logmel_harness")
    render_plain_sources("kws", {"logmel": SPEC.template_context()}, build)
    (build / "main.cpp").write_text(LOGMEL_HARNESS)
    exe = build / "logmel_harness"
    subprocess.run(
        [gxx, "-std=gnu++14", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(build / "main.cpp"), str(build / "logmel.cpp"), str(build / "logmel_tables.cpp")],
        check=True,
        capture_output=True,
    )
    return exe


def run_cpp_features(harness: Path, pcm: np.ndarray, work: Path) -> np.ndarray:
    """The C++ front end's frames for `pcm` (int16): (frames, mel_bins) float32."""
    (work / "pcm.bin").write_bytes(np.asarray(pcm, dtype="<i2").tobytes())
    subprocess.run([str(harness), str(work / "pcm.bin"), str(work / "features.bin"), "0.1", "0", str(work / "input.bin")], check=True)
    return np.fromfile(work / "features.bin", dtype="<f4").reshape(-1, SPEC.mel_bins)


def _test_audio(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(SPEC.clip_samples) / SPEC.sample_rate_hz
    chirp = np.sin(2 * np.pi * (200 + 3000 * t) * t) * np.hanning(t.size)
    signal = 0.4 * chirp + rng.normal(0, 0.02, t.size)
    return np.clip(signal * 32767, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("seed", [0, 1])
def test_cpp_log_mel_matches_numpy_within_tolerance(harness: Path, tmp_path: Path, seed: int) -> None:
    pcm = _test_audio(seed)
    expected = SPEC.frames(pcm)
    got = run_cpp_features(harness, pcm, tmp_path)
    assert got.shape == expected.shape == (SPEC.frame_count, SPEC.mel_bins)
    assert np.max(np.abs(got - expected)) <= PARITY_TOLERANCE


def test_silence_gives_the_log_floor(harness: Path, tmp_path: Path) -> None:
    got = run_cpp_features(harness, np.zeros(SPEC.clip_samples, np.int16), tmp_path)
    np.testing.assert_allclose(got, np.log(SPEC.log_floor), atol=1e-5)


def test_full_scale_square_wave_stays_within_tolerance(harness: Path, tmp_path: Path) -> None:
    pcm = np.where(np.arange(SPEC.clip_samples) % 40 < 20, 32767, -32768).astype(np.int16)
    got = run_cpp_features(harness, pcm, tmp_path)
    assert np.max(np.abs(got - SPEC.frames(pcm))) <= PARITY_TOLERANCE


def test_shape_and_filters() -> None:
    assert SPEC.frame_count == 49
    assert SPEC.input_shape == (49, 40, 1)
    matrix = SPEC.mel_matrix()
    assert matrix.shape == (257, 40)
    assert np.all(matrix.sum(axis=0) > 0), "every mel band has weight"
    assert SPEC.features(np.zeros(100, np.int16)).shape == SPEC.input_shape


def test_bad_audio_is_an_input_error() -> None:
    with pytest.raises(InputError, match="int16"):
        SPEC.frames(np.zeros(16000, np.float32))
    with pytest.raises(InputError, match="power of two"):
        LogMelSpec(fft_size=500)


def test_plain_cpp_compiles_for_the_board(tmp_path: Path) -> None:
    gxx = require_tool("arm-none-eabi-g++")
    render_plain_sources("kws", {"logmel": SPEC.template_context()}, tmp_path)
    for source in ("logmel.cpp", "logmel_tables.cpp", "recognizer.cpp"):
        subprocess.run(
            [gxx, "-std=gnu++14", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os", "-Wall", "-Wextra", "-Werror",
             "-c", str(tmp_path / source), "-o", str(tmp_path / (source + ".o"))],
            check=True,
            capture_output=True,
        )
