"""`rig discover`: a rig file from the boards that are plugged in.

Boards are found as `tinyml flash --port auto` finds one, by the USB VID:PID in the board
profiles (pyserial's port listing), and each is named by its USB serial number. Its port is the
/dev/serial/by-id link to it when there is one, so that the board keeps its name and its port
when the hub renumbers ttyACM devices. Two profiles may share a VID:PID (the Nano 33 BLE and
the BLE Sense do): then `profile` chooses, or the file names the others in a comment.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyml.core.errors import DeviceError, InputError
from tinyml.firmware.boards import get_board, list_boards
from tinyml.rig.rigfile import NAME_RE, RigBoard, write_rig

log = logging.getLogger("tinyml.rig")

BY_ID_DIR = Path("/dev/serial/by-id")


@dataclass(frozen=True)
class FoundBoard:
    board: RigBoard
    usb_id: str
    device: str  # the ttyACM device it is on now
    candidates: tuple[str, ...]  # every profile with this VID:PID
    in_bootloader: bool


def discover_boards(
    *,
    profile: str | None = None,
    comports: Callable[[], Iterable[Any]] | None = None,
    by_id_dir: Path = BY_ID_DIR,
) -> list[FoundBoard]:
    """The plugged-in boards whose VID:PID a profile names, sorted by name."""
    if comports is None:
        from serial.tools.list_ports import comports
    profiles = [get_board(profile)] if profile else list_boards()
    links = _by_id_links(by_id_dir)
    found: list[FoundBoard] = []
    for info in comports():
        if info.vid is None or info.pid is None:
            continue
        usb_id = f"{info.vid:04X}:{info.pid:04X}"
        sketch = [p.id for p in profiles if usb_id in p.usb_ids.sketch]
        bootloader = [p.id for p in profiles if usb_id in p.usb_ids.bootloader]
        candidates = tuple(sorted(sketch or bootloader))
        if not candidates:
            continue
        port = links.get(os.path.realpath(info.device), info.device)
        name = _board_name(info.serial_number, info.device)
        rig_board = RigBoard(name=name, profile=candidates[0], kind="serial", port=port, usb_serial=info.serial_number or None)
        found.append(FoundBoard(rig_board, usb_id, info.device, candidates, in_bootloader=not sketch))
    names = [f.board.name for f in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DeviceError(f"two boards report the same USB serial number {duplicates[0]}", "unplug one, or write the rig file by hand with your own names")
    return sorted(found, key=lambda f: f.board.name)


def write_discovered(path: str | Path, found: list[FoundBoard], *, force: bool = False) -> Path:
    """The rig file of `found`, with a comment where the profile was a choice or a board was in its bootloader."""
    path = Path(path)
    if path.exists() and not force:
        raise InputError(f"{path} already exists", "choose another --out, or pass --force to replace it")
    if not found:
        ids = ", ".join(sorted({i for p in list_boards() for i in p.usb_ids.sketch}))
        raise DeviceError(f"no board found on USB (looked for VID:PID {ids})", "plug the boards in with data USB cables, or write the rig file by hand")
    comments = {}
    for item in found:
        notes = [f"USB {item.usb_id} on {item.device}"]
        if len(item.candidates) > 1:
            notes.append(f"this VID:PID also fits {', '.join(item.candidates[1:])}: set profile, or run `tinyml rig discover --profile ID`")
        if item.in_bootloader:
            notes.append("found in its bootloader: the sketch may come up on another port after flashing")
        comments[item.board.name] = "\n".join(notes)
    header = "Rig file written by `tinyml rig discover`: one [boards.NAME] table per board, named by its USB serial number."
    return write_rig(path, [item.board for item in found], comments=comments, header=header)


def _by_id_links(directory: Path) -> dict[str, str]:
    """Device -> its /dev/serial/by-id link (the name that survives renumbering)."""
    links: dict[str, str] = {}
    if directory.is_dir():
        for link in sorted(directory.iterdir()):
            links.setdefault(os.path.realpath(link), str(link))
    return links


def _board_name(serial_number: str | None, device: str) -> str:
    if serial_number:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", serial_number.strip())[:64]
        if NAME_RE.match(name):
            return name
    # No serial number: the device name is the best there is (and it may change).
    return Path(device).name

