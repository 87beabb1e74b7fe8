"""Recording takes from a board running the capture app, into a dataset folder.

`record_session(port, out, settings, events)` opens the link, checks the board runs the
capture app (or says which app it runs), opens the dataset (tinyml.features.recordings,
which refuses mixed rates or boards), and records `settings.takes` takes. A take is a
countdown, then `seconds` of samples, or, with a `trigger`, the samples around the moment
the motion or sound first exceeds the threshold. Each take is checked before it is kept:
every SAMPLES frame must follow the previous one exactly (the sample index leaves no gap),
so a frame lost on the wire, samples the board could not keep, or a board reset lose that
take only, with one line saying why; the session goes on with the next. Kept takes are
written atomically; `events.decide` may ask for a take again.

Nothing here prints: `CaptureEvents` receives the countdown, the live samples and the
outcome of each take, and the command line renders them.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tinyml.core.errors import DeviceError, InputError
from tinyml.device.link import BoardReset, DeviceLink
from tinyml.features import recordings
from tinyml.features.recordings import TakeInfo
from tinyml.firmware import protocol
from tinyml.firmware.apps import CAPTURE_APP
from tinyml.firmware.protocol import CaptureStarted, DeviceErrorReply, MessageType, ProtocolError, Sensor, Status

log = logging.getLogger("tinyml.capture")

# The host's keep-alive during a take (well inside the firmware's binary-mode idle timeout).
KEEPALIVE_S = 1.0
# No samples for this long while the board says it captures: its sensor is not delivering.
STALL_S = 3.0
# How long a triggered take waits for the threshold before it gives up.
TRIGGER_WAIT_S = 30.0
# Samples kept from before the trigger, as a share of the take: the start of the motion or word.
PRETRIGGER_SHARE = 0.2
_READ_S = 0.05


@dataclass(frozen=True)
class CaptureSettings:
    label: str
    student: str
    sensor: str = "auto"  # "imu", "microphone", or "auto": the IMU if the board has one
    seconds: float = 2.0
    takes: int = 1
    trigger: float | None = None  # g of motion beyond gravity (IMU), or dBFS (microphone)
    countdown_s: int = 3
    allow_mixed: bool = False

    def check(self) -> None:
        recordings.check_name(self.label, "label")
        recordings.check_name(self.student, "student name")
        if self.sensor not in ("auto", *recordings.KINDS):
            raise InputError(f"unknown sensor {self.sensor!r}", "choose imu, microphone or auto")
        if not (0 < self.seconds <= 600):
            raise InputError(f"a take of {self.seconds:g} s", "give --seconds between 0 and 600")
        if self.takes < 1:
            raise InputError(f"{self.takes} takes", "give --takes 1 or more")
        if self.countdown_s < 0:
            raise InputError("a negative countdown", "give --countdown 0 or more")


class TakeLost(Exception):
    """This take cannot be kept (gap, reset); the session goes on. `reason` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class CaptureEvents:
    """What the session reports; every callback is optional. `decide` returns keep, redo or stop."""

    countdown: Callable[[int, int], None] | None = None  # (take number, seconds left)
    waiting: Callable[[int, float], None] | None = None  # (take number, level) until the trigger fires
    samples: Callable[[int, np.ndarray, float, float], None] | None = None  # (take, new samples, level, share done)
    saved: Callable[[int, Path, TakeInfo], None] | None = None
    lost: Callable[[int, str], None] | None = None
    decide: Callable[[int, np.ndarray, TakeInfo], str] | None = None


@dataclass
class CaptureSummary:
    dataset: Path
    board: str
    serial: str
    sensor: str
    rate_hz: float
    saved: list[Path] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    redone: int = 0

    def to_dict(self) -> dict:
        return {
            "dataset": str(self.dataset),
            "board": self.board,
            "serial": self.serial,
            "sensor": self.sensor,
            "rate_hz": self.rate_hz,
            "saved": [str(p) for p in self.saved],
            "lost": list(self.lost),
            "redone": self.redone,
        }


