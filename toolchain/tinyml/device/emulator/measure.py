"""What the emulated board measures for `tinyml deploy --port emulator`: the arena the board's
library uses for the model, the firmware's flash and RAM by part, instructions per inference.

- Arena: the firmware's INFO reply carries TFLM's arena_used_bytes, measured with the board's
  library and its 32-bit ABI. The project is rendered again with exactly that (rounded up to
  16) instead of inspect's estimate from the 64-bit host runtime, rebuilt, and measured again.
- Memory: TFLM and the app + model are measured in the ELF (the linker map); the board's core
  (mbed OS, USB, the Arduino API) is not in it, so its share stays the profile's estimate.
- Time: under `-icount shift=0` one instruction takes one virtual nanosecond, so the device's
  latency in microseconds is thousands of instructions. At the board's clock that gives a
  latency estimate of one instruction per cycle: the nRF52840's flash wait states and bus are
  not emulated.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tinyml.core.errors import InputError
from tinyml.core.tools import require_program
from tinyml.device.emulator.build import EMULATED_CORES, OUT_DIR, PART_APP, PART_TFLM, FirmwareBuild, require_cross_compiler
from tinyml.device.emulator.qemu import QEMU, QEMU_INSTALL_HINT
from tinyml.device.emulator.session import describe_target, start_emulator
from tinyml.device.link import DeviceLink
from tinyml.firmware.boards import BoardProfile
from tinyml.firmware.library_source import LIBRARY_ENV, LibrarySource, find_library

log = logging.getLogger("tinyml.emulator")

# The profiles' runtime estimates count the TFLM interpreter without kernels in (about 45 KB of
# flash and 2 KB of RAM, TFLM's memory-footprint notes, as boards/*.toml cite them). The ELF
# measures all of TFLM, so the core's share is the estimate less that part.
INTERPRETER_FLASH_IN_ESTIMATE = 45_000
INTERPRETER_RAM_IN_ESTIMATE = 2_000
NANOSECONDS_PER_INSTRUCTION = 1  # -icount shift=0


def firmware_elf(project_dir: Path) -> Path:
    return Path(project_dir) / OUT_DIR / "firmware.elf"


def check_emulator_inputs(board: BoardProfile, library: str | Path | None) -> LibrarySource | None:
    """Before any stage: the board's core, the cross compiler, QEMU, and a library the user
    names. Without one, the library is looked up after render, in the project's libdeps_dir."""
    if board.core not in EMULATED_CORES:
        raise InputError(
            f"board {board.id} has a {board.core} core; the emulated board runs {', '.join(EMULATED_CORES)} firmware only",
            "deploy for a Cortex-M4F board (e.g. nano33ble_sense), or use --port virtual",
        )
    require_cross_compiler()
    require_program(QEMU, QEMU_INSTALL_HINT)
    return find_library(library) if library or os.environ.get(LIBRARY_ENV) else None


def device_arena_bytes(url: str) -> int:
    """The arena the firmware on `url` used for its model, as its INFO reply says."""
    with DeviceLink(url) as link:
        return link.info().arena_used_bytes


def build_and_measure(
    project_dir: Path,
    library: LibrarySource | str | Path | None,
    board: BoardProfile,
    model_path: Path,
    *,
    labels: list[str] | None,
    app: str,
    app_context: dict[str, Any],
) -> dict[str, Any]:
    """Builds the rendered project for the emulated board, measures its arena there, renders
    it again with that arena and rebuilds; returns the facts for the deploy summary."""
    from tinyml.firmware.render import render_project

    source = library if isinstance(library, LibrarySource) else find_library(library, project_dir)
    with start_emulator(project_dir, source) as emulator:
        measured = device_arena_bytes(emulator.url)
    rendered = render_project(board, model_path, project_dir, labels=labels, app=app, app_context=app_context, force=True, device_arena_bytes=measured)
    with start_emulator(project_dir, source) as emulator:
        remeasured = device_arena_bytes(emulator.url)
        firmware = emulator.build
    if remeasured != measured:
        log.warning("the arena used changed from %d to %d bytes after re-rendering with %d", measured, remeasured, rendered.arena_bytes)
    return {
        "port": "emulator",
        "target": describe_target(source),
        "elf": str(firmware.elf),
        "library": source.describe(),
        "arena": {
            "measured_on_device_bytes": remeasured,
            "declared_bytes": rendered.arena_bytes,
            "estimated_by_inspect_bytes": rendered.estimated_arena_bytes,
        },
        "memory": memory_facts(firmware, board),
        "build": firmware.to_dict(),
    }


def memory_facts(firmware: FirmwareBuild, board: BoardProfile) -> dict[str, Any]:
    """Flash and RAM of TFLM + app + model from the ELF; the core's share, an estimate; the total against the board."""
    measured_flash = sum(firmware.parts[p].flash for p in (PART_TFLM, PART_APP) if p in firmware.parts)
    measured_ram = sum(firmware.parts[p].ram for p in (PART_TFLM, PART_APP) if p in firmware.parts)
    core_flash = max(board.runtime_flash_bytes - INTERPRETER_FLASH_IN_ESTIMATE, 0)
    core_ram = max(board.runtime_ram_bytes - INTERPRETER_RAM_IN_ESTIMATE, 0)
    return {
        "tflm_app_model_flash_bytes": measured_flash,
        "tflm_app_model_ram_bytes": measured_ram,
        "core_flash_bytes_estimate": core_flash,
        "core_ram_bytes_estimate": core_ram,
        "board_flash_bytes": board.flash_bytes,
        "board_ram_bytes": board.ram_bytes,
        "parts": {name: use.to_dict() for name, use in firmware.parts.items()},
    }


def emulator_facts(report: Any, board: BoardProfile) -> dict[str, Any]:
    """Instructions per inference (exact, from the device's latency under -icount) and a
    latency estimate at the board's clock (one instruction per cycle)."""
    latency_us = report.latency_us.p50
    instructions = round(latency_us * 1000 / NANOSECONDS_PER_INSTRUCTION)
    return {
        "target": report.target,
        "instructions_per_inference": instructions,
        "board_clock_hz": board.clock_hz,
        "latency_estimate_us_at_board_clock": round(instructions / board.clock_hz * 1e6, 1),
    }
