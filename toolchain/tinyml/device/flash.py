"""Build and upload a rendered project to its board, and prepare a board for offline work.

`flash_project` checks what it can before PlatformIO starts, so that the common failures are
one clear line with the fix instead of a page of tool output or a minute of download retries:
PlatformIO missing, the board's platform not installed while offline, no board on USB, a
port that is busy or not permitted. It then runs `pio run -t upload` (streaming its output)
and turns PlatformIO's own failures into the same kind of message.

`--port auto` finds the board by the USB VID:PID in its profile, in sketch or in bootloader
mode. The upload resets the board into its bootloader (1200 bps touch), where it may show up
on a new port; PlatformIO follows that itself. After the upload the sketch may come back on
yet another port: the result names the port the sketch is on now, for `tinyml validate`. If no
port comes back, the upload "succeeded" but the firmware did not start (platform-nordicnrf52
issue 175: the Nano 33 BLE crashes at boot with firmware built by nordicnrf52 9.6.0 or later):
that is an error with the board profile's advice, not a success.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tinyml.firmware.boards import BoardProfile, get_board
from tinyml.firmware.manifest import rendered_board
from tinyml.core.errors import DeviceError, InputError, ToolError
from tinyml.device.platformio import PlatformIO, registry_reachable, uploader_tools

log = logging.getLogger("tinyml.flash")

AUTO_PORT = "auto"
# How long the sketch's port may take to come back after an upload (USB re-enumeration).
SKETCH_PORT_WAIT_SECONDS = 8.0
# What to do when it does not, for a board whose profile gives no advice of its own.
PORT_MISSING_FIX = "double-tap the board's reset button to get its bootloader back, then flash again; if the port vanishes again, the firmware stops at startup"


@dataclass(frozen=True)
class UsbPort:
    device: str
    usb_id: str  # "2341:805A"
    description: str


@dataclass(frozen=True)
class FlashResult:
    project_dir: Path
    board_id: str
    env_name: str
    upload_port: str  # what PlatformIO was given
    port: str  # where the sketch is now
    command: tuple[str, ...]
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "project_dir": str(self.project_dir),
            "board_id": self.board_id,
            "env_name": self.env_name,
            "upload_port": self.upload_port,
            "port": self.port,
            "command": list(self.command),
            "seconds": round(self.seconds, 1),
        }


# ---- ports ----------------------------------------------------------------------------------
def list_usb_ports() -> list[UsbPort]:
    """Serial ports that are USB devices, with their VID:PID (pyserial's port listing)."""
    from serial.tools import list_ports

    ports = []
    for info in list_ports.comports():
        if info.vid is None or info.pid is None:
            continue
        ports.append(UsbPort(info.device, f"{info.vid:04X}:{info.pid:04X}", info.description or ""))
    return ports


def find_board_ports(board: BoardProfile, ports: Sequence[UsbPort] | None = None) -> tuple[list[UsbPort], list[UsbPort]]:
    """The ports of `board`: (in sketch mode, in bootloader mode)."""
    ports = list_usb_ports() if ports is None else list(ports)
    sketch = [p for p in ports if p.usb_id in board.usb_ids.sketch]
    bootloader = [p for p in ports if p.usb_id in board.usb_ids.bootloader]
    return sketch, bootloader


def resolve_port(board: BoardProfile, port: str | None, ports: Sequence[UsbPort] | None = None) -> str:
    """The port to upload through: the one given, or the board found by VID:PID for "auto"/None."""
    if port and port != AUTO_PORT:
        return port
    sketch, bootloader = find_board_ports(board, ports)
    found = sketch or bootloader
    if not found:
        ids = ", ".join(board.usb_ids.sketch + board.usb_ids.bootloader)
        raise DeviceError(
            f"no {board.name} found on USB (looked for VID:PID {ids})",
            "plug it in with a data USB cable (some cables only charge); if it still does not show up, "
            "double-tap its reset button and try again, or give --port",
        )
    if len(found) > 1:
        names = ", ".join(p.device for p in found)
        raise DeviceError(f"{len(found)} boards of type {board.id} are plugged in ({names})", "choose one with --port PORT")
    if not sketch:
        log.info("%s is in its bootloader on %s", board.name, found[0].device)
    return found[0].device


def _holders(device: str) -> list[str]:
    """Processes that hold `device` open (Linux /proc), e.g. ["1234 (screen)"]."""
    holders = []
    target = os.path.realpath(device)
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            for fd in (proc / "fd").iterdir():
                if os.path.realpath(fd) == target:
                    name = (proc / "comm").read_text().strip()
                    holders.append(f"{proc.name} ({name})")
                    break
        except OSError:
            continue
    return holders


def check_port(port: str) -> None:
    """DeviceError if `port` does not exist, may not be opened, or another program holds it."""
    import serial

    if not os.path.exists(port):
        raise DeviceError(f"serial port {port} does not exist", "check the port name (`tinyml flash DIR --port auto` finds the board)")
    if not stat.S_ISCHR(os.stat(port).st_mode):
        raise InputError(f"{port} is not a serial device (it is a {'folder' if os.path.isdir(port) else 'file'})", _NOT_SERIAL_FIX)
    if not os.access(port, os.R_OK | os.W_OK):
        raise DeviceError(f"no permission to open {port}", _PERMISSION_FIX)
    try:
        # exclusive=True takes the same lock serial monitors take (flock), and releases it on close.
        serial.Serial(port, exclusive=True, timeout=0).close()
    except serial.SerialException as exc:
        text = str(exc)
        if "Permission denied" in text or "Errno 13" in text:
            raise DeviceError(f"no permission to open {port}", _PERMISSION_FIX) from exc
        if "Inappropriate ioctl" in text:  # ENOTTY: a character device that is no terminal, e.g. /dev/null
            raise InputError(f"{port} is not a serial device", _NOT_SERIAL_FIX) from exc
        holders = _holders(port)
        who = f" by {', '.join(holders)}" if holders else ""
        raise DeviceError(f"serial port {port} is busy (held{who})", _BUSY_FIX) from exc
    # Programs that hold the port without a lock may still disturb the upload: say who they are.
    holders = [h for h in _holders(port) if not h.startswith(f"{os.getpid()} ")]
    if holders:
        log.warning("serial port %s is also open in %s; close it if the upload fails", port, ", ".join(holders))


_PERMISSION_FIX = (
    "add yourself to the serial group (`sudo usermod -aG dialout $USER`, then log out and in) and install "
    "PlatformIO's udev rules (https://docs.platformio.org/en/latest/core/installation/udev-rules.html)"
)
_NOT_SERIAL_FIX = "give the board's serial port, e.g. /dev/ttyACM0, or `--port auto` to find it"
_BUSY_FIX = "close the serial monitor or other program that has the port open (Arduino IDE, `pio device monitor`, screen), then try again"


# ---- PlatformIO's failures, as one line with the fix ----------------------------------------
_NETWORK_PATTERNS = (
    "HTTPClientError",
    "InternetIsOffline",
    "Could not resolve host",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Failed to establish a new connection",
    "Max retries exceeded",
    "Network is unreachable",
)
_PERMISSION_PATTERNS = ("Permission denied", "Errno 13", "Access is denied")
_BUSY_PATTERNS = ("Device or resource busy", "Resource busy", "Errno 16", "could not exclusively lock")
_TIMEOUT_PATTERNS = (
    "No device found on",
    "SAM-BA operation failed",
    "No accessible RP2040 devices",
    "Couldn't find a board on the selected port",
    "Timed out waiting for",
    "timeout",
    "Timeout",
    "Please specify `upload_port`",
)


def explain_failure(output: str, board: BoardProfile, project_dir: Path, port: str | None) -> Exception:
    """The error to raise for a failed `pio run`, from PlatformIO's own output."""
    where = f" on {port}" if port else ""
    if any(p in output for p in _NETWORK_PATTERNS):
        return ToolError(
            "PlatformIO needed to download the board's platform, toolchain or libraries and could not (offline?)",
            f"connect to the internet once and run `tinyml boards prepare {board.id}`; later builds then work offline",
        )
    if any(p in output for p in _PERMISSION_PATTERNS):
        return DeviceError(f"permission denied opening the board's port{where}", _PERMISSION_FIX)
    if any(p in output for p in _BUSY_PATTERNS):
        return DeviceError(f"the board's port{where} is busy", _BUSY_FIX)
    errors = [line.strip() for line in output.splitlines() if re.search(r"\berror:", line) or line.startswith("*** ")]
    compiled = "Linking" in output or "Compiling" in output
    uploading = "Uploading" in output or "Looking for upload port" in output or "Forcing reset" in output
    if compiled and errors and not uploading:
        return ToolError(
            f"the firmware did not build: {errors[0]}",
            f"render the project again (`tinyml render ... --force`); to see everything run `pio run -d {project_dir} -v`",
        )
    if any(p in output for p in _TIMEOUT_PATTERNS) or uploading:
        return DeviceError(
            f"the upload to {board.name}{where} timed out or found no bootloader",
            "double-tap the board's reset button (the LED pulses: it waits in its bootloader), then run `tinyml flash` again"
            + (f"; known quirks: {board.quirks[0]}" if board.quirks else ""),
        )
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return ToolError(
        f"PlatformIO failed: {lines[-1] if lines else 'no output'}",
        f"run `pio run -d {project_dir} -t upload -v` to see the whole output",
    )


# ---- the stage ------------------------------------------------------------------------------
def _project_board(project_dir: Path, board: BoardProfile | str | None) -> BoardProfile:
    """The board the project was rendered for (its manifest), or the one given, which must agree."""
    rendered_for = rendered_board(project_dir)  # None for a project tinyml did not render
    profile = board if isinstance(board, BoardProfile) else get_board(board) if board else None
    if profile is None:
        if rendered_for is None:
            raise InputError(f"cannot tell which board {project_dir} is for", "give --board ID, or render the project with `tinyml render`")
        return get_board(rendered_for)
    if rendered_for is not None and rendered_for != profile.id:
        raise InputError(
            f"{project_dir} was rendered for {rendered_for}, not {profile.id}",
            f"render it again with `tinyml render --board {profile.id} ...`, or leave out --board",
        )
    return profile


def _check_platform(pio: PlatformIO, board: BoardProfile) -> None:
    """Fail fast, instead of after a minute of download retries, when PlatformIO would need the network and has none."""
    platform = board.platformio
    if pio.platform_installed(platform.platform_name, platform.platform_version):
        return
    if registry_reachable():
        log.info("PlatformIO will download %s first (a few hundred MB, once)", platform.platform)
        return
    raise ToolError(
        f"the PlatformIO platform {platform.platform} for {board.name} is not installed, and PlatformIO's registry cannot be reached to download it",
        f"connect to the internet once and run `tinyml boards prepare {board.id}`; later builds then work offline",
    )


def flash_project(
    project_dir: str | Path,
    *,
    port: str | None = AUTO_PORT,
    board: BoardProfile | str | None = None,
    on_line: Callable[[str], None] | None = None,
) -> FlashResult:
    """Build the project and upload it to the board; see the module doc."""
    project_dir = Path(project_dir)
    if not (project_dir / "platformio.ini").is_file():
        raise InputError(f"{project_dir} is not a PlatformIO project (no platformio.ini)", "render one with `tinyml render --board ID --model MODEL --out DIR`")
    profile = _project_board(project_dir, board)
    pio = PlatformIO()
    upload_port = resolve_port(profile, port)
    check_port(upload_port)
    _check_platform(pio, profile)
    command = pio.upload_command(project_dir, profile.env_name, upload_port)
    started = time.monotonic()
    result = pio.call(command, on_line=on_line)
    if result.returncode != 0:
        raise explain_failure(result.stdout, profile, project_dir, upload_port)
    sketch_port = _wait_for_sketch_port(profile, upload_port)
    if sketch_port is None:
        raise DeviceError(
            f"the upload to {profile.name} reported success, but the board's serial port did not come back within "
            f"{SKETCH_PORT_WAIT_SECONDS:g} s: the firmware probably crashed at startup",
            profile.port_missing_after_upload or PORT_MISSING_FIX,
        )
    seconds = time.monotonic() - started
    log.info("uploaded %s to %s in %.0f s; the sketch is on %s", project_dir, profile.name, seconds, sketch_port)
    return FlashResult(project_dir, profile.id, profile.env_name, upload_port, sketch_port, tuple(command), seconds)


def _wait_for_sketch_port(board: BoardProfile, upload_port: str) -> str | None:
    """The sketch's port after an upload: it may differ from the one the upload started on."""
    deadline = time.monotonic() + SKETCH_PORT_WAIT_SECONDS
    while True:
        sketch, _ = find_board_ports(board)
        if len(sketch) == 1:
            return sketch[0].device
        if any(p.device == upload_port for p in sketch):
            return upload_port
        if time.monotonic() >= deadline:
            return upload_port if os.path.exists(upload_port) else None
        time.sleep(0.25)


def prepare_board(board: BoardProfile | str, *, on_line: Callable[[str], None] | None = None) -> list[list[str]]:
    """Download what building and uploading for `board` needs, for every app it can run; returns the commands run.

    `pio pkg install -d` fetches the platform, toolchain, framework and each app's libraries
    (into the shared libdeps folder rendered projects use); the upload tools come from the
    platform's own manifest.
    """
    from tinyml.firmware.apps import app_sensors, list_apps, load_app
    from tinyml.firmware.platformio_ini import platformio_ini

    profile = get_board(board) if isinstance(board, str) else board
    pio = PlatformIO()
    commands: list[list[str]] = []

    def call(command: list[str]) -> None:
        commands.append(command)
        result = pio.call(command, on_line=on_line)
        if result.returncode != 0:
            raise explain_failure(result.stdout, profile, Path("."), None)

    apps = []
    for name in list_apps():
        app = load_app(name)
        try:
            app_sensors(profile, app)
        except InputError:
            continue  # the board lacks a sensor this app needs
        apps.append(app)
    with tempfile.TemporaryDirectory(prefix="tinyml-prepare-") as scratch:
        for app in apps:
            project = Path(scratch) / app.name
            project.mkdir()
            (project / "platformio.ini").write_text(platformio_ini(profile, app), encoding="utf-8")
            call(pio.install_project_command(project, profile.env_name))
    installed = pio.platform_installed(profile.platformio.platform_name, profile.platformio.platform_version)
    if installed is None or installed.path is None:
        raise ToolError(f"PlatformIO reports no {profile.platformio.platform} after installing it", "run `pio pkg list -g` to see what is installed")
    for spec in uploader_tools(installed.path):
        call(pio.install_tool_command(spec))
    return commands