def level(kind: str, values: np.ndarray) -> float:
    """The trigger and meter level of some samples: g of motion beyond gravity (IMU), or dBFS RMS (microphone)."""
    if values.size == 0:
        return 0.0 if kind == "imu" else -120.0
    if kind == "imu":
        magnitude = np.linalg.norm(values[:, :3].astype(np.float64), axis=1)
        return float(np.max(np.abs(magnitude - 1.0)))
    rms = math.sqrt(float(np.mean(values.astype(np.float64) ** 2))) / 32768.0
    return 20.0 * math.log10(max(rms, 1e-6))


def usb_serial_number(port: str) -> str:
    """The USB serial number of the device behind `port` ("" for a pty, a socket or an unknown port)."""
    from serial.tools import list_ports

    try:
        target = str(Path(port).resolve())
    except OSError:
        return ""
    for info in list_ports.comports():
        if info.device in (port, target) and info.serial_number:
            return str(info.serial_number)
    return ""


def open_capture_link(port: str) -> tuple[DeviceLink, protocol.DeviceInfo]:
    """A link to a board that runs the capture app; DeviceError naming the app it runs otherwise."""
    link = DeviceLink(port)
    try:
        info = link.info()
    except BaseException:
        link.close()
        raise
    if info.app != CAPTURE_APP:
        link.close()
        running = f"the {info.app} app" if info.app else "firmware that does not name its app (an older tinyml)"
        model = f", model {info.model_hash}" if info.model_hash else ""
        raise DeviceError(
            f"the board on {port} runs {running}{model}, not the capture app",
            f"render and flash the capture firmware: tinyml render --app capture --board {info.board_id or 'ID'} --out capture_fw, then tinyml flash capture_fw --port {port}",
        )
    return link, info


def start_capture(link: DeviceLink, sensor: str) -> CaptureStarted:
    """CAPTURE_START for `sensor` ("auto": the IMU, else the microphone)."""
    wanted = [Sensor.IMU, Sensor.MICROPHONE] if sensor == "auto" else [protocol.SENSOR_BY_KIND[sensor]]
    for code in wanted:
        try:
            return protocol.unpack_capture_started(link.request(MessageType.CAPTURE_START, bytes([code]), restart_stream=True).payload)
        except DeviceErrorReply as exc:
            if exc.status != Status.NO_SENSOR:
                raise
    raise DeviceError(f"the board on {link.port} has no {sensor if sensor != 'auto' else 'IMU or microphone'}", "choose --sensor imu or --sensor microphone, whichever the board has")


def stop_capture(link: DeviceLink) -> None:
    """CAPTURE_STOP, best effort (a take that ends in a reset has nothing to stop)."""
    try:
        link.request(MessageType.CAPTURE_STOP)
    except (BoardReset, ProtocolError):
        log.debug("CAPTURE_STOP was not answered")


