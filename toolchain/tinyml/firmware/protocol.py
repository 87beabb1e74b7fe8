"""The serial protocol between the host and the firmware: the one definition of it.

Message types, status codes, dtype codes, limits and framing are defined here, and only here
(the dtype sizes are tinyml.model.modelfile's one table). The firmware's `tinyml_protocol.h` is
rendered from these definitions (`render_c_header`, through tinyml.firmware.codegen), the host
side (`tinyml.device.link`) and the Python twin of the firmware (`tinyml.device.protocol_twin`)
import them. It sits in firmware, below device: it is what the firmware speaks.

Two modes
    The firmware starts in *human mode*: it prints readable lines (a banner, predictions the
    app prints, answers to the typed commands `help`, `info` and `run`) for a student with
    the Arduino Serial Monitor. The host switches it into *binary mode* by sending a HELLO
    frame; a frame always starts with a 0x00 byte, which nobody types, so the firmware can
    tell a frame from a typed line in either mode. The host leaves binary mode with a HUMAN
    frame; the firmware also falls back to human mode by itself after `BINARY_IDLE_TIMEOUT_MS`
    without a valid frame, so a crashed host never leaves a board mute. A frame other than
    HELLO in human mode is answered with the error NEED_HANDSHAKE (this is how the host learns
    that the board was reset).

Framing (both directions)
    wire  = 0x00, COBS(frame), 0x00
    frame = version u8, type u8, seq u8, payload length u16, payload, CRC u16
    All integers are little-endian. The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial
    value 0xFFFF) over everything before it. COBS removes every 0x00 from the frame, so 0x00
    only ever delimits frames: after garbage, a truncated frame or a bad CRC the receiver
    drops what it has and starts again at the next 0x00. A decoded frame is at most
    `MAX_FRAME_BYTES`, its COBS form at most `MAX_ENCODED_BYTES`, which bounds the firmware's
    fixed receive buffer; there is no heap use on the device. Every 0x00 ends the frame
    before it (if any bytes came) and opens the next, so a frame is found whatever garbage
    came before it. Only in human mode does the firmware go back to reading typed text after
    a frame (it expects nothing but HELLO there).

Requests and replies
    The reply to request type T has type T | 0x80 and echoes the request's sequence number, so
    the host discards a late reply to an earlier, retried request. A failed request is
    answered by ERROR: status u8, request type u8, short text.

    HELLO   req: host protocol version u8
            rep: version u8, rx buffer bytes u16, max frame bytes u16
    INFO    req: -
            rep: version u8, rx buffer bytes u16, arena used bytes u32, label count u16,
                 firmware version, board id, model hash (each: length u8 + UTF-8),
                 input tensor, output tensor (each: dtype u8, dims u8, dims x i32 shape,
                 scale f32, zero point i32), app name (length u8 + UTF-8)
            The app name came last and later: a reply without it is from older firmware.
            Firmware without a model (the capture app) reports an empty model hash and
            tensors of 0 dimensions.
    LABELS  req: first index u16
            rep: first index u16, label count u16, n u8, n x (length u8 + UTF-8); as many
                 labels as fit in one frame, the host asks again from the next index
    INPUT   req: offset u32, bytes of the input tensor at that offset
            rep: bytes received so far u32
            Chunks go in order; each is acknowledged before the next is sent, and a wire frame
            is never longer than the device's receive buffer, so a 64-byte UART buffer cannot
            overflow. Re-sending a chunk is harmless (retries are safe).
    INVOKE  req: -
            rep: latency us u32, output bytes u32, the first output bytes that fit
            The device remembers the sequence number of its last invoke: the same INVOKE
            sent again (a retry after a lost reply) is answered from the kept result, not run
            twice, because an invoke may overwrite the input tensor in the arena.
    OUTPUT  req: offset u32
            rep: offset u32, output bytes from that offset (as many as fit)
    HUMAN   req: -
            rep: -   (then the device is in human mode)

Capture (the capture app; other firmware answers UNKNOWN_TYPE)
    CAPTURE_START   req: sensor u8 (a Sensor code)
                    rep: sensor u8, dtype u8, channels u8, samples per frame u8, rate Hz f32
                    The sample counter starts again at 0 and SAMPLES frames follow, unasked.
                    A sensor the firmware lacks is refused with NO_SENSOR.
    CAPTURE_STATUS  req: -
                    rep: sensor u8 (0: not capturing), samples counted u32, samples lost u32
                    The host's keep-alive during a take: it also keeps binary mode alive.
    CAPTURE_STOP    req: -
                    rep: as CAPTURE_STATUS, for the take that just stopped
    SAMPLES         device to host only, unasked (type SAMPLES | 0x80, seq counts frames):
                    first sample index u32, sample count u8, samples (count x channels
                    values of the dtype, little-endian, channel by channel per sample).
                    The index counts every sample the sensor produced since CAPTURE_START,
                    so a frame lost on the wire, or samples the device could not keep (its
                    counter `lost`), show on the host as a gap in the indices.
    IMU samples are ax, ay, az in g and gx, gy, gz in degrees per second (float32) at the
    board profile's IMU rate; microphone samples are PCM16 (int16) at 16 kHz.
    The device leaves capture when it leaves binary mode (HUMAN, or the idle timeout).
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

from tinyml.core.errors import DeviceError
from tinyml.firmware.codegen import banner
from tinyml.model import modelfile

if TYPE_CHECKING:  # numpy is imported only by those who decode samples
    import numpy as np

PROTOCOL_VERSION = 1

# ---- limits ------------------------------------------------------------------------------
HEADER_BYTES = 5  # version, type, seq, payload length u16
CRC_BYTES = 2
MAX_FRAME_BYTES = 254  # decoded frame: header + payload + CRC
MAX_PAYLOAD_BYTES = MAX_FRAME_BYTES - HEADER_BYTES - CRC_BYTES
# COBS adds one code byte, and a second one when a frame is a single run of 254 non-zero bytes.
MAX_ENCODED_BYTES = MAX_FRAME_BYTES + 2  # the bytes between two delimiters
# Per frame on the wire, at most: header, CRC, COBS code bytes and the two 0x00 delimiters.
WIRE_OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES + 2 + 2
MAX_STRING_BYTES = 48  # firmware version, board id, model hash, one label
MAX_DIMS = 6
INPUT_CHUNK_HEADER_BYTES = 4  # the u32 offset in front of INPUT data
OUTPUT_CHUNK_HEADER_BYTES = 4
INVOKE_REPLY_HEADER_BYTES = 8
MAX_LINE_BYTES = 80  # one typed human-mode command
BINARY_IDLE_TIMEOUT_MS = 10_000
DELIMITER = 0x00
RESPONSE_BIT = 0x80


class MessageType(IntEnum):
    HELLO = 0x01
    INFO = 0x02
    LABELS = 0x03
    INPUT = 0x10
    INVOKE = 0x11
    OUTPUT = 0x12
    HUMAN = 0x20
    CAPTURE_START = 0x30
    CAPTURE_STATUS = 0x31
    CAPTURE_STOP = 0x32
    SAMPLES = 0x33  # sent by the device only, unasked
    ERROR = 0xFF


class Status(IntEnum):
    OK = 0
    UNKNOWN_TYPE = 1
    BAD_LENGTH = 2
    BAD_VERSION = 3
    BAD_OFFSET = 4
    INPUT_INCOMPLETE = 5
    INVOKE_FAILED = 6
    NEED_HANDSHAKE = 7
    NO_RESULT = 8
    NO_SENSOR = 9


# The one table from status code to text; the C++ header's tinyml::status_text() is rendered from it.
STATUS_TEXT: dict[Status, str] = {
    Status.OK: "ok",
    Status.UNKNOWN_TYPE: "unknown message type",
    Status.BAD_LENGTH: "payload length is wrong for this message",
    Status.BAD_VERSION: "protocol version mismatch",
    Status.BAD_OFFSET: "input chunk offset out of order or past the tensor",
    Status.INPUT_INCOMPLETE: "input tensor not completely received",
    Status.INVOKE_FAILED: "model invoke failed",
    Status.NEED_HANDSHAKE: "device is in human mode, send HELLO first",
    Status.NO_RESULT: "no inference result to read",
    Status.NO_SENSOR: "this firmware has no such sensor",
}

# Tensor dtype codes: TFLite's TensorType numbers, so a code means the same in both worlds.
DTYPE_CODES: dict[str, int] = {"float32": 0, "int32": 2, "uint8": 3, "int16": 7, "int8": 9}
DTYPE_NAMES: dict[int, str] = {code: name for name, code in DTYPE_CODES.items()}
DTYPE_BYTES: dict[str, int] = {name: modelfile.DTYPE_BYTES[name] for name in DTYPE_CODES}




class Sensor(IntEnum):
    """What CAPTURE_START asks for; 0 in a CAPTURE_STATUS reply means no capture."""

    IMU = 1
    MICROPHONE = 2


@dataclass(frozen=True)
class SampleFormat:
    """One sensor's samples on the wire: `channels` values of `dtype` per sample."""

    sensor: Sensor
    kind: str  # the board profile's sensor kind: "imu", "microphone"
    dtype: str
    channels: int

    @property
    def sample_bytes(self) -> int:
        return self.channels * DTYPE_BYTES[self.dtype]

    @property
    def samples_per_frame(self) -> int:
        return (MAX_PAYLOAD_BYTES - SAMPLES_HEADER_BYTES) // self.sample_bytes


