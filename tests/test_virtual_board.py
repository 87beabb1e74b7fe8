"""The virtual board on a real pty, driven by tinyml.device.link through pyserial, under each fault."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tinyml.firmware import protocol
from tinyml.device.link import DeviceLink, open_port
from tinyml.firmware.protocol import Frame, MessageType
from tinyml.model.tflm import TflmRunner, measure_arena
from tinyml.device.virtual_board import Faults, VirtualBoard

LABELS = ["up", "down", "left", "right"]


@pytest.fixture(scope="module")
def conv_model(int8_models: dict[str, Path]) -> Path:
    return int8_models["conv2d"]


@pytest.fixture(scope="module")
def conv_arena(conv_model: Path) -> int:
    return measure_arena(conv_model.read_bytes())


@pytest.fixture(scope="module")
def host_runner(conv_model: Path, conv_arena: int) -> TflmRunner:
    return TflmRunner(conv_model.read_bytes(), arena_size=conv_arena + 1024)


def _inputs(count: int, size: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size, dtype=np.int8).tobytes() for _ in range(count)]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.timeout(60)
def test_board_serves_info_and_exact_outputs_then_cleans_up(conv_model: Path, conv_arena: int, host_runner: TflmRunner, tmp_path: Path) -> None:
    fds, threads = _open_fds(), threading.active_count()
    link_path = tmp_path / "port"
    with VirtualBoard(conv_model, labels=LABELS, board="nano33ble", link=link_path, arena_bytes=conv_arena) as board:
        assert link_path.is_symlink() and os.readlink(link_path) == board.pty_path
        with DeviceLink(board.port) as link:
            info = link.info()
            assert info.model_hash == board.info.model_hash
            assert info.board_id == "nano33ble" and info.rx_buffer_bytes == 256
            assert info.labels == tuple(LABELS) and info.arena_used_bytes == conv_arena
            for x in _inputs(8, info.input.byte_size):
                output, latency_us = link.infer(x)
                assert output == host_runner.invoke(np.frombuffer(x, np.int8)).tobytes()
                assert latency_us > 0
        assert board.stats.inferences == 8
    assert not link_path.exists()
    assert threading.active_count() == threads
    assert _open_fds() == fds


def _read_until(port, marker: bytes, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    seen = bytearray()
    while time.monotonic() < deadline:
        seen += port.read(max(1, port.in_waiting))
        at = seen.find(marker)
        if at >= 0 and b"\r\n" in seen[at:]:
            break
    return seen.decode("utf-8", "replace")


@pytest.mark.timeout(60)
def test_human_mode_for_the_serial_monitor(conv_model: Path, conv_arena: int, tmp_path: Path) -> None:
    with VirtualBoard(conv_model, labels=LABELS, link=tmp_path / "port", arena_bytes=conv_arena) as board:
        port = open_port(board.port)
        try:
            port.write(b"help\n")  # the boot banner went out before the port was opened
            assert "commands: help" in _read_until(port, b"commands:")
            port.write(b"info\n")
            text = _read_until(port, b"labels:")
            assert "input  int8 [1, 12, 12, 1]" in text and "labels: up, down, left, right" in text
            port.write(b"run")  # the Serial Monitor set to "No line ending"
            assert "prediction: " in _read_until(port, b"prediction:")
        finally:
            port.close()


FAULTS = {
    "noise": Faults(noise=0.002, seed=1),
    "drops": Faults(drop=0.002, seed=2),
    "rx64": Faults(rx_buffer=64),
    "reset": Faults(reset_every=4),
    "slow": Faults(slow_ms=40),
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", FAULTS)
def test_link_gets_every_output_right_under_faults(name: str, conv_model: Path, conv_arena: int, host_runner: TflmRunner, tmp_path: Path) -> None:
    faults = FAULTS[name]
    with VirtualBoard(conv_model, link=tmp_path / "port", faults=faults, arena_bytes=conv_arena) as board:
        with DeviceLink(board.port, reply_timeout=0.25, reconnect_timeout=5) as link:
            size = link.info().input.byte_size
            for x in _inputs(12, size, seed=7):
                output, _ = link.infer(x)
                assert output == host_runner.invoke(np.frombuffer(x, np.int8)).tobytes()
            stats = link.stats
    fired = {
        "noise": board.stats.corrupted > 0,
        "drops": board.stats.dropped > 0,
        "rx64": board.info.rx_buffer_bytes == 64 and board.stats.overflowed == 0,
        "reset": board.stats.resets >= 2 and stats.reconnects >= 2,
        "slow": board.stats.inferences == 12,
    }
    assert fired[name], (board.stats, stats)


@pytest.mark.timeout(30)
def test_small_receive_buffer_overflows_on_a_frame_that_ignores_it(conv_model: Path, conv_arena: int, tmp_path: Path) -> None:
    with VirtualBoard(conv_model, link=tmp_path / "port", faults=Faults(rx_buffer=64), arena_bytes=conv_arena) as board:
        with DeviceLink(board.port) as link:
            link.handshake()
            big = protocol.encode_frame(Frame(MessageType.INPUT, 99, bytes(4 + 144)))
            link.serial.write(big)
            time.sleep(0.3)
            assert board.stats.overflowed > 0
            # the chunked link still works afterwards
            assert link.infer(bytes(144))[0]


@pytest.mark.timeout(60)
def test_cli_board_prints_its_port_and_cleans_up_on_sigterm(conv_model: Path, tmp_path: Path) -> None:
    link_path = tmp_path / "cli-port"
    process = subprocess.Popen(
        [sys.executable, "-c", "import tinyml; raise SystemExit(tinyml.main())", "virtual-board", "--model", str(conv_model), "--link", str(link_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 40
        lines = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if line.startswith("port:") or not line:
                break
        assert f"port: {link_path}" in "".join(lines)
        with DeviceLink(str(link_path)) as link:
            assert link.info().input.byte_size == 144
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=20)[0]
        assert process.returncode == 0
        assert "stopped after" in rest
        assert not link_path.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.timeout(60)
def test_monitor_wakes_a_board_left_in_binary_mode(conv_model: Path, conv_arena: int, tmp_path: Path) -> None:
    from tinyml.device.monitor import Monitor

    with VirtualBoard(conv_model, labels=LABELS, link=tmp_path / "port", arena_bytes=conv_arena) as board:
        port = open_port(board.port)
        port.write(protocol.encode_frame(Frame(MessageType.HELLO, 1, bytes([protocol.PROTOCOL_VERSION]))))
        time.sleep(0.2)
        port.close()  # a host that crashed: the board stays in binary mode
        assert board._device is not None and board._device.binary
        with Monitor(board.port) as monitor:
            monitor.wake()
            monitor.command("info")
            monitor.command("run")
            lines = []
            for line in monitor.lines(duration=5):
                lines.append(line)
                if line.startswith("prediction:"):
                    break
    assert any(board.info.model_hash in line for line in lines)
    assert lines[-1].startswith("prediction: ") and all("\x00" not in line for line in lines)


@pytest.mark.timeout(60)
def test_monitor_follows_a_board_through_a_reset(conv_model: Path, conv_arena: int, tmp_path: Path) -> None:
    from tinyml.device.monitor import Monitor

    with VirtualBoard(conv_model, link=tmp_path / "port", arena_bytes=conv_arena) as board:
        with Monitor(board.port) as monitor:
            first = board.pty_path
            board.reset()
            deadline = time.monotonic() + 5
            while board.pty_path == first and time.monotonic() < deadline:
                time.sleep(0.05)
            assert board.stats.resets == 1
            monitor.command("help")  # to the new port, once it is back
            lines = []
            for line in monitor.lines(duration=8):
                lines.append(line)
                if line.startswith("commands:"):
                    break
    assert lines and lines[-1].startswith("commands: help")
