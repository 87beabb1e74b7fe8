"""The host side of the serial protocol (see tinyml.firmware.protocol), over pyserial.

`DeviceLink(port)` opens a device path or any pyserial URL (`socket://host:port` for a board
behind ser2net, `rfc2217://`, `loop://`), switches the firmware into binary mode with a HELLO
handshake, and offers `info()` and `infer(bytes)`. On close it switches the firmware back to
human mode, so a student's Serial Monitor shows predictions again.

Every read has a deadline. Every request is idempotent by design (see tinyml.firmware.protocol), so a
lost or corrupt frame costs one retry of that request, with the same sequence number. When
the board resets (the port vanishes, or the firmware answers NEED_HANDSHAKE because it woke
up in human mode), the link reopens the port, shakes hands again, checks that the board
still runs the same model, and starts the interrupted inference over.
"""

from __future__ import annotations

import logging
import struct
import time
from dataclasses import asdict, dataclass

from tinyml.firmware import protocol
from tinyml.core.errors import DeviceError, InputError
from tinyml.firmware.protocol import (
    ChecksumError,
    DeviceErrorReply,
    DeviceInfo,
    Frame,
    FrameDecoder,
    FrameError,
    MessageType,
    NoResponse,
    PartialFrame,
    ProtocolError,
    Status,
)

log = logging.getLogger("tinyml.link")

DEFAULT_BAUDRATE = 115200
# Seconds to wait for the reply to one request (INVOKE has its own, longer, deadline).
REPLY_TIMEOUT_S = 0.5
INVOKE_TIMEOUT_S = 10.0
# Retries of one request after a lost or corrupt frame.
REQUEST_RETRIES = 6
# How long a board may take to answer its first HELLO (USB enumeration, a bootloader, a reset).
HANDSHAKE_TIMEOUT_S = 5.0
# How long the port may stay away after a board reset before the link gives up.
RECONNECT_TIMEOUT_S = 10.0
# Inferences restarted from scratch after a reset before the link gives up on a sample.
INFER_RESTARTS = 3
# Granularity of serial reads: short, so that deadlines are honoured closely.
_READ_SLICE_S = 0.02
_WRITE_TIMEOUT_S = 2.0
# How often a lost port is tried again.
_REOPEN_POLL_S = 0.1


@dataclass
class LinkStats:
    """Counters for a link's lifetime: what a flaky cable or a reset cost."""

    requests: int = 0
    retries: int = 0
    reconnects: int = 0
    bad_frames: int = 0
    wire_bytes_out: int = 0
    wire_bytes_in: int = 0
    payload_bytes_out: int = 0
    payload_bytes_in: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# The slowest and fastest rates a POSIX serial driver names (B50 .. B4000000).
MIN_BAUDRATE = 50
MAX_BAUDRATE = 4_000_000


class BoardReset(DeviceError):
    """The board reset (or fell back to human mode) during a request or a stream: what it was doing is lost.

    The link has reconnected and shaken hands again before raising it; the caller decides
    what to do with the lost work (capture drops the take that was running).
    """


class _PortLost(Exception):
    """The serial port went away (board reset, cable pulled): internal to this module."""


class _DeviceWasReset(Exception):
    """The firmware answered NEED_HANDSHAKE: it restarted and lost its state."""


