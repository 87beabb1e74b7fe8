"""Board truth, kept found (issue 11): the rendered firmware, built against the pinned library
and run on the emulated Cortex-M4, computes exactly what `validate`'s reference says it does.

The reference is the board's own library built for the host (tinyml.model.board_library). Every
op that a lab or a held-out shape uses gets a single-op model; then the held-out models of
tests/modelzoo.py. Each must be 100% exact on the emulated board, or a library, converter or
firmware change has broken the board's arithmetic and CI fails. The labs end to end on the
emulated board are in test_labs.py.

The library's recorded differences from the TFLM Python runtime (boards/libraries/*.toml,
[[differences]]) are checked too: were the library to stop differing, its facts would be stale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import pinned_library_dir
from modelzoo import SINGLE_OP_MODELS, sample_inputs, write_single_op_model

from tinyml.core.data import Dataset
from tinyml.device.emulator.session import start_emulator
from tinyml.firmware.boards import get_board
from tinyml.firmware.render import render_project
from tinyml.validation.validate import validate_device

BOARD = "nano33ble_sense"
SAMPLES = 16
HELD_OUT_SAMPLES = 24
# The per-channel Dense model is one the board's library computes wrongly: render refuses it
# (test_render.py, test_inspect.py), so it never reaches the board.
RUNNABLE_SINGLE_OPS = [name for name, (_op, _shape, per_tensor) in SINGLE_OP_MODELS.items() if name != "fc_per_channel"]
HELD_OUT = ("dense", "conv2d", "conv1d", "depthwise")


@pytest.fixture(scope="module")
def single_op_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("single_op")


def _on_the_emulated_board(model: Path, x: np.ndarray, library, host_library, project: Path):
    """Render the validation firmware for `model`, run it on QEMU, validate it against the
    board's library built for the host; the report."""
    render_project(get_board(BOARD), model, project)
    with start_emulator(project, library) as emulator:
        report = validate_device(emulator.url, model, Dataset(x, None), library=host_library.library_dir, min_exact=None, target=emulator.target)
        emulator.board.check()
    assert report.reference["kind"] == "board_library", report.reference
    assert report.target.startswith("emulated board: mps2-an386")
    return report


@pytest.mark.parametrize("name", RUNNABLE_SINGLE_OPS)
def test_every_op_the_labs_use_is_exact_on_the_emulated_board(name: str, single_op_dir: Path, emulator_library, pinned_host_library, tmp_path: Path) -> None:
    model = write_single_op_model(name, single_op_dir)
    _op, shape, _per_tensor = SINGLE_OP_MODELS[name]
    x = np.random.default_rng(7).uniform(-1, 1, (SAMPLES, *shape)).astype(np.float32)
    report = _on_the_emulated_board(model, x, emulator_library, pinned_host_library, tmp_path / "project")
    verdict = report.verdict
    assert report.samples == SAMPLES
    assert verdict.exact_match == 1.0, f"{name}: {verdict.exact_match:.1%} exact, max {verdict.max_abs_lsb} LSB against the board's library"
    library = get_board(BOARD).library
    op = SINGLE_OP_MODELS[name][0]
    if op in {difference.op for difference in library.differences}:
        # The recorded fact: on this op the board differs from the TFLM Python runtime.
        assert report.device_vs_tflm.exact_match < 1.0, f"{library.name} no longer differs from the TFLM runtime on {op}: update boards/libraries"


@pytest.mark.parametrize("kind", HELD_OUT)
def test_the_held_out_models_are_exact_on_the_emulated_board(kind: str, int8_models: dict[str, Path], emulator_library, pinned_host_library, tmp_path: Path) -> None:
    report = _on_the_emulated_board(int8_models[kind], sample_inputs(kind, HELD_OUT_SAMPLES), emulator_library, pinned_host_library, tmp_path / "project")
    verdict = report.verdict
    assert verdict.exact_match == 1.0 and verdict.samples_exact == 1.0, f"{kind}: {verdict.exact_match:.1%} exact, max {verdict.max_abs_lsb} LSB"
    assert verdict.top1_agreement == 1.0


def test_the_pinned_library_is_the_one_the_tests_use() -> None:
    """The emulated board and the reference are built from the library the profile pins, not some other copy."""
    library = get_board(BOARD).library
    properties = (pinned_library_dir() / "library.properties").read_text()
    assert f"name={library.name}" in properties and f"version={library.version}" in properties
