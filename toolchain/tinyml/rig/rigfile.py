"""The rig file: a TOML list of boards by name, each with its board profile and where it is.

    [rig]                                  # optional; every path stays inside the rig's folder
    store = "rig.results.sqlite"           # default: <rig file stem>.results.sqlite
    reports = "rig-reports"                # default: <rig file stem>-reports
    labels = "labels.txt"                  # class names the virtual boards report
    coordinator = "127.0.0.1:20408"        # the labgrid coordinator of `place` boards

    [boards.A1B2C3D4]                      # a board on USB, named by its serial number
    profile = "nano33ble_sense"
    port = "/dev/serial/by-id/usb-Arduino_Nano_33_BLE_Sense_A1B2C3D4-if00"
    usb_serial = "A1B2C3D4"

    [boards.bench-2]                       # behind ser2net
    profile = "nano33ble_sense"
    port = "rfc2217://lab-host:4002"       # or socket://HOST:PORT

    [boards.twin-1]                        # a virtual board started for the run
    profile = "nano33ble_sense"
    virtual = { skew_every = 7 }           # faults of `tinyml virtual-board`, or {}

    [boards.emu-1]                         # the emulated board (QEMU), where it is available
    profile = "nano33ble_sense"
    emulator = {}

    [boards.shared-5]                      # a labgrid place with a NetworkSerialPort
    profile = "nano33ble_sense"
    place = "classroom-5"
    busy = "wait"                          # when another user holds it: "wait" up to wait_s, or "report" (default)
    wait_s = 120

Everything is checked when the file loads, and a mistake is one line that names the board and
the fix: an unknown profile, a port two boards share (a by-id link and the device it points to
are the same port), a board with no place to be, a path that leaves the rig's folder.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tinyml.core.errors import InputError
from tinyml.core.files import atomic_write_text
from tinyml.core.toml_files import read_toml
from tinyml.device.virtual_board import Faults
from tinyml.firmware.boards import list_boards

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NETWORK_SCHEMES = ("socket://", "rfc2217://")
# Where a board is: exactly one of these keys per board.
WHERE_KEYS = ("port", "virtual", "emulator", "place")
BUSY_CHOICES = ("report", "wait")
DEFAULT_WAIT_S = 60.0
FAULT_KEYS = tuple(f.name for f in fields(Faults))


@dataclass(frozen=True)
class RigBoard:
    name: str
    profile: str
    kind: str  # "serial", "network", "virtual", "emulator" or "place"
    port: str | None = None  # serial device or pyserial URL (serial, network)
    usb_serial: str | None = None
    faults: Faults = Faults()  # virtual boards
    place: str | None = None
    busy: str = "report"
    wait_s: float = DEFAULT_WAIT_S

    @property
    def flashable(self) -> bool:
        """A board the rig builds firmware for and uploads to: one on a local serial port."""
        return self.kind == "serial"


@dataclass(frozen=True)
class Rig:
    path: Path
    boards: dict[str, RigBoard]
    store_path: Path
    reports_dir: Path
    labels_path: Path | None = None
    coordinator: str | None = None

    @property
    def folder(self) -> Path:
        return self.path.parent


def load_rig(path: str | Path) -> Rig:
    """Read and check a rig file; an InputError names the board and the fix."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"rig file {path} does not exist", "write one with `tinyml rig discover --out rig.toml`, or give its path")
    return _RigReader(path).rig(read_toml(path, "rig file"))


