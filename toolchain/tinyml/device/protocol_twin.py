"""The Python twin of the firmware's protocol server (firmware_templates/common/protocol_server.cpp).

The virtual board runs this on a pseudo-terminal. It follows the C++ server step for step:
the same modes, frame handling, replies, errors and human-mode lines, so that a host that
works against the virtual board works against the firmware; tests/test_firmware_protocol.py
drives the compiled C++ with the same host code to keep the two honest.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinyml.firmware import protocol
from tinyml.firmware.protocol import DeviceInfo, Frame, MessageType, Status

FIRMWARE_VERSION = "virtual-1"
_COMMANDS = (b"help", b"info", b"run")


@dataclass
class InvokeResult:
    output: bytes
    latency_us: int


class ProtocolTwin:
    """Bytes from the host in (`receive`), bytes to the host out (through `write`).

    `invoke(input_bytes) -> output_bytes` runs the model; `info` describes the board (its
    `labels` are served by LABELS). `clock_us` is the device's microsecond clock.
    """

    def __init__(
        self,
        info: DeviceInfo,
        invoke: Callable[[bytes], bytes],
        write: Callable[[bytes], None],
        clock_us: Callable[[], int] | None = None,
    ) -> None:
        self.info = info
        self._invoke = invoke
        self._write = write
        self._clock_us = clock_us or (lambda: time.perf_counter_ns() // 1000)
        self._rx = bytearray()
        self._in_frame = False
        self._overflow = False
        self.binary = False
        self._last_frame_us = 0
        self._input = bytearray(info.input.byte_size)
        self._input_received = 0
        self._result: InvokeResult | None = None
        self._last_invoke_seq = -1
        self.inferences = 0
        # Set by the virtual board to cut an inference short (a reset in mid-run).
        self.before_reply: Callable[[], bool] | None = None
        # An app's own requests (as RequestHandler in protocol_server.h): True when it knew the type.
        self.on_request: Callable[[Frame], bool] | None = None

    # ---- the human side -----------------------------------------------------------------------
    def greet(self) -> None:
        self.print_line(f"tinyml {self.info.firmware_version} on {self.info.board_id}, model {self.info.model_hash}: type help")

    def print_line(self, line: str) -> None:
        if not self.binary:
            self._write(line.encode("utf-8", "replace") + b"\r\n")

    def check_idle(self) -> None:
        """Fall back to human mode when the host has been silent for too long (as poll() does)."""
        if self.binary and self._clock_us() - self._last_frame_us > protocol.BINARY_IDLE_TIMEOUT_MS * 1000:
            self.binary = False
            self._in_frame = False
            self._rx.clear()
            self.print_line("tinyml: back in human mode")

    # ---- bytes in -----------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        self.check_idle()
        for byte in data:
            self._on_byte(byte)
        # As poll(): a whole command sent without a line ending (Arduino Serial Monitor) counts.
        if not self.binary and not self._in_frame and bytes(self._rx) in _COMMANDS:
            self._on_line(self._rx.decode("ascii"))
            self._rx.clear()

    def _on_byte(self, byte: int) -> None:
        if byte == protocol.DELIMITER:
            if self._in_frame and (self._rx or self._overflow):
                if not self._overflow:
                    self._on_frame(bytes(self._rx))
                self._in_frame = self.binary  # as protocol_server.cpp: text again only in human mode
            else:
                self._in_frame = True
            self._rx.clear()
            self._overflow = False
        elif self._in_frame:
            if len(self._rx) < protocol.MAX_ENCODED_BYTES:
                self._rx.append(byte)
            else:
                self._overflow = True
        elif self.binary:
            return
        elif byte in (0x0A, 0x0D):
            if self._rx:
                self._on_line(self._rx.decode("utf-8", "replace").strip())
            self._rx.clear()
        elif len(self._rx) < protocol.MAX_LINE_BYTES:
            self._rx.append(byte)

    def _on_frame(self, encoded: bytes) -> None:
        try:
            frame = protocol.decode_frame(encoded)
        except protocol.ProtocolError:
            return  # garbage or a truncated frame: wait for the next delimiter
        if frame.type & protocol.RESPONSE_BIT:
            return
        if frame.version != protocol.PROTOCOL_VERSION:
            self._error(frame.seq, Status.BAD_VERSION, frame.type)
            return
        if not self.binary and frame.type != MessageType.HELLO:
            self._error(frame.seq, Status.NEED_HANDSHAKE, frame.type)
            return
        self._last_frame_us = self._clock_us()
        self._dispatch(frame)

    def _dispatch(self, frame: Frame) -> None:
        handlers = {
            MessageType.HELLO: self._hello,
            MessageType.INFO: self._info,
            MessageType.LABELS: self._labels,
            MessageType.INPUT: self._input_chunk,
            MessageType.INVOKE: self._invoke_request,
            MessageType.OUTPUT: self._output,
        }
        if frame.type == MessageType.HUMAN:
            self._send(MessageType.HUMAN, frame.seq, b"")
            self.binary = False
            return
        handler = handlers.get(frame.type)
        if handler is None:
            if self.on_request is None or not self.on_request(frame):
                self._error(frame.seq, Status.UNKNOWN_TYPE, frame.type)
            return
        handler(frame)

    # ---- replies ----------------------------------------------------------------------------
    def _send(self, msg_type: int, seq: int, payload: bytes) -> None:
        self._write(protocol.encode_frame(Frame(int(msg_type) | protocol.RESPONSE_BIT, seq, payload)))

    def _error(self, seq: int, status: Status, request_type: int) -> None:
        self._write(protocol.encode_frame(Frame(MessageType.ERROR, seq, protocol.pack_error(status, request_type))))

    # For an app's own requests (the on_request handler), as protocol_server.h offers them.
    def send_frame(self, msg_type: int, seq: int, payload: bytes) -> None:
        """A frame of `msg_type` with the response bit: a reply, or a message sent unasked."""
        self._send(msg_type, seq, payload)

    def error(self, seq: int, status: Status, request_type: int) -> None:
        self._error(seq, status, request_type)

    def _hello(self, frame: Frame) -> None:
        if len(frame.payload) < 1:
            self._error(frame.seq, Status.BAD_LENGTH, frame.type)
            return
        if frame.payload[0] != protocol.PROTOCOL_VERSION:
            self._error(frame.seq, Status.BAD_VERSION, frame.type)
            return
        self.binary = True
        self._input_received = 0
        self._result = None
        self._send(MessageType.HELLO, frame.seq, struct.pack("<BHH", protocol.PROTOCOL_VERSION, self.info.rx_buffer_bytes, protocol.MAX_FRAME_BYTES))

    def _info(self, frame: Frame) -> None:
        self._send(MessageType.INFO, frame.seq, protocol.pack_info(self.info))

    def _labels(self, frame: Frame) -> None:
        if len(frame.payload) != 2:
            self._error(frame.seq, Status.BAD_LENGTH, frame.type)
            return
        (start,) = struct.unpack("<H", frame.payload)
        self._send(MessageType.LABELS, frame.seq, protocol.pack_labels(self.info.labels, start))

    def _input_chunk(self, frame: Frame) -> None:
        if len(frame.payload) < protocol.INPUT_CHUNK_HEADER_BYTES:
            self._error(frame.seq, Status.BAD_LENGTH, frame.type)
            return
        (offset,) = struct.unpack_from("<I", frame.payload)
        data = frame.payload[protocol.INPUT_CHUNK_HEADER_BYTES :]
        received = 0 if offset == 0 else self._input_received
        if offset > received or offset + len(data) > len(self._input):
            self._error(frame.seq, Status.BAD_OFFSET, frame.type)
            return
        self._input[offset : offset + len(data)] = data
        self._input_received = max(received, offset + len(data))
        self._result = None
        self._send(MessageType.INPUT, frame.seq, struct.pack("<I", self._input_received))

    def _invoke_request(self, frame: Frame) -> None:
        if self._result is not None and frame.seq == self._last_invoke_seq:
            self._send_result(frame.seq)  # a retry: answer from the kept result
            return
        if self._input_received != len(self._input):
            self._error(frame.seq, Status.INPUT_INCOMPLETE, frame.type)
            return
        result = self.run_model()
        if result is None:
            self._error(frame.seq, Status.INVOKE_FAILED, frame.type)
            return
        self._result = result
        self._last_invoke_seq = frame.seq
        if self.before_reply is not None and not self.before_reply():
            return  # the board "reset" before it could answer
        self._send_result(frame.seq)

    def run_model(self) -> InvokeResult | None:
        start = self._clock_us()
        try:
            output = self._invoke(bytes(self._input))
        except Exception:  # noqa: BLE001 - the firmware reports any failed invoke as INVOKE_FAILED
            return None
        finally:
            self._input_received = 0
        self.inferences += 1
        return InvokeResult(bytes(output), int(self._clock_us() - start))

    def _send_result(self, seq: int) -> None:
        assert self._result is not None
        room = protocol.MAX_PAYLOAD_BYTES - protocol.INVOKE_REPLY_HEADER_BYTES
        output = self._result.output
        self._send(MessageType.INVOKE, seq, struct.pack("<II", self._result.latency_us, len(output)) + output[:room])

    def _output(self, frame: Frame) -> None:
        if len(frame.payload) != protocol.OUTPUT_CHUNK_HEADER_BYTES:
            self._error(frame.seq, Status.BAD_LENGTH, frame.type)
            return
        if self._result is None:
            self._error(frame.seq, Status.NO_RESULT, frame.type)
            return
        (offset,) = struct.unpack("<I", frame.payload)
        output = self._result.output
        if offset > len(output):
            self._error(frame.seq, Status.BAD_OFFSET, frame.type)
            return
        room = protocol.MAX_PAYLOAD_BYTES - protocol.OUTPUT_CHUNK_HEADER_BYTES
        self._send(MessageType.OUTPUT, frame.seq, struct.pack("<I", offset) + output[offset : offset + room])

    # ---- typed commands ---------------------------------------------------------------------
    def _on_line(self, command: str) -> None:
        if not command:
            return
        if command == "help":
            self.print_line("commands: help (this list), info (board and model), run (one inference on the current input)")
        elif command == "info":
            for line in self.info_lines():
                self.print_line(line)
        elif command == "run":
            result = self.run_model()
            self._result = None
            if result is None:
                self.print_line("run: invoke failed")
            else:
                self.print_line(self.prediction_line(result))
        else:
            self.print_line(f"unknown command '{command}': type help")

    def info_lines(self) -> list[str]:
        info = self.info
        lines = [f"tinyml firmware {info.firmware_version}, protocol {protocol.PROTOCOL_VERSION}, board {info.board_id}"]
        if not info.model_hash:
            return [*lines, f"no model: this is the {info.app or 'unnamed'} app"]
        lines.append(f"model {info.model_hash}, arena {info.arena_used_bytes} bytes used")
        for name, spec in (("input ", info.input), ("output", info.output)):
            shape = "[" + ", ".join(str(d) for d in spec.shape) + "]"
            lines.append(f"{name} {spec.dtype} {shape} scale {spec.scale:.6f} zero point {spec.zero_point}")
        if info.labels:
            lines.append("labels: " + ", ".join(info.labels))
        return lines

    def prediction_line(self, result: InvokeResult) -> str:
        spec = self.info.output
        values = np.frombuffer(result.output, dtype=spec.dtype)
        scores = values.astype(np.float32) if spec.dtype == "float32" else spec.scale * (values.astype(np.float32) - spec.zero_point)
        best = int(np.argmax(scores))
        name = self.info.labels[best] if best < len(self.info.labels) else f"class {best}"
        return f"prediction: {name} score {float(scores[best]):.3f} ({result.latency_us} us)"