SAMPLES_HEADER_BYTES = 5  # first sample index u32, sample count u8
PCM_SAMPLE_RATE_HZ = 16000
SAMPLE_FORMATS: dict[Sensor, SampleFormat] = {
    Sensor.IMU: SampleFormat(Sensor.IMU, "imu", "float32", 6),
    Sensor.MICROPHONE: SampleFormat(Sensor.MICROPHONE, "microphone", "int16", 1),
}
# The wire types of frames a device sends without being asked (a host keeps them apart from replies).
UNASKED_TYPES = frozenset({MessageType.SAMPLES | RESPONSE_BIT})
SENSOR_BY_KIND: dict[str, Sensor] = {f.kind: f.sensor for f in SAMPLE_FORMATS.values()}


def dtype_constant(dtype_name: str) -> str:
    """The C++ constant for a dtype in tinyml_protocol.h, e.g. "int8" -> "kDtypeInt8"."""
    if dtype_name not in DTYPE_CODES:
        raise ValueError(f"the protocol has no dtype {dtype_name!r} (known: {', '.join(DTYPE_CODES)})")
    return "kDtype" + dtype_name[0].upper() + dtype_name[1:]


# ---- host-side errors ----------------------------------------------------------------------
class ProtocolError(DeviceError):
    """The serial link or the protocol failed (the base of the errors below)."""


