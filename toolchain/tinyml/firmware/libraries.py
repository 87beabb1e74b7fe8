"""TFLM libraries as facts: one TOML file per library version, validated when loaded.

A board profile names its library by id (`tflm_library = "arduino_tensorflowlite_06841a8"`);
the library file says what PlatformIO fetches (`lib_deps`), what the firmware includes
(`header`), the Arduino boards it builds for, the builtin ops it registers, whether it computes
per-channel FULLY_CONNECTED, and the arithmetic in which it differs from today's TFLM. Each fact
cites its source in the file's comments, as the board profiles do.

The files live in `boards/libraries/` (shipped as `tinyml.boards_data`); `libraries/` under the
user's board folder (`$TINYML_BOARDS_DIR`) takes precedence, as for boards.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyml.core.errors import InputError
from tinyml.core.resources import boards_dir
from tinyml.core.toml_files import TomlFields, files_by_id, read_toml

LIBRARIES_FOLDER = "libraries"
# The user's board folder (for boards and, in its libraries/, for libraries).
USER_BOARDS_ENV = "TINYML_BOARDS_DIR"

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OP_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")  # a builtin op as the schema names it
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a C macro or a custom op


@dataclass(frozen=True)
class ArithmeticDifference:
    """An op the library computes differently from today's TFLM (and its Python runtime)."""

    op: str
    effect: str
    source: str


@dataclass(frozen=True)
class LibraryFacts:
    id: str
    name: str  # the Arduino library's name, e.g. "Arduino_TensorFlowLite"
    version: str
    commit: str
    date: str  # of the commit or release
    tflm_date: str  # of the TFLM code inside it
    lib_deps: str  # the pinned PlatformIO lib_deps entry
    header: str  # what the firmware includes
    board_defines: tuple[str, ...]  # Arduino board macros it builds for; empty: any board
    per_channel_fully_connected: bool
    ops: frozenset[str]  # builtin ops its op resolver can register
    custom_ops: tuple[str, ...] = ()
    differences: tuple[ArithmeticDifference, ...] = ()
    source: Path | None = None

    @property
    def label(self) -> str:
        """How messages name it: "Arduino_TensorFlowLite 2.4.0-ALPHA at 06841a8 (TFLM of 2022-12-14)"."""
        return f"{self.name} {self.version} at {self.commit[:7]} (TFLM of {self.tflm_date})"

    def builds_for(self, board_define: str) -> bool:
        return not self.board_defines or board_define in self.board_defines

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "commit": self.commit,
            "date": self.date,
            "tflm_date": self.tflm_date,
            "lib_deps": self.lib_deps,
            "header": self.header,
            "board_defines": list(self.board_defines),
            "per_channel_fully_connected": self.per_channel_fully_connected,
            "ops": sorted(self.ops),
            "custom_ops": list(self.custom_ops),
            "differences": [{"op": d.op, "effect": d.effect, "source": d.source} for d in self.differences],
            "source": str(self.source) if self.source else None,
        }


def _library_dirs() -> list[Path]:
    dirs = []
    user = os.environ.get(USER_BOARDS_ENV)
    if user:
        dirs.append(Path(user).expanduser() / LIBRARIES_FOLDER)
    dirs.append(boards_dir() / LIBRARIES_FOLDER)
    return dirs


def _library_files() -> dict[str, Path]:
    return files_by_id(_library_dirs())


def list_libraries() -> list[LibraryFacts]:
    return [load_library_file(path) for _, path in sorted(_library_files().items())]


def get_library(library_id: str) -> LibraryFacts:
    files = _library_files()
    if library_id not in files:
        known = ", ".join(sorted(files)) or "none"
        raise InputError(f"unknown TFLM library '{library_id}'", f"choose one of: {known} (or add one to ${USER_BOARDS_ENV}/{LIBRARIES_FOLDER}/)")
    return load_library_file(files[library_id])


def load_library_file(path: str | Path) -> LibraryFacts:
    """Read and validate one library file; errors name the file and the field."""
    path = Path(path)
    return _Reader(path).library(read_toml(path, "TFLM library file"))


class _Reader(TomlFields):
    def __init__(self, path: Path) -> None:
        super().__init__(path, "TFLM library file", "boards/libraries/arduino_tensorflowlite_06841a8.toml")

    def text(self, table: dict, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.get(table, key, str)
        if not value.strip():
            raise self.fail(key, "is empty")
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"has the wrong form: {value!r}")
        return value

    def names(self, table: dict, key: str, pattern: re.Pattern[str], example: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(table, key, list, default=default)
        for item in value:
            if not isinstance(item, str) or not pattern.match(item):
                raise self.fail(key, f"must list names like {example}, not {item!r}")
        return tuple(value)

    def library(self, data: dict) -> LibraryFacts:
        library_id = self.path.stem
        if not _ID_RE.match(library_id):
            raise InputError(
                f"TFLM library file {self.path}: the file name '{library_id}' is not a valid id",
                "name it with lower-case letters, digits and underscores, e.g. my_tflm_2024.toml",
            )
        known = {
            "name", "version", "commit", "date", "tflm_date", "lib_deps", "header", "board_defines",
            "per_channel_fully_connected", "ops", "custom_ops", "differences",
        }
        for key in data:
            if key not in known:
                raise self.fail(key, "is not a known field (a typo?)")
        commit = self.text(data, "commit", re.compile(r"^[0-9a-f]{40}$"))
        lib_deps = self.text(data, "lib_deps")
        if not lib_deps.endswith(("#" + commit, "@" + str(data.get("version")))):
            raise self.fail("lib_deps", f"must pin the library's commit (url#{commit}) or version (name@{data.get('version')})")
        ops = self.names(data, "ops", _OP_RE, "CONV_2D")
        if not ops:
            raise self.fail("ops", "must list the builtin ops the library registers")
        return LibraryFacts(
            id=library_id,
            name=self.text(data, "name"),
            version=self.text(data, "version"),
            commit=commit,
            date=self.text(data, "date", _DATE_RE),
            tflm_date=self.text(data, "tflm_date", _DATE_RE),
            lib_deps=lib_deps,
            header=self.text(data, "header", re.compile(r"^[\w./-]+\.h$")),
            board_defines=self.names(data, "board_defines", _NAME_RE, "ARDUINO_ARDUINO_NANO33BLE"),
            per_channel_fully_connected=self.get(data, "per_channel_fully_connected", bool),
            ops=frozenset(ops),
            custom_ops=self.names(data, "custom_ops", _NAME_RE, "CIRCULAR_BUFFER", default=[]),
            differences=self.differences(self.get(data, "differences", list, default=[])),
            source=self.path,
        )

    def differences(self, entries: list) -> tuple[ArithmeticDifference, ...]:
        found = []
        for i, entry in enumerate(entries):
            key = f"differences[{i}]"
            if not isinstance(entry, dict) or set(entry) != {"op", "effect", "source"}:
                raise self.fail(key, "must be a table with exactly op, effect and source")
            if not all(isinstance(v, str) and v.strip() for v in entry.values()) or not _OP_RE.match(entry["op"]):
                raise self.fail(key, "must give op (e.g. MEAN), effect and source as non-empty strings")
            found.append(ArithmeticDifference(entry["op"], entry["effect"], entry["source"]))
        return tuple(found)
