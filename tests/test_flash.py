"""tinyml flash and boards prepare: exact PlatformIO command lines and every failure as one line.

The failures run against the real `pio` with no network and no board: PlatformIO missing,
the platform not installed while offline, no board on USB, a busy port (a real pty locked the
way serial monitors lock it), a missing port. PlatformIO's own upload failures (permission,
timeout) need a board; their text, as the tools print it, is mapped by `explain_failure`.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from conftest import require_tool

import tinyml
from tinyml.firmware.boards import get_board
from tinyml.core.errors import DeviceError, InputError, ToolError
from tinyml.device.flash import UsbPort, check_port, explain_failure, flash_project, resolve_port
from tinyml.device.platformio import PlatformIO, find_pio, registry_reachable, uploader_tools
from tinyml.firmware.manifest import MANIFEST_NAME
from tinyml.core.tools import run

TINYML = str(Path(sys.executable).parent / "tinyml")


def require_pio() -> str:
    try:
        return find_pio()
    except ToolError:
        return require_tool("pio")


@pytest.fixture(scope="module")
def project(int8_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tinyml.firmware.render import render_project

    out = tmp_path_factory.mktemp("flash") / "firmware"
    render_project("nano33ble_sense", int8_models["dense"], out)
    return out


@pytest.fixture
def pty_port():
    """A real pseudo-terminal: the port a board would be, without the board."""
    controller, device = pty.openpty()
    name = os.ttyname(device)
    yield name
    os.close(device)
    os.close(controller)


def test_command_lines_are_exactly_what_platformio_documents() -> None:
    pio = PlatformIO(program="pio")
    project = Path("fw")
    assert pio.build_command(project, "nano33ble_sense") == ["pio", "run", "-d", "fw", "-e", "nano33ble_sense"]
    assert pio.upload_command(project, "nano33ble_sense", "/dev/ttyACM0") == [
        "pio", "run", "-d", "fw", "-e", "nano33ble_sense", "-t", "upload", "--upload-port", "/dev/ttyACM0",
    ]
    assert pio.upload_command(project, "nano_rp2040_connect", None) == ["pio", "run", "-d", "fw", "-e", "nano_rp2040_connect", "-t", "upload"]
    assert pio.install_project_command(project, "nano33ble") == ["pio", "pkg", "install", "-d", "fw", "-e", "nano33ble"]
    assert pio.install_tool_command("platformio/tool-openocd@~2.1100.0") == ["pio", "pkg", "install", "-g", "-t", "platformio/tool-openocd@~2.1100.0"]
    assert pio.list_platforms_command() == ["pio", "pkg", "list", "-g", "--only-platforms", "-v"]
    assert pio.config_command(project) == ["pio", "project", "config", "-d", "fw", "--json-output"]
    assert pio.capabilities.upload and pio.capabilities.prefetch


def test_pio_missing_is_one_line_with_the_fix(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without pio
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # and no pio beside Python
    with pytest.raises(ToolError, match="PlatformIO \\('pio'\\) was not found") as info:
        find_pio()
    assert "pip install platformio" in (info.value.fix or "")
    assert tinyml.main(["flash", str(project), "--port", "/dev/null"]) == 4
    err = capsys.readouterr().err
    assert "error: PlatformIO ('pio') was not found. Fix: install PlatformIO Core" in " ".join(err.split())


def test_no_board_found(project: Path) -> None:
    require_pio()
    board = get_board("nano33ble_sense")
    if resolve_port_or_none(board):
        pytest.skip("a Nano 33 BLE Sense is plugged in")
    result = run([TINYML, "flash", str(project), "--port", "auto"])
    assert result.returncode == 5
    assert "no Arduino Nano 33 BLE Sense found on USB (looked for VID:PID 2341:805A, 2341:005A)" in result.stdout
    assert "double-tap" in result.stdout and len(result.stdout.strip().splitlines()) == 1


def resolve_port_or_none(board) -> str | None:
    try:
        return resolve_port(board, "auto")
    except DeviceError:
        return None


def test_port_found_by_usb_id_in_sketch_or_bootloader_mode() -> None:
    board = get_board("nano33ble_sense")
    other = UsbPort("/dev/ttyUSB0", "10C4:EA60", "CP2102")
    sketch = UsbPort("/dev/ttyACM0", "2341:805A", "Nano 33 BLE")
    bootloader = UsbPort("/dev/ttyACM1", "2341:005A", "Nano 33 BLE bootloader")
    assert resolve_port(board, "auto", [other, sketch]) == "/dev/ttyACM0"
    # After a double-tap reset the board waits in its bootloader, on another port.
    assert resolve_port(board, "auto", [other, bootloader]) == "/dev/ttyACM1"
    assert resolve_port(board, "/dev/ttyS5", [other]) == "/dev/ttyS5"
    with pytest.raises(DeviceError, match="2 boards of type nano33ble_sense"):
        resolve_port(board, "auto", [sketch, UsbPort("/dev/ttyACM2", "2341:805A", "")])
    with pytest.raises(DeviceError, match="no Arduino Nano 33 BLE Sense found"):
        resolve_port(board, "auto", [other])
    rp2040 = get_board("nano_rp2040_connect")
    assert resolve_port(rp2040, "auto", [UsbPort("/dev/ttyACM3", "2341:805E", "")]) == "/dev/ttyACM3"


def test_busy_port(project: Path, pty_port: str) -> None:
    # A serial monitor holding the port, locked the way pyserial and PlatformIO's monitor lock it.
    holder = serial.Serial(pty_port, exclusive=True)
    try:
        with pytest.raises(DeviceError, match="is busy"):
            check_port(pty_port)
        result = run([TINYML, "flash", str(project), "--port", pty_port])
        assert result.returncode == 5
        assert f"error: serial port {pty_port} is busy" in result.stdout and "close the serial monitor" in result.stdout
    finally:
        holder.close()


def test_missing_port(project: Path) -> None:
    result = run([TINYML, "flash", str(project), "--port", "/dev/ttyNOPE0"])
    assert result.returncode == 5 and "serial port /dev/ttyNOPE0 does not exist" in result.stdout


def _check_port_as_nobody(port: str, answer) -> None:
    """Child-process body: drop root (root may open any port), then check the port."""
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    try:
        check_port(port)
        answer.put(None)
    except DeviceError as exc:
        answer.put((exc.problem, exc.fix or ""))


def test_permission_denied_port(pty_port: str) -> None:
    os.chmod(pty_port, 0o600)
    if os.geteuid() != 0:
        os.chmod(pty_port, 0o000)
        with pytest.raises(DeviceError) as info:
            check_port(pty_port)
        problem, fix = info.value.problem, info.value.fix or ""
    else:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        answer = context.Queue()
        child = context.Process(target=_check_port_as_nobody, args=(pty_port, answer))
        child.start()
        child.join(timeout=30)
        outcome = answer.get(timeout=5)
        assert outcome is not None, "an unprivileged user could open a root-only port"
        problem, fix = outcome
    assert "no permission" in problem
    assert "dialout" in fix and "udev" in fix


def test_platform_not_installed_offline_fails_fast_with_the_prepare_command(project: Path, pty_port: str) -> None:
    pio = PlatformIO(require_pio())
    board = get_board("nano33ble_sense")
    if pio.platform_installed(board.platformio.platform_name, board.platformio.platform_version):
        pytest.skip("the platform is installed here: this checks the offline case")
    if registry_reachable():
        pytest.skip("PlatformIO's registry is reachable: this checks the offline case")
    started = time.monotonic()
    result = run([TINYML, "flash", str(project), "--port", pty_port])
    assert result.returncode == 4
    assert "the PlatformIO platform platformio/nordicnrf52@9.5.0 for Arduino Nano 33 BLE Sense is not installed" in result.stdout
    assert "run `tinyml boards prepare nano33ble_sense`" in result.stdout
    # The point of the check: no minute of download retries inside PlatformIO (a generous bound, not a benchmark).
    assert time.monotonic() - started < 45


def test_not_a_project_and_unknown_board(tmp_path: Path, project: Path) -> None:
    with pytest.raises(InputError, match="not a PlatformIO project"):
        flash_project(tmp_path)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "platformio.ini").write_text((project / "platformio.ini").read_text())
    with pytest.raises(InputError, match="cannot tell which board"):
        flash_project(bare)
    assert json.loads((project / MANIFEST_NAME).read_text())["board"] == "nano33ble_sense"
    with pytest.raises(InputError, match="was rendered for nano33ble_sense, not nano_rp2040_connect"):
        flash_project(project, board="nano_rp2040_connect")


# What the tools print in each case (bossac, picotool, pyserial via PlatformIO, the compiler, PlatformIO's downloader).
FAILURES = [
    ("Forcing reset using 1200bps open/close on port /dev/ttyACM0\nUploading .pio/build/x/firmware.bin\nNo device found on /dev/ttyACM0\n*** [upload] Error 1", DeviceError, "timed out"),
    ("Uploading .pio/build/x/firmware.uf2\nNo accessible RP2040 devices in BOOTSEL mode were found.", DeviceError, "timed out"),
    ("Looking for upload port...\nserial.serialutil.SerialException: [Errno 13] could not open port /dev/ttyACM0: [Errno 13] Permission denied: '/dev/ttyACM0'", DeviceError, "permission denied"),
    ("Forcing reset using 1200bps open/close on port /dev/ttyACM0\nserial.serialutil.SerialException: [Errno 16] could not open port /dev/ttyACM0: [Errno 16] Device or resource busy", DeviceError, "busy"),
    ("Compiling .pio/build/x/src/main.cpp.o\nsrc/main.cpp:12:3: error: 'foo' was not declared in this scope\n*** [.pio/build/x/src/main.cpp.o] Error 1", ToolError, "did not build: src/main.cpp:12:3: error: 'foo'"),
    ("Platform Manager: Installing platformio/nordicnrf52 @ 9.5.0\nHTTPClientError: ", ToolError, "could not"),
    ("Library Manager: Installing git+https://github.com/x/y.git\nfatal: unable to access 'https://github.com/x/y.git/': Could not resolve host: github.com", ToolError, "could not"),
]


@pytest.mark.parametrize(("output", "kind", "words"), FAILURES)
def test_platformio_failures_become_one_line_with_the_fix(output: str, kind: type, words: str) -> None:
    error = explain_failure(output, get_board("nano33ble_sense"), Path("fw"), "/dev/ttyACM0")
    assert type(error) is kind
    assert words in error.problem and error.fix
    if "timed out" in words:
        assert "double-tap" in error.fix
    if "could not" == words:
        assert "tinyml boards prepare nano33ble_sense" in error.fix


def test_uploader_tools_come_from_the_platform_manifest(tmp_path: Path) -> None:
    (tmp_path / "platform.json").write_text(
        json.dumps(
            {
                "packages": {
                    "toolchain-gccarmnoneeabi": {"type": "toolchain", "owner": "platformio", "version": "~1.70201.0"},
                    "tool-bossac-nordicnrf52": {"type": "uploader", "owner": "platformio", "version": "~1.10901.0"},
                    "tool-openocd": {"type": "uploader", "owner": "platformio", "version": "~2.1100.0"},
                }
            }
        )
    )
    assert uploader_tools(tmp_path) == ["platformio/tool-bossac-nordicnrf52@~1.10901.0", "platformio/tool-openocd@~2.1100.0"]


@pytest.mark.slow
def test_prepare_offline_reports_the_download_failure() -> None:
    """The one test that waits for PlatformIO's own download retries (about a minute)."""
    pio = PlatformIO(require_pio())
    board = get_board("nano33ble")
    if pio.platform_installed(board.platformio.platform_name, board.platformio.platform_version) or registry_reachable():
        pytest.skip("this checks the offline case")
    result = run([TINYML, "boards", "prepare", "nano33ble"], timeout=300)
    assert result.returncode == 4
    assert "could not (offline?)" in result.stdout
    assert "run `tinyml boards prepare nano33ble`" in result.stdout