class NoResponse(ProtocolError):
    """Nothing came back before the timeout."""


class PartialFrame(ProtocolError):
    """Bytes came back, but not a whole frame, before the timeout."""


class ChecksumError(ProtocolError):
    """A frame arrived with a CRC that does not match: line noise or lost bytes."""


class FrameError(ProtocolError):
    """A frame or payload is malformed (bad COBS, bad length, a payload that does not parse)."""


class DeviceErrorReply(ProtocolError):
    """The device answered with an ERROR frame."""

    def __init__(self, status: int, request_type: int, text: str) -> None:
        self.status = status
        self.request_type = request_type
        self.text = text
        name = Status(status).name if status in Status._value2member_map_ else f"status {status}"
        request = MessageType(request_type).name if request_type in MessageType._value2member_map_ else hex(request_type)
        super().__init__(f"the device refused {request}: {name} ({text})", _STATUS_FIX.get(status, "reset the board and try again"))


_STATUS_FIX = {
    Status.BAD_VERSION: "flash firmware rendered by this version of tinyml (`tinyml render` then `tinyml flash`)",
    Status.INVOKE_FAILED: "the model failed on the board: check `tinyml inspect` for the arena size and ops",
    Status.UNKNOWN_TYPE: "flash firmware rendered by this version of tinyml",
}


