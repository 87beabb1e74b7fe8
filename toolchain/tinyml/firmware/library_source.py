"""Where the board's TFLM library is on this machine, for the builds that compile it from source.

The board compiles the Arduino TFLM library that its profile pins; PlatformIO downloads it into
the project's `libdeps_dir`. The emulated board and the host reference compile the same source
folder. It is found, in order: the folder the user names (`--library DIR`), the
`TINYML_TFLM_LIBRARY` environment variable, and the copy PlatformIO downloaded for a rendered
project (the `libdeps_dir` its platformio.ini names, `<libdeps_dir>/<env>/<library>/`, filled by
`tinyml boards prepare` or any online build).
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from tinyml.core.errors import InputError, ToolError

LIBRARY_ENV = "TINYML_TFLM_LIBRARY"
# A TFLM Arduino library has the interpreter's header at this place below src/.
INTERPRETER_HEADER = "tensorflow/lite/micro/micro_interpreter.h"
# PlatformIO's defaults (its docs, "[platformio] section"): libdeps_dir is .pio/libdeps in the
# project; core_dir is $PLATFORMIO_CORE_DIR, else ~/.platformio.
PLATFORMIO_LIBDEPS = Path(".pio") / "libdeps"
PLATFORMIO_CORE_DIR_ENV = "PLATFORMIO_CORE_DIR"


@dataclass(frozen=True)
class LibrarySource:
    """An Arduino TFLM library folder, how it was found, and what its library.properties says."""

    path: Path
    found_by: str  # "--library", "$TINYML_TFLM_LIBRARY" or "PlatformIO libdeps_dir"
    name: str
    version: str

    @property
    def src(self) -> Path:
        return self.path / "src"

    def describe(self) -> str:
        return f"{self.name} {self.version} ({self.path}, from {self.found_by})"


def _properties(path: Path) -> dict[str, str]:
    text = (path / "library.properties").read_text(encoding="utf-8", errors="replace")
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def open_library(path: Path, found_by: str) -> LibrarySource:
    """The TFLM Arduino library at `path`, or an InputError saying why it is not one."""
    path = Path(path).expanduser().resolve()
    if not (path / "library.properties").is_file() or not (path / "src").is_dir():
        raise InputError(
            f"{path} (from {found_by}) is not an Arduino library: it needs library.properties and src/",
            "name the folder of the board's TFLM library, e.g. the Arduino_TensorFlowLite folder PlatformIO downloaded",
        )
    if not (path / "src" / INTERPRETER_HEADER).is_file():
        raise InputError(
            f"{path} (from {found_by}) is an Arduino library without TFLM (no src/{INTERPRETER_HEADER})",
            "name the board's TensorFlow Lite Micro library, e.g. Arduino_TensorFlowLite",
        )
    properties = _properties(path)
    return LibrarySource(path, found_by, properties.get("name", path.name), properties.get("version", "unknown version"))


def platformio_libdeps_dir(project_dir: Path) -> Path:
    """The libdeps_dir of the project's platformio.ini, with ${platformio.core_dir} expanded."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(project_dir / "platformio.ini", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return project_dir / PLATFORMIO_LIBDEPS
    configured = parser.get("platformio", "libdeps_dir", fallback="")
    if not configured:
        return project_dir / PLATFORMIO_LIBDEPS
    core_dir = os.environ.get(PLATFORMIO_CORE_DIR_ENV) or str(Path.home() / ".platformio")
    return project_dir / Path(configured.replace("${platformio.core_dir}", core_dir)).expanduser()


def _platformio_copies(project_dir: Path) -> list[Path]:
    libdeps = platformio_libdeps_dir(project_dir)
    if not libdeps.is_dir():
        return []
    depth = len(Path("src", INTERPRETER_HEADER).parts) - 1  # from the header up to the library folder
    return sorted(p.parents[depth] for p in libdeps.glob(f"*/*/src/{INTERPRETER_HEADER}"))


def find_library(explicit: str | Path | None = None, project_dir: str | Path | None = None) -> LibrarySource:
    """The board's TFLM library: `explicit`, else $TINYML_TFLM_LIBRARY, else PlatformIO's copy in
    `project_dir`. A ToolError (exit 4) with the ways to provide one when none is found."""
    if explicit:
        return open_library(Path(explicit), "--library")
    if os.environ.get(LIBRARY_ENV):
        return open_library(Path(os.environ[LIBRARY_ENV]), f"${LIBRARY_ENV}")
    if project_dir is not None:
        copies = _platformio_copies(Path(project_dir))
        if copies:
            return open_library(copies[0], "PlatformIO libdeps_dir")
    where = f" in {platformio_libdeps_dir(Path(project_dir))}" if project_dir is not None else ""
    raise ToolError(
        f"the board's TFLM library source was not found (no --library, no ${LIBRARY_ENV}, no PlatformIO copy{where})",
        f"run `tinyml boards prepare` once online, or pass --library DIR (or set {LIBRARY_ENV}) to a copy of the pinned library",
    )
