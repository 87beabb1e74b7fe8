"""`rig run` end to end on virtual boards: sixteen at once with faults mixed in, resume, Ctrl-C.

Each virtual board is a real child process (`tinyml virtual-board`) on its own pty, so a board
that is killed is unplugged for real. The faults: a wrong kernel (--skew-every), garbage on the
line (noise), a board that never answers (a TCP port that accepts and stays silent), a board
unplugged mid-run, an emulated board whose library cannot be found, and slow or resetting
boards that must still pass. Then an emulated board that runs: the real firmware on QEMU.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tinyml.rig.run import BoardStatus, run_rig
from tinyml.rig.store import ResultsStore

FAST_LINK = {"reply_timeout": 0.25, "reconnect_timeout": 3.0, "handshake_timeout": 4.0}
SAMPLES = 24


@pytest.fixture(scope="module")
def model(int8_models: dict[str, Path]) -> Path:
    return int8_models["dense"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("rig_data") / "data.npz"
    np.savez(path, x=rng.uniform(-1, 1, (SAMPLES, 16)).astype(np.float32), y=rng.integers(0, 4, SAMPLES))
    return path


@pytest.fixture
def silent_port():
    """A TCP port that accepts connections and never says a word: a board that never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"socket://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def _virtual_board_pids(marker: str) -> list[int]:
    """Processes whose command line names `marker` (a rig's link folder): the virtual boards it started."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "virtual-board" in cmdline and marker in cmdline:
            pids.append(int(proc.name))
    return pids


# name -> (rig entry, expected verdict, words of the reason)
SIXTEEN = {
    **{f"ok-{i}": ("virtual = {}", "pass", "passed") for i in range(1, 9)},
    "slow": ("virtual = { slow_ms = 20 }", "pass", "passed"),
    "resets": ("virtual = { reset_every = 9 }", "pass", "passed"),
    "skew-1": ("virtual = { skew_every = 5 }", "fail", "exact match with the host reference"),
    "skew-2": ("virtual = { skew_every = 11 }", "fail", "exact match with the host reference"),
    "garbage": ("virtual = { noise = 0.5, seed = 3 }", "error", "answered"),
    "unplugged": ("virtual = {}", "error", ""),
    "silent": ("port = \"{silent}\"", "error", "answered"),
    "emulated": ("emulator = {}", "error", "TFLM library source was not found"),
}


def _write_rig(folder: Path, silent: str) -> Path:
    lines = []
    for name, (entry, _, _) in SIXTEEN.items():
        lines += [f"[boards.{name}]", 'profile = "nano33ble_sense"', entry.replace("{silent}", silent), ""]
    path = folder / "class.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.timeout(300)
def test_sixteen_boards_with_faults_each_get_their_own_verdict_and_a_second_run_resumes(model: Path, data: Path, tmp_path: Path, silent_port: str) -> None:
    rig_path = _write_rig(tmp_path, silent_port)
    seen: dict[str, list[str]] = {}
    unplugged = threading.Event()

    def on_status(status: BoardStatus) -> None:
        seen.setdefault(status.name, []).append(status.stage)
        if status.name == "unplugged" and status.done >= 4 and not unplugged.is_set():
            unplugged.set()
            for pid in _virtual_board_pids("-unplugged"):
                os.kill(pid, signal.SIGTERM)  # the cable is pulled: the port vanishes

    started = time.monotonic()
    result = run_rig(rig_path, model, data, on_status=on_status, link_options=FAST_LINK)
    seconds = time.monotonic() - started
    verdicts = {name: (r.verdict, r.reason) for name, r in result.results.items()}
    for name, (_, verdict, words) in SIXTEEN.items():
        assert verdicts[name][0] == verdict, f"{name}: {verdicts[name]}"
        assert words in verdicts[name][1], f"{name}: {verdicts[name]}"
    assert unplugged.is_set()
    assert result.exit_code == 6 and result.count("pass") == 10
    # Every board that passed ran every sample and matched the host exactly.
    for name, r in result.results.items():
        if r.verdict == "pass":
            assert r.samples == SAMPLES and r.exact == 1.0 and r.firmware_hash and r.library_hash
    # The faulty boards did not hold up the good ones: each good board took far less than the whole run.
    assert max(result.results[f"ok-{i}"].seconds for i in range(1, 9)) < seconds
    assert all("done" in stages for stages in seen.values())
    # Nothing the run started is still running.
    assert _virtual_board_pids(str(tmp_path)) == []
    with ResultsStore(result.store_path, create=False) as store:
        stored = store.results(result.run_id)
    assert {name: r.verdict for name, r in stored.items()} == {name: v for name, (v, _) in verdicts.items()}

    # The second run resumes: only the boards that did not finish run again.
    again = run_rig(rig_path, model, data, link_options=FAST_LINK)
    assert again.run_id == result.run_id
    assert set(again.kept) == {name for name, (_, verdict, _) in SIXTEEN.items() if verdict in ("pass", "fail")}
    assert again.results["unplugged"].verdict == "pass"  # plugged back in: its own sample log continues
    assert again.results["unplugged"].metrics["resumed_samples"] >= 4
    assert again.results["silent"].verdict == "error"


@pytest.mark.timeout(180)
def test_ctrl_c_stops_every_virtual_board_and_exits_130(model: Path, data: Path, tmp_path: Path) -> None:
    rig_path = tmp_path / "rig.toml"
    rig_path.write_text("".join(f'[boards.b{i}]\nprofile = "nano33ble"\nvirtual = {{ slow_ms = 200 }}\n' for i in range(3)), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "tinyml", "rig", "run", str(rig_path), "--model", str(model), "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    marker = str(tmp_path / "rig-reports")
    while len(_virtual_board_pids(marker)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_virtual_board_pids(marker)) == 3
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert _virtual_board_pids(marker) == []


@pytest.mark.timeout(180)
def test_a_sigkilled_run_leaves_no_virtual_board_behind(model: Path, data: Path, tmp_path: Path) -> None:
    rig_path = tmp_path / "rig.toml"
    rig_path.write_text('[boards.b1]\nprofile = "nano33ble"\nvirtual = { slow_ms = 200 }\n', encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "tinyml", "rig", "run", str(rig_path), "--model", str(model), "--data", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = str(tmp_path / "rig-reports")
    deadline = time.monotonic() + 120
    while not _virtual_board_pids(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _virtual_board_pids(marker)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 15
    while _virtual_board_pids(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _virtual_board_pids(marker) == []  # the parent-death signal ended it


@pytest.mark.timeout(240)
def test_boards_on_serial_ports_share_one_build_per_profile_and_are_uploaded_in_parallel(model: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PlatformIO is faked (no board, no platform here); the boards behind the ports are virtual."""
    import tinyml.device.platformio as platformio
    from tinyml.device.virtual_board import VirtualBoard

    calls: list[list[str]] = []
    lock = threading.Lock()
    uploading = threading.Barrier(2, timeout=30)  # both uploads of one profile must be under way at once

    def fake_pio(command, **kwargs):
        assert kwargs["env"]["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] == "No"
        with lock:
            calls.append([str(c) for c in command])
        if "upload" in command:
            port = command[command.index("--upload-port") + 1]
            if port.endswith(("kit-b1", "kit-b2")):
                uploading.wait()
            if port.endswith("kit-broken"):
                return subprocess.CompletedProcess(command, 1, "Uploading .pio/build/firmware.bin\nNo device found on " + port, "")
        return subprocess.CompletedProcess(command, 0, "Compiling...\nLinking...\n", "")

    monkeypatch.setattr(platformio, "run", fake_pio)
    monkeypatch.setattr(platformio, "find_pio", lambda: "pio")
    names = {"kit-a1": "nano33ble_sense", "kit-b1": "nano33ble", "kit-b2": "nano33ble", "kit-broken": "nano33ble"}
    boards = [VirtualBoard(model, board=profile, link=tmp_path / name) for name, profile in names.items()]
    for board in boards:
        board.start()
    try:
        (tmp_path / "rig.toml").write_text("".join(f'[boards.{name}]\nprofile = "{profile}"\nport = "{tmp_path / name}"\n' for name, profile in names.items()))
        result = run_rig(tmp_path / "rig.toml", model, data, limit=6, link_options=FAST_LINK)
    finally:
        for board in boards:
            board.stop()
    verdicts = {name: r.verdict for name, r in result.results.items()}
    assert verdicts == {"kit-a1": "pass", "kit-b1": "pass", "kit-b2": "pass", "kit-broken": "error"}
    assert "timed out or found no bootloader" in result.results["kit-broken"].reason
    builds = sorted(c for c in calls if "upload" not in c)
    run_dir = tmp_path / "rig-reports" / f"run-{result.run_id}" / "firmware"
    assert builds == [["pio", "run", "-d", str(run_dir / profile), "-e", profile] for profile in ("nano33ble", "nano33ble_sense")]
    uploads = sorted(c for c in calls if "upload" in c)
    assert uploads == sorted(["pio", "run", "-d", str(run_dir / names[n]), "-e", names[n], "-t", "nobuild", "-t", "upload", "--upload-port", str(tmp_path / n)] for n in names)
    hashes = {name: r.firmware_hash for name, r in result.results.items() if r.verdict == "pass"}
    assert hashes["kit-b1"] == hashes["kit-b2"] != hashes["kit-a1"]


@pytest.mark.timeout(180)
def test_a_full_disk_on_one_board_is_that_boards_error_and_it_resumes(model: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import tinyml.validation.validate as validate

    real = validate.validate_device

    def full_for_b2(port, *args, **kwargs):
        if str(kwargs["report_dir"]).endswith("b2"):
            raise OSError(errno.ENOSPC, "No space left on device", str(kwargs["report_dir"] / "samples.jsonl"))
        return real(port, *args, **kwargs)

    monkeypatch.setattr(validate, "validate_device", full_for_b2)
    rig = tmp_path / "rig.toml"
    rig.write_text('[boards.b1]\nprofile = "nano33ble"\nvirtual = {}\n[boards.b2]\nprofile = "nano33ble"\nvirtual = {}\n')
    result = run_rig(rig, model, data, limit=5, link_options=FAST_LINK)
    assert result.results["b1"].verdict == "pass"
    assert result.results["b2"].verdict == "error" and result.results["b2"].reason.startswith("the disk is full")
    monkeypatch.setattr(validate, "validate_device", real)  # space freed
    again = run_rig(rig, model, data, limit=5, link_options=FAST_LINK)
    assert again.run_id == result.run_id and again.kept == ["b1"] and again.results["b2"].verdict == "pass"


@pytest.mark.timeout(900)
def test_an_emulated_board_and_a_virtual_board_are_judged_against_the_boards_library(model: Path, data: Path, tmp_path: Path, emulator_library) -> None:
    """With the library found, the emulated board runs the real firmware on it, the virtual board
    runs it built for the host, and both are exact against it; no QEMU outlives the run."""
    from emulator_helpers import qemu_processes

    rig_path = tmp_path / "rig.toml"
    rig_path.write_text('[boards.emu]\nprofile = "nano33ble_sense"\nemulator = {}\n\n[boards.virt]\nprofile = "nano33ble_sense"\nvirtual = {}\n', encoding="utf-8")
    result = run_rig(rig_path, model, data, library=emulator_library.path, limit=12)
    verdicts = {name: (r.verdict, r.reason) for name, r in result.results.items()}
    assert verdicts == {"emu": ("pass", "passed"), "virt": ("pass", "passed")}
    assert result.results["emu"].port.startswith("socket://127.0.0.1:")
    assert result.results["emu"].firmware_hash and result.results["emu"].library_hash and result.results["virt"].library_hash
    assert qemu_processes(tmp_path) == []