# ---- framing ---------------------------------------------------------------------------------
def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF (check value 0x29B1)."""
    return binascii.crc_hqx(data, 0xFFFF)


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("a COBS block has the code 0")
        end = i + code
        if end > n:
            raise FrameError("a COBS block runs past the end of the frame")
        block = data[i + 1 : end]
        if 0 in block:
            raise FrameError("a COBS block holds a 0x00 byte")
        out += block
        i = end
        if code < 255 and i < n:
            out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes = b""
    version: int = PROTOCOL_VERSION


def encode_frame(frame: Frame) -> bytes:
    """The wire bytes of a frame: 0x00, COBS(header + payload + CRC), 0x00."""
    if len(frame.payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(frame.payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    body = struct.pack("<BBBH", frame.version, frame.type, frame.seq & 0xFF, len(frame.payload)) + frame.payload
    body += struct.pack("<H", crc16(body))
    return b"\x00" + cobs_encode(body) + b"\x00"


def decode_frame(encoded: bytes) -> Frame:
    """One frame from the bytes between two delimiters; raises FrameError or ChecksumError."""
    if len(encoded) > MAX_ENCODED_BYTES:
        raise FrameError(f"a frame of {len(encoded)} bytes is longer than the limit of {MAX_ENCODED_BYTES}")
    body = cobs_decode(encoded)
    if len(body) < HEADER_BYTES + CRC_BYTES:
        raise FrameError(f"a frame of {len(body)} bytes is shorter than a header")
    (crc,) = struct.unpack_from("<H", body, len(body) - CRC_BYTES)
    if crc16(body[:-CRC_BYTES]) != crc:
        raise ChecksumError("a frame failed its CRC check")
    version, msg_type, seq, length = struct.unpack_from("<BBBH", body)
    if length != len(body) - HEADER_BYTES - CRC_BYTES:
        raise FrameError(f"a frame says {length} payload bytes but holds {len(body) - HEADER_BYTES - CRC_BYTES}")
    return Frame(type=msg_type, seq=seq, payload=bytes(body[HEADER_BYTES:-CRC_BYTES]), version=version)


class FrameDecoder:
    """Splits a byte stream into frames, dropping garbage, truncated and corrupt frames.

    `feed` never raises: defects are counted in `errors` (by error class name) and the latest
    is kept in `last_error`, so a caller that times out can say why nothing good arrived.
    Bytes outside frames (human-mode text) are collected in `text` for whoever wants them.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_frame = False
        self._overflow = False
        self.errors: dict[str, int] = {}
        self.last_error: ProtocolError | None = None
        self.text = bytearray()

    @property
    def partial(self) -> bool:
        """True when the bytes of an unfinished frame are waiting for their delimiter."""
        return self._in_frame and (bool(self._buffer) or self._overflow)

    def reset(self) -> None:
        self._buffer.clear()
        self._in_frame = False
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        for byte in data:
            if byte == DELIMITER:
                # Every 0x00 ends the frame before it and opens the next, so whatever
                # garbage came first, the byte after a delimiter starts a fresh frame.
                if self._in_frame and (self._buffer or self._overflow):
                    self._finish(frames)
                self._in_frame = True
                self._buffer.clear()
                self._overflow = False
            elif not self._in_frame:
                self.text.append(byte)
            elif len(self._buffer) >= MAX_ENCODED_BYTES:
                self._overflow = True
            else:
                self._buffer.append(byte)
        return frames

    def _finish(self, frames: list[Frame]) -> None:
        try:
            if self._overflow:
                raise FrameError(f"a frame ran past {MAX_ENCODED_BYTES} bytes without a delimiter")
            frames.append(decode_frame(bytes(self._buffer)))
        except ProtocolError as exc:
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            self.last_error = exc


