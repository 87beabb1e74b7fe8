"""Build a rendered project and run it on the emulated board: the API of `tinyml emulate` and
of `tinyml deploy --port emulator`.

    with start_emulator("deploy/firmware", library="path/to/Arduino_TensorFlowLite") as emulator:
        validate_device(emulator.url, ...)

Everything that can be checked before minutes of compiling is checked first: the project, the
library folder, the cross compiler, QEMU and the sensor recordings.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml.core.tools import require_program
from tinyml.device.emulator.build import FirmwareBuild, build_firmware, load_project, require_cross_compiler
from tinyml.device.emulator.qemu import DEFAULT_STARTUP_TIMEOUT_S, MACHINE, QEMU, QEMU_INSTALL_HINT, EmulatedBoard
from tinyml.device.emulator.recordings import read_imu_recording
from tinyml.firmware.library_source import LibrarySource, find_library

log = logging.getLogger("tinyml.emulator")

EMULATED_CORE = "Cortex-M4F"


def describe_target(library: LibrarySource | None) -> str:
    """How every output names this target: a report, a deploy summary, PASSED."""
    runs = f"library {library.name} {library.version}" if library is not None else "no TFLM library (the app runs no model)"
    return f"emulated board: {MACHINE} {EMULATED_CORE}, QEMU, {runs}"


@dataclass
class RunningEmulator:
    """The firmware built for the emulated board and QEMU running it."""

    build: FirmwareBuild
    board: EmulatedBoard

    @property
    def url(self) -> str:
        return self.board.url

    @property
    def target(self) -> str:
        return describe_target(self.build.library)


@dataclass(frozen=True)
class Recordings:
    """What the emulated sensors replay: IMU frames (n, 6) and their rate, a WAV file."""

    imu: np.ndarray | None = None
    imu_rate_hz: float | None = None
    audio: Path | None = None


def check_prerequisites(project_dir: str | Path, library: str | Path | None) -> LibrarySource | None:
    """The project, the library (None for an app that runs no model, as its platformio.ini
    lists none), the cross compiler and QEMU, before any compiling."""
    project = load_project(project_dir)
    source = find_library(library, project_dir) if project.links_tflm else None
    require_cross_compiler()
    require_program(QEMU, QEMU_INSTALL_HINT)
    return source


def load_recordings(project_dir: str | Path, imu: str | Path | None = None, imu_rate_hz: float | None = None, audio: str | Path | None = None) -> Recordings:
    """The recordings the user gives; an IMU rate from the option, the .npz, else the board's IMU."""
    if imu is None:
        return Recordings(audio=Path(audio) if audio else None)
    frames, recorded_rate = read_imu_recording(imu)
    rate = imu_rate_hz or recorded_rate
    if rate is None:
        sensor = load_project(project_dir).board.sensors.get("imu")
        rate = float(sensor.sample_rate_hz) if sensor and sensor.sample_rate_hz else None
    return Recordings(frames, rate, Path(audio) if audio else None)


def build(
    project_dir: str | Path, library: str | Path | LibrarySource | None = None, *, workers: int | None = None, reuse: bool = False
) -> FirmwareBuild:
    """Builds the project for the emulated board (the library from the user's cache after its
    first build). `reuse`: keep an ELF that is newer than every file of the project."""
    source = library if isinstance(library, LibrarySource) else check_prerequisites(project_dir, library)
    firmware = build_firmware(project_dir, source, workers=workers, reuse=reuse)
    if source is not None:
        log.info("library %s: %s in %.1f s", source.name, "cached" if firmware.library_cached else "compiled", firmware.library_seconds)
    return firmware


@contextlib.contextmanager
def start_emulator(
    project_dir: str | Path,
    library: str | Path | LibrarySource | None = None,
    *,
    recordings: Recordings | None = None,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
    workers: int | None = None,
    reuse: bool = False,
) -> Iterator[RunningEmulator]:
    """Builds the project and runs it on QEMU until the block ends (also on Ctrl-C or an error).
    `reuse`: run the ELF built earlier if it is newer than every file of the project."""
    source = library if isinstance(library, LibrarySource) else check_prerequisites(project_dir, library)
    recordings = recordings or Recordings()
    firmware = build(project_dir, source, workers=workers, reuse=reuse)
    with EmulatedBoard(firmware.elf, imu=recordings.imu, imu_rate_hz=recordings.imu_rate_hz, audio=recordings.audio, startup_timeout=startup_timeout) as board:
        yield RunningEmulator(firmware, board)
