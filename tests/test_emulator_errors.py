"""Bad input to `tinyml emulate`: one line with the problem and the fix, a distinct exit code,
no QEMU left running and so no socket left open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from emulator_helpers import error_lines, qemu_processes, run_tinyml
from test_emulator_build import render_app

from tinyml.core.errors import DeviceError, InputError, ModelError, ToolError
from tinyml.firmware.apps import default_app_context
from tinyml.firmware.render import render_project


def emulate(project: Path, library: object, *extra: object, env: dict[str, str] | None = None):
    result = run_tinyml("emulate", project, "--library", library, *extra, env=env)
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert qemu_processes(project) == []
    return result


@pytest.fixture
def project(emulator_library, int8_models, tmp_path: Path) -> Path:
    return render_app("nano33ble_sense", "validation", tmp_path / "project", int8_models)


def test_a_folder_render_did_not_write(emulator_library, tmp_path: Path) -> None:
    result = emulate(tmp_path, emulator_library.path)
    assert result.returncode == InputError.exit_code
    assert "is not a project that `tinyml render` wrote" in result.stderr


def test_a_library_folder_that_is_not_an_arduino_library(project: Path, tmp_path: Path) -> None:
    result = emulate(project, tmp_path)
    assert result.returncode == InputError.exit_code
    assert "is not an Arduino library" in result.stderr


def _path_with(tmp_path: Path, programs: list[str]) -> dict[str, str]:
    """An environment whose PATH holds only `programs` (as links to the real ones)."""
    import shutil

    folder = tmp_path / "bin"
    folder.mkdir()
    for name in programs:
        (folder / name).symlink_to(shutil.which(name))
    return {**os.environ, "PATH": str(folder)}


def test_no_cross_compiler(project: Path, emulator_library, tmp_path: Path) -> None:
    result = emulate(project, emulator_library.path, env=_path_with(tmp_path, ["qemu-system-arm"]))
    assert result.returncode == ToolError.exit_code
    assert "'arm-none-eabi-gcc' was not found" in result.stderr and "apt-get install gcc-arm-none-eabi" in result.stderr


def test_no_qemu(project: Path, emulator_library, tmp_path: Path) -> None:
    tools = ["arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-ar", "arm-none-eabi-size"]
    result = emulate(project, emulator_library.path, env=_path_with(tmp_path, tools))
    assert result.returncode == ToolError.exit_code
    assert "'qemu-system-arm' was not found" in result.stderr and "apt-get install qemu-system-arm" in result.stderr


def test_a_firmware_too_big_for_the_emulated_memory(emulator_library, int8_models, tmp_path: Path) -> None:
    project = tmp_path / "project"
    # An arena larger than the emulated board's 4 MiB of RAM, as if measured on a device.
    render_project("nano33ble_sense", int8_models["dense"], project, device_arena_bytes=5 << 20, app_context=default_app_context("validation"))
    result = emulate(project, emulator_library.path)
    assert result.returncode == ModelError.exit_code
    assert "does not fit the emulated board's RAM (4 MiB)" in result.stderr


def _add_startup_code(project: Path, body: str) -> None:
    """A static constructor in the app: it runs before setup(), as a firmware bug would."""
    app = project / "src" / "app.cpp"
    app.write_text(app.read_text() + f"\nnamespace {{\nstruct Startup {{\n  Startup() {{ {body} }}\n}} startup;\n}}  // namespace\n")


def test_a_firmware_that_crashes(project: Path, emulator_library) -> None:
    _add_startup_code(project, "*reinterpret_cast<volatile unsigned*>(0xE0100000u) = 1u;")
    result = emulate(project, emulator_library.path)
    assert result.returncode == DeviceError.exit_code
    assert "the emulated firmware crashed in" in result.stderr and "HardFault" in result.stderr and "app.cpp" in result.stderr


def test_a_firmware_that_prints_nothing(project: Path, emulator_library) -> None:
    _add_startup_code(project, 'for (;;) { __asm__ volatile("" ::: "memory"); }')
    result = emulate(project, emulator_library.path, "--startup-timeout", 3)
    assert result.returncode == DeviceError.exit_code
    assert "the emulated firmware printed nothing in 3 s" in result.stderr


def test_killing_emulate_leaves_no_qemu_and_no_listening_socket(project: Path, emulator_library) -> None:
    import signal
    import socket
    import subprocess
    import time

    from emulator_helpers import TINYML

    process = subprocess.Popen([*TINYML, "emulate", str(project), "--library", str(emulator_library.path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    url = next(line for line in process.stdout if line.startswith("port: "))[len("port: ") :].strip()
    assert qemu_processes(project)
    process.send_signal(signal.SIGKILL)  # no handler, no atexit: only PR_SET_PDEATHSIG is left
    process.wait(10)
    deadline = time.monotonic() + 5
    while qemu_processes(project) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert qemu_processes(project) == []
    host, port = url.removeprefix("socket://").split(":")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2).close()
