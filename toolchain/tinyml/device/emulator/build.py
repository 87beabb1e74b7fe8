"""Cross-compiles a rendered project for the emulated board (QEMU's mps2-an386, a Cortex-M4F).

The project's `src/` is compiled exactly as `tinyml render` wrote it, for the board's core
(Cortex-M4F, gnu++14, -Os), with Debian's arm-none-eabi-gcc and newlib. The TFLM library is
built from source the way the Arduino builder builds a library: every .c/.cpp/.S under its
`src/`, with `src/` as the include root, all its objects linked (its library.properties says
dot_a_linkage=false), and --gc-sections dropping what nothing uses.

The emulated board's own C/C++ lives in `firmware_templates/targets/mps2_an386/`: startup,
linker script, UART, clock, semihosting; `include/` is its Arduino core API (what the library
and the project see), `libraries/` its stand-ins for the sensor libraries (only the project
sees them, as only the project depends on them).

The library's objects are compiled once per library content, flags and compiler, into an
archive in the user's cache (tinyml.core.native_build). Our sources (the project and the
target support) are compiled with -Wall -Wextra -Werror; the third-party library is not.
"""

from __future__ import annotations

import configparser
import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tinyml.core import native_build
from tinyml.core.errors import InputError, ModelError, ToolError
from tinyml.core.resources import templates_dir
from tinyml.core.tools import require_program
from tinyml.firmware.apps import DEFAULT_APP, load_app
from tinyml.firmware.boards import BoardProfile, get_board
from tinyml.firmware.library_source import LibrarySource
from tinyml.firmware.manifest import MANIFEST_NAME

log = logging.getLogger("tinyml.emulator")

TARGET = "mps2_an386"
GCC = "arm-none-eabi-gcc"
GXX = "arm-none-eabi-g++"
AR = "arm-none-eabi-ar"
SIZE = "arm-none-eabi-size"
INSTALL_HINT = "install Debian's cross toolchain: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
CACHE_KIND = "emulator"

# The cores whose instruction set the emulated Cortex-M4F runs.
EMULATED_CORES = ("Cortex-M4F",)
# The brief's ABI: hard float. (The Nano 33 BLE's mbed core uses softfp: the same FPU
# instructions, another calling convention.)
CPU_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
# As the mbed core compiles (its variants' cflags.txt/cxxflags.txt), less the mbed OS defines.
COMMON_FLAGS = (*CPU_FLAGS, "-Os", "-ffunction-sections", "-fdata-sections", "-fno-exceptions", "-fomit-frame-pointer")
C_FLAGS = ("-std=gnu11",)
CXX_FLAGS = ("-std=gnu++14", "-fno-rtti")
OWN_WARNINGS = ("-Wall", "-Wextra", "-Werror")
# Debug information for our sources only (a HardFault's pc -> addr2line). For the library it
# costs 15% more compile time and changes no instruction.
OWN_DEBUG = ("-g",)
# The Arduino builder's defines: ARDUINO=<IDE version> (PlatformIO passes 10810), the board
# and the architecture, for the PlatformIO board the profile names.
ARDUINO_DEFINES = ("-DARDUINO=10810",)
ARDUINO_BOARD_DEFINES = {"nano33ble": ("-DARDUINO_ARDUINO_NANO33BLE", "-DARDUINO_ARCH_MBED")}
LINK_FLAGS = (*CPU_FLAGS, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections")

# What the Arduino builder compiles in a library's src/, and what PlatformIO compiles in src/.
LIBRARY_SUFFIXES = (".c", ".cpp", ".S")
PROJECT_SUFFIXES = (".c", ".cc", ".cpp", ".S")
# The target support linked as objects: the vector table and the system calls newlib needs
# (the C library comes after every archive on the command line). The rest is an archive, so
# that a firmware without a microphone carries no microphone code.
TARGET_OBJECT_SOURCES = ("startup.c", "syscalls.c")

# Headers that most of the library's C++ files include: precompiled once per library build.
PRECOMPILED_HEADERS = (
    "tensorflow/lite/c/common.h",
    "tensorflow/lite/kernels/kernel_util.h",
    "tensorflow/lite/micro/kernels/kernel_util.h",
    "tensorflow/lite/kernels/internal/tensor_ctypes.h",
    "tensorflow/lite/kernels/internal/quantization_util.h",
    "tensorflow/lite/micro/micro_log.h",
)
# Measured on the pinned library (2 cores shared with other work): 14 of its files compiled
# alternately with and without took 52% less time with them (precompiling once: 21 s); whole
# first builds took 482 s with and 1,845 s without, under different loads. Objects compared
# section by section: 221 of 223 identical, 2 (div, log_softmax) differ only in the numbering
# of their COMDAT group sections.
USE_PRECOMPILED_HEADER = True
LIBRARY_ARCHIVE = "libtflm.a"
OUT_DIR = ".emulator"  # in the project: the ELF, its map and the objects


def target_dir() -> Path:
    """The emulated board's C/C++ support (package data)."""
    return templates_dir() / "targets" / TARGET


def linker_script() -> Path:
    return target_dir() / f"{TARGET}.ld"


@dataclass(frozen=True)
class RenderedProject:
    """A project folder `tinyml render` wrote, and what the emulated build needs from it."""

    path: Path
    board: BoardProfile
    build_flags: tuple[str, ...]
    # Its app runs a model, so it links the TFLM library; a model-less app (capture) does not,
    # as its platformio.ini does not list the library.
    links_tflm: bool = True

    @property
    def arduino_defines(self) -> tuple[str, ...]:
        return arduino_defines(self.board)

    @property
    def src(self) -> Path:
        return self.path / "src"


@dataclass(frozen=True)
class MemoryUse:
    flash: int = 0  # .text, .rodata, tables and .data's initial values
    ram: int = 0  # .data and .bss

    def to_dict(self) -> dict[str, int]:
        return {"flash_bytes": self.flash, "ram_bytes": self.ram}


@dataclass(frozen=True)
class LibraryBuild:
    archive: Path
    cached: bool
    seconds: float


@dataclass
class FirmwareBuild:
    elf: Path
    map_file: Path
    text: int
    data: int
    bss: int
    library: LibrarySource | None  # None for an app that runs no model: no TFLM library in it
    parts: dict[str, MemoryUse] = field(default_factory=dict)
    library_cached: bool = False
    library_seconds: float = 0.0
    firmware_seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "elf": str(self.elf),
            "text_bytes": self.text,
            "data_bytes": self.data,
            "bss_bytes": self.bss,
            "library": self.library.describe() if self.library is not None else None,
            "parts": {name: use.to_dict() for name, use in self.parts.items()},
            "library_cached": self.library_cached,
            "library_seconds": round(self.library_seconds, 1),
            "firmware_seconds": round(self.firmware_seconds, 1),
        }


