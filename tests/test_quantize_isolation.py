"""quantize against TensorFlow's failures: recurrent layers refused up front, a converter crash
contained in its child process, no child or temporary folder left behind, and none of
TensorFlow's own log lines on the user's terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyml.core.errors import ModelError
from tinyml.model.converter_process import ConverterChild

# What TensorFlow, absl and numpy print on their own; none of it may reach a quantize run's stderr.
NOISE = ("oneDNN", "absl", "InitializeLog", "fully_quantize", "tf.lite.Interpreter", "ai_edge_litert", "RuntimeWarning", "cpu_feature_guard", "I0000", "W0000", "E0000")


def _cli_env(tmp_path: Path) -> dict[str, str]:
    import tinyml

    return {**os.environ, "PYTHONPATH": str(Path(tinyml.__file__).parents[1]), "TMPDIR": str(tmp_path)}


def _tinyml(*args: str) -> list[str]:
    return [sys.executable, "-c", "import tinyml; raise SystemExit(tinyml.main())", *args]


@st.composite
def recurrent_models(draw):
    import keras

    kind = draw(st.sampled_from(["LSTM", "GRU", "SimpleRNN"]))
    units = draw(st.integers(2, 6))
    wrapper = draw(st.sampled_from(["plain", "bidirectional", "nested", "stacked"]))
    layer = getattr(keras.layers, kind)
    body = {
        "plain": lambda: [layer(units)],
        "bidirectional": lambda: [keras.layers.Bidirectional(layer(units))],
        "nested": lambda: [keras.Sequential([keras.Input((8, 3)), layer(units)])],
        "stacked": lambda: [keras.layers.Conv1D(4, 3), layer(units, return_sequences=True), keras.layers.GlobalAveragePooling1D()],
    }[wrapper]()
    return kind, keras.Sequential([keras.Input((8, 3)), *body, keras.layers.Dense(3, activation="softmax")])


@settings(max_examples=12, deadline=None)
@given(case=recurrent_models())
def test_a_recurrent_layer_is_refused_naming_it_and_the_fix(case) -> None:
    from tinyml.model.quantize import check_layers, load_float_model

    kind, model = case
    with pytest.raises(ModelError) as caught:
        check_layers(load_float_model(model))
    assert f"({kind})" in caught.value.problem and "unroll=True" in caught.value.fix and "Conv1D" in caught.value.fix


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_an_unrolled_recurrent_layer_is_accepted(kind: str) -> None:
    import keras

    from tinyml.model.quantize import check_layers, load_float_model

    model = keras.Sequential([keras.Input((8, 3)), getattr(keras.layers, kind)(4, unroll=True), keras.layers.Dense(3)])
    check_layers(load_float_model(model))


@pytest.mark.timeout(300)
def test_quantize_cli_on_an_lstm_exits_3_in_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    import keras

    model = keras.Sequential([keras.Input((8, 3)), keras.layers.LSTM(4), keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "lstm.keras")
    np.savez(tmp_path / "cal.npz", x=np.random.default_rng(0).uniform(-1, 1, (20, 8, 3)).astype(np.float32))
    work = tmp_path / "tmp"
    work.mkdir()
    proc = subprocess.run(_tinyml("quantize", str(tmp_path / "lstm.keras"), "--calibration", str(tmp_path / "cal.npz")), env=_cli_env(work), capture_output=True, text=True, timeout=240)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "LSTM" in errors[0], proc.stderr
    assert not list(work.iterdir())


@pytest.mark.timeout(120)
def test_a_converter_that_crashes_is_a_model_error_not_the_end_of_the_command(tmp_path: Path) -> None:
    with ConverterChild() as converter:
        converter._process.send_signal(signal.SIGSEGV)  # what TensorFlow's converter does on an LSTM
        converter._process.wait(timeout=60)
        with pytest.raises(ModelError, match="crashed .*SIGSEGV"):
            converter.convert(tmp_path, np.zeros((1, 2), np.float32), per_channel_dense=True, also_per_channel=False)


@pytest.mark.timeout(120)
def test_the_converter_child_ends_with_the_command_however_it_ends(tmp_path: Path) -> None:
    with ConverterChild() as converter:
        child = converter._process
    assert child.poll() is not None  # closed without converting: ended, not left waiting
    # The parent killed outright (no chance to clean up): the kernel ends the child too.
    script = "from tinyml.model.converter_process import ConverterChild; import sys, time; c = ConverterChild(); print(c._process.pid, flush=True); time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", script], env=_cli_env(tmp_path), stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.timeout(400)
def test_a_quantize_run_shows_none_of_tensorflows_log_lines(tmp_path: Path) -> None:
    from modelzoo import build_keras_model, sample_inputs

    build_keras_model("conv2d").save(tmp_path / "conv.keras")
    np.savez(tmp_path / "data.npz", x=sample_inputs("conv2d", 40), y=np.arange(40) % 4)
    work = tmp_path / "tmp"
    work.mkdir()
    proc = subprocess.run(
        _tinyml("quantize", str(tmp_path / "conv.keras"), "--calibration", str(tmp_path / "data.npz"), "--eval", str(tmp_path / "data.npz")),
        env=_cli_env(work),
        capture_output=True,
        text=True,
        timeout=360,
    )
    assert proc.returncode == 0, proc.stderr
    leaked = [line for line in proc.stderr.splitlines() if any(marker in line for marker in NOISE)]
    assert not leaked, leaked
    assert all(line.startswith(("INFO", "WARNING", " ")) for line in proc.stderr.splitlines() if line.strip()), proc.stderr
    assert not list(work.iterdir())
