"""IMU windowing: numpy (training) and the firmware's C++ (live samples) agree bit for bit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tool

from tinyml.core.errors import InputError
from tinyml.firmware.apps import render_plain_sources
from tinyml.features.imu import IMU_CHANNELS, ImuWindowSpec, c_float
from tinyml.model.modelfile import TensorFacts
from tinyml.model.quantization import quantize_input

# Reads raw float32 samples (n x 6) from argv[1]; for every window the ImuWindow reports ready,
# writes the float window and then its int8 quantization (scale argv[3], zero point argv[4]).
HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "imu_window.h"

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  FILE* in = fopen(argv[1], "rb");
  FILE* out = fopen(argv[2], "wb");
  if (!in || !out) return 3;
  const float scale = strtof(argv[3], nullptr);
  const int32_t zero_point = static_cast<int32_t>(strtol(argv[4], nullptr, 10));
  static tinyml::ImuWindow window;
  static float values[tinyml::imu::kWindowSamples * tinyml::imu::kChannels];
  static int8_t bytes[tinyml::imu::kWindowSamples * tinyml::imu::kChannels];
  float raw[tinyml::imu::kChannels];
  while (fread(raw, sizeof(float), tinyml::imu::kChannels, in) == tinyml::imu::kChannels) {
    if (!window.push(raw)) continue;
    window.copy_window(values);
    window.quantize_window(bytes, scale, zero_point);
    fwrite(values, sizeof(float), sizeof(values) / sizeof(float), out);
    fwrite(bytes, 1, sizeof(bytes), out);
  }
  fclose(in);
  fclose(out);
  return 0;
}
"""

SPEC = ImuWindowSpec(sample_rate_hz=50, window_samples=40, stride_samples=15)


def _render(spec: ImuWindowSpec, out_dir: Path) -> list[Path]:
    return render_plain_sources("gesture", {"imu": spec.template_context()}, out_dir)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gxx = require_tool("g++")
    build = tmp_path_factory.mktemp("imu_harness")
    _render(SPEC, build)
    (build / "main.cpp").write_text(HARNESS)
    exe = build / "imu_harness"
    # -ffp-contract=off: the host must not fuse operations the board's compiler does not fuse either.
    subprocess.run(
        [gxx, "-std=gnu++14", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-o", str(exe), str(build / "main.cpp"), str(build / "imu_window.cpp")],
        check=True,
        capture_output=True,
    )
    return exe


def _recording(seed: int, samples: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    accel = rng.normal(0.0, 1.5, size=(samples, 3))
    gyro = rng.normal(0.0, 600.0, size=(samples, 3))  # beyond full scale at times, to test clipping
    return np.concatenate([accel, gyro], axis=1).astype(np.float32)


@pytest.mark.parametrize("samples", [39, 40, 41, 55, 56, 173])
def test_cpp_windows_equal_numpy_bit_for_bit(harness: Path, tmp_path: Path, samples: int) -> None:
    raw = _recording(samples, samples)
    scale, zero_point = float(np.float32(0.0157)), -3  # a float32 scale, as in a .tflite
    tensor = _input_tensor(scale, zero_point)
    (tmp_path / "raw.bin").write_bytes(raw.tobytes())
    subprocess.run([str(harness), str(tmp_path / "raw.bin"), str(tmp_path / "out.bin"), repr(scale), str(zero_point)], check=True)
    expected = SPEC.windows(raw)
    count = expected.shape[0]
    floats = SPEC.window_samples * SPEC.channels
    record = np.dtype([("values", "<f4", (floats,)), ("bytes", "i1", (floats,))])
    got = np.fromfile(tmp_path / "out.bin", dtype=record)
    assert got.shape[0] == count == len(SPEC.window_starts(samples))
    for i in range(count):
        np.testing.assert_array_equal(got["values"][i], expected[i].reshape(-1))
        np.testing.assert_array_equal(got["bytes"][i], quantize_input(expected[i][None], tensor).reshape(-1))


def test_normalise_clips_to_the_sensor_range_and_scales() -> None:
    spec = ImuWindowSpec()
    raw = np.array([[10.0, -10.0, 1.0, 3000.0, -3000.0, 250.0]])
    np.testing.assert_allclose(spec.normalise(raw)[0], [2.0, -2.0, 0.5, 4.0, -4.0, 0.5], rtol=1e-6)


def test_windows_start_every_stride() -> None:
    spec = ImuWindowSpec(window_samples=4, stride_samples=2)
    raw = np.tile(np.arange(9, dtype=np.float32)[:, None], (1, 6))
    w = spec.windows(raw)
    assert w.shape == (3, 4, 1, 6)
    np.testing.assert_array_equal(w[:, 0, 0, 0], np.float32([0, 2, 4]) * np.float32(0.5))


def test_wrong_sample_shape_is_an_input_error() -> None:
    with pytest.raises(InputError, match="shape"):
        ImuWindowSpec().normalise(np.zeros((10, 3)))


def test_cpp_rounds_ties_like_the_host(harness: Path, tmp_path: Path) -> None:
    """Values that land exactly on .5 steps: the board must round them as the host does."""
    spec_window = SPEC.window_samples
    # Raw accelerations whose normalised values (raw / 2) are k + 0.5 quantization steps of 0.25.
    ties = np.float32([0.25, 0.75, -0.25, -0.75, 1.25, 3.9]) * np.float32(2.0)
    raw = np.zeros((spec_window, 6), np.float32)
    raw[: len(ties), 0] = ties
    (tmp_path / "raw.bin").write_bytes(raw.tobytes())
    subprocess.run([str(harness), str(tmp_path / "raw.bin"), str(tmp_path / "out.bin"), "0.5", "120"], check=True)
    floats = SPEC.window_samples * SPEC.channels
    got = np.fromfile(tmp_path / "out.bin", dtype=np.dtype([("values", "<f4", (floats,)), ("bytes", "i1", (floats,))]))
    expected = quantize_input(SPEC.windows(raw)[:1], _input_tensor(0.5, 120)).reshape(-1)
    np.testing.assert_array_equal(got["bytes"][0], expected)
    assert got["bytes"][0][0:36:6].tolist() == [121, 122, 119, 118, 123, 124]  # ties away from zero; 7.8 g clips to 4 g


def _input_tensor(scale: float, zero_point: int) -> TensorFacts:
    return TensorFacts(index=0, name="imu_window", shape=(1, *SPEC.input_shape), dtype="int8", scales=(scale,), zero_points=(zero_point,))


def test_c_float_reads_back_exactly() -> None:
    for value in (1 / 500, 0.5, 4.0, 2000.0, 1 / 3):
        assert np.float32(float(c_float(value)[:-1])) == np.float32(value)


def test_rendered_header_names_every_channel(tmp_path: Path) -> None:
    _render(ImuWindowSpec(), tmp_path)
    header = (tmp_path / "imu_features.h").read_text()
    assert "do not edit" in header
    assert "kWindowSamples = 100;" in header
    assert ", ".join(IMU_CHANNELS) in header


def test_plain_cpp_compiles_for_the_board(tmp_path: Path) -> None:
    gxx = require_tool("arm-none-eabi-g++")
    _render(ImuWindowSpec(), tmp_path)
    subprocess.run(
        [gxx, "-std=gnu++14", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os", "-Wall", "-Wextra", "-Werror",
         "-c", str(tmp_path / "imu_window.cpp"), "-o", str(tmp_path / "imu_window.o")],
        check=True,
        capture_output=True,
    )
