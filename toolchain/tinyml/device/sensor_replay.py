"""The capture app's Python twin: sensor stand-ins that replay a recording, framed as the firmware frames it.

`CaptureTwin` follows firmware_templates/apps/capture/capture_session.cpp step for step
(CAPTURE_START / STATUS / STOP, SAMPLES frames of `samples_per_frame` consecutive samples,
a gap in the indices for lost samples); the virtual board plugs it into its ProtocolTwin.
Its sensors are recordings: an IMU recording in g and degrees per second (.npz or .csv, six
columns ax, ay, az, gx, gy, gz) and a microphone recording (.wav, mono PCM16 at 16 kHz). A
replay advances only while a take runs and wraps at the end, so the takes of a session,
joined, are the recording from its start (repeated when it runs out).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml.core.errors import InputError
from tinyml.firmware import protocol
from tinyml.firmware.protocol import Frame, MessageType, Sensor, Status

IMU_COLUMNS = 6
# What the capture app prints for a person at start-up (app.cpp's app_setup).
CAPTURE_READY_LINE = "tinyml capture firmware: record with `tinyml capture --port PORT --label NAME`"


def load_imu_recording(path: str | Path) -> np.ndarray:
    """(samples, 6) float32 in g and deg/s from .npz (array `x`, or its only array) or .csv (six columns)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"IMU recording {path} does not exist", "give a .npz or .csv file of six columns: ax, ay, az (g), gx, gy, gz (deg/s)")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = archive.files
                name = "x" if "x" in names else names[0] if len(names) == 1 else None
                if name is None:
                    raise InputError(f"{path} has arrays {', '.join(names)} and none is named 'x'", "save the recording as numpy.savez(path, x=samples)")
                values = archive[name]
        elif path.suffix.lower() == ".csv":
            values = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=_header_rows(path))
        else:
            raise InputError(f"{path} is not a .npz or .csv file", "give the IMU recording as .npz (array x) or .csv")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} could not be read as an IMU recording ({exc})", "give six numeric columns: ax, ay, az (g), gx, gy, gz (deg/s)") from exc
    if values.ndim != 2 or values.shape[1] != IMU_COLUMNS or values.shape[0] == 0:
        raise InputError(f"the IMU recording {path} has shape {values.shape}", "give (samples, 6): ax, ay, az in g, gx, gy, gz in deg/s")
    return values.astype(np.float32)


def _header_rows(path: Path) -> int:
    with path.open(encoding="utf-8", errors="replace") as f:
        first = f.readline()
    return 1 if any(ch.isalpha() for ch in first.replace("e", "").replace("E", "")) else 0


def load_audio_recording(path: str | Path) -> np.ndarray:
    """int16 samples of a mono 16-bit .wav at 16 kHz (the board's microphone format)."""
    path = Path(path)
    fix = "give a mono 16-bit .wav at 16 kHz (sox IN.wav -r 16000 -c 1 -b 16 OUT.wav)"
    if not path.is_file():
        raise InputError(f"audio recording {path} does not exist", fix)
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate, frames = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            data = f.readframes(frames)
    except (OSError, EOFError, wave.Error) as exc:
        raise InputError(f"{path} is not a readable .wav file ({exc})", fix) from exc
    if channels != 1 or width != 2 or rate != protocol.PCM_SAMPLE_RATE_HZ:
        raise InputError(f"{path} is {channels} channel(s), {8 * width}-bit, {rate} Hz", fix)
    if frames == 0:
        raise InputError(f"{path} holds no samples", fix)
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


@dataclass(frozen=True)
class Replay:
    """What the stand-in sensors play: the recordings and the IMU's rate (a board profile's)."""

    imu: np.ndarray | None = None  # (n, 6) float32
    audio: np.ndarray | None = None  # (n,) int16
    imu_rate_hz: float = 100.0

    def recording(self, sensor: Sensor) -> np.ndarray | None:
        if sensor == Sensor.IMU:
            return self.imu
        if sensor == Sensor.MICROPHONE:
            return None if self.audio is None else self.audio.reshape(-1, 1)
        return None

    def rate_hz(self, sensor: Sensor) -> float:
        return self.imu_rate_hz if sensor == Sensor.IMU else float(protocol.PCM_SAMPLE_RATE_HZ)


class CaptureTwin:
    """The capture app behind a ProtocolTwin: answers CAPTURE_* and emits SAMPLES through `twin`."""

    def __init__(self, twin, replay: Replay) -> None:
        self.twin = twin
        self.replay = replay
        self.sensor = 0
        self.takes = 0
        self.counted = 0
        self.lost = 0
        self._positions: dict[int, int] = {}  # replay position per sensor, kept across takes
        self._frame_seq = 0
        # (sensor, replay position) at each CAPTURE_START: what each take replays, for tests.
        self.take_starts: list[tuple[int, int]] = []
        twin.on_request = self.on_request

    @property
    def rate_hz(self) -> float:
        return self.replay.rate_hz(Sensor(self.sensor)) if self.sensor else 0.0

    def on_request(self, frame: Frame) -> bool:
        if frame.type == MessageType.CAPTURE_START:
            if len(frame.payload) != 1:
                self.twin.error(frame.seq, Status.BAD_LENGTH, frame.type)
                return True
            wanted = frame.payload[0]
            if wanted not in protocol.SAMPLE_FORMATS or self.replay.recording(Sensor(wanted)) is None:
                self.twin.error(frame.seq, Status.NO_SENSOR, frame.type)
                return True
            fmt = protocol.SAMPLE_FORMATS[Sensor(wanted)]
            started = protocol.CaptureStarted(wanted, fmt.dtype, fmt.channels, fmt.samples_per_frame, float(np.float32(self.replay.rate_hz(Sensor(wanted)))))
            self.sensor, self.counted, self.lost = wanted, 0, 0
            self.takes += 1
            self.take_starts.append((wanted, self._positions.get(wanted, 0)))
            self.twin.send_frame(frame.type, frame.seq, protocol.pack_capture_started(started))
            return True
        if frame.type in (MessageType.CAPTURE_STATUS, MessageType.CAPTURE_STOP):
            self.twin.send_frame(frame.type, frame.seq, protocol.pack_capture_status(protocol.CaptureStatus(self.sensor, self.counted, self.lost)))
            if frame.type == MessageType.CAPTURE_STOP:
                self.sensor = 0
            return True
        return False

    def check(self) -> None:
        """As CaptureSession::check: the take ends when the host has gone (human mode)."""
        if self.sensor and not self.twin.binary:
            self.sensor = 0

    def produce(self, samples: int) -> int:
        """Stream the next `samples` samples of the running take in whole frames; returns how many went out."""
        if not self.sensor or samples <= 0:
            return 0
        sensor = Sensor(self.sensor)
        fmt = protocol.SAMPLE_FORMATS[sensor]
        recording = self.replay.recording(sensor)
        assert recording is not None
        sent = 0
        while sent < samples:
            count = min(fmt.samples_per_frame, samples - sent)
            position = self._positions.get(self.sensor, 0)
            index = (position + np.arange(count)) % recording.shape[0]
            values = recording[index].astype(fmt.dtype)
            self.twin.send_frame(MessageType.SAMPLES, self._frame_seq, protocol.pack_samples(self.counted, values))
            self._frame_seq = (self._frame_seq + 1) & 0xFF
            self._positions[self.sensor] = (position + count) % recording.shape[0]
            self.counted += count
            sent += count
        return sent