class _RigReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path.resolve().parent

    def fail(self, where: str, problem: str, fix: str) -> InputError:
        return InputError(f"{self.path}: {where}: {problem}", fix)

    def inside(self, where: str, value: Any) -> Path:
        """A path from the rig file, relative to its folder, that does not leave it."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "must be a path", "give a file name relative to the rig file's folder")
        resolved = (self.folder / value).resolve()
        if resolved != self.folder and self.folder not in resolved.parents:
            raise self.fail(where, f"{value!r} leaves the rig's folder {self.folder}", "give a path inside the folder of the rig file")
        return resolved

    def rig(self, data: dict) -> Rig:
        unknown = set(data) - {"rig", "boards"}
        if unknown:
            raise self.fail(f"table [{sorted(unknown)[0]}]", "is not part of a rig file", "use [rig] and [boards.NAME] tables only")
        settings = data.get("rig", {})
        if not isinstance(settings, dict):
            raise self.fail("rig", "must be a table", "write [rig] with store/reports/labels/coordinator keys")
        known = {"store", "reports", "labels", "coordinator"}
        for key in settings:
            if key not in known:
                raise self.fail(f"[rig] {key}", "is not a known setting (a typo?)", f"use one of {', '.join(sorted(known))}")
        stem = self.path.stem
        store = self.inside("[rig] store", settings.get("store", f"{stem}.results.sqlite"))
        reports = self.inside("[rig] reports", settings.get("reports", f"{stem}-reports"))
        labels = self.inside("[rig] labels", settings["labels"]) if "labels" in settings else None
        coordinator = settings.get("coordinator")
        if coordinator is not None and (not isinstance(coordinator, str) or not re.fullmatch(r"[^\s:]+:\d+", coordinator)):
            raise self.fail("[rig] coordinator", f"{coordinator!r} is not HOST:PORT", "give the labgrid coordinator as e.g. \"127.0.0.1:20408\"")
        boards_table = data.get("boards", {})
        if not isinstance(boards_table, dict) or not boards_table:
            raise self.fail("[boards]", "no boards", "add a [boards.NAME] table per board, or run `tinyml rig discover`")
        profiles = sorted(board.id for board in list_boards())
        boards = {name: self.board(name, entry, profiles, coordinator) for name, entry in boards_table.items()}
        self.check_ports_unique(boards)
        return Rig(self.path, boards, store, reports, labels, coordinator)

    def board(self, name: str, entry: Any, profiles: list[str], coordinator: str | None) -> RigBoard:
        where = f"board '{name}'"
        if not NAME_RE.match(name):
            raise self.fail(where, "is not a usable name", "name boards with letters, digits, '.', '_' and '-' (at most 64)")
        if not isinstance(entry, dict):
            raise self.fail(where, "must be a table", f"write [boards.{name}] with profile and port")
        allowed = {"profile", "usb_serial", "busy", "wait_s", *WHERE_KEYS}
        for key in entry:
            if key not in allowed:
                raise self.fail(where, f"'{key}' is not a known field (a typo?)", f"use {', '.join(sorted(allowed))}")
        profile = entry.get("profile")
        if not isinstance(profile, str):
            raise self.fail(where, "has no profile", f"add profile = \"ID\", one of: {', '.join(profiles)}")
        if profile not in profiles:
            raise self.fail(where, f"unknown profile '{profile}'", f"choose one of: {', '.join(profiles)} (see `tinyml boards list`)")
        given = [key for key in WHERE_KEYS if key in entry]
        if len(given) != 1:
            problem = "says neither where it is" if not given else f"has both {given[0]} and {given[1]}"
            raise self.fail(where, problem, "give exactly one of port = \"...\", virtual = {}, emulator = {}, place = \"...\"")
        kind_key = given[0]
        usb_serial = entry.get("usb_serial")
        if usb_serial is not None and not isinstance(usb_serial, str):
            raise self.fail(where, "usb_serial must be a string", "quote the serial number")
        busy = entry.get("busy", "report")
        if busy not in BUSY_CHOICES:
            raise self.fail(where, f"busy = {busy!r}", "give busy = \"report\" or \"wait\"")
        wait_s = entry.get("wait_s", DEFAULT_WAIT_S)
        if isinstance(wait_s, bool) or not isinstance(wait_s, (int, float)) or wait_s < 0:
            raise self.fail(where, f"wait_s = {wait_s!r}", "give the seconds to wait for a busy place, e.g. 120")
        common = {"name": name, "profile": profile, "usb_serial": usb_serial, "busy": busy, "wait_s": float(wait_s)}
        if kind_key == "port":
            port = entry["port"]
            if not isinstance(port, str) or not port.strip():
                raise self.fail(where, "port must be a string", "give a device path like /dev/ttyACM0 or a URL like socket://HOST:PORT")
            if port.lower().startswith(NETWORK_SCHEMES):
                return RigBoard(kind="network", port=port, **common)
            if "://" in port or not os.path.isabs(port):
                raise self.fail(where, f"port {port!r} is neither a device path nor a socket:// or rfc2217:// URL", "give an absolute device path (/dev/serial/by-id/...) or socket://HOST:PORT")
            return RigBoard(kind="serial", port=port, **common)
        if kind_key == "virtual":
            return RigBoard(kind="virtual", faults=self.faults(where, entry["virtual"]), **common)
        if kind_key == "emulator":
            if not isinstance(entry["emulator"], dict):
                raise self.fail(where, "emulator must be a table", "write emulator = {}")
            return RigBoard(kind="emulator", **common)
        place = entry["place"]
        if not isinstance(place, str) or not place.strip():
            raise self.fail(where, "place must be a string", "give the labgrid place's name")
        if coordinator is None:
            raise self.fail(where, f"place '{place}' needs a labgrid coordinator", "add coordinator = \"HOST:PORT\" to the [rig] table")
        return RigBoard(kind="place", place=place, **common)

    def faults(self, where: str, table: Any) -> Faults:
        if not isinstance(table, dict):
            raise self.fail(where, "virtual must be a table of faults", "write virtual = {} or e.g. virtual = { skew_every = 7 }")
        for key, value in table.items():
            if key not in FAULT_KEYS:
                raise self.fail(where, f"virtual fault '{key}' is unknown", f"use {', '.join(FAULT_KEYS)} (as `tinyml virtual-board` names them)")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise self.fail(where, f"virtual fault {key} = {value!r}", "give a number of 0 or more")
        try:
            return Faults(**table)
        except TypeError as exc:
            raise self.fail(where, f"virtual faults: {exc}", "check the fault names") from exc

    def check_ports_unique(self, boards: dict[str, RigBoard]) -> None:
        seen: dict[str, str] = {}
        for board in boards.values():
            key = _port_key(board)
            if key is None:
                continue
            if key in seen:
                raise self.fail(f"board '{board.name}'", f"uses the same {'place' if board.kind == 'place' else 'port'} as board '{seen[key]}' ({board.port or board.place})", "give each board its own port (remove the duplicate entry)")
            seen[key] = board.name


def _port_key(board: RigBoard) -> str | None:
    """What two boards may not share; a by-id link and its device are one port."""
    if board.kind == "serial" and board.port:
        return "serial:" + os.path.realpath(board.port)
    if board.kind == "network" and board.port:
        scheme, _, rest = board.port.partition("://")
        return f"net:{rest.split('?')[0].lower().rstrip('/')}"
    if board.kind == "place":
        return f"place:{board.place}"
    return None


def write_rig(path: str | Path, boards: list[RigBoard], *, comments: dict[str, str] | None = None, header: str = "") -> Path:
    """Write a rig file with these boards (atomically); `comments` go above a board's table."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for board in boards:
        lines.append("")
        if comments and board.name in comments:
            lines += [f"# {line}" for line in comments[board.name].splitlines()]
        lines.append(f"[boards.{_key(board.name)}]")
        lines.append(f"profile = {_string(board.profile)}")
        if board.kind in ("serial", "network"):
            lines.append(f"port = {_string(board.port or '')}")
        elif board.kind == "virtual":
            faults = {f.name: getattr(board.faults, f.name) for f in fields(Faults) if getattr(board.faults, f.name) not in (0, 0.0, None)}
            lines.append("virtual = { " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in faults.items()) + (" }" if faults else "}"))
        elif board.kind == "emulator":
            lines.append("emulator = {}")
        elif board.kind == "place":
            lines.append(f"place = {_string(board.place or '')}")
        if board.usb_serial:
            lines.append(f"usb_serial = {_string(board.usb_serial)}")
    path = Path(path)
    atomic_write_text(path, "\n".join(lines).lstrip("\n") + "\n")
    return path


def _string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string for these characters


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _string(name)
