"""A board on a pseudo-terminal: the firmware's protocol, the model on the TFLM runtime or the board's library.

By default the model runs on the TFLM Python runtime (today's TFLM), which differs from the
pinned board library on per-channel FULLY_CONNECTED and MEAN. With `library=DIR` it runs on that
library built for the host (tinyml.model.board_library): then the virtual board computes what
the board computes. `computes_with` names which, and the CLI prints it.

`VirtualBoard(model)` opens a pty, keeps a stable symlink to it (the port to give `validate`
or `monitor`), and serves the firmware's protocol (tinyml.device.protocol_twin) from one thread.
It is the README demo's default target and the target of the end-to-end tests, so it must
clean up after itself: `stop()` (or leaving the `with` block) ends the thread, closes the pty
and removes the symlink.

Faults, for tests and demos (`Faults`): line noise and dropped bytes in both directions, a
small UART receive buffer that overflows when the host sends more than it holds, a reset in
mid-inference (the port goes away and comes back at the same symlink, the device starts in
human mode), slow inference, and (to show validation failing) outputs off by one LSB.

Capture mode (`replay=`, no model): the board runs the capture app instead, its IMU and
microphone replaying recordings (tinyml.device.sensor_replay), streaming SAMPLES frames as
fast as the host reads them, or at the sensor's rate with `realtime`. The fault
`reset_in_take` resets the board once, half a second into that capture start.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import select
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml.firmware import protocol
from tinyml.firmware.apps import CAPTURE_APP, DEFAULT_APP
from tinyml.device.protocol_twin import FIRMWARE_VERSION, ProtocolTwin
from tinyml.core.errors import InputError
from tinyml.core.files import check_output_folder, write_error
from tinyml.device.sensor_replay import CAPTURE_READY_LINE, CaptureTwin, Replay
from tinyml.model.modelfile import read_model, read_model_bytes
from tinyml.firmware.protocol import DeviceInfo, TensorSpec

log = logging.getLogger("tinyml.virtual_board")

VIRTUAL_BOARD_ID = "virtual"
# Capture: samples per write when streaming as fast as the host reads, and the
# shortest pause of the realtime loop.
_FAST_BATCH_FRAMES = 16
_REALTIME_POLL_S = 0.005
# The receive buffer reported when no board profile or fault says otherwise (a USB CDC board's).
DEFAULT_RX_BUFFER_BYTES = 256
# The reset fault of capture: this far into the chosen take (so a take longer than this is hit).
RESET_AFTER_S = 0.5
# How long the port stays away during a reset.
RESET_DOWNTIME_S = 0.3
_POLL_S = 0.05


@dataclass(frozen=True)
class Faults:
    """What goes wrong on purpose. Rates are per byte, in both directions."""

    noise: float = 0.0  # probability that a byte is replaced by a random one
    drop: float = 0.0  # probability that a byte is lost
    rx_buffer: int | None = None  # a UART buffer of this many bytes: more at once overflows
    reset_every: int = 0  # reset after every N-th inference, before its reply goes out
    slow_ms: float = 0.0  # extra milliseconds per inference
    skew_every: int = 0  # every N-th output has one element off by one LSB: a wrong kernel to catch
    reset_in_take: int = 0  # capture: reset once, RESET_AFTER_S into the N-th capture start
    seed: int = 0

    def describe(self) -> str:
        parts = []
        if self.noise:
            parts.append(f"noise {self.noise:g}/byte")
        if self.drop:
            parts.append(f"drops {self.drop:g}/byte")
        if self.rx_buffer:
            parts.append(f"{self.rx_buffer}-byte receive buffer")
        if self.reset_every:
            parts.append(f"reset every {self.reset_every} inferences")
        if self.slow_ms:
            parts.append(f"+{self.slow_ms:g} ms per inference")
        if self.skew_every:
            parts.append(f"every {self.skew_every}th output off by one LSB")
        if self.reset_in_take:
            parts.append(f"reset {RESET_AFTER_S:g} s into capture {self.reset_in_take}")
        return ", ".join(parts) or "none"


@dataclass
class BoardStats:
    inferences: int = 0
    resets: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    corrupted: int = 0
    dropped: int = 0
    overflowed: int = 0
    unsent: int = 0  # output the host did not read in time (the pty buffer was full)
    samples: int = 0  # capture: samples streamed


def default_link_path(name: str = "default") -> Path:
    return Path(f"/tmp/tinyml-vboard-{name}")


class VirtualBoard:
    """A pty that speaks the firmware's protocol; use as a context manager or start()/stop()."""

    def __init__(
        self,
        model: str | Path | bytes | None,
        labels: list[str] | None = None,
        board: str | None = None,
        *,
        faults: Faults = Faults(),
        link: str | Path | None = None,
        arena_bytes: int | None = None,
        library: str | Path | None = None,
        replay: Replay | None = None,
        realtime: bool = False,
    ) -> None:
        self.faults = faults
        self.replay = replay
        self.realtime = realtime
        self._runner = None
        profile = None
        if board is not None:
            from tinyml.firmware.boards import get_board

            profile = get_board(board)
        if replay is not None:
            if model is not None:
                raise InputError("the capture firmware runs no model", "give either --model (validation) or --imu/--audio (capture), not both")
            self.info, self.arena_bytes, self.model_bytes = self._capture_info(replay, profile), 0, b""
            self.computes_with = "the capture app, replaying recordings"
        elif model is None:
            raise InputError("the virtual board needs a model or a recording to replay", "give --model MODEL.tflite, or --imu FILE / --audio FILE for capture")
        else:
            self._load_model(model, labels, profile, arena_bytes, library)
        # Without a link path each board gets its own, so boards in tests and scripts never collide.
        self.link_path = Path(link) if link is not None else default_link_path(f"{os.getpid()}-{id(self):x}")
        self.stats = BoardStats()
        self._random = random.Random(faults.seed)
        self._master: int | None = None
        self._slave: int | None = None
        self.pty_path: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._device: ProtocolTwin | None = None
        self._capture: CaptureTwin | None = None
        self._pending_reset = False
        self._reset_fired = False
        self._clock = (0, 0.0)  # (take, its start on the monotonic clock): the realtime replay's pace

    def _capture_info(self, replay: Replay, profile) -> DeviceInfo:
        if profile is not None:
            for kind, recording in (("imu", replay.imu), ("microphone", replay.audio)):
                if recording is not None and kind not in profile.sensors:
                    raise InputError(f"board {profile.id} has no {kind}", f"leave out the {kind} recording, or give a --board with one")
        rx_buffer = self.faults.rx_buffer or (profile.rx_buffer_bytes if profile is not None else DEFAULT_RX_BUFFER_BYTES)
        empty = TensorSpec("int8", (), 0.0, 0)
        return DeviceInfo(protocol.PROTOCOL_VERSION, FIRMWARE_VERSION, profile.id if profile is not None else VIRTUAL_BOARD_ID, "", 0, rx_buffer, empty, empty, app=CAPTURE_APP)

    def _load_model(self, model: str | Path | bytes, labels: list[str] | None, profile, arena_bytes: int | None, library: str | Path | None) -> None:
        from tinyml.model.tflm import TflmRunner, measure_arena, runtime_version

        faults = self.faults
        board = profile.id if profile is not None else None
        self.model_bytes = bytes(model) if isinstance(model, (bytes, bytearray)) else read_model_bytes(model)
        facts = read_model(self.model_bytes)
        if not facts.inputs or not facts.outputs:
            raise InputError("the model has no input or output tensor", "give a model converted by `tinyml quantize`")
        spec_in, spec_out = facts.inputs[0], facts.outputs[0]
        for spec in (spec_in, spec_out):
            if spec.dtype not in protocol.DTYPE_CODES:
                raise InputError(f"the model's tensor {spec.name!r} is {spec.dtype}, which the protocol does not carry", "quantize the model to int8 with `tinyml quantize`")
        rx_buffer = DEFAULT_RX_BUFFER_BYTES
        board_id = VIRTUAL_BOARD_ID
        if board is not None:
            board_id = profile.id
            rx_buffer = profile.rx_buffer_bytes
        if faults.rx_buffer:
            rx_buffer = faults.rx_buffer
        self.arena_bytes = arena_bytes if arena_bytes is not None else measure_arena(self.model_bytes)
        if library is None:
            # The runner gets headroom over the measured minimum, as the rendered firmware does.
            self._runner = TflmRunner(self.model_bytes, arena_size=self.arena_bytes + 1024)
            self.computes_with = f"TFLM Python runtime (tflite-micro {runtime_version()})"
        else:
            from tinyml.model.board_library import BoardLibraryRunner, build_host_library

            host_library = build_host_library(library)
            self._runner = BoardLibraryRunner(self.model_bytes, host_library)
            self.computes_with = f"{host_library.label} host build"
        self.info = DeviceInfo(
            protocol_version=protocol.PROTOCOL_VERSION,
            firmware_version=FIRMWARE_VERSION,
            board_id=board_id,
            model_hash=facts.short_hash,
            arena_used_bytes=self.arena_bytes,
            rx_buffer_bytes=rx_buffer,
            input=TensorSpec(spec_in.dtype, spec_in.shape, spec_in.scale, spec_in.zero_point),
            output=TensorSpec(spec_out.dtype, spec_out.shape, spec_out.scale, spec_out.zero_point),
            label_count=len(labels or ()),
            labels=tuple(labels or ()),
            app=DEFAULT_APP,  # the model behind the protocol, as the validation app
        )

    # ---- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def port(self) -> str:
        """The stable name of the port: the symlink, which survives resets."""
        return str(self.link_path)

    def start(self) -> None:
        if self._thread is not None:
            return
        # Before a pty is opened: a link that cannot be made is said, and nothing is left open.
        self._check_link_free()
        check_output_folder(self.link_path.parent)
        self._stop.clear()
        self._wake_r, self._wake_w = os.pipe()
        self._power_on()
        self._thread = threading.Thread(target=self._serve, name=f"tinyml-vboard {self.link_path.name}", daemon=True)
        self._thread.start()
        running = f"model {self.info.model_hash}" if self.replay is None else "the capture app"
        log.info("%s on %s (link %s), %s", self.description, self.pty_path, self.link_path, running)

    @property
    def description(self) -> str:
        """What the board is and what computes its outputs, e.g. "virtual board, TFLM Python runtime (...)"."""
        return f"virtual board, {self.computes_with}"

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._thread = None
        self._power_off()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_r, self._wake_w = -1, -1

    def reset(self) -> None:
        """Press the reset button: the port goes away and comes back, the device in human mode."""
        self._pending_reset = True
        if self._wake_w >= 0:
            os.write(self._wake_w, b"r")

    @property
    def capture(self) -> CaptureTwin | None:
        """The capture app's twin since the last power-on (None for a board that runs a model)."""
        return self._capture

    def wait(self) -> None:
        """Block until stop() is called from another thread (the CLI waits here for Ctrl-C)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    # ---- the pty ----------------------------------------------------------------------------
    def _power_on(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: a byte pipe like a USB CDC port
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.pty_path = os.ttyname(slave)
        self._relink(self.pty_path)
        self._device = ProtocolTwin(self.info, self._invoke, self._send)
        self._device.before_reply = self._before_reply
        if self.replay is not None:
            # A reset loses the running take; the replay positions start again too, as on power-up.
            self._capture = CaptureTwin(self._device, self.replay)
            self._device.print_line(CAPTURE_READY_LINE)  # app_setup() prints before the server's greeting
        self._device.greet()

    def _power_off(self) -> None:
        # The link goes first, so a host never opens a pty number the system has handed on.
        try:
            if self.link_path.is_symlink() and os.readlink(self.link_path) == self.pty_path:
                self.link_path.unlink()
        except OSError:
            log.debug("could not remove %s", self.link_path)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self._device = None

    def _check_link_free(self) -> None:
        """InputError unless the link path is free: nothing there, or a stale link of a virtual board that stopped.

        A stale link points into /dev/pts at a pty that is gone (a board killed before it
        could remove its link). Anything else is the user's, or a running board's: not replaced.
        """
        link = self.link_path
        if not link.is_symlink():
            if link.exists():
                raise InputError(f"{link} exists and is not a symlink", "give another --link path")
            return
        target = os.readlink(link)
        if target == self.pty_path:
            return
        if target.startswith("/dev/pts/") and not os.path.exists(target):
            return
        raise InputError(f"{link} is already a symlink (to {target})", "give another --link path, or remove that link if you no longer need it")

    def _relink(self, target: str) -> None:
        self._check_link_free()
        temporary = self.link_path.with_name(f".{self.link_path.name}.{os.getpid()}.tmp")
        try:
            self.link_path.parent.mkdir(parents=True, exist_ok=True)
            temporary.unlink(missing_ok=True)
            os.symlink(target, temporary)
            os.replace(temporary, self.link_path)  # atomic: a host never sees a missing or half link
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise write_error(exc, self.link_path) from exc

    def _reset(self) -> None:
        """The board resets: the port vanishes, comes back, and the device starts in human mode."""
        self.stats.resets += 1
        log.info("virtual board: reset %d", self.stats.resets)
        self._power_off()
        if self._stop.wait(RESET_DOWNTIME_S):
            return
        self._power_on()

    # ---- the device loop --------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            self._serve_until_stopped()
        except Exception:  # a bug in the board must show, not leave a silent dead port
            log.exception("the virtual board stopped on an error")
            raise

    def _serve_until_stopped(self) -> None:
        while not self._stop.is_set():
            master = self._master
            if master is None:
                return
            streaming = self._capture is not None and self._capture.sensor != 0
            wait_write = [master] if streaming and not self.realtime else []
            try:
                ready, writable, _ = select.select([master, self._wake_r], wait_write, [], _REALTIME_POLL_S if streaming else _POLL_S)
            except (OSError, ValueError):
                return
            if streaming and (writable or self.realtime):
                self._stream()
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            if self._pending_reset and not self._stop.is_set():
                self._pending_reset = False
                self._reset()
                continue
            assert self._device is not None
            self._device.check_idle()
            if master not in ready:
                continue
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:  # no host has the port open; wait for one
                    time.sleep(_POLL_S)
                    continue
                raise
            self.stats.bytes_in += len(data)
            data = self._degrade(data)
            if self.faults.rx_buffer and len(data) > self.faults.rx_buffer:
                # Everything that arrived while the device was busy beyond its buffer is lost.
                self.stats.overflowed += len(data) - self.faults.rx_buffer
                data = data[: self.faults.rx_buffer]
            self._device.receive(data)
            if self._pending_reset:
                self._pending_reset = False
                self._reset()

    def _stream(self) -> None:
        """Send the running take's next samples: a batch when the host can take it, or what the clock says is due."""
        capture = self._capture
        assert capture is not None
        capture.check()
        if not capture.sensor:
            return
        fmt = protocol.SAMPLE_FORMATS[protocol.Sensor(capture.sensor)]
        if self._clock[0] != capture.takes:
            self._clock = (capture.takes, time.monotonic())
        if self.realtime:
            due = int((time.monotonic() - self._clock[1]) * capture.rate_hz) - capture.counted
        else:
            due = _FAST_BATCH_FRAMES * fmt.samples_per_frame
        hit = self.faults.reset_in_take == capture.takes and not self._reset_fired
        limit = int(RESET_AFTER_S * capture.rate_hz)
        if hit:
            due = min(due, limit - capture.counted)
        self.stats.samples += capture.produce(due)
        if hit and capture.counted >= limit:
            self._reset_fired = True
            self._pending_reset = True

    def _invoke(self, data: bytes) -> bytes:
        if self._runner is None:
            raise RuntimeError("the capture firmware has no model")  # answered as INVOKE_FAILED
        spec = self.info.input
        x = np.frombuffer(data, dtype=spec.dtype)
        y = self._runner.invoke(x)
        if self.faults.slow_ms:
            time.sleep(self.faults.slow_ms / 1000)
        self.stats.inferences += 1
        if self.faults.skew_every and self.stats.inferences % self.faults.skew_every == 0:
            flat = y.reshape(-1).copy()
            flat[0] = flat[0] + 1 if flat[0] < np.iinfo(flat.dtype).max else flat[0] - 1
            return flat.tobytes()
        return y.tobytes()

    def _before_reply(self) -> bool:
        """False (the reply is never sent) when the reset fault fires on this inference."""
        every = self.faults.reset_every
        if every and self.stats.inferences % every == 0:
            self._pending_reset = True
            return False
        return True

    def _send(self, data: bytes) -> None:
        if self._master is None:
            return
        data = self._degrade(data)
        self.stats.bytes_out += len(data)
        view = memoryview(data)
        deadline = time.monotonic() + 1.0
        while view:
            try:
                written = os.write(self._master, view)
                view = view[written:]
            except BlockingIOError:
                # Nobody reads the port: a real board's USB serial drops output then, too.
                if time.monotonic() > deadline:
                    self.stats.unsent += len(view)
                    return
                select.select([], [self._master], [], 0.05)
            except OSError:
                return

    def _degrade(self, data: bytes) -> bytes:
        if not (self.faults.noise or self.faults.drop):
            return data
        out = bytearray()
        for byte in data:
            roll = self._random.random()
            if roll < self.faults.drop:
                self.stats.dropped += 1
                continue
            if roll < self.faults.drop + self.faults.noise:
                self.stats.corrupted += 1
                byte = self._random.randrange(256)
            out.append(byte)
        return bytes(out)
