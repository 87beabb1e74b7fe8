"""`rig run` through labgrid: a real coordinator and exporter on the loopback address.

The exporter shares virtual boards as NetworkSerialPort resources (raw TCP, as QEMU's
`-serial tcp:` or ser2net's raw mode would); places match them. The run acquires each place
through labgrid's client API, validates through its port and releases it; a place another user
holds is reported busy, or waited for when the rig file says so. labgrid lives in its own venv
(tinyml.rig.labgrid): made once from PyPI, so these tests skip without it, and fail in CI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import IN_CI

from tinyml.core.errors import InputError, ToolError
from tinyml.device.virtual_board import Faults, VirtualBoard
from tinyml.rig.run import run_rig

FAST_LINK = {"reply_timeout": 0.25, "reconnect_timeout": 3.0}


@pytest.fixture(scope="module")
def labgrid_bin() -> Path:
    from tinyml.rig.labgrid import labgrid_python

    try:
        python = labgrid_python(install=True)
    except ToolError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    return python.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tcp_bridge(pty_path: str, stop: threading.Event) -> int:
    """A raw TCP port in front of a virtual board's pty, one connection at a time."""
    import serial

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            connection.settimeout(0.01)
            port = serial.Serial(pty_path, timeout=0.01)
            try:
                while not stop.is_set():
                    try:
                        data = connection.recv(4096)
                        if not data:
                            break
                        port.write(data)
                    except TimeoutError:
                        pass
                    waiting = port.read(port.in_waiting or 1)
                    if waiting:
                        connection.sendall(waiting)
            except OSError:
                pass
            finally:
                port.close()
                connection.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