def record_take(link: DeviceLink, settings: CaptureSettings, number: int, events: CaptureEvents) -> tuple[np.ndarray, CaptureStarted]:
    """One take's samples, exactly as the board produced them; TakeLost when any went missing."""
    try:
        started = start_capture(link, settings.sensor)
    except BoardReset as exc:
        raise TakeLost(f"the board reset as take {number} started") from exc
    kind = protocol.SAMPLE_FORMATS[Sensor(started.sensor)].kind
    wanted = max(1, round(settings.seconds * started.rate_hz))
    # Without a trigger every sample counts from the start: a threshold nothing stays below.
    threshold = settings.trigger if settings.trigger is not None else -math.inf
    pre = round(wanted * PRETRIGGER_SHARE) if settings.trigger is not None else 0
    before: deque[np.ndarray] = deque()  # recent samples while waiting for the trigger
    kept_before = 0
    parts: list[np.ndarray] = []
    have = 0
    expected = 0
    triggered = settings.trigger is None
    began = last_data = last_keepalive = time.monotonic()
    try:
        while have < wanted:
            frames = link.unasked_frames(_READ_S)
            now = time.monotonic()
            if frames:
                last_data = now
            for frame in frames:
                block = protocol.unpack_samples(frame.payload, started)
                if block.first != expected:
                    missing = block.first - expected
                    raise TakeLost(f"take {number} lost {missing if missing > 0 else 'some'} samples (frames dropped on the link or the board fell behind)")
                expected += block.values.shape[0]
                values = block.values
                if not triggered:
                    current = level(kind, values)
                    if events.waiting:
                        events.waiting(number, current)
                    if current < threshold:
                        before.append(values)
                        kept_before += values.shape[0]
                        while before and kept_before - before[0].shape[0] >= pre:
                            kept_before -= before.popleft().shape[0]
                        continue
                    # The take starts `pre` samples before the frame that crossed the level.
                    triggered = True
                    values = np.concatenate([*before, values])[-(pre + values.shape[0]) :]
                    before.clear()
                take = values[: wanted - have]
                parts.append(take)
                have += take.shape[0]
                if events.samples:
                    events.samples(number, take, level(kind, take), have / wanted)
            if not triggered and now - began > TRIGGER_WAIT_S:
                raise TakeLost(f"take {number}: nothing crossed the trigger level {threshold:g} within {TRIGGER_WAIT_S:.0f} s")
            if now - last_keepalive >= KEEPALIVE_S or now - last_data >= STALL_S:
                last_keepalive = now
                status = protocol.unpack_capture_status(link.request(MessageType.CAPTURE_STATUS).payload)
                if not status.sensor:
                    raise TakeLost(f"take {number}: the board stopped capturing")
                if now - last_data >= STALL_S:
                    raise DeviceError(f"the board on {link.port} captures but sends no samples", "check that its sensor started (tinyml monitor shows its start-up lines), then reset it")
    except BoardReset as exc:
        raise TakeLost(f"the board reset during take {number}") from exc
    except ProtocolError as exc:
        stop_capture(link)
        raise TakeLost(f"take {number}: the link failed ({exc.problem})") from exc
    except TakeLost:
        stop_capture(link)
        raise
    stop_capture(link)
    return np.concatenate(parts)[:wanted], started


def record_session(port: str, out: str | Path, settings: CaptureSettings, events: CaptureEvents | None = None) -> CaptureSummary:
    """Record `settings.takes` takes from the capture firmware on `port` into the dataset `out`."""
    settings.check()
    events = events or CaptureEvents()
    out = Path(out)
    link, info = open_capture_link(port)
    try:
        # A probe (start, stop) tells the sensor and rate, so a dataset that would mix them is
        # refused before anyone performs a take.
        probe = start_capture(link, settings.sensor)
        stop_capture(link)
        kind = protocol.SAMPLE_FORMATS[Sensor(probe.sensor)].kind
        recordings.open_dataset(out, kind, probe.rate_hz, info.board_id, allow_mixed=settings.allow_mixed)
        settings = replace(settings, sensor=kind)
        summary = CaptureSummary(out, info.board_id, usb_serial_number(port), kind, probe.rate_hz)
        number = 1
        while number <= settings.takes:
            for left in range(settings.countdown_s, 0, -1):
                if events.countdown:
                    events.countdown(number, left)
                time.sleep(1.0)
            try:
                values, started = record_take(link, settings, number, events)
            except TakeLost as lost:
                log.warning("%s: not saved", lost.reason)
                summary.lost.append(lost.reason)
                if events.lost:
                    events.lost(number, lost.reason)
                number += 1
                continue
            take = TakeInfo(settings.label, settings.student, kind, started.rate_hz, info.board_id, summary.serial, int(values.shape[0]), recordings.local_timestamp())
            choice = events.decide(number, values, take) if events.decide else "keep"
            if choice == "redo":
                summary.redone += 1
                continue
            path = recordings.write_take(out, take, values)
            summary.saved.append(path)
            if events.saved:
                events.saved(number, path, take)
            if choice == "stop":
                break
            number += 1
    finally:
        link.close()
    return summary
