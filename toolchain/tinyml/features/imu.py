"""IMU windowing and normalisation: one definition for training on the host and for the board.

A recording is an array of shape (samples, 6): acceleration in g and angular rate in degrees
per second, the units the Arduino_LSM9DS1 and Arduino_BMI270_BMM150 drivers return. A model
input is a window of `window_samples` consecutive samples, normalised per channel:

    value = clip(raw, -full_scale, +full_scale) * inv_scale        (float32, in this order)

`full_scale` is the sensor range (the drivers' defaults: 4 g and 2000 dps), so training sees
the same saturation the board does. `inv_scale` maps typical motion to about [-1, 1]. Windows
start every `stride_samples` samples. The firmware's C++ (`imu_window.h`, with constants
rendered from `template_context()`) does the same float32 operations on live samples, so a
window computed on the board is bit-identical to the one numpy computes from the same samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tinyml.core.errors import InputError

IMU_CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz")
ACCEL_FULL_SCALE_G = 4.0
GYRO_FULL_SCALE_DPS = 2000.0


def c_float(value: float) -> str:
    """A C float literal that reads back as exactly this float32 value (9 significant digits)."""
    text = f"{float(np.float32(value)):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return f"{text}f"


@dataclass(frozen=True)
class ImuWindowSpec:
    """How IMU samples become one model input; every number the firmware needs lives here."""

    sample_rate_hz: int = 50
    window_samples: int = 100
    stride_samples: int = 25
    full_scale: tuple[float, ...] = (ACCEL_FULL_SCALE_G,) * 3 + (GYRO_FULL_SCALE_DPS,) * 3
    unit_scale: tuple[float, ...] = (2.0,) * 3 + (500.0,) * 3  # g and dps that map to 1.0

    def __post_init__(self) -> None:
        if self.window_samples < 1 or self.stride_samples < 1 or self.sample_rate_hz < 1:
            raise InputError("IMU window length, stride and rate must be positive", "fix the ImuWindowSpec")
        if len(self.full_scale) != len(IMU_CHANNELS) or len(self.unit_scale) != len(IMU_CHANNELS):
            raise InputError(f"an IMU spec needs one full scale and one unit scale per channel {IMU_CHANNELS}", "fix the ImuWindowSpec")

    @property
    def channels(self) -> int:
        return len(IMU_CHANNELS)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The model's input shape without the batch axis: (time, 1, channels), for (k, 1) Conv2D kernels."""
        return (self.window_samples, 1, self.channels)

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate_hz

    def _full_scale32(self) -> np.ndarray:
        return np.asarray(self.full_scale, dtype=np.float32)

    def _inv_scale32(self) -> np.ndarray:
        return np.asarray([np.float32(1.0 / s) for s in self.unit_scale], dtype=np.float32)

    def normalise(self, samples: np.ndarray) -> np.ndarray:
        """(n, 6) raw samples in g and dps -> (n, 6) float32 model values."""
        samples = np.asarray(samples)
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise InputError(f"IMU samples have shape {samples.shape}", f"give an array of shape (samples, {self.channels}): {', '.join(IMU_CHANNELS)}")
        full = self._full_scale32()
        clipped = np.minimum(np.maximum(samples.astype(np.float32), -full), full)
        return clipped * self._inv_scale32()

    def window_starts(self, sample_count: int) -> range:
        return range(0, sample_count - self.window_samples + 1, self.stride_samples)

    def windows(self, samples: np.ndarray) -> np.ndarray:
        """All windows of one recording: (k, window_samples, 1, 6) float32, oldest sample first."""
        values = self.normalise(samples)
        starts = self.window_starts(values.shape[0])
        out = np.empty((len(starts), self.window_samples, 1, self.channels), dtype=np.float32)
        for i, start in enumerate(starts):
            out[i, :, 0, :] = values[start : start + self.window_samples]
        return out

    def template_context(self) -> dict[str, object]:
        """The numbers the firmware's `imu_features.h` is rendered from, as C literals."""
        return {
            "sample_rate_hz": self.sample_rate_hz,
            "sample_period_us": round(1_000_000 / self.sample_rate_hz),
            "window_samples": self.window_samples,
            "stride_samples": self.stride_samples,
            "channels": self.channels,
            "channel_names": list(IMU_CHANNELS),
            "full_scale": [c_float(v) for v in self._full_scale32()],
            "inv_scale": [c_float(v) for v in self._inv_scale32()],
        }

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["channels"] = list(IMU_CHANNELS)
        return data