class Lab:
    """A coordinator and an exporter (started and stopped by pid), and labgrid-client calls."""

    def __init__(self, bin_dir: Path, folder: Path, ports: dict[str, int]) -> None:
        self.bin = bin_dir
        self.address = f"127.0.0.1:{_free_port()}"
        self.procs: list[subprocess.Popen] = []
        # The coordinator keeps places.yaml in its working folder: a fresh one per test.
        self.procs.append(subprocess.Popen([bin_dir / "labgrid-coordinator", "--listen", self.address], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        config = folder / "exporter.yaml"
        config.write_text("".join(f"{group}:\n  NetworkSerialPort:\n    host: 127.0.0.1\n    port: {port}\n    protocol: raw\n" for group, port in ports.items()))
        time.sleep(1.0)
        self.procs.append(subprocess.Popen([bin_dir / "labgrid-exporter", "-c", self.address, "--name", "exp", "--hostname", "127.0.0.1", config], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not all(f"exp/{group}/NetworkSerialPort" in self.client("resources").stdout for group in ports):
            assert time.monotonic() < deadline, "the exporter did not register its resources"
            time.sleep(0.5)

    def client(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **({"LG_USERNAME": user} if user else {})}
        return subprocess.run([self.bin / "labgrid-client", "-x", self.address, *args], capture_output=True, text=True, env=env, timeout=60)

    def place(self, name: str, group: str) -> None:
        assert self.client("-p", name, "create").returncode == 0
        assert self.client("-p", name, "add-match", f"exp/{group}/NetworkSerialPort").returncode == 0

    def holder(self, place: str) -> str:
        for line in self.client("-p", place, "show").stdout.splitlines():
            if line.strip().startswith("acquired:"):
                return line.split(":", 1)[1].strip()
        return ""

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def lab(labgrid_bin: Path, int8_models: dict[str, Path], tmp_path: Path):
    stop = threading.Event()
    faults = {2: Faults(skew_every=4), 4: Faults(slow_ms=300)}  # bench-2 has a wrong kernel, bench-4 is slow
    boards = [VirtualBoard(int8_models["dense"], link=tmp_path / f"pty{i}", faults=faults.get(i, Faults())) for i in range(5)]
    for board in boards:
        board.start()
    lab = None
    try:
        ports = {f"g{i}": _tcp_bridge(board.port, stop) for i, board in enumerate(boards)}
        (tmp_path / "coordinator").mkdir()
        lab = Lab(labgrid_bin, tmp_path / "coordinator", ports)
        for i in range(len(boards)):
            lab.place(f"bench-{i}", f"g{i}")
        yield lab
    finally:
        stop.set()
        if lab is not None:
            lab.stop()
        for board in boards:
            board.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(9)
    path = tmp_path_factory.mktemp("lab_data") / "data.npz"
    np.savez(path, x=rng.uniform(-1, 1, (12, 16)).astype(np.float32), y=rng.integers(0, 4, 12))
    return path


def _rig(folder: Path, lab: Lab, entries: dict[str, str]) -> Path:
    text = f'[rig]\ncoordinator = "{lab.address}"\n' + "".join(f'\n[boards.{name}]\nprofile = "nano33ble_sense"\n{entry}\n' for name, entry in entries.items())
    path = folder / "lab.toml"
    path.write_text(text)
    return path


# Twelve boards beside the four places, so that one run has sixteen, faults mixed in.
BESIDE_THE_PLACES = {
    **{f"twin-{i}": ("virtual = {}", "pass") for i in range(9)},
    "twin-skew": ("virtual = { skew_every = 3 }", "fail"),
    "twin-noise": ("virtual = { noise = 0.5 }", "error"),
    "emulated": ("emulator = {}", "pass"),  # the real firmware on QEMU, built against the pinned library
}


@pytest.mark.timeout(400)
def test_sixteen_boards_some_behind_labgrid_each_get_the_right_verdict_and_places_are_released(
    lab: Lab, int8_models: dict[str, Path], data: Path, tmp_path: Path, emulator_library
) -> None:
    assert lab.client("-p", "bench-3", "acquire", user="someone-else").returncode == 0
    assert lab.client("-p", "bench-1", "acquire", user="someone-else").returncode == 0
    releaser = threading.Timer(4.0, lambda: lab.client("-p", "bench-1", "release", user="someone-else"))
    rig = _rig(tmp_path, lab, {
        "lab-0": 'place = "bench-0"',
        "lab-1": 'place = "bench-1"\nbusy = "wait"\nwait_s = 90',
        "lab-2": 'place = "bench-2"',
        "lab-3": 'place = "bench-3"',
        **{name: entry for name, (entry, _) in BESIDE_THE_PLACES.items()},
    })
    releaser.start()
    try:
        result = run_rig(rig, int8_models["dense"], data, link_options=FAST_LINK, library=emulator_library.path)
    finally:
        releaser.cancel()
    verdicts = {name: r.verdict for name, r in result.results.items()}
    expected = {"lab-0": "pass", "lab-1": "pass", "lab-2": "fail", "lab-3": "busy", **{name: verdict for name, (_, verdict) in BESIDE_THE_PLACES.items()}}
    assert len(verdicts) == 16 and verdicts == expected, {n: r.reason for n, r in result.results.items()}
    assert result.results["lab-0"].port.startswith("socket://127.0.0.1:")
    assert "held by" in result.results["lab-3"].reason and "someone-else" in result.results["lab-3"].reason
    # Released on the way out; the place someone else holds is still theirs.
    for place in ("bench-0", "bench-1", "bench-2"):
        assert lab.holder(place) in ("", "None"), place
    assert "someone-else" in lab.holder("bench-3")
    # Once they let go, a second run resumes only the boards that did not finish.
    assert lab.client("-p", "bench-3", "release", user="someone-else").returncode == 0
    again = run_rig(rig, int8_models["dense"], data, link_options=FAST_LINK, library=emulator_library.path)
    assert set(again.kept) == {name for name, verdict in expected.items() if verdict in ("pass", "fail")}
    assert again.results["lab-3"].verdict == "pass" and again.results["twin-noise"].verdict == "error"
    assert lab.holder("bench-3") in ("", "None")


@pytest.mark.timeout(120)
def test_a_place_the_coordinator_lacks_is_one_line_naming_the_board(lab: Lab, int8_models: dict[str, Path], data: Path, tmp_path: Path) -> None:
    rig = _rig(tmp_path, lab, {"lab-0": 'place = "bench-0"', "lost": 'place = "bench-9"'})
    with pytest.raises(InputError) as caught:
        run_rig(rig, int8_models["dense"], data, link_options=FAST_LINK)
    assert "board 'lost': place 'bench-9' does not exist" in caught.value.problem
    assert "labgrid-client" in caught.value.fix


@pytest.mark.timeout(180)
def test_ctrl_c_releases_the_place(lab: Lab, int8_models: dict[str, Path], data: Path, tmp_path: Path) -> None:
    import signal
    import sys

    rig = _rig(tmp_path, lab, {"slow": 'place = "bench-4"'})
    process = subprocess.Popen([sys.executable, "-m", "tinyml", "rig", "run", str(rig), "--model", str(int8_models["dense"]), "--data", str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while lab.holder("bench-4") in ("", "None"):
        assert time.monotonic() < deadline and process.poll() is None, "the run never acquired the place"
        time.sleep(0.3)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert lab.holder("bench-4") in ("", "None")