def arduino_defines(board: BoardProfile) -> tuple[str, ...]:
    return (*ARDUINO_DEFINES, *ARDUINO_BOARD_DEFINES[board.platformio.board])


def load_project(project_dir: str | Path) -> RenderedProject:
    """The rendered project at `project_dir`, or an InputError saying why it is not one."""
    path = Path(project_dir)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file() or not (path / "src").is_dir():
        raise InputError(
            f"{path} is not a project that `tinyml render` wrote (no {MANIFEST_NAME} or src/)",
            "pass the folder `tinyml render --out` created, or render one",
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        board_id, app = manifest["board"], manifest.get("app", DEFAULT_APP)
        links_tflm = load_app(app).needs_model
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{manifest_path} is damaged ({exc})", "render the project again") from exc
    board = get_board(board_id)
    if board.core not in EMULATED_CORES:
        raise InputError(
            f"board {board.id} has a {board.core} core; the emulator runs {', '.join(EMULATED_CORES)} firmware only",
            "render the project for a Cortex-M4F board (e.g. nano33ble_sense)",
        )
    if board.platformio.board not in ARDUINO_BOARD_DEFINES:
        raise InputError(
            f"the emulator does not know the Arduino core defines of PlatformIO board '{board.platformio.board}' (board {board.id})",
            "add them to ARDUINO_BOARD_DEFINES, as the board's Arduino core defines them",
        )
    return RenderedProject(path, board, _platformio_build_flags(path / "platformio.ini", board), links_tflm)


def _platformio_build_flags(ini_path: Path, board: BoardProfile) -> tuple[str, ...]:
    """The -D flags of the board's environment in the rendered platformio.ini (e.g. the IMU part)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini_path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InputError(f"{ini_path} cannot be read ({exc})", "render the project again") from exc
    flags = parser.get(f"env:{board.env_name}", "build_flags", fallback="").split()
    return tuple(flag for flag in flags if flag.startswith("-D"))


def require_cross_compiler() -> None:
    for program in (GCC, GXX, AR, SIZE):
        require_program(program, INSTALL_HINT)


def _compile_command(source: Path, output: Path, flags: Sequence[str]) -> tuple[str, ...]:
    compiler = GCC if source.suffix in (".c", ".S") else GXX
    language = C_FLAGS if source.suffix == ".c" else () if source.suffix == ".S" else CXX_FLAGS
    return (compiler, *COMMON_FLAGS, *language, *flags, "-c", str(source), "-o", str(output))


def _compile_failure(job: native_build.CompileJob, output: str) -> ToolError:
    return ToolError(f"{job.source.name} does not compile for the emulated board: {native_build.first_error(output)}", "fix the source, or render the project again")


def library_flags(board: BoardProfile) -> tuple[str, ...]:
    """How the Arduino builder compiles the library for the board: the defines, no warnings."""
    return ("-w", *arduino_defines(board))


def _library_includes(library: LibrarySource) -> tuple[str, ...]:
    """The library's src/ is its include root; the board's Arduino API is the core's."""
    return (f"-I{library.src}", f"-I{target_dir() / 'include'}")


def _precompiled_headers(library: LibrarySource) -> tuple[str, ...]:
    return tuple(name for name in PRECOMPILED_HEADERS if (library.src / name).is_file())


def _includes_any(source: Path, headers: Sequence[str]) -> bool:
    """Whether `source` includes one of `headers` itself. Only such files get the precompiled
    header: forced into another file (system_setup.cpp) it changed gcc's inlining there."""
    text = source.read_text(encoding="utf-8", errors="replace")
    return any(f'#include "{name}"' in text for name in headers)


def library_key(board: BoardProfile, library: LibrarySource, precompiled: Sequence[str]) -> str:
    """A hash of everything the library's objects depend on."""
    include = target_dir() / "include"
    files = [(library.src, p) for p in native_build.files_under(library.src)] + [(include, p) for p in native_build.files_under(include)]
    settings = {
        "compilers": [native_build.compiler_identity(GCC), native_build.compiler_identity(GXX)],
        "flags": [COMMON_FLAGS, C_FLAGS, CXX_FLAGS, library_flags(board)],
        "precompiled": {"headers": list(precompiled), "into": "the C++ files that include one of them"},
    }
    return native_build.content_key(files, settings)


def build_library(
    board: BoardProfile, library: LibrarySource, *, workers: int | None = None, precompiled: bool = USE_PRECOMPILED_HEADER, keep_objects: bool = False
) -> LibraryBuild:
    """The library's archive for `board`'s Arduino core defines, from the user's cache or
    compiled now (minutes, once).
    `keep_objects` leaves the objects beside it (the bench compares them across builds)."""
    require_cross_compiler()
    headers = _precompiled_headers(library) if precompiled else ()
    flags = (*library_flags(board), *_library_includes(library))
    key = library_key(board, library, headers)
    sources = native_build.files_under(library.src, LIBRARY_SUFFIXES)
    started = time.monotonic()

    def build(work: Path) -> None:
        objects = work / "obj"
        objects.mkdir()
        cxx_extra: tuple[str, ...] = ()
        if headers:
            cxx_extra = native_build.precompiled_header((GXX, *COMMON_FLAGS, *CXX_FLAGS, *flags), headers, work)
        log.info("compiling the TFLM library %s: %d files (once; then cached in %s)", library.name, len(sources), work.parent)
        jobs = []
        for source in sources:
            output = objects / native_build.object_name(source, library.src)
            extra = cxx_extra if source.suffix == ".cpp" and _includes_any(source, headers) else ()
            jobs.append(native_build.CompileJob(source, output, _compile_command(source, output, (*flags, *extra))))
        native_build.compile_all(jobs, workers, _compile_failure)
        _run([AR, "rcs", str(work / LIBRARY_ARCHIVE), *(str(job.output) for job in jobs)])
        if not keep_objects:
            shutil.rmtree(objects)
        for leftover in work.glob("precompiled.h*"):
            leftover.unlink()

    folder, cached = native_build.cached_build(CACHE_KIND, library.name, key, build)
    return LibraryBuild(folder / LIBRARY_ARCHIVE, cached, time.monotonic() - started)


def _run(command: Sequence[str]) -> str:
    log.debug("%s", " ".join(command))
    result = subprocess.run(list(command), capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ToolError(f"{Path(command[0]).name} failed: {native_build.first_error(result.stdout + result.stderr)}", "run with --verbose to see the command")
    return result.stdout


def _own_flags(project: RenderedProject) -> tuple[str, ...]:
    return (*OWN_WARNINGS, *OWN_DEBUG, *project.arduino_defines, *project.build_flags)


def _project_flags(project: RenderedProject, library: LibrarySource | None) -> tuple[str, ...]:
    """The project's src/ sees itself, the Arduino API, the sensor libraries and the TFLM library."""
    target = target_dir()
    # The library's headers are third-party: their warnings are not ours to fail on.
    tflm = (f"-isystem{library.src}",) if library is not None else ()
    return (*_own_flags(project), f"-I{project.src}", f"-I{target / 'include'}", f"-I{target / 'libraries'}", *tflm)


def _target_flags(project: RenderedProject) -> tuple[str, ...]:
    """The board support sees only itself (a project header of the same name cannot shadow one)."""
    target = target_dir()
    return (
        *_own_flags(project),
        f"-DEMULATOR_SERIAL_RX_BUFFER_BYTES={project.board.rx_buffer_bytes}",
        f"-I{target}",
        f"-I{target / 'include'}",
        f"-I{target / 'libraries'}",
    )


_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")
_UNDEFINED = re.compile(r"undefined reference to `([^']+)'")


def _link_error(output: str) -> Exception:
    overflow = _OVERFLOW.search(output)
    if overflow:
        region, excess = overflow.groups()
        memory = "code memory (4 MiB)" if region == "CODE" else "RAM (4 MiB)"
        return ModelError(
            f"the firmware does not fit the emulated board's {memory}: {int(excess):,} bytes too many",
            "use a smaller model (or a smaller arena), as the real board would need too",
        )
    undefined = _UNDEFINED.search(output)
    if undefined:
        return ToolError(
            f"the firmware calls {undefined.group(1)}, which the emulated board does not have",
            "the emulator provides Serial, time, the IMU and the PDM microphone; keep other hardware out of the app",
        )
    return ToolError(f"the firmware does not link: {native_build.first_error(output)}", "run with --verbose to see the command and all its output")


def build_firmware(
    project_dir: str | Path, library: LibrarySource | None, out_dir: str | Path | None = None, *, workers: int | None = None, reuse: bool = False
) -> FirmwareBuild:
    """Builds `project_dir` for the emulated board; the ELF and map go to `out_dir` (default:
    PROJECT/.emulator). `reuse` keeps an ELF newer than the project's files and the support code."""
    project = load_project(project_dir)
    if project.links_tflm and library is None:
        raise InputError(f"the app of {project.path} runs a model, and no TFLM library was given", "pass --library DIR (or set TINYML_TFLM_LIBRARY)")
    library_build = build_library(project.board, library, workers=workers) if project.links_tflm else None
    started = time.monotonic()
    out = Path(out_dir) if out_dir else project.path / OUT_DIR
    elf, map_file = out / "firmware.elf", out / "firmware.map"
    if reuse and _is_newer(elf, [*native_build.files_under(project.path / "src"), project.path / "platformio.ini", *native_build.files_under(target_dir())]):
        return _firmware_build(elf, map_file, library, library_build, started)
    objects = out / "obj"
    shutil.rmtree(objects, ignore_errors=True)
    objects.mkdir(parents=True)
    target = target_dir()
    project_flags, target_flags = _project_flags(project, library), _target_flags(project)

    def job(source: Path, root: Path, prefix: str, flags: Sequence[str]) -> native_build.CompileJob:
        output = objects / f"{prefix}__{native_build.object_name(source, root)}"
        return native_build.CompileJob(source, output, _compile_command(source, output, flags))

    project_jobs = [job(s, project.src, "project", project_flags) for s in native_build.files_under(project.src, PROJECT_SUFFIXES)]
    target_jobs = [job(s, target, "target", target_flags) for s in native_build.files_under(target, (".c", ".cpp")) if s.parent == target]
    native_build.compile_all(project_jobs + target_jobs, workers, _compile_failure)
    support_archive = objects / "libemulator.a"
    _run([AR, "rcs", str(support_archive), *(str(j.output) for j in target_jobs if j.source.name not in TARGET_OBJECT_SOURCES)])
    linked = [str(j.output) for j in project_jobs] + [str(j.output) for j in target_jobs if j.source.name in TARGET_OBJECT_SOURCES]
    link = [GXX, *LINK_FLAGS, f"-T{linker_script()}", f"-Wl,-Map={map_file}", *linked]
    if library_build is not None:
        link += ["-Wl,--whole-archive", str(library_build.archive), "-Wl,--no-whole-archive"]
    link += [str(support_archive), "-o", str(elf)]
    log.debug("%s", " ".join(link))
    result = subprocess.run(link, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        log.debug("%s", result.stdout + result.stderr)
        raise _link_error(result.stdout + result.stderr)
    return _firmware_build(elf, map_file, library, library_build, started)


def _is_newer(output: Path, inputs: Sequence[Path]) -> bool:
    return output.is_file() and all(path.stat().st_mtime < output.stat().st_mtime for path in inputs)


def _firmware_build(elf: Path, map_file: Path, library: LibrarySource | None, library_build: LibraryBuild | None, started: float) -> FirmwareBuild:
    text, data, bss = section_sizes(elf)
    return FirmwareBuild(
        elf=elf,
        map_file=map_file,
        text=text,
        data=data,
        bss=bss,
        library=library,
        parts=memory_by_part(map_file),
        library_cached=library_build is None or library_build.cached,
        library_seconds=library_build.seconds if library_build is not None else 0.0,
        firmware_seconds=time.monotonic() - started,
    )


def section_sizes(elf: Path) -> tuple[int, int, int]:
    """text (code, constants, tables), data, bss of the ELF, as `arm-none-eabi-size -A` lists
    them; the heap and stack reservations are not counted."""
    rows = (line.split() for line in _run([SIZE, "-A", str(elf)]).splitlines()[2:])
    sizes = {row[0]: int(row[1]) for row in rows if len(row) == 3 and row[1].isdigit()}
    text = sum(size for name, size in sizes.items() if name.startswith((".text", ".ARM.extab", ".ARM.exidx")))
    return text, sizes.get(".data", 0), sizes.get(".bss", 0)


# One input section in the map: " .text.name  0xADDRESS  0xSIZE  file" (a long name is on the line before).
_MAP_SECTION = re.compile(r"^ (\.[\w.$]+|COMMON)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_MAP_NAME_ONLY = re.compile(r"^ (\.[\w.$]+|COMMON)$")
_FLASH_SECTIONS = (".vectors", ".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".init_array", ".preinit_array", ".fini_array")
PART_TFLM, PART_APP, PART_RUNTIME, PART_SUPPORT = "tflm", "app+model", "C/C++ runtime", "emulator support"


def memory_by_part(map_file: Path) -> dict[str, MemoryUse]:
    """Flash and RAM by part, from the linker map: TFLM (the library), app + model (the
    project's src/), the C/C++ runtime (newlib, libgcc, libstdc++) and the emulated board's
    support. Merged string sections are listed at their size before merging, so each input
    section counts only up to where the next one starts."""
    entries: list[tuple[int, int, str, bool, bool]] = []  # address, size, part, in flash, in RAM
    pending_name = None
    lines = map_file.read_text(errors="replace").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Linker script and memory map")), len(lines))
    for line in lines[start:]:
        if _MAP_NAME_ONLY.match(line):
            pending_name = line.strip()
            continue
        match = _MAP_SECTION.match(line)
        name = (match.group(1) or pending_name) if match else None
        pending_name = None
        if not match or not name or int(match.group(3), 16) == 0:
            continue
        is_data, is_bss = name.startswith(".data"), name.startswith((".bss", "COMMON"))
        if not (is_data or is_bss or name.startswith(_FLASH_SECTIONS)):
            continue
        entries.append((int(match.group(2), 16), int(match.group(3), 16), _part_of(match.group(4)), not is_bss, is_data or is_bss))
    entries.sort()
    totals: dict[str, list[int]] = {}
    for i, (address, size, part, in_flash, in_ram) in enumerate(entries):
        if i + 1 < len(entries) and entries[i + 1][0] >= address:
            size = min(size, entries[i + 1][0] - address)
        flash_ram = totals.setdefault(part, [0, 0])
        flash_ram[0] += size if in_flash else 0
        flash_ram[1] += size if in_ram else 0
    return {part: MemoryUse(flash, ram) for part, (flash, ram) in sorted(totals.items())}


def _part_of(origin: str) -> str:
    if f"{LIBRARY_ARCHIVE}(" in origin:
        return PART_TFLM
    if "/project__" in origin:
        return PART_APP
    if "/target__" in origin or "libemulator.a(" in origin:
        return PART_SUPPORT
    return PART_RUNTIME
