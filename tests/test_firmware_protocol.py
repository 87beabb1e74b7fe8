"""The firmware's protocol C++ (firmware_templates/common) against the Python host code.

The C++ server is compiled with g++ around a test model (tests/firmware_host/host_main.cpp),
put behind a pty like a board's USB serial port, and driven by the same `tinyml.device.link` code
that validates real boards. The error replies are checked against the C++ server and the
Python twin of it (tinyml.device.protocol_twin) with one table, so the two cannot drift.
The same sources are cross-compiled for a Cortex-M4 with -Werror.
"""

from __future__ import annotations

import os
import struct
import subprocess
import time
import tty
from pathlib import Path

import numpy as np
import pytest
from ccompile import ARM_CORTEX_M0PLUS, ARM_CORTEX_M4, compile_objects, compile_program
from conftest import require_tool

from tinyml.firmware import protocol
from tinyml.device.protocol_twin import ProtocolTwin
from tinyml.device.link import DeviceLink
from tinyml.firmware.protocol import DeviceInfo, Frame, MessageType, Status, TensorSpec
from tinyml.core.resources import templates_dir

COMMON = templates_dir() / "common"
HOST_MAIN = Path(__file__).parent / "firmware_host" / "host_main.cpp"
INPUT_BYTES, OUTPUT_BYTES = 300, 260  # as in host_main.cpp


def expected_output(x: bytes) -> bytes:
    """host_main.cpp's test model: output[j] = input[j % 300] + j (mod 256)."""
    data = np.frombuffer(x, dtype=np.uint8).astype(np.int64)
    j = np.arange(OUTPUT_BYTES)
    return ((data[j % INPUT_BYTES] + j) % 256).astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def header_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("protocol_header")
    (directory / "tinyml_protocol.h").write_text(protocol.render_c_header())
    return directory


