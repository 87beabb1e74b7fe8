"""Board profiles: one TOML file per board, validated when loaded.

As in PlatformIO, a board is a data file whose stem is its id, and a user folder of boards
(`$TINYML_BOARDS_DIR`) takes precedence over the built-in ones in `boards/`. Every field is
checked here, so a malformed profile fails with the file and the field named instead of deep
inside render or flash.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinyml.core.errors import InputError, ModelError
from tinyml.core.resources import boards_dir
from tinyml.core.toml_files import TomlFields, files_by_id, read_toml
from tinyml.firmware.libraries import USER_BOARDS_ENV, LibraryFacts, get_library

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_USB_ID_RE = re.compile(r"^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}$")
_DEFINE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CPP_STANDARDS = ("gnu++11", "gnu++14", "gnu++17", "gnu++20", "c++11", "c++14", "c++17", "c++20")


@dataclass(frozen=True)
class SensorProfile:
    """An on-board sensor and the Arduino library that reads it."""

    kind: str  # the key apps ask for: "imu", "microphone", ...
    part: str  # the chip, e.g. "LSM9DS1"; render defines TINYML_<KIND>_<PART>
    header: str  # what a sketch includes, e.g. "Arduino_LSM9DS1.h"
    units: dict[str, str]  # quantity -> unit, e.g. {"acceleration": "g"}
    library: str | None = None  # pinned lib_deps entry; None when the board core ships it (PDM)
    sample_rate_hz: float | None = None

    @property
    def define(self) -> str:
        """The build flag that names this part to the app, e.g. -DTINYML_IMU_LSM9DS1."""
        part = re.sub(r"[^A-Za-z0-9]", "_", self.part).upper()
        return f"-DTINYML_{self.kind.upper()}_{part}"


@dataclass(frozen=True)
class UsbIds:
    """USB VID:PID pairs (upper-case hex) the board shows as a sketch and in its bootloader."""

    sketch: tuple[str, ...]
    bootloader: tuple[str, ...]


@dataclass(frozen=True)
class PlatformIOProfile:
    platform: str  # pinned, e.g. "platformio/nordicnrf52@9.5.0"
    board: str
    framework: str
    upload_protocol: str
    # The upload opens the port at 1200 bps so that the board resets into its bootloader,
    # where it may show up on a different port (PlatformIO's `use_1200bps_touch`).
    use_1200bps_touch: bool = False
    wait_for_upload_port: bool = False

    @property
    def platform_name(self) -> str:
        """The platform without owner and version: "nordicnrf52"."""
        return self.platform.split("@", 1)[0].split("/")[-1]

    @property
    def platform_version(self) -> str | None:
        return self.platform.split("@", 1)[1] if "@" in self.platform else None


@dataclass(frozen=True)
class FirmwareLink:
    """Whether the validation firmware links for the board's core with its library, as measured."""

    links: bool
    how: str  # what was built, with which compiler and flags, and where the numbers come from
    text_bytes: int | None = None  # arm-none-eabi-size of the linked ELF
    data_bytes: int | None = None
    bss_bytes: int | None = None
    why_not: str | None = None  # when it does not link: the first error


