"""Firmware for a rig: rendered and built once per board profile, uploaded to each board in parallel.

`build_for_profile` renders the project (tinyml.firmware.render) into the rig's reports folder
and runs one `pio run` for it; `upload_built` then sends that build to one board with
`pio run -t nobuild -t upload --upload-port PORT`, so that uploads running side by side never
rebuild, or race on, the shared build folder. An emulated board gets the same rendered
project, built against the board's TFLM library for QEMU's mps2-an386 (`start_emulated`,
tinyml.device.emulator), one QEMU per board. Boards behind a network port, virtual boards and
labgrid places are not flashed by the rig.

The firmware hash is the SHA-256 of the rendered files (the generated sources and the
platformio.ini that pins the platform and the TFLM library), so two runs with the same hash
ran the same firmware; the library hash is that of the profile's pinned TFLM library.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyml.device.flash import check_port, explain_failure
from tinyml.device.platformio import PlatformIO
from tinyml.firmware.boards import BoardProfile, get_board
from tinyml.firmware.manifest import MANIFEST_NAME

log = logging.getLogger("tinyml.rig")

# pio's own upload target, without building again.
NO_BUILD_TARGET = ("-t", "nobuild")


@dataclass(frozen=True)
class BuiltFirmware:
    profile: BoardProfile
    project_dir: Path
    firmware_hash: str
    library_hash: str


def firmware_hash(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:16]


def library_hash(profile: BoardProfile) -> str:
    return hashlib.sha256(profile.library.lib_deps.encode()).hexdigest()[:16]


def build_for_profile(profile_id: str, model_bytes: bytes, out_dir: Path, labels: list[str] | None, on_line: Callable[[str], None] | None = None) -> BuiltFirmware:
    """Render and build the firmware of one profile (the slow step, done once for all its boards)."""
    from tinyml.firmware.render import render_project

    profile = get_board(profile_id)
    rendered = render_project(profile, model_bytes, out_dir, labels=labels, force=True)
    # The manifest records how the files were made, not what they are: it stays out of the hash.
    files = {name: (out_dir / name).read_bytes() for name in (*rendered.written, *rendered.unchanged) if name != MANIFEST_NAME}
    pio = PlatformIO()
    result = pio.call(pio.build_command(out_dir, profile.env_name), on_line=on_line)
    if result.returncode != 0:
        raise explain_failure(result.stdout, profile, out_dir, None)
    return BuiltFirmware(profile, out_dir, firmware_hash(files), library_hash(profile))


def upload_built(built: BuiltFirmware, port: str, on_line: Callable[[str], None] | None = None) -> list[str]:
    """Upload the built firmware to the board on `port`; returns the command run."""
    check_port(port)
    pio = PlatformIO()
    command = pio.upload_command(built.project_dir, built.profile.env_name, port)
    command[command.index("-t"):command.index("-t")] = list(NO_BUILD_TARGET)
    result = pio.call(command, on_line=on_line)
    if result.returncode != 0:
        raise explain_failure(result.stdout, built.profile, built.project_dir, port)
    return command


class EmulatedRigBoard:
    """One emulated board of a rig: its firmware built, QEMU running it until `release()`."""

    def __init__(self, profile_id: str, model_bytes: bytes, out_dir: Path, labels: list[str] | None, library: str | Path | None) -> None:
        from tinyml.device.emulator.session import start_emulator
        from tinyml.firmware.render import render_project

        rendered = render_project(get_board(profile_id), model_bytes, out_dir, labels=labels, force=True)
        files = {name: (out_dir / name).read_bytes() for name in (*rendered.written, *rendered.unchanged) if name != MANIFEST_NAME}
        self.firmware_hash = firmware_hash(files)
        self._stack = contextlib.ExitStack()
        self._running: Any = self._stack.enter_context(start_emulator(out_dir, library))
        library = self._running.build.library
        self.library_hash = hashlib.sha256(f"{library.name} {library.version}".encode()).hexdigest()[:16] if library is not None else None

    @property
    def url(self) -> str:
        return self._running.url

    def check(self) -> None:
        """A crash of the firmware while it was validated is the firmware's fault, not the link's."""
        self._running.board.check()

    def release(self) -> None:
        self._stack.close()
