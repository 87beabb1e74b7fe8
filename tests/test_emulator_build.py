"""The emulated board's build: every app on every Cortex-M4 board profile compiles against the
pinned TFLM library with -Wall -Wextra -Werror on our own sources, and links; the ELF's memory
is split by part. The library is compiled once per session (conftest.emulator_library)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyml.core.errors import InputError, ToolError
from tinyml.device.emulator.build import EMULATED_CORES, PART_APP, PART_TFLM, build_firmware, target_dir
from tinyml.firmware.apps import app_sensors, default_app_context, list_apps, load_app
from tinyml.firmware.boards import list_boards
from tinyml.firmware.render import render_project

CORTEX_M4_BOARDS = [board.id for board in list_boards() if board.core in EMULATED_CORES]
LABELS = ["one", "two", "three", "four"]  # the test models have 4 classes


def _runs_on(board_id: str, app: str) -> bool:
    board = next(b for b in list_boards() if b.id == board_id)
    try:
        app_sensors(board, load_app(app))
    except InputError:
        return False
    return True


BOARD_APPS = [(board, app) for board in CORTEX_M4_BOARDS for app in list_apps() if _runs_on(board, app)]


def app_model(app: str, directory: Path, int8_models: dict[str, Path]) -> Path:
    """A small int8 model whose input the app's features fill: the app's own input shape."""
    if app not in ("gesture", "kws"):
        return int8_models["conv2d"]
    import keras
    from modelzoo import convert_int8

    path = directory / f"{app}.tflite"
    if not path.exists():
        from tinyml.features.imu import ImuWindowSpec
        from tinyml.features.logmel import LogMelSpec

        shape = tuple((ImuWindowSpec() if app == "gesture" else LogMelSpec()).input_shape)  # the apps' default features
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input(shape), keras.layers.Conv2D(4, (3, 1), activation="relu"), keras.layers.Flatten(), keras.layers.Dense(len(LABELS), activation="softmax")])
        calibration = np.random.default_rng(0).uniform(-1, 1, (16, *shape)).astype(np.float32)
        path.write_bytes(convert_int8(model, calibration))
    return path


def render_app(board: str, app: str, out: Path, int8_models: dict[str, Path]) -> Path:
    if not load_app(app).needs_model:
        render_project(board, None, out, app=app, app_context=default_app_context(app))
        return out
    render_project(board, app_model(app, out.parent, int8_models), out, labels=LABELS, app=app, app_context=default_app_context(app))
    return out


@pytest.mark.parametrize(("board", "app"), BOARD_APPS, ids=[f"{b}-{a}" for b, a in BOARD_APPS])
def test_every_app_builds_with_werror_on_every_cortex_m4_board(board: str, app: str, emulator_library, int8_models, tmp_path: Path) -> None:
    project = render_app(board, app, tmp_path / "project", int8_models)
    firmware = build_firmware(project, emulator_library)
    assert firmware.elf.is_file() and firmware.library_cached
    assert firmware.text > 0 and firmware.bss > 0
    # The part we measure for the summary: TFLM and the app + model are both in the ELF; an
    # app that runs no model links no TFLM.
    if load_app(app).needs_model:
        assert firmware.parts[PART_TFLM].flash > 20_000
    else:
        assert PART_TFLM not in firmware.parts, firmware.parts
    assert firmware.parts[PART_APP].flash > 1_000 and firmware.parts[PART_APP].ram > 1_000
    assert sum(part.flash for part in firmware.parts.values()) <= firmware.text + firmware.data


def test_a_warning_in_our_sources_fails_the_build_in_one_line(emulator_library, int8_models, tmp_path: Path) -> None:
    project = render_app("nano33ble_sense", "validation", tmp_path / "project", int8_models)
    app = project / "src" / "app.cpp"
    app.write_text(app.read_text() + "\nstatic int unused_function(int x) { return x; }\n")
    with pytest.raises(ToolError, match=r"app\.cpp does not compile for the emulated board: .*unused") as failure:
        build_firmware(project, emulator_library)
    assert "\n" not in str(failure.value)


def test_the_support_code_ships_as_package_data() -> None:
    shipped = {p.name for p in target_dir().rglob("*") if p.is_file()}
    assert {"startup.c", "mps2_an386.ld", "uart0.c", "Arduino.h", "imu_replay.h", "PDM.h"} <= shipped