# ---- payloads --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorSpec:
    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    @property
    def byte_size(self) -> int:
        return modelfile.byte_size(self.shape, self.dtype)

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape), "scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class DeviceInfo:
    """What INFO (plus LABELS) tells about the firmware and its model."""

    protocol_version: int
    firmware_version: str
    board_id: str
    model_hash: str
    arena_used_bytes: int
    rx_buffer_bytes: int
    input: TensorSpec
    output: TensorSpec
    label_count: int = 0
    labels: tuple[str, ...] = field(default=())
    app: str = ""  # the firmware app; "" from firmware older than the field

    def to_dict(self) -> dict:
        return {
            "protocol_version": self.protocol_version,
            "firmware_version": self.firmware_version,
            "app": self.app,
            "board_id": self.board_id,
            "model_hash": self.model_hash,
            "arena_used_bytes": self.arena_used_bytes,
            "rx_buffer_bytes": self.rx_buffer_bytes,
            "input": self.input.to_dict(),
            "output": self.output.to_dict(),
            "labels": list(self.labels),
        }


class PayloadReader:
    """Reads little-endian fields off a payload; running short is a FrameError, not an IndexError."""

    def __init__(self, payload: bytes, what: str) -> None:
        self._data = payload
        self._pos = 0
        self._what = what

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self._pos + size > len(self._data):
            raise FrameError(f"the {self._what} payload is {len(self._data)} bytes, too short")
        values = struct.unpack_from("<" + fmt, self._data, self._pos)
        self._pos += size
        return values

    def string(self) -> str:
        (length,) = self.take("B")
        if self._pos + length > len(self._data):
            raise FrameError(f"a string in the {self._what} payload runs past its end")
        text = self._data[self._pos : self._pos + length].decode("utf-8", "replace")
        self._pos += length
        return text

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def rest(self) -> bytes:
        data = self._data[self._pos :]
        self._pos = len(self._data)
        return data


def pack_string(text: str) -> bytes:
    raw = text.encode("utf-8")[:MAX_STRING_BYTES]
    return struct.pack("<B", len(raw)) + raw


def pack_tensor(spec: TensorSpec) -> bytes:
    dims = spec.shape[:MAX_DIMS]
    return struct.pack(f"<BB{len(dims)}ifi", DTYPE_CODES[spec.dtype], len(dims), *dims, spec.scale, spec.zero_point)


def _read_tensor(reader: PayloadReader) -> TensorSpec:
    code, dims = reader.take("BB")
    if dims > MAX_DIMS:
        raise FrameError(f"a tensor in the INFO payload has {dims} dimensions (at most {MAX_DIMS})")
    shape = reader.take(f"{dims}i") if dims else ()
    scale, zero_point = reader.take("fi")
    return TensorSpec(DTYPE_NAMES.get(code, f"dtype{code}"), tuple(int(d) for d in shape), float(scale), int(zero_point))


def pack_info(info: DeviceInfo) -> bytes:
    return (
        struct.pack("<BHIH", info.protocol_version, info.rx_buffer_bytes, info.arena_used_bytes, info.label_count)
        + pack_string(info.firmware_version)
        + pack_string(info.board_id)
        + pack_string(info.model_hash)
        + pack_tensor(info.input)
        + pack_tensor(info.output)
        + pack_string(info.app)
    )


def unpack_info(payload: bytes) -> DeviceInfo:
    reader = PayloadReader(payload, "INFO")
    version, rx_buffer, arena, label_count = reader.take("BHIH")
    firmware, board, model_hash = reader.string(), reader.string(), reader.string()
    tensor_in, tensor_out = _read_tensor(reader), _read_tensor(reader)
    return DeviceInfo(
        protocol_version=version,
        firmware_version=firmware,
        board_id=board,
        model_hash=model_hash,
        arena_used_bytes=arena,
        rx_buffer_bytes=rx_buffer,
        input=tensor_in,
        output=tensor_out,
        label_count=label_count,
        app=reader.string() if reader.remaining else "",
    )


def pack_labels(labels: list[str] | tuple[str, ...], start: int) -> bytes:
    """A LABELS reply: as many labels from `start` as fit in one frame."""
    packed = bytearray()
    count = 0
    for label in labels[start:]:
        item = pack_string(label)
        if 5 + len(packed) + len(item) > MAX_PAYLOAD_BYTES or count == 255:
            break
        packed += item
        count += 1
    return struct.pack("<HHB", start, len(labels), count) + bytes(packed)


