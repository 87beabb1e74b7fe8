"""tinyml.device.link's distinct errors, against a scripted device on a pty that misbehaves on purpose."""

from __future__ import annotations

import os
import select
import struct
import threading
import tty
from collections.abc import Callable

import pytest

from tinyml.firmware import protocol
from tinyml.core.errors import DeviceError
from tinyml.device.link import DeviceLink
from tinyml.firmware.protocol import (
    ChecksumError,
    DeviceErrorReply,
    Frame,
    FrameDecoder,
    MessageType,
    NoResponse,
    PartialFrame,
    Status,
)

Script = Callable[[Frame], bytes]


class ScriptedDevice:
    """Answers every request but HELLO with whatever `script` returns; HELLO with
    `greeting` when given (another sketch's text), else properly."""

    def __init__(self, script: Script, greeting: bytes | None = None) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.script = script
        self.greeting = greeting
        self.requests: list[Frame] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        decoder = FrameDecoder()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if not ready:
                continue
            for frame in decoder.feed(os.read(self.master, 4096)):
                self.requests.append(frame)
                if frame.type == MessageType.HELLO and self.greeting is None:
                    reply = protocol.encode_frame(Frame(frame.type | protocol.RESPONSE_BIT, frame.seq, struct.pack("<BHH", 1, 256, 254)))
                elif frame.type == MessageType.HELLO:
                    reply = self.greeting
                else:
                    reply = self.script(frame)
                os.write(self.master, reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self.slave)


def _wire(frame: Frame) -> bytes:
    return protocol.encode_frame(frame)


def _reply(request: Frame, payload: bytes = b"\x00") -> Frame:
    return Frame(request.type | protocol.RESPONSE_BIT, request.seq, payload)


def _corrupt(request: Frame) -> bytes:
    wire = bytearray(_wire(_reply(request, b"payload")))
    wire[wire.index(b"payload") + 2] ^= 0x10
    return bytes(wire)


CASES: dict[str, tuple[Script, type[Exception]]] = {
    "silence": (lambda request: b"", NoResponse),
    "half a frame": (lambda request: _wire(_reply(request, b"payload"))[:9], PartialFrame),
    "bad checksum": (_corrupt, ChecksumError),
    "error reply": (lambda request: _wire(Frame(MessageType.ERROR, request.seq, protocol.pack_error(Status.INVOKE_FAILED, request.type))), DeviceErrorReply),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", CASES)
def test_each_failure_has_its_own_error_and_retries_are_bounded(name: str) -> None:
    script, error = CASES[name]
    device = ScriptedDevice(script, )
    try:
        link = DeviceLink(device.port, reply_timeout=0.1, retries=2)
        with pytest.raises(error) as raised:
            link.info()
        link.close()
    finally:
        device.close()
    assert isinstance(raised.value, DeviceError) and raised.value.exit_code == 5 and raised.value.fix
    infos = [frame for frame in device.requests if frame.type == MessageType.INFO]
    # a device error is an answer (not retried); the others cost exactly 1 + retries attempts
    assert len(infos) == (1 if error is DeviceErrorReply else 3)
    assert len({frame.seq for frame in infos}) == 1  # a retry repeats the request as it was


@pytest.mark.timeout(30)
def test_a_port_with_other_firmware_is_named_in_the_error() -> None:
    device = ScriptedDevice(lambda request: b"", greeting=b"Hello from my own sketch\r\n")
    try:
        link = DeviceLink(device.port, reply_timeout=0.1, handshake_timeout=0.5)
        with pytest.raises(DeviceError, match="Hello from my own sketch"):
            link.handshake()
        link.close()
    finally:
        device.close()


@pytest.mark.timeout(30)
def test_late_replies_to_earlier_requests_are_ignored() -> None:
    def stale_then_right(request: Frame) -> bytes:
        info = protocol.pack_info(
            protocol.DeviceInfo(1, "fw", "board", "00112233aabbccdd", 10, 256, protocol.TensorSpec("int8", (1, 4), 1.0, 0), protocol.TensorSpec("int8", (1, 2), 1.0, 0))
        )
        return _wire(Frame(request.type | protocol.RESPONSE_BIT, (request.seq - 1) & 0xFF, b"stale")) + _wire(_reply(request, info))

    device = ScriptedDevice(stale_then_right, )
    try:
        with DeviceLink(device.port, reply_timeout=0.2) as link:
            assert link.info().model_hash == "00112233aabbccdd"
            assert link.stats.retries == 0
    finally:
        device.close()


@pytest.mark.board
@pytest.mark.timeout(60)
def test_real_board_answers_info_and_infers(board_port: str, board_id: str | None) -> None:
    """With a kit on --port running firmware from `tinyml render`/`tinyml flash`."""
    with DeviceLink(board_port) as link:
        info = link.info()
        assert info.protocol_version == protocol.PROTOCOL_VERSION and len(info.model_hash) == 16
        if board_id:
            assert info.board_id == board_id
        output, latency_us = link.infer(bytes(info.input.byte_size))
        assert len(output) == info.output.byte_size and latency_us > 0
        assert link.stats.retries == 0