def open_port(port: str, baudrate: int = DEFAULT_BAUDRATE):
    """A pyserial port for a device path or URL, or a DeviceError that says what to check."""
    import serial

    if isinstance(baudrate, bool) or not isinstance(baudrate, int) or not MIN_BAUDRATE <= baudrate <= MAX_BAUDRATE:
        raise InputError(f"baud rate {baudrate!r} is not a serial speed", f"give a baud rate from {MIN_BAUDRATE} to {MAX_BAUDRATE:,}; the firmware uses 115200")
    if baudrate == 1200:
        # Opening at 1200 bps is the "touch" that resets Arduino boards into their bootloader.
        raise InputError("1200 baud resets an Arduino board into its bootloader", "use the firmware's baud rate, 115200 by default")
    # A write timeout keeps a stalled USB or socket write from hanging the host; pyserial's RFC 2217
    # client refuses one (NotImplementedError). Its writes go to a TCP socket, whose buffer holds far
    # more than one request, and the reply timeouts catch a server that stops answering.
    write_timeout = None if port.lower().startswith("rfc2217://") else _WRITE_TIMEOUT_S
    try:
        handle = serial.serial_for_url(port, baudrate=baudrate, timeout=_READ_SLICE_S, write_timeout=write_timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceError(
            f"could not open serial port {port} ({exc})",
            "check the cable and the port name (`pio device list`), close any Serial Monitor using it, or start `tinyml virtual-board`",
        ) from exc
    return handle


def reopen_port(port: str, baudrate: int, deadline: float | None):
    """The port open again once it is back after a reset or a pulled cable; None if `deadline` passes first.

    The one reconnect loop: the link and the monitor both wait here. `deadline` is a
    time.monotonic() value, or None to wait until the port comes back.
    """
    while True:
        try:
            return open_port(port, baudrate)
        except DeviceError:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(_REOPEN_POLL_S)


class DeviceLink:
    """A binary-protocol session with a board running tinyml firmware (or the virtual board)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        reply_timeout: float = REPLY_TIMEOUT_S,
        invoke_timeout: float = INVOKE_TIMEOUT_S,
        retries: int = REQUEST_RETRIES,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
        reconnect_timeout: float = RECONNECT_TIMEOUT_S,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.reply_timeout = reply_timeout
        self.invoke_timeout = invoke_timeout
        self.retries = retries
        self.handshake_timeout = handshake_timeout
        self.reconnect_timeout = reconnect_timeout
        self.stats = LinkStats()
        self._serial = None
        self._decoder = FrameDecoder()
        self._seq = 0
        self._binary = False
        self._rx_buffer_bytes = protocol.MAX_ENCODED_BYTES + 2
        self._info: DeviceInfo | None = None
        self._slowest_invoke_us = 0
        self._unasked: list[Frame] = []  # frames the device sent on its own (SAMPLES), in order
        self._restart_stream = False  # the request being answered starts a new stream

    # ---- session ----------------------------------------------------------------------------
    def __enter__(self) -> DeviceLink:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> None:
        if self._serial is None:
            self._attach(open_port(self.port, self.baudrate))

    def _attach(self, handle) -> None:
        """Start a fresh session on an open port: nothing read yet, the firmware in human mode."""
        self._serial = handle
        self._serial.reset_input_buffer()
        self._decoder = FrameDecoder()
        self._binary = False

    def close(self) -> None:
        """Switch the firmware back to human mode (best effort) and close the port."""
        if self._serial is None:
            return
        if self._binary:
            try:
                self._request(MessageType.HUMAN, b"", timeout=self.reply_timeout, retries=1)
            except (ProtocolError, _PortLost, _DeviceWasReset):
                log.debug("the device did not confirm the switch back to human mode")
        self._binary = False
        try:
            self._serial.close()
        except (OSError, Exception):  # noqa: BLE001 - a vanished port may fail to close; it is gone either way
            log.debug("closing %s failed", self.port)
        self._serial = None

    def handshake(self) -> None:
        """HELLO: switch the firmware into binary mode (repeated until `handshake_timeout`)."""
        self.open()
        deadline = time.monotonic() + self.handshake_timeout
        last: ProtocolError | None = None
        while True:
            try:
                reply = self._request(MessageType.HELLO, bytes([protocol.PROTOCOL_VERSION]), timeout=self.reply_timeout, retries=0)
                break
            except (NoResponse, PartialFrame, ChecksumError, FrameError) as exc:
                last = exc
            except _PortLost:
                self._reopen()
            if time.monotonic() >= deadline:
                heard = self._heard_text()
                raise DeviceError(
                    f"no tinyml firmware answered on {self.port} within {self.handshake_timeout:.0f} s"
                    + (f" (it printed: {heard!r})" if heard else f" ({type(last).__name__ if last else 'no reply'})"),
                    "flash firmware made by `tinyml render`/`tinyml flash`, check the port and the baud rate, or start `tinyml virtual-board`",
                )
        version, rx_buffer, _max_frame = protocol.PayloadReader(reply.payload, "HELLO").take("BHH")
        if version != protocol.PROTOCOL_VERSION:
            raise DeviceError(f"the firmware speaks protocol {version}, this host speaks {protocol.PROTOCOL_VERSION}", "render and flash the firmware with this version of tinyml")
        self._rx_buffer_bytes = rx_buffer
        self._binary = True
        log.debug("binary mode on %s (device receive buffer %d bytes)", self.port, rx_buffer)

    # ---- requests ---------------------------------------------------------------------------
    def info(self, refresh: bool = False) -> DeviceInfo:
        """INFO and the labels: what the board runs. Cached; `refresh` asks the board again."""
        if self._info is not None and not refresh:
            return self._info
        for _ in range(INFER_RESTARTS + 1):
            try:
                self._info = self._fetch_info()
                return self._info
            except (_PortLost, _DeviceWasReset):
                self._recover()
        raise DeviceError(f"the board on {self.port} kept resetting while reading INFO", "check its power supply and the cable")

    def infer(self, data: bytes) -> tuple[bytes, int]:
        """One inference: the raw input tensor in, (raw output tensor, device latency in µs) out."""
        info = self.info()
        data = bytes(data)
        if len(data) != info.input.byte_size:
            raise DeviceError(f"the input has {len(data)} bytes, the board's model expects {info.input.byte_size}", "quantize the sample to the model's input shape and dtype")
        for _ in range(INFER_RESTARTS + 1):
            try:
                return self._infer_once(data, info.output.byte_size)
            except (_PortLost, _DeviceWasReset):
                self._recover()
        raise DeviceError(f"the board on {self.port} kept resetting during an inference", "check its power supply, the cable and the arena size")

    def leave_binary(self) -> None:
        """Switch the firmware back to human mode and keep the port open (for `tinyml monitor`)."""
        if self._binary:
            try:
                self._request(MessageType.HUMAN, b"", timeout=self.reply_timeout, retries=self.retries)
            except _PortLost:
                self._reopen()  # the board reset, and a board starts in human mode
            self._binary = False

    def request(self, msg_type: MessageType, payload: bytes = b"", *, timeout: float | None = None, restart_stream: bool = False) -> Frame:
        """One request beyond validation's (an app's own, e.g. CAPTURE_START) and its reply.

        Retried like every request; BoardReset when the board reset meanwhile (the link is
        connected again by then, and the firmware is in its start-up state). With
        `restart_stream`, unasked frames that arrived before the reply are dropped: they
        belong to the stream the request replaced.
        """
        self._restart_stream = restart_stream
        try:
            self._ensure_binary()
            return self._request(msg_type, payload, timeout=timeout)
        except (_PortLost, _DeviceWasReset) as exc:
            self._unasked.clear()
            self._recover()
            raise BoardReset(f"the board on {self.port} reset during {msg_type.name}", "what it was doing is lost; the link is connected again") from exc
        finally:
            self._restart_stream = False

    def unasked_frames(self, timeout: float) -> list[Frame]:
        """Frames the device sent on its own (SAMPLES), waiting up to `timeout` s for the first.

        Replies to earlier requests are dropped here; frames that arrive while a request
        waits for its reply are kept for this call. BoardReset when the port went away.
        """
        import serial

        deadline = time.monotonic() + timeout
        while not self._unasked:
            try:
                data = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError) as exc:
                self._unasked.clear()
                self._recover()
                raise BoardReset(f"the port {self.port} went away (the board reset)", "what it was doing is lost; the link is connected again") from exc
            if data:
                self.stats.wire_bytes_in += len(data)
                self._unasked += [frame for frame in self._decoder.feed(data) if frame.type in protocol.UNASKED_TYPES]
                if len(self._decoder.text) > 512:
                    del self._decoder.text[:-256]
            if time.monotonic() >= deadline:
                break
        frames, self._unasked = self._unasked, []
        return frames

    @property
    def serial(self):
        """The open pyserial port (for `tinyml monitor`, which reads human-mode lines)."""
        self.open()
        return self._serial

    # ---- internals --------------------------------------------------------------------------
    def _ensure_binary(self) -> None:
        if not self._binary:
            self.handshake()

    def _fetch_info(self) -> DeviceInfo:
        self._ensure_binary()
        reply = self._request(MessageType.INFO, b"")
        info = protocol.unpack_info(reply.payload)
        labels: list[str] = []
        while len(labels) < info.label_count:
            reply = self._request(MessageType.LABELS, struct.pack("<H", len(labels)))
            start, total, chunk = protocol.unpack_labels(reply.payload)
            if start != len(labels) or not chunk or total != info.label_count:
                raise FrameError(f"the LABELS reply is inconsistent (from {start}, {len(chunk)} of {total})")
            labels += chunk
        return DeviceInfo(**{**info.__dict__, "labels": tuple(labels)})

    def _infer_once(self, data: bytes, expected_output: int) -> tuple[bytes, int]:
        self._ensure_binary()
        chunk = protocol.input_chunk_bytes(self._rx_buffer_bytes)
        for offset in range(0, len(data), chunk):
            piece = data[offset : offset + chunk]
            reply = self._request(MessageType.INPUT, struct.pack("<I", offset) + piece)
            (received,) = protocol.PayloadReader(reply.payload, "INPUT").take("I")
            if received != offset + len(piece):
                raise FrameError(f"the device acknowledged {received} input bytes, {offset + len(piece)} were sent")
            self.stats.payload_bytes_out += len(piece)
        reply = self._request(MessageType.INVOKE, b"", timeout=self._invoke_deadline())
        reader = protocol.PayloadReader(reply.payload, "INVOKE")
        latency_us, total = reader.take("II")
        output = bytearray(reader.rest())
        if total != expected_output:
            raise DeviceError(f"the board returned {total} output bytes, its model's output has {expected_output}", "render and flash the firmware again for this model")
        while len(output) < total:
            reply = self._request(MessageType.OUTPUT, struct.pack("<I", len(output)))
            reader = protocol.PayloadReader(reply.payload, "OUTPUT")
            (offset,) = reader.take("I")
            piece = reader.rest()
            if offset != len(output) or not piece:
                raise FrameError(f"the OUTPUT reply starts at {offset}, {len(output)} was asked")
            output += piece
        self.stats.payload_bytes_in += len(output)
        self._slowest_invoke_us = max(self._slowest_invoke_us, int(latency_us))
        return bytes(output[:total]), int(latency_us)

    def _invoke_deadline(self) -> float:
        """`invoke_timeout` until an inference has been timed, then a margin over the slowest seen.

        So a lost INVOKE frame costs about one inference time, not the generous first deadline.
        """
        if not self._slowest_invoke_us:
            return self.invoke_timeout
        return min(self.invoke_timeout, self.reply_timeout + 2 * self._slowest_invoke_us / 1e6)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _request(self, msg_type: MessageType, payload: bytes, *, timeout: float | None = None, retries: int | None = None) -> Frame:
        """Send one request and return its reply, retrying (same sequence number) on a lost frame."""
        self.open()
        seq = self._next_seq()
        wire = protocol.encode_frame(Frame(int(msg_type), seq, payload))
        attempts = 1 + (self.retries if retries is None else retries)
        # On a slow UART the bytes themselves take time: the request and the longest reply.
        wait = (self.reply_timeout if timeout is None else timeout) + (len(wire) + protocol.MAX_ENCODED_BYTES + 2) * 10 / self.baudrate
        last: ProtocolError | None = None
        self.stats.requests += 1
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
                log.debug("retrying %s (attempt %d): %s", msg_type.name, attempt + 1, last)
            self._write(wire)
            try:
                return self._await_reply(msg_type, seq, wait)
            except DeviceErrorReply as exc:
                if exc.status == Status.NEED_HANDSHAKE and msg_type == MessageType.HUMAN:
                    # Already in human mode (the first reply was lost): what was asked is done.
                    return Frame(int(MessageType.HUMAN) | protocol.RESPONSE_BIT, seq)
                if exc.status == Status.NEED_HANDSHAKE and msg_type != MessageType.HELLO:
                    raise _DeviceWasReset() from exc
                raise
            except (NoResponse, PartialFrame, ChecksumError, FrameError) as exc:
                last = exc
        assert last is not None
        raise type(last)(f"{last.problem} ({msg_type.name} to {self.port}, {attempts} attempts)", "check the cable and the port; a board that resets repeatedly may lack power")

    def _write(self, wire: bytes) -> None:
        import termios

        import serial

        try:
            self._serial.write(wire)
            self._serial.flush()
        except serial.SerialTimeoutException:
            log.debug("write to %s timed out", self.port)
        except (serial.SerialException, OSError, termios.error) as exc:
            raise _PortLost() from exc
        self.stats.wire_bytes_out += len(wire)

    def _await_reply(self, msg_type: MessageType, seq: int, timeout: float) -> Frame:
        import serial

        deadline = time.monotonic() + timeout
        errors_before = sum(self._decoder.errors.values())
        want = int(msg_type) | protocol.RESPONSE_BIT
        while True:
            try:
                data = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise _PortLost() from exc
            if data:
                self.stats.wire_bytes_in += len(data)
                frames = self._decoder.feed(data)
                for index, frame in enumerate(frames):
                    if frame.type in protocol.UNASKED_TYPES:
                        self._unasked.append(frame)  # a stream interleaved with the reply
                        continue
                    if frame.seq != seq:
                        continue  # a late reply to an earlier request
                    if frame.type == MessageType.ERROR:
                        raise protocol.unpack_error(frame.payload)
                    if frame.type == want:
                        if self._restart_stream:
                            self._unasked.clear()  # what came before the reply belongs to the old stream
                        # A stream's frames that came in the same read as the reply are not lost.
                        self._unasked += [f for f in frames[index + 1 :] if f.type in protocol.UNASKED_TYPES]
                        return frame
                if len(self._decoder.text) > 512:
                    del self._decoder.text[:-256]
                if sum(self._decoder.errors.values()) > errors_before and self._decoder.last_error is not None:
                    # The reply arrived damaged and will not come again: retry now, not at the deadline.
                    self.stats.bad_frames += 1
                    raise type(self._decoder.last_error)(self._decoder.last_error.problem)
            if time.monotonic() >= deadline:
                break
        if self._decoder.partial:
            self._decoder.reset()
            raise PartialFrame(f"only part of a frame arrived within {timeout:.2f} s")
        raise NoResponse(f"no reply within {timeout:.2f} s")

    def _heard_text(self) -> str:
        lines = [line.strip() for line in bytes(self._decoder.text).decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1][:80] if lines else ""

    def _reopen(self) -> None:
        """Close the port and open it again once it is back, within `reconnect_timeout`."""
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:  # noqa: BLE001 - the port is already gone
                log.debug("closing the lost port failed")
            self._serial = None
        self._binary = False
        handle = reopen_port(self.port, self.baudrate, time.monotonic() + self.reconnect_timeout)
        if handle is None:
            raise DeviceError(f"the port {self.port} did not come back within {self.reconnect_timeout:.0f} s after the board reset", "check the cable; the board may need a manual reset")
        self._attach(handle)

    def _recover(self) -> None:
        """After a reset: reconnect if the port went away, shake hands, check the model is the same."""
        self.stats.reconnects += 1
        log.info("the board on %s reset (or fell back to human mode); reconnecting", self.port)
        before = self._info
        for _ in range(INFER_RESTARTS + 1):
            try:
                if self._serial is None or not self._port_alive():
                    self._reopen()
                self._binary = False
                self.handshake()
                self._info = self._fetch_info()
                break
            except _PortLost:
                self._reopen()
            except _DeviceWasReset:
                continue
        else:
            raise DeviceError(f"the board on {self.port} did not come back after a reset", "reset it by hand and run again (with --resume)")
        if before is not None and self._info.model_hash != before.model_hash:
            raise DeviceError(f"after a reset the board runs model {self._info.model_hash}, before it ran {before.model_hash}", "flash the model you are validating, then run again with --resume")

    def _port_alive(self) -> bool:
        try:
            self._serial.in_waiting  # noqa: B018 - raises when the port has gone
            return True
        except Exception:  # noqa: BLE001 - any failure means the port has gone
            return False
