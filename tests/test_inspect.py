"""tinyml inspect: ops, MACs, TFLM support, exact arena with its stated margin, and board fit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tinyml.model import ops
from tinyml.core.errors import ModelError
from tinyml.model.inspect import ARENA_FIXED_MARGIN_BYTES, FitReport, check_fits, fit_for, inspect_model, per_channel_fully_connected


@pytest.fixture(scope="module")
def reports(int8_models: dict[str, Path]):
    return {kind: inspect_model(path) for kind, path in int8_models.items()}


@pytest.fixture(scope="module")
def gelu_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float model with GELU, an op TFLite has and TFLM does not."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(8, activation="gelu")(inputs)))
    path = tmp_path_factory.mktemp("gelu") / "gelu_float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


@dataclass(frozen=True)
class StandInLibrary:
    """The attributes of tinyml.firmware.libraries.LibraryFacts that inspect reads."""

    label: str = "StandIn TFLM"
    ops: frozenset[str] = frozenset(ops.OPS)
    per_channel_fully_connected: bool = True
    differences: tuple = ()


@dataclass(frozen=True)
class Difference:
    op: str
    effect: str


@dataclass
class StandInBoard:
    """The attributes of tinyml.firmware.boards.BoardProfile that inspect reads, with numbers chosen per test."""

    id: str = "standin"
    name: str = "Stand-in board"
    library: StandInLibrary = field(default_factory=StandInLibrary)
    flash_bytes: int = 1_000_000
    ram_bytes: int = 256_000
    runtime_flash_bytes: int = 100_000
    runtime_ram_bytes: int = 50_000


def test_facts_of_the_dense_model(reports) -> None:
    report = reports["dense"]
    assert report.op_counts == {"FULLY_CONNECTED": 2, "SOFTMAX": 1}
    # Dense(16 -> 24) and Dense(24 -> 4); Keras' zero bias is dropped by the converter.
    assert report.macs == 16 * 24 + 24 * 4
    assert report.parameter_count == 16 * 24 + 24 * 4
    assert report.is_full_int8
    assert report.tflm_supported and report.tflm_error is None
    assert report.unsupported_ops == []
    assert report.resolver_methods == ["AddFullyConnected", "AddSoftmax"]


def test_macs_of_convolutions(reports) -> None:
    # conv2d: Conv2D(6, 3x3) on 12x12x1 -> 10x10x6, then Dense(150 -> 4) after 2x2 pooling.
    assert reports["conv2d"].macs == 10 * 10 * 6 * 3 * 3 * 1 + 5 * 5 * 6 * 4
    # depthwise: 3x3 depthwise on 10x10x4 -> 8x8x4, 1x1 conv to 8 channels, Dense(4*4*8 -> 4).
    assert reports["depthwise"].macs == 8 * 8 * 4 * 3 * 3 + 8 * 8 * 8 * 4 + 4 * 4 * 8 * 4
    # conv1d: Conv1D(8, 5) on 32x3 -> 28x8 (a CONV_2D after the converter), Dense(8 -> 4).
    assert reports["conv1d"].macs == 28 * 8 * 5 * 3 + 8 * 4


def test_arena_is_measured_and_margin_is_stated(reports, int8_models) -> None:
    from tinyml.model.tflm import TflmRunner

    for kind, report in reports.items():
        assert report.arena_bytes > 0
        TflmRunner(int8_models[kind].read_bytes(), arena_size=report.arena_bytes).invoke(
            [0] * report.facts.inputs[0].element_count
        )
        expected = report.arena_bytes + report.scratch_margin_bytes + ARENA_FIXED_MARGIN_BYTES
        assert report.firmware_arena_bytes == -(-expected // 16) * 16, kind
    assert reports["dense"].scratch_margin_bytes == 0  # no CMSIS-NN scratch for dense layers
    # conv2d: arm_convolve_s8 im2col, 2 * in_channels(1) * 3 * 3 int16 values
    assert reports["conv2d"].scratch_margin_bytes == 2 * 1 * 3 * 3 * 2
    # depthwise: max(depthwise 4 * 3 * 3 int16, 1x1 conv 2 * 4 int16, average pool 8 int32)
    assert reports["depthwise"].scratch_margin_bytes == 4 * 3 * 3 * 2


def test_to_dict_is_json_with_the_same_facts(reports) -> None:
    report = reports["conv2d"]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ops"] == report.op_counts
    assert data["macs"] == report.macs
    assert data["arena"]["measured_bytes"] == report.arena_bytes
    assert data["arena"]["firmware_bytes"] == report.firmware_arena_bytes
    assert data["inputs"][0]["dtype"] == "int8" and data["inputs"][0]["shape"] == [1, 12, 12, 1]
    assert data["model_id"] == report.facts.short_hash
    assert data["tflm"]["supported"] is True and data["tflm"]["resolver_methods"]
    assert data["fit"] is None


def test_fit_arithmetic(reports) -> None:
    report = reports["dense"]
    board = StandInBoard()
    fit = fit_for(report, board)
    assert fit.model_flash_bytes == -(-report.facts.size_bytes // 16) * 16
    assert fit.kernel_flash_bytes == ops.OPS["FULLY_CONNECTED"].code_bytes + ops.OPS["SOFTMAX"].code_bytes
    assert fit.flash_needed == fit.model_flash_bytes + fit.kernel_flash_bytes + 100_000
    assert fit.ram_needed == report.firmware_arena_bytes + 50_000
    assert fit.flash_headroom == 1_000_000 - fit.flash_needed
    assert fit.fits
    check_fits(report, board)

    tight_flash = StandInBoard(flash_bytes=fit.flash_needed - 1)
    assert not fit_for(report, tight_flash).fits_flash
    with pytest.raises(ModelError, match=r"needs .* KiB flash .*board standin has"):
        check_fits(report, tight_flash)
    exact_ram = StandInBoard(ram_bytes=fit.ram_needed)
    assert fit_for(report, exact_ram).fits  # zero headroom still fits
    with pytest.raises(ModelError, match=r"needs .* KiB RAM \(arena"):
        check_fits(report, StandInBoard(ram_bytes=fit.ram_needed - 1))


def test_fit_on_real_board_profiles(int8_models) -> None:
    from tinyml.firmware.boards import get_board

    board = get_board("nano33ble_sense")
    report = inspect_model(int8_models["depthwise"], board=board)
    assert isinstance(report.fit, FitReport)
    assert report.fit.board_id == "nano33ble_sense"
    assert report.fit.flash_available == board.flash_bytes
    assert report.fit.fits
    check_fits(report)


def test_what_the_boards_library_would_compute_wrongly_or_lacks_is_refused(int8_models, per_channel_dense_model) -> None:
    per_channel = inspect_model(per_channel_dense_model)
    assert per_channel_fully_connected(per_channel.facts) == [0, 1]
    assert per_channel_fully_connected(inspect_model(int8_models["dense"]).facts) == []
    check_fits(per_channel, StandInBoard())  # a library with per-channel FULLY_CONNECTED runs it

    old_library = StandInBoard(id="old", library=StandInLibrary(label="Old TFLM 2022", per_channel_fully_connected=False))
    report = inspect_model(per_channel_dense_model, board=old_library)
    assert [p.kind for p in report.library_problems] == ["per_channel_fully_connected"]
    assert report.to_dict()["board_library"]["problems"][0]["kind"] == "per_channel_fully_connected"
    with pytest.raises(ModelError, match=r"2 FULLY_CONNECTED \(Dense\) layer\(s\) have per-channel weights, which board old's TFLM library Old TFLM 2022") as info:
        check_fits(report)
    assert "tinyml quantize MODEL --calibration DATA --board old" in info.value.fix
    check_fits(inspect_model(int8_models["dense"], board=old_library))  # per-tensor Dense weights: fine

    mean_differs = StandInBoard(library=StandInLibrary(differences=(Difference("MEAN", "1 LSB off"),)))
    assert inspect_model(int8_models["conv1d"], board=mean_differs).library_differences == ("MEAN: 1 LSB off",)
    assert inspect_model(int8_models["dense"], board=mean_differs).library_differences == ()

    no_softmax = StandInBoard(id="nosoftmax", library=StandInLibrary(ops=frozenset(ops.OPS) - {"SOFTMAX"}))
    with pytest.raises(ModelError, match="board nosoftmax's TFLM library StandIn TFLM has no kernel for SOFTMAX"):
        check_fits(inspect_model(int8_models["dense"]), no_softmax)


def test_op_tflm_lacks_is_named_with_a_fix(gelu_model) -> None:
    report = inspect_model(gelu_model)
    assert report.unsupported_ops == ["GELU"]
    assert "activation='relu'" in report.unsupported[0].fix
    assert not report.tflm_supported and "GELU" in report.tflm_error
    assert report.arena_bytes is None and report.firmware_arena_bytes is None
    assert not report.is_full_int8
    with pytest.raises(ModelError, match="GELU"):
        check_fits(report)


def test_op_whose_tflm_kernel_is_float_only(tmp_path: Path) -> None:
    """TFLite quantizes LOG to int8; TFLM's LOG loads but rejects int8 when invoked."""
    import keras
    import numpy as np
    from modelzoo import convert_int8

    inputs = keras.Input((8,))
    hidden = keras.layers.Lambda(lambda z: keras.ops.log(keras.ops.abs(z) + 1.0))(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    report = inspect_model(convert_int8(model, np.random.default_rng(0).uniform(-1, 1, (30, 8)).astype(np.float32)))
    assert report.is_full_int8
    assert report.unsupported_ops == ["LOG"]
    assert "no int8 kernel" in report.unsupported[0].reason
    assert not report.tflm_supported
    assert "LOG" in report.tflm_error and "INT8" in report.tflm_error
    with pytest.raises(ModelError, match="LOG"):
        check_fits(report)


def test_float_model_is_refused_for_firmware(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    report = inspect_model(path)
    assert report.tflm_supported  # TFLM runs float models ...
    with pytest.raises(ModelError, match="not full-integer int8"):
        check_fits(report)  # ... but the firmware is int8


def test_resolver_table() -> None:
    assert ops.resolver_method("CONV_2D") == "AddConv2D"
    assert ops.resolver_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert ops.resolver_methods(["SOFTMAX", "FULLY_CONNECTED", "SOFTMAX"]) == ["AddFullyConnected", "AddSoftmax"]
    with pytest.raises(ModelError, match="TILE.*no kernel") as caught:
        ops.resolver_method("TILE")
    assert "Reshape" in caught.value.fix
    assert all(re.fullmatch(r"Add[A-Z][A-Za-z0-9]*", info.resolver_method) for info in ops.OPS.values())


def test_table_ops_are_real_builtins_with_tflm_kernels() -> None:
    """Every row names a schema builtin and a kernel compiled into the installed TFLM runtime."""
    from pathlib import Path as _Path

    import tflite_micro
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    builtins = {name for name in vars(schema.BuiltinOperator) if not name.startswith("_")}
    assert set(ops.OPS) <= builtins
    runtime_library = next(_Path(tflite_micro.__file__).parent.rglob("_runtime*.so")).read_bytes()
    for op in ops.OPS:
        assert f"Register_{op}".encode() in runtime_library, op


# ---------------------------------------------------------------- the command


def tinyml_cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("tinyml")), *map(str, args)], capture_output=True, text=True, timeout=120, env=env)