class _UploadSucceeds:
    """PlatformIO that reports a successful upload without building or uploading anything."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def platform_installed(self, name: str, version: str | None) -> object:
        return object()

    def upload_command(self, project_dir: Path, env_name: str, port: str | None) -> list[str]:
        return ["pio", "run", "-d", str(project_dir), "-e", env_name, "-t", "upload", "--upload-port", str(port)]

    def call(self, command: list[str], on_line=None):
        import subprocess

        self.commands.append(command)
        return subprocess.CompletedProcess(command, 0, stdout="Uploading .pio/build/x/firmware.bin\n[SUCCESS]\n")


def _fake_successful_upload(monkeypatch: pytest.MonkeyPatch, ports_after_upload: list[UsbPort]) -> _UploadSucceeds:
    from tinyml.device import flash

    pio = _UploadSucceeds()
    monkeypatch.setattr(flash, "PlatformIO", lambda: pio)
    monkeypatch.setattr(flash, "check_port", lambda port: None)
    monkeypatch.setattr(flash, "list_usb_ports", lambda: list(ports_after_upload))
    monkeypatch.setattr(flash, "SKETCH_PORT_WAIT_SECONDS", 0.3)
    return pio


def test_port_that_does_not_come_back_after_a_successful_upload_is_an_error(project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """platform-nordicnrf52 issue 175: the upload reports success, the firmware crashes at boot, the port vanishes."""
    pio = _fake_successful_upload(monkeypatch, [])
    with pytest.raises(DeviceError) as info:
        flash_project(project, port="/dev/ttyACM9")
    assert pio.commands, "the upload ran"
    assert "reported success, but the board's serial port did not come back within 0.3 s" in info.value.problem
    assert "platformio/nordicnrf52@9.5.0" in info.value.fix and "issue 175" in info.value.fix and "double-tap" in info.value.fix
    assert tinyml.main(["flash", str(project), "--port", "/dev/ttyACM9"]) == 5
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("error:") == 1 and "firmware probably crashed at startup. Fix: keep `platform = platformio/nordicnrf52@9.5.0`" in err


def test_port_that_comes_back_is_where_the_board_is(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_successful_upload(monkeypatch, [UsbPort("/dev/ttyACM4", "2341:805A", "Nano 33 BLE")])
    result = flash_project(project, port="/dev/ttyACM9")
    assert result.port == "/dev/ttyACM4" and result.upload_port == "/dev/ttyACM9"


def test_every_pio_call_runs_with_telemetry_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import tinyml.device.platformio as platformio

    seen: list[dict] = []

    def fake_run(command, **kwargs):
        seen.append(kwargs["env"])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(platformio, "run", fake_run)
    PlatformIO("pio").call(["pio", "run"])
    assert seen[0]["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] == "No"
    assert seen[0]["PATH"] == os.environ["PATH"]  # the rest of the environment is kept