def unpack_labels(payload: bytes) -> tuple[int, int, list[str]]:
    """(first index, total label count, labels in this frame) of a LABELS reply."""
    reader = PayloadReader(payload, "LABELS")
    start, total, count = reader.take("HHB")
    return start, total, [reader.string() for _ in range(count)]


def unpack_error(payload: bytes) -> DeviceErrorReply:
    reader = PayloadReader(payload, "ERROR")
    status, request_type = reader.take("BB")
    return DeviceErrorReply(status, request_type, reader.rest().decode("utf-8", "replace"))


def pack_error(status: Status, request_type: int) -> bytes:
    return struct.pack("<BB", status, request_type & 0xFF) + STATUS_TEXT[status].encode("ascii")


@dataclass(frozen=True)
class CaptureStarted:
    """The CAPTURE_START reply: what the SAMPLES frames of this take carry."""

    sensor: int
    dtype: str
    channels: int
    samples_per_frame: int
    rate_hz: float


@dataclass(frozen=True)
class CaptureStatus:
    """The CAPTURE_STATUS and CAPTURE_STOP reply."""

    sensor: int  # 0 when not capturing
    samples: int  # counted since CAPTURE_START
    lost: int  # samples the device could not keep


@dataclass(frozen=True)
class Samples:
    """One SAMPLES frame: `values` has shape (count, channels)."""

    first: int
    values: np.ndarray


def pack_capture_started(started: CaptureStarted) -> bytes:
    return struct.pack("<BBBBf", started.sensor, DTYPE_CODES[started.dtype], started.channels, started.samples_per_frame, started.rate_hz)


def unpack_capture_started(payload: bytes) -> CaptureStarted:
    sensor, dtype, channels, per_frame, rate = PayloadReader(payload, "CAPTURE_START").take("BBBBf")
    if dtype not in DTYPE_NAMES or channels < 1:
        raise FrameError(f"the CAPTURE_START reply names dtype {dtype} with {channels} channels")
    return CaptureStarted(sensor, DTYPE_NAMES[dtype], channels, per_frame, float(rate))


def pack_capture_status(status: CaptureStatus) -> bytes:
    return struct.pack("<BII", status.sensor, status.samples, status.lost)


def unpack_capture_status(payload: bytes) -> CaptureStatus:
    return CaptureStatus(*PayloadReader(payload, "CAPTURE_STATUS").take("BII"))


def pack_samples(first: int, values: np.ndarray) -> bytes:
    """A SAMPLES payload from (count, channels) values already of the wire dtype."""
    return struct.pack("<IB", first & 0xFFFFFFFF, values.shape[0]) + values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()


def unpack_samples(payload: bytes, started: CaptureStarted) -> Samples:
    import numpy as np

    reader = PayloadReader(payload, "SAMPLES")
    first, count = reader.take("IB")
    data = reader.rest()
    size = DTYPE_BYTES[started.dtype] * started.channels
    if len(data) != count * size:
        raise FrameError(f"a SAMPLES frame says {count} samples but holds {len(data)} bytes")
    values = np.frombuffer(data, dtype=np.dtype(started.dtype).newbyteorder("<")).reshape(count, started.channels)
    return Samples(int(first), values.astype(started.dtype))


def input_chunk_bytes(rx_buffer_bytes: int) -> int:
    """Input data per INPUT frame so that the whole wire frame fits the device's receive buffer."""
    frame_limit = min(rx_buffer_bytes, MAX_ENCODED_BYTES + 2)
    chunk = frame_limit - WIRE_OVERHEAD_BYTES - INPUT_CHUNK_HEADER_BYTES
    if chunk < 1:
        raise ProtocolError(f"the device reports a receive buffer of {rx_buffer_bytes} bytes, too small for one frame", f"the receive buffer must hold at least {WIRE_OVERHEAD_BYTES + INPUT_CHUNK_HEADER_BYTES + 1} bytes")
    return chunk


