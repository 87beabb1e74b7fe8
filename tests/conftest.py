"""Shared test fixtures and the rules for tests that need an outside tool or a board.

- A test that needs a program (g++, arm-none-eabi-g++, pio, espeak-ng, ...) calls
  `require_tool(name)`: outside CI it skips with the reason; with CI=true it fails, because CI
  installs every tool and a skip there would hide a broken setup.
- Tests marked `board` need a real kit: they run only with `--port` (and `--board`).
- Tests that compile the board's TFLM library take it from `pinned_library_dir()`: the
  unmodified copies in ../shared/third_party/ beside the repository (never inside it), or the
  folders $TINYML_TEST_TFLM_LIBRARY / $TINYML_TEST_CANDIDATE_LIBRARY name. Missing, they skip,
  and fail in CI.
- Those builds take minutes the first time (then the user's cache answers). They start in the
  background as soon as the tests are collected, and the test files that need them run last:
  the rest of the suite leaves most of a second core idle, which the builds then use.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


REPO_ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY = REPO_ROOT.parent / "shared" / "third_party"


def require_tool(name: str) -> str:
    """The path of program `name`; skip without it, but fail in CI where it must be installed."""
    path = shutil.which(name)
    if path is None:
        _missing(f"'{name}' is not installed (`make system-deps` installs it)")
    return path


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _library_dir(env: str, folder: str) -> Path:
    path = Path(os.environ.get(env) or THIRD_PARTY / folder)
    if not (path / "library.properties").is_file():
        _missing(f"the TFLM Arduino library {path} is missing (set {env} to a copy)")
    return path


def pinned_library_dir() -> Path:
    """The library every board profile pins (Arduino_TensorFlowLite at 06841a8)."""
    return _library_dir("TINYML_TEST_TFLM_LIBRARY", "Arduino_TensorFlowLite")


def candidate_library_dir() -> Path:
    """The newer candidate library (Chirale_TensorFlowLite 2.0.0)."""
    return _library_dir("TINYML_TEST_CANDIDATE_LIBRARY", "Chirale_TensorFlowLite")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--port", default=None, help="serial port of a real board, for tests marked `board`")
    parser.addoption("--board", default=None, help="board profile id of the board on --port")


# The session fixtures that compile a TFLM library, and what each compiles in the background.
LIBRARY_FIXTURES = ("emulator_library", "pinned_host_library", "candidate_host_library")
_prebuilt: dict[str, Future] = {}


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected: build only what the run needs
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--port"):
        skip = pytest.mark.skip(reason="needs a real board: run with --port PORT --board ID")
        for item in items:
            if "board" in item.keywords:
                item.add_marker(skip)
    needing = {name: [item for item in items if name in getattr(item, "fixturenames", ())] for name in LIBRARY_FIXTURES}
    # Whole files move, so that their module fixtures (a trained lab) are made once.
    late_files = {item.path for users in needing.values() for item in users}
    items[:] = [item for item in items if item.path not in late_files] + [item for item in items if item.path in late_files]
    if not config.getoption("collectonly"):
        _start_library_builds([name for name, users in needing.items() if users])


def _start_library_builds(names: list[str]) -> None:
    """One build after the other in one background thread (each uses every core). A build that
    cannot start (no compiler, no library) is left to its fixture, which skips or fails."""
    builds = {"emulator_library": _build_emulator_library, "pinned_host_library": lambda: _build_host_library(pinned_library_dir), "candidate_host_library": lambda: _build_host_library(candidate_library_dir)}
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tflm-library-build")
    for name in names:
        try:
            ready = _library_ready(name)
        except BaseException:  # noqa: BLE001 - pytest's skip/fail outcomes: the fixture reports them
            continue
        if ready:
            _prebuilt[name] = executor.submit(builds[name])
    executor.shutdown(wait=False)


def _library_ready(name: str) -> bool:
    tools = {"emulator_library": ("arm-none-eabi-g++", "qemu-system-arm"), "pinned_host_library": ("g++",), "candidate_host_library": ("g++",)}[name]
    (candidate_library_dir if name == "candidate_host_library" else pinned_library_dir)()
    return all(shutil.which(tool) for tool in tools)


def _prebuilt_or(name: str, build):
    future = _prebuilt.pop(name, None)
    return future.result() if future is not None else build()


@pytest.fixture(scope="session")
def board_port(request: pytest.FixtureRequest) -> str | None:
    return request.config.getoption("--port")


@pytest.fixture(scope="session")
def board_id(request: pytest.FixtureRequest) -> str | None:
    return request.config.getoption("--board")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def int8_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small int8 `.tflite` per model kind in tests/modelzoo.py (dense, conv2d, conv1d, depthwise)."""
    from modelzoo import INPUT_SHAPES, write_int8_model

    directory = tmp_path_factory.mktemp("int8_models")
    return {kind: write_int8_model(kind, directory) for kind in INPUT_SHAPES}


@pytest.fixture(scope="session")
def per_channel_dense_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dense zoo model with the converter's default per-channel Dense weights, which the boards' TFLM libraries compute wrongly."""
    from modelzoo import write_int8_model

    return write_int8_model("dense", tmp_path_factory.mktemp("per_channel_models"), per_channel_dense=True)


@pytest.fixture(scope="session")
def pinned_host_library():
    """The pinned library built for the host (tinyml.model.board_library), once per session:
    about 2 minutes the first time on two cores, then found in the user's cache."""
    require_tool("g++")
    return _prebuilt_or("pinned_host_library", lambda: _build_host_library(pinned_library_dir))


@pytest.fixture(scope="session")
def candidate_host_library():
    """The newer candidate library (Chirale_TensorFlowLite) built for the host."""
    require_tool("g++")
    return _prebuilt_or("candidate_host_library", lambda: _build_host_library(candidate_library_dir))


def _build_host_library(library_dir):
    from tinyml.model.board_library import build_host_library

    return build_host_library(library_dir())


@pytest.fixture(scope="session")
def emulator_library():
    """The pinned library, built for the emulated board once per session (minutes the first
    time; later the user's cache answers in a second). Returns its LibrarySource."""
    for tool in ("arm-none-eabi-g++", "qemu-system-arm"):
        require_tool(tool)
    return _prebuilt_or("emulator_library", _build_emulator_library)


def _build_emulator_library():
    from tinyml.device.emulator.build import build_library
    from tinyml.firmware.boards import get_board
    from tinyml.firmware.library_source import open_library

    library = open_library(pinned_library_dir(), "the tests")
    build_library(get_board("nano33ble_sense"), library)
    return library
