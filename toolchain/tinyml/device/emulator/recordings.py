"""The recordings the emulated board's sensors replay, in the files its stand-ins read.

The IMU and microphone stand-ins (firmware_templates/targets/mps2_an386/sensor_replay.cpp)
read these files through semihosting from QEMU's working directory, as board time passes.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from tinyml.core.errors import InputError

# The files' names and layouts (sensor_replay.cpp).
IMU_FILE = "tinyml-imu.bin"
IMU_MAGIC = b"TMLIMU1\0"
IMU_CHANNELS = 6
AUDIO_FILE = "tinyml-audio.s16"
AUDIO_RATE_HZ = 16000


def write_imu_recording(frames: np.ndarray, sample_rate_hz: float, path: Path) -> None:
    """(n, 6) float readings (ax, ay, az in g; gx, gy, gz in deg/s) -> the IMU stand-in's file."""
    frames = np.asarray(frames, dtype="<f4")
    header = IMU_MAGIC + np.array([sample_rate_hz], "<f4").tobytes() + np.array([IMU_CHANNELS], "<u4").tobytes()
    path.write_bytes(header + frames.tobytes())


def read_imu_recording(path: str | Path) -> tuple[np.ndarray, float | None]:
    """An IMU recording the user gives, and its sample rate if the file says it: .npz (an array
    `imu`, or the first array; optional scalar `sample_rate_hz`) or .csv (6 columns; a header
    line is skipped)."""
    path = Path(path)
    rate = None
    try:
        if path.suffix == ".npz":
            with np.load(path) as data:
                frames = data["imu"] if "imu" in data.files else data[data.files[0]]
                if "sample_rate_hz" in data.files:
                    rate = float(data["sample_rate_hz"])
        else:
            frames = np.genfromtxt(path, delimiter=",")
            frames = frames[~np.isnan(frames).any(axis=1)]  # a header line reads as NaN
    except (OSError, ValueError, IndexError) as exc:
        raise InputError(f"cannot read the IMU recording {path} ({exc})", "give a .npz or a .csv of ax, ay, az, gx, gy, gz rows") from exc
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != IMU_CHANNELS:
        raise InputError(f"the IMU recording {path} has shape {frames.shape}", f"give one row of {IMU_CHANNELS} values per sample: ax, ay, az (g), gx, gy, gz (deg/s)")
    return frames, rate


def write_audio_recording(wav_path: str | Path, path: Path) -> None:
    """A 16 kHz mono 16-bit WAV -> the microphone stand-in's raw PCM16 file."""
    try:
        with wave.open(str(wav_path), "rb") as wav:
            shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
            pcm = wav.readframes(wav.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise InputError(f"cannot read the audio recording {wav_path} ({exc})", "give a 16 kHz mono 16-bit WAV file") from exc
    if shape != (AUDIO_RATE_HZ, 1, 2):
        raise InputError(
            f"{wav_path} is {shape[0]} Hz, {shape[1]} channel(s), {8 * shape[2]}-bit; the board's microphone gives 16 kHz mono 16-bit",
            "convert it, e.g. `sox IN.wav -r 16000 -c 1 -b 16 OUT.wav`",
        )
    path.write_bytes(pcm)