@pytest.fixture(scope="module")
def host_program(header_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    sources = [HOST_MAIN, COMMON / "protocol_server.cpp", COMMON / "framing.cpp"]
    # Sanitizers turn any out-of-bounds access on garbage input into a crash the tests see.
    sanitizers = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g")
    return compile_program(sources, [COMMON, header_dir], std="gnu++14", flags=sanitizers, out_dir=tmp_path_factory.mktemp("host_fw"))


class HostFirmware:
    """The compiled server with its stdin/stdout on a pty master; `port` is the slave's path."""

    def __init__(self, program: Path, rx_buffer: int) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self.process = subprocess.Popen([str(program), str(rx_buffer)], stdin=self.master, stdout=self.master)

    def close(self) -> None:
        crashed = self.process.poll()
        self.process.kill()
        self.process.wait(timeout=5)
        assert crashed is None, f"the firmware exited with {crashed} during the test (a sanitizer report is above)"
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture(params=[64, 256], ids=["rx64", "rx256"])
def firmware(request: pytest.FixtureRequest, host_program: Path):
    board = HostFirmware(host_program, request.param)
    yield board
    board.close()


@pytest.mark.parametrize("cpu_flags", [ARM_CORTEX_M4, ARM_CORTEX_M0PLUS], ids=["cortex-m4", "cortex-m0plus"])
def test_protocol_sources_cross_compile_for_the_boards(cpu_flags: tuple[str, ...], header_dir: Path, tmp_path: Path) -> None:
    sources = [COMMON / "protocol_server.cpp", COMMON / "framing.cpp"]
    objects = compile_objects(sources, [COMMON, header_dir], std="gnu++14", flags=(*cpu_flags, "-fno-exceptions", "-fno-rtti"), out_dir=tmp_path)
    assert all(obj.stat().st_size > 0 for obj in objects)
    # No heap in the firmware path: nothing calls malloc/new (or their frees) directly.
    from tinyml.core.tools import run

    nm = require_tool("arm-none-eabi-nm")
    undefined = set()
    for obj in objects:
        undefined |= set(run([nm, "-u", str(obj)]).stdout.split())
    heap = {"malloc", "calloc", "realloc", "free", "_Znwj", "_Znaj", "_ZdlPv", "_ZdaPv", "_ZdlPvj"}
    assert not heap & undefined, heap & undefined


@pytest.mark.timeout(60)
def test_python_host_drives_the_cpp_server(firmware: HostFirmware) -> None:
    rng = np.random.default_rng(3)
    with DeviceLink(firmware.port, reply_timeout=0.5) as link:
        info = link.info()
        assert info.model_hash == "0123456789abcdef"
        assert info.board_id == "host" and info.firmware_version == "host-test"
        assert info.arena_used_bytes == 1234
        assert info.labels == ("zero", "one", "two")
        assert info.input == TensorSpec("int8", (1, INPUT_BYTES), 0.5, -3)
        assert info.output == TensorSpec("int8", (1, OUTPUT_BYTES), 0.25, 7)
        for _ in range(5):
            x = rng.integers(0, 256, INPUT_BYTES, dtype=np.uint8).tobytes()
            output, latency_us = link.infer(x)
            assert output == expected_output(x)
            assert latency_us >= 0
        chunk = protocol.input_chunk_bytes(info.rx_buffer_bytes)
        assert link.stats.retries == 0
        # every INPUT frame fit the device's receive buffer
        assert chunk + protocol.INPUT_CHUNK_HEADER_BYTES + protocol.WIRE_OVERHEAD_BYTES <= info.rx_buffer_bytes


def _read_text(port, until: bytes, timeout: float = 5.0) -> str:
    """What the port prints up to the end of the line that holds `until`."""
    deadline = time.monotonic() + timeout
    seen = bytearray()
    while time.monotonic() < deadline:
        seen += port.read(max(1, port.in_waiting))
        at = seen.find(until)
        if at >= 0 and b"\r\n" in seen[at:]:
            break
    return seen.decode("utf-8", "replace")


@pytest.mark.timeout(60)
def test_cpp_server_human_mode_and_handshake_back(host_program: Path) -> None:
    firmware = HostFirmware(host_program, 64)
    try:
        link = DeviceLink(firmware.port)
        link.handshake()
        link.leave_binary()  # HUMAN: the device talks to people again
        port = link.serial
        port.reset_input_buffer()
        assert "app: tick" in _read_text(port, b"app: tick")
        port.write(b"help\n")
        assert "commands: help" in _read_text(port, b"commands:")
        port.write(b"info\r\n")
        text = _read_text(port, b"labels:")
        assert "model 0123456789abcdef, arena 1234 bytes used" in text
        assert "input  int8 [1, 300] scale 0.500000 zero point -3" in text
        assert "labels: zero, one, two" in text
        port.write(b"run")  # the Serial Monitor set to "No line ending"
        text = _read_text(port, b"prediction:")
        assert "prediction: " in text and " us)" in text
        port.write(b"bogus\n")
        assert "unknown command 'bogus': type help" in _read_text(port, b"unknown command")
        # a frame other than HELLO in human mode says the host must shake hands first
        assert _exchange_serial(port, Frame(MessageType.INFO, 9)).payload[0] == Status.NEED_HANDSHAKE
        link.close()
    finally:
        firmware.close()


def _exchange_serial(port, frame: Frame, timeout: float = 2.0) -> Frame:
    port.write(protocol.encode_frame(frame))
    decoder = protocol.FrameDecoder()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for reply in decoder.feed(port.read(max(1, port.in_waiting))):
            if reply.seq == frame.seq:
                return reply
    raise AssertionError(f"no reply to {frame}")


def _hello(seq: int) -> Frame:
    return Frame(MessageType.HELLO, seq, bytes([protocol.PROTOCOL_VERSION]))


# (request, expected status or None for a normal reply) after a HELLO, in order; the same
# table for the C++ and the Python server.
ERROR_CASES = [
    (Frame(0x42, 2), Status.UNKNOWN_TYPE),
    (Frame(MessageType.INVOKE, 3), Status.INPUT_INCOMPLETE),
    (Frame(MessageType.OUTPUT, 4, struct.pack("<I", 0)), Status.NO_RESULT),
    (Frame(MessageType.INPUT, 5, struct.pack("<I", 10) + b"x"), Status.BAD_OFFSET),
    (Frame(MessageType.INPUT, 6, struct.pack("<I", 0) + bytes(200)), None),
    (Frame(MessageType.INPUT, 16, struct.pack("<I", 200) + bytes(INPUT_BYTES - 199)), Status.BAD_OFFSET),
    (Frame(MessageType.INPUT, 7, b"\x00"), Status.BAD_LENGTH),
    (Frame(MessageType.LABELS, 8, b""), Status.BAD_LENGTH),
    (Frame(MessageType.INFO, 9, version=protocol.PROTOCOL_VERSION + 1), Status.BAD_VERSION),
    (Frame(MessageType.HELLO, 10, bytes([protocol.PROTOCOL_VERSION + 1])), Status.BAD_VERSION),
]


def _python_server() -> tuple[ProtocolTwin, list[bytes]]:
    spec_in = TensorSpec("int8", (1, INPUT_BYTES), 0.5, -3)
    spec_out = TensorSpec("int8", (1, OUTPUT_BYTES), 0.25, 7)
    info = DeviceInfo(1, "host-test", "host", "0123456789abcdef", 1234, 256, spec_in, spec_out, 3, ("zero", "one", "two"))
    written: list[bytes] = []
    return ProtocolTwin(info, expected_output, written.append), written


def _exchange_python(device: ProtocolTwin, written: list[bytes], frame: Frame) -> Frame:
    written.clear()
    device.receive(protocol.encode_frame(frame))
    frames = protocol.FrameDecoder().feed(b"".join(written))
    assert frames, f"no reply to {frame}"
    return frames[-1]


@pytest.mark.timeout(60)
def test_error_replies_match_between_cpp_and_python(host_program: Path) -> None:
    firmware = HostFirmware(host_program, 256)
    device, written = _python_server()
    try:
        from tinyml.device.link import open_port

        port = open_port(firmware.port)
        try:
            assert _exchange_serial(port, _hello(1)).type == MessageType.HELLO | protocol.RESPONSE_BIT
            assert _exchange_python(device, written, _hello(1)).type == MessageType.HELLO | protocol.RESPONSE_BIT
            for request, status in ERROR_CASES:
                cpp = _exchange_serial(port, request)
                python = _exchange_python(device, written, request)
                assert cpp == python, f"{request}: C++ {cpp} != Python {python}"
                if status is None:
                    assert cpp.type == request.type | protocol.RESPONSE_BIT, request
                    continue
                assert cpp.type == MessageType.ERROR and cpp.payload[0] == status, request
                assert protocol.unpack_error(cpp.payload).text == protocol.STATUS_TEXT[status]
            # a retried INVOKE (same seq) is answered from the kept result, not run again
            x = bytes(range(256)) + bytes(INPUT_BYTES - 256)
            for seq, offset in ((20, 0), (21, 200)):
                chunk = Frame(MessageType.INPUT, seq, struct.pack("<I", offset) + x[offset : offset + 200])
                assert _exchange_serial(port, chunk) == _exchange_python(device, written, chunk)
            first = _exchange_serial(port, Frame(MessageType.INVOKE, 22))
            again = _exchange_serial(port, Frame(MessageType.INVOKE, 22))
            assert first.payload[8:] == again.payload[8:] == expected_output(x)[: len(first.payload) - 8]
            assert _exchange_serial(port, Frame(MessageType.INVOKE, 23)).payload[0] == Status.INPUT_INCOMPLETE
        finally:
            port.close()
    finally:
        firmware.close()


@pytest.mark.timeout(60)
def test_cpp_server_resynchronises_after_garbage_and_broken_frames(host_program: Path) -> None:
    from tinyml.device.link import open_port

    firmware = HostFirmware(host_program, 256)
    rng = np.random.default_rng(11)
    try:
        port = open_port(firmware.port)
        try:
            assert _exchange_serial(port, _hello(1)).type == MessageType.HELLO | protocol.RESPONSE_BIT
            for round_index in range(30):
                garbage = rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
                broken = bytearray(protocol.encode_frame(Frame(MessageType.LABELS, 200, struct.pack("<H", 0))))
                broken[int(rng.integers(1, len(broken) - 1))] ^= int(rng.integers(1, 256))
                truncated = protocol.encode_frame(Frame(MessageType.INFO, 201))[: int(rng.integers(2, 8))]
                port.write(garbage + bytes(broken) + truncated)
                reply = _exchange_serial(port, Frame(MessageType.INFO, round_index + 2))
                assert reply.type == MessageType.INFO | protocol.RESPONSE_BIT
                assert protocol.unpack_info(reply.payload).model_hash == "0123456789abcdef"
        finally:
            port.close()
    finally:
        firmware.close()


def test_silent_host_returns_the_device_to_human_mode() -> None:
    """kBinaryIdleTimeoutMs, shown on the Python twin whose clock the test can move."""
    now = [0]
    spec_in = TensorSpec("int8", (1, INPUT_BYTES), 0.5, -3)
    spec_out = TensorSpec("int8", (1, OUTPUT_BYTES), 0.25, 7)
    info = DeviceInfo(1, "host-test", "host", "0123456789abcdef", 1234, 256, spec_in, spec_out, 3, ("zero", "one", "two"))
    written: list[bytes] = []
    device = ProtocolTwin(info, expected_output, written.append, clock_us=lambda: now[0])
    device.receive(protocol.encode_frame(_hello(1)))
    assert device.binary
    now[0] += (protocol.BINARY_IDLE_TIMEOUT_MS - 1) * 1000
    device.check_idle()
    assert device.binary
    now[0] += 2000
    written.clear()
    device.check_idle()
    assert not device.binary and b"back in human mode" in b"".join(written)
    written.clear()
    device.receive(b"help\n")  # typed text works again at once
    assert b"commands: help" in b"".join(written)