def render_c_header() -> str:
    """The firmware's `tinyml_protocol.h`, rendered from the definitions above."""
    lines = [
        banner(__name__),
        "#ifndef TINYML_PROTOCOL_H_",
        "#define TINYML_PROTOCOL_H_",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "namespace tinyml {",
        "",
        f"constexpr uint8_t kProtocolVersion = {PROTOCOL_VERSION};",
        "",
        "// limits",
    ]
    limits = {
        "kHeaderBytes": HEADER_BYTES,
        "kCrcBytes": CRC_BYTES,
        "kMaxFrameBytes": MAX_FRAME_BYTES,
        "kMaxPayloadBytes": MAX_PAYLOAD_BYTES,
        "kMaxEncodedBytes": MAX_ENCODED_BYTES,
        "kMaxStringBytes": MAX_STRING_BYTES,
        "kMaxDims": MAX_DIMS,
        "kMaxLineBytes": MAX_LINE_BYTES,
        "kInputChunkHeaderBytes": INPUT_CHUNK_HEADER_BYTES,
        "kOutputChunkHeaderBytes": OUTPUT_CHUNK_HEADER_BYTES,
        "kInvokeReplyHeaderBytes": INVOKE_REPLY_HEADER_BYTES,
        "kSamplesHeaderBytes": SAMPLES_HEADER_BYTES,
    }
    lines += [f"constexpr size_t {name} = {value};" for name, value in limits.items()]
    lines += [
        f"constexpr uint32_t kBinaryIdleTimeoutMs = {BINARY_IDLE_TIMEOUT_MS};",
        f"constexpr uint8_t kDelimiter = 0x{DELIMITER:02X};",
        f"constexpr uint8_t kResponseBit = 0x{RESPONSE_BIT:02X};",
        "",
        "// message types (a reply has kResponseBit set)",
    ]
    lines += [f"constexpr uint8_t kMsg{_camel(m.name)} = 0x{m.value:02X};" for m in MessageType]
    lines += ["", "// status codes of an ERROR reply"]
    lines += [f"constexpr uint8_t kStatus{_camel(s.name)} = {s.value};" for s in Status]
    lines += ["", "// capture: sensor codes and the format of each one's samples"]
    lines += [f"constexpr uint8_t kSensor{_camel(s.name)} = {s.value};" for s in Sensor]
    for fmt in SAMPLE_FORMATS.values():
        name = _camel(fmt.sensor.name)
        lines += [
            f"constexpr uint8_t k{name}Dtype = {DTYPE_CODES[fmt.dtype]};  // {fmt.dtype}",
            f"constexpr uint8_t k{name}Channels = {fmt.channels};",
            f"constexpr uint8_t k{name}SamplesPerFrame = {fmt.samples_per_frame};",
        ]
    lines += [f"constexpr uint32_t kPcmSampleRateHz = {PCM_SAMPLE_RATE_HZ};"]
    lines += ["", "// tensor dtype codes (TFLite TensorType numbers)"]
    lines += [f"constexpr uint8_t {dtype_constant(name)} = {code};" for name, code in DTYPE_CODES.items()]
    lines += ["", "inline const char* status_text(uint8_t status) {", "  switch (status) {"]
    lines += [f'    case {s.value}: return "{STATUS_TEXT[s]}";' for s in Status]
    lines += ['    default: return "unknown status";', "  }", "}", "", "inline size_t dtype_bytes(uint8_t dtype) {", "  switch (dtype) {"]
    lines += [f"    case {DTYPE_CODES[name]}: return {size};" for name, size in DTYPE_BYTES.items()]
    lines += ["    default: return 1;", "  }", "}", "", "inline const char* dtype_name(uint8_t dtype) {", "  switch (dtype) {"]
    lines += [f'    case {code}: return "{name}";' for name, code in DTYPE_CODES.items()]
    lines += ['    default: return "unknown";', "  }", "}", "", "}  // namespace tinyml", "", "#endif  // TINYML_PROTOCOL_H_", ""]
    return "\n".join(lines)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