def test_cli_json_without_tensorflow(int8_models) -> None:
    """The JSON the later stages could read, from a run that never imports TensorFlow."""
    code = (
        "import sys, tinyml\n"
        f"status = tinyml.main(['inspect', {str(int8_models['conv1d'])!r}, '--json', '--board', 'nano33ble'])\n"
        "assert 'tensorflow' not in sys.modules, 'inspect imported tensorflow'\n"
        "sys.exit(status)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["fit"]["fits"] is True and data["fit"]["board"] == "nano33ble"
    assert data["arena"]["measured_bytes"] > 0


def test_cli_text_and_refusals(int8_models, gelu_model, tmp_path: Path) -> None:
    import os

    proc = tinyml_cli("inspect", int8_models["conv2d"], "--board", "nano33ble")
    assert proc.returncode == 0, proc.stderr
    for words in ("CONV_2D", "AddConv2D", "MACs", "full int8", "Tensor arena", "firmware arena", "Fits Arduino Nano 33 BLE", "yes"):
        assert words in proc.stdout, words

    proc = tinyml_cli("inspect", gelu_model)
    assert proc.returncode == 3
    assert "GELU" in proc.stdout and "error:" in proc.stderr and "GELU" in proc.stderr

    # A user board folder with a board too small for the model: refused with the numbers.
    builtin = (Path(__file__).resolve().parent.parent / "boards" / "nano33ble.toml").read_text()
    small = re.sub(r"(?m)^flash_bytes\s*=.*$", "flash_bytes = 131_000", builtin)
    (tmp_path / "tiny_board.toml").write_text(small)
    proc = tinyml_cli("inspect", int8_models["dense"], "--board", "tiny_board", env={**os.environ, "TINYML_BOARDS_DIR": str(tmp_path)})
    assert proc.returncode == 3, proc.stderr
    assert "Fits" in proc.stdout and "no" in proc.stdout
    assert re.search(r"error: the model needs [\d.]+ KiB flash .* board tiny_board has 127\.9 KiB", proc.stderr.replace("\n", " "))

    proc = tinyml_cli("inspect", tmp_path / "tiny_board.toml")
    assert proc.returncode == 2 and "not a TensorFlow Lite flatbuffer" in proc.stderr
    proc = tinyml_cli("inspect", tmp_path / "missing.tflite")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_cli_refuses_a_model_the_boards_library_computes_wrongly(per_channel_dense_model) -> None:
    proc = tinyml_cli("inspect", per_channel_dense_model)
    assert proc.returncode == 0, proc.stderr  # no board, no library to hold it against
    proc = tinyml_cli("inspect", per_channel_dense_model, "--board", "nano33ble")
    assert proc.returncode == 3
    assert "Board library:" in proc.stdout and "per-channel weights" in proc.stdout
    error = " ".join(proc.stderr.split())
    assert error.count("error:") == 1
    assert "which board nano33ble's TFLM library Arduino_TensorFlowLite 2.4.0-ALPHA at 06841a8 (TFLM of 2022-12-14) computes wrongly" in error
    assert "Fix: re-quantize with `tinyml quantize MODEL --calibration DATA --board nano33ble`" in error
    proc = tinyml_cli("inspect", per_channel_dense_model, "--board", "nano_rp2040_connect", "--json")
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["board_library"]["library"].startswith("Chirale_TensorFlowLite 2.0.0")