@dataclass(frozen=True)
class BoardProfile:
    id: str
    name: str
    vendor: str
    mcu: str
    core: str
    clock_hz: int
    flash_bytes: int  # what a sketch can use (the bootloader excluded)
    ram_bytes: int
    runtime_flash_bytes: int  # estimate: Arduino core + TFLM interpreter without kernels
    runtime_ram_bytes: int  # estimate: the core's own RAM use (globals, stacks, buffers)
    cpp_standard: str
    serial_baud: int
    rx_buffer_bytes: int
    usb_ids: UsbIds
    platformio: PlatformIOProfile
    arduino_board_define: str  # the ARDUINO_<BOARD> macro the board's core defines
    library: LibraryFacts  # the TFLM library the firmware builds with
    sensors: dict[str, SensorProfile] = field(default_factory=dict)
    quirks: tuple[str, ...] = ()
    verified_on_hardware: bool = False
    firmware_link: FirmwareLink | None = None
    # What to do when the upload succeeds but the sketch's serial port does not come back.
    port_missing_after_upload: str | None = None
    source: Path | None = None

    @property
    def env_name(self) -> str:
        """The PlatformIO environment rendered for this board."""
        return self.id

    @property
    def firmware_problem(self) -> str | None:
        """Why no firmware can be built for this board (its library or a measured link failure), or None."""
        if not self.library.builds_for(self.arduino_board_define):
            return (
                f"its TFLM library {self.library.label} builds only for {', '.join(self.library.board_defines)}, "
                f"not for this board ({self.arduino_board_define})"
            )
        if self.firmware_link is not None and not self.firmware_link.links:
            return f"its firmware does not link ({self.firmware_link.why_not or self.firmware_link.how})"
        return None

    def check_firmware(self) -> None:
        """ModelError (exit 3) when no firmware can be built for this board; render and deploy call it first."""
        problem = self.firmware_problem
        if problem is not None:
            raise ModelError(
                f"board {self.id} cannot run tinyml firmware: {problem}",
                f"choose another board (`tinyml boards`), or point tflm_library in {self.source or 'its profile'} at a library that builds for it",
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["library"] = self.library.to_dict()
        data["source"] = str(self.source) if self.source else None
        return data


def quantize_options(board: BoardProfile | str | None) -> dict[str, bool]:
    """The options of tinyml.model.quantize.quantize_model that give models `board`'s TFLM library
    computes correctly ({} without a board): per-tensor Dense weights where the library lacks
    per-channel FULLY_CONNECTED."""
    if board is None:
        return {}
    profile = get_board(board) if isinstance(board, str) else board
    return {"per_channel_dense": profile.library.per_channel_fully_connected}


def _board_dirs() -> list[Path]:
    dirs = []
    user = os.environ.get(USER_BOARDS_ENV)
    if user:
        folder = Path(user).expanduser()
        if not folder.is_dir():
            what = "a file" if folder.exists() else "missing"
            raise InputError(f"${USER_BOARDS_ENV} names {folder}, which is {what}, not a folder of board profiles", f"create that folder, point ${USER_BOARDS_ENV} at the folder that holds your .toml profiles, or unset it")
        dirs.append(folder)
    dirs.append(boards_dir())
    return dirs


def _board_files() -> dict[str, Path]:
    """Board id -> profile file; a user folder's file hides a built-in one of the same id."""
    return files_by_id(_board_dirs())


def list_boards() -> list[BoardProfile]:
    """Every board profile, built-in and the user's, sorted by id."""
    return [load_board_file(path) for _, path in sorted(_board_files().items())]


def get_board(board_id: str) -> BoardProfile:
    files = _board_files()
    if board_id not in files:
        known = ", ".join(sorted(files)) or "none"
        raise InputError(f"unknown board '{board_id}'", f"choose one of: {known} (or add a profile to ${USER_BOARDS_ENV})")
    return load_board_file(files[board_id])


def load_board_file(path: str | Path) -> BoardProfile:
    """Read and validate one profile; errors name the file and the field."""
    path = Path(path)
    return _Reader(path).board(read_toml(path, "board profile"))


class _Reader(TomlFields):
    """A profile's tables, checked field by field."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "board profile", "boards/nano33ble_sense.toml")

    def positive(self, table: dict, key: str, prefix: str = "") -> int:
        value = self.get(table, key, int, prefix)
        if value <= 0:
            raise self.fail(f"{prefix}{key}", f"must be a positive integer, not {value}")
        return value

    def text(self, table: dict, key: str, prefix: str = "", default: Any = ...) -> Any:
        value = self.get(table, key, str, prefix, default)
        if isinstance(value, str) and not value.strip():
            raise self.fail(f"{prefix}{key}", "is empty")
        return value

    def string_list(self, table: dict, key: str, prefix: str = "", default: Any = ...) -> tuple[str, ...]:
        value = self.get(table, key, list, prefix, default)
        if not all(isinstance(item, str) for item in value):
            raise self.fail(f"{prefix}{key}", "must be a list of strings")
        return tuple(value)

    def only(self, table: dict, known: set[str], prefix: str = "") -> None:
        for key in table:
            if key not in known:
                raise self.fail(f"{prefix}{key}", "is not a known field (a typo?)")

    def table(self, data: dict, key: str) -> dict:
        return self.get(data, key, dict)

    def board(self, data: dict) -> BoardProfile:
        board_id = self.path.stem
        if not _ID_RE.match(board_id):
            raise InputError(
                f"board profile {self.path}: the file name '{board_id}' is not a valid board id",
                "name it with lower-case letters, digits and underscores, e.g. my_board.toml",
            )
        cpp_standard = self.text(data, "cpp_standard")
        if cpp_standard not in _CPP_STANDARDS:
            raise self.fail("cpp_standard", f"must be one of {', '.join(_CPP_STANDARDS)}, not {cpp_standard!r}")
        flash_bytes = self.positive(data, "flash_bytes")
        ram_bytes = self.positive(data, "ram_bytes")
        runtime_flash = self.positive(data, "runtime_flash_bytes")
        runtime_ram = self.positive(data, "runtime_ram_bytes")
        if runtime_flash >= flash_bytes:
            raise self.fail("runtime_flash_bytes", f"({runtime_flash}) must be less than flash_bytes ({flash_bytes})")
        if runtime_ram >= ram_bytes:
            raise self.fail("runtime_ram_bytes", f"({runtime_ram}) must be less than ram_bytes ({ram_bytes})")
        known = {
            "name", "vendor", "mcu", "core", "clock_hz", "flash_bytes", "ram_bytes", "runtime_flash_bytes",
            "runtime_ram_bytes", "cpp_standard", "serial_baud", "rx_buffer_bytes", "usb_ids", "platformio",
            "arduino_board_define", "tflm_library", "firmware_link", "port_missing_after_upload", "sensors", "quirks",
            "verified_on_hardware",
        }
        self.only(data, known)
        return BoardProfile(
            id=board_id,
            name=self.text(data, "name"),
            vendor=self.text(data, "vendor"),
            mcu=self.text(data, "mcu"),
            core=self.text(data, "core"),
            clock_hz=self.positive(data, "clock_hz"),
            flash_bytes=flash_bytes,
            ram_bytes=ram_bytes,
            runtime_flash_bytes=runtime_flash,
            runtime_ram_bytes=runtime_ram,
            cpp_standard=cpp_standard,
            serial_baud=self.positive(data, "serial_baud"),
            rx_buffer_bytes=self.positive(data, "rx_buffer_bytes"),
            usb_ids=self.usb_ids(self.table(data, "usb_ids")),
            platformio=self.platformio(self.table(data, "platformio")),
            arduino_board_define=self.define(data, "arduino_board_define"),
            library=self.library(data, "tflm_library"),
            sensors=self.sensors(self.get(data, "sensors", dict, default={})),
            quirks=self.string_list(data, "quirks", default=[]),
            verified_on_hardware=self.get(data, "verified_on_hardware", bool),
            firmware_link=self.firmware_link(data["firmware_link"]) if "firmware_link" in data else None,
            port_missing_after_upload=self.text(data, "port_missing_after_upload", default=None),
            source=self.path,
        )

    def define(self, table: dict, key: str) -> str:
        value = self.text(table, key)
        if not _DEFINE_RE.match(value):
            raise self.fail(key, f"must be a C macro name like ARDUINO_ARDUINO_NANO33BLE, not {value!r}")
        return value

    def library(self, table: dict, key: str) -> LibraryFacts:
        library_id = self.text(table, key)
        try:
            return get_library(library_id)
        except InputError as exc:
            raise self.fail(key, f"names no usable TFLM library: {exc.problem}") from exc

    def firmware_link(self, table: Any) -> FirmwareLink:
        prefix = "firmware_link."
        if not isinstance(table, dict):
            raise self.fail("firmware_link", "must be a table")
        self.only(table, {"links", "how", "text_bytes", "data_bytes", "bss_bytes", "why_not"}, prefix)
        links = self.get(table, "links", bool, prefix)
        sizes = {key: self.get(table, key, int, prefix, None) for key in ("text_bytes", "data_bytes", "bss_bytes")}
        why_not = self.text(table, "why_not", prefix, None)
        if links and (None in sizes.values() or why_not):
            raise self.fail(f"{prefix}links", "is true: give text_bytes, data_bytes and bss_bytes, and no why_not")
        if not links and not why_not:
            raise self.fail(f"{prefix}why_not", "is missing: say why the firmware does not link")
        return FirmwareLink(links=links, how=self.text(table, "how", prefix), why_not=why_not, **sizes)

    def pinned(self, table: dict, key: str, prefix: str = "") -> str:
        """A lib_deps or platform entry pinned to an exact version (`@1.2.3`) or a commit (`#abc...`)."""
        value = self.text(table, key, prefix)
        if "#" in value:
            ref = value.rsplit("#", 1)[1]
            if not re.fullmatch(r"[0-9a-f]{7,40}|v?\d+(\.\d+)*", ref):
                raise self.fail(f"{prefix}{key}", f"must pin a commit or tag after '#', not {ref!r}")
        elif not re.search(r"@\d+(\.\d+)*$", value):
            raise self.fail(f"{prefix}{key}", f"must be pinned to an exact version (name@1.2.3) or a commit (url#sha), not {value!r}")
        return value

    def usb_ids(self, table: dict) -> UsbIds:
        self.only(table, {"sketch", "bootloader"}, "usb_ids.")
        ids = {}
        for mode in ("sketch", "bootloader"):
            values = self.string_list(table, mode, "usb_ids.")
            for value in values:
                if not _USB_ID_RE.match(value):
                    raise self.fail(f"usb_ids.{mode}", f"must hold VID:PID in hex like '2341:805A', not {value!r}")
            ids[mode] = tuple(v.upper() for v in values)
        if not ids["sketch"]:
            raise self.fail("usb_ids.sketch", "must list at least one VID:PID")
        return UsbIds(**ids)

    def platformio(self, table: dict) -> PlatformIOProfile:
        prefix = "platformio."
        self.only(table, {"platform", "board", "framework", "upload_protocol", "use_1200bps_touch", "wait_for_upload_port"}, prefix)
        return PlatformIOProfile(
            platform=self.pinned(table, "platform", prefix),
            board=self.text(table, "board", prefix),
            framework=self.text(table, "framework", prefix),
            upload_protocol=self.text(table, "upload_protocol", prefix),
            use_1200bps_touch=self.get(table, "use_1200bps_touch", bool, prefix, False),
            wait_for_upload_port=self.get(table, "wait_for_upload_port", bool, prefix, False),
        )

    def sensors(self, table: dict) -> dict[str, SensorProfile]:
        sensors = {}
        for kind, entry in sorted(table.items()):
            prefix = f"sensors.{kind}."
            if not isinstance(entry, dict):
                raise self.fail(f"sensors.{kind}", "must be a table")
            if not _ID_RE.match(kind):
                raise self.fail(f"sensors.{kind}", "must be named with lower-case letters, digits and underscores")
            self.only(entry, {"part", "header", "units", "library", "sample_rate_hz"}, prefix)
            units = self.get(entry, "units", dict, prefix)
            if not units or not all(isinstance(v, str) for v in units.values()):
                raise self.fail(f"{prefix}units", "must map each quantity to its unit as a string")
            rate = self.get(entry, "sample_rate_hz", (int, float), prefix, None)
            sensors[kind] = SensorProfile(
                kind=kind,
                part=self.text(entry, "part", prefix),
                header=self.text(entry, "header", prefix),
                units=dict(units),
                library=self.pinned(entry, "library", prefix) if "library" in entry else None,
                sample_rate_hz=float(rate) if rate is not None else None,
            )
        return sensors
