"""Finding the board's TFLM library source: --library, then the environment, then PlatformIO's copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyml.core.errors import InputError, ToolError
from tinyml.firmware import library_source


def _fake_library(root: Path, name: str = "Arduino_TensorFlowLite") -> Path:
    header = root / "src" / library_source.INTERPRETER_HEADER
    header.parent.mkdir(parents=True)
    header.write_text("// interpreter\n")
    (root / "library.properties").write_text(f"name={name}\nversion=2.4.0-ALPHA\n")
    return root


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch):
    monkeypatch.delenv(library_source.LIBRARY_ENV, raising=False)


def test_the_order_is_option_then_environment_then_platformio(tmp_path, monkeypatch):
    explicit = _fake_library(tmp_path / "explicit")
    from_env = _fake_library(tmp_path / "env")
    project = tmp_path / "project"
    project.mkdir()
    core = tmp_path / "core"
    (project / "platformio.ini").write_text("[platformio]\nlibdeps_dir = ${platformio.core_dir}/tinyml/libdeps/gesture\n")
    monkeypatch.setenv(library_source.PLATFORMIO_CORE_DIR_ENV, str(core))
    downloaded = _fake_library(core / "tinyml" / "libdeps" / "gesture" / "nano33ble_sense" / "Arduino_TensorFlowLite")

    assert library_source.find_library(explicit, project).path == explicit.resolve()
    monkeypatch.setenv(library_source.LIBRARY_ENV, str(from_env))
    assert library_source.find_library(None, project).found_by == "$TINYML_TFLM_LIBRARY"
    monkeypatch.delenv(library_source.LIBRARY_ENV)
    found = library_source.find_library(None, project)
    assert (found.path, found.found_by, found.name) == (downloaded.resolve(), "PlatformIO libdeps_dir", "Arduino_TensorFlowLite")


def test_no_library_anywhere_is_a_missing_tool_with_the_ways_to_provide_one(tmp_path):
    with pytest.raises(ToolError, match="--library DIR") as caught:
        library_source.find_library(None, tmp_path)
    assert caught.value.exit_code == 4


@pytest.mark.parametrize("shape", ["empty folder", "no src", "not TFLM"])
def test_a_folder_that_is_not_a_tflm_arduino_library_is_refused(tmp_path, shape):
    folder = tmp_path / "lib"
    folder.mkdir()
    if shape != "empty folder":
        (folder / "library.properties").write_text("name=Servo\n")
    if shape == "not TFLM":
        (folder / "src").mkdir()
    with pytest.raises(InputError):
        library_source.find_library(folder)
