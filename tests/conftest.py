"""Shared test fixtures and the rules for tests that need an outside tool or a board.

- A test that needs a program (g++, arm-none-eabi-g++, pio, espeak-ng, ...) calls
  `require_tool(name)`: outside CI it skips with the reason; with CI=true it fails, because CI
  installs every tool and a skip there would hide a broken setup.
- Tests marked `board` need a real kit: they run only with `--port` (and `--board`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--port", default=None, help="serial port of a real board, for tests marked `board`")
    parser.addoption("--board", default=None, help="board profile id of the board on --port")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--port"):
        return
    skip = pytest.mark.skip(reason="needs a real board: run with --port PORT --board ID")
    for item in items:
        if "board" in item.keywords:
            item.add_marker(skip)


def require_tool(name: str) -> str:
    """The path of program `name`; skip without it, but fail in CI where it must be installed."""
    path = shutil.which(name)
    if path is None:
        message = f"'{name}' is not installed (`make system-deps` installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


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
