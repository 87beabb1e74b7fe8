"""What reaches the user's terminal: apps without labels, device escape sequences, unencodable
characters, and the message for an unregistered custom Keras class. Instances are generated."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyml
from tinyml.core.errors import InputError
from tinyml.firmware.apps import list_apps, load_app

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
APPS_WITH_LABELS = [name for name in list_apps() if load_app(name).needs_labels]


# ------------------------------------------------------------------ apps that print class names


def test_some_apps_need_labels() -> None:
    assert {"gesture", "kws"} <= set(APPS_WITH_LABELS)


@pytest.mark.parametrize("app", APPS_WITH_LABELS)
@pytest.mark.parametrize("board", ["nano33ble_sense", "nano33ble_sense_rev2"])  # boards with every sensor the apps read
def test_render_refuses_an_app_that_needs_labels_without_them(int8_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, app: str, board: str) -> None:
    out = tmp_path / "project"
    code = tinyml.main(["render", "--board", board, "--model", str(int8_models["dense"]), "--app", app, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--labels" in err and err.strip().count("\n") == 0, err
    assert not out.exists()
    with pytest.raises(InputError, match="--labels"):
        tinyml.render_project(board, int8_models["dense"], out, app=app, labels=[])


# ------------------------------------------------------------------ device text on the terminal

CONTROLS = set(range(0x00, 0x09)) | set(range(0x0A, 0x20)) | set(range(0x7F, 0xA0))
ESCAPES = st.sampled_from(["\x1b]0;owned\x07", "\x1b]2;t\x1b\\", "\x1b[2J", "\x1b[H", "\x1b[1;31m", "\x1b[0m", "\x1bc", "\x1b7", "\x9b2J", "\x1b[?1049h", "\x07", "\x08", "\x7f", "\x1b"])


@FAST
@given(parts=st.lists(st.text(max_size=10) | ESCAPES, max_size=12))
def test_monitor_lines_carry_no_control_characters(parts: list[str]) -> None:
    from tinyml.device.monitor import Monitor

    monitor = Monitor.__new__(Monitor)  # the byte splitter alone, without a port
    monitor._pending, monitor._in_frame = bytearray(), False
    data = "".join(parts).replace("\x00", "").encode("utf-8") + b"\n"
    for line in monitor._split(data):
        assert not {ord(c) for c in line} & CONTROLS, repr(line)


@FAST
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))))
def test_printable_text_passes_unchanged(text: str) -> None:
    from tinyml.device.monitor import printable

    assert printable(text + "\tend") == text + "\tend"


# ------------------------------------------------------------------ output the terminal cannot encode


@contextlib.contextmanager
def narrow_terminal(encoding: str):
    """stdout and stderr in a legacy encoding with Python's default (strict) error handler.

    Set inside the test body: pytest re-installs its own capture streams after fixtures run.
    """
    from tinyml.cli import console

    streams = {name: io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="strict") for name in ("stdout", "stderr")}
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = streams["stdout"], streams["stderr"]
    console.stdout_console.cache_clear()
    console.stderr_console.cache_clear()
    try:
        yield streams
    finally:
        sys.stdout, sys.stderr = saved
        console.stdout_console.cache_clear()
        console.stderr_console.cache_clear()


def _written(stream: io.TextIOWrapper) -> bytes:
    stream.flush()
    return stream.buffer.getvalue()


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
@settings(max_examples=30, deadline=None)
@given(name=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=12))
def test_any_file_name_in_an_error_is_written_not_raised(encoding: str, name: str) -> None:
    with narrow_terminal(encoding) as streams:
        code = tinyml.main(["inspect", f"/nonexistent/{name}.tflite"])
    assert code == 2 and b"error:" in _written(streams["stderr"])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_the_validation_summary_survives_a_legacy_encoding(encoding: str, int8_models: dict[str, Path], tmp_path: Path) -> None:
    import numpy as np

    from tinyml.device.virtual_board import VirtualBoard
    from tinyml.model.tflm import measure_arena

    model = int8_models["dense"]
    data = tmp_path / "data.npz"
    np.savez(data, x=np.random.default_rng(0).uniform(-1, 1, (4, 16)).astype(np.float32), y=np.arange(4))
    with VirtualBoard(model, labels=["α", "β", "c", "d"], link=tmp_path / "port", arena_bytes=measure_arena(model.read_bytes())) as board, narrow_terminal(encoding) as streams:
        code = tinyml.main(["validate", "--port", board.port, "--model", str(model), "--data", str(data), "--report", str(tmp_path / "r")])
    out = _written(streams["stdout"])
    assert code == 0 and b"max|?|" in out and b"samples" in out, out


# ------------------------------------------------------------------ a custom Keras class nobody registered

identifiers = st.from_regex(r"[A-Z][A-Za-z0-9]{2,12}", fullmatch=True)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=identifiers, package=identifiers)
def test_an_unregistered_custom_layer_is_told_to_register_it(tmp_path_factory: pytest.TempPathFactory, name: str, package: str) -> None:
    import keras

    from tinyml.model.keras import load_keras_file

    layer_class = type(name, (keras.layers.Layer,), {"call": lambda self, x: x * 2.0})
    keras.saving.register_keras_serializable(package=package)(layer_class)
    path = tmp_path_factory.mktemp("custom") / "model.keras"
    keras.Sequential([keras.Input((4,)), layer_class(), keras.layers.Dense(2)]).save(path)
    keras.saving.get_custom_objects().pop(f"{package}>{name}")  # as in a fresh process that never imported it
    with pytest.raises(InputError) as caught:
        load_keras_file(path)
    assert f"'{name}'" in caught.value.problem
    assert "register_keras_serializable" in caught.value.fix and "custom_objects" in caught.value.fix


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_a_command_run_with_pythonioencoding_writes_what_it_cannot_encode_as_question_marks(encoding: str, tmp_path: Path) -> None:
    import os
    import subprocess

    env = {**os.environ, "PYTHONIOENCODING": encoding, "PYTHONPATH": str(Path(tinyml.__file__).parents[1])}
    missing = tmp_path / "Δµ模型.tflite"
    proc = subprocess.run([sys.executable, "-c", "import tinyml; raise SystemExit(tinyml.main())", "inspect", str(missing)], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert b"Traceback" not in proc.stderr and b"error: " in proc.stderr and b".tflite does not exist" in proc.stderr


@pytest.mark.parametrize("verbose", [False, True])
def test_numpy_runtime_warnings_are_debug_lines_not_terminal_output(verbose: bool) -> None:
    import os
    import subprocess

    code = (
        "from tinyml.cli import configure_logging\n"
        f"configure_logging(verbose={verbose})\n"
        "import numpy as np\n"
        "np.array([np.nan, np.inf]).astype(np.int8)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(tinyml.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert ("RuntimeWarning" in proc.stderr) == verbose, proc.stderr
