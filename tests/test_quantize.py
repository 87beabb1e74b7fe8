"""tinyml quantize on small real Keras models: int8 end to end, batch 1, accuracy kept, bad input refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from modelzoo import INPUT_SHAPES, build_keras_model

from tinyml.core.data import Dataset
from tinyml.core.errors import InputError, ModelError
from tinyml.model.modelfile import read_model
from tinyml.model.quantization import dequantize, predicted_classes, quantize_input
from tinyml.model.quantize import quantize_model

N_CLASSES = 4
# Ops that Keras 3's dynamic batch dimension adds when the batch is not fixed before conversion.
DYNAMIC_BATCH_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}


def synthetic_task(kind: str, count: int, seed: int = 0) -> Dataset:
    """A learnable task: each class is a fixed random pattern, seen through uniform noise."""
    rng = np.random.default_rng(seed)
    shape = INPUT_SHAPES[kind]
    patterns = np.random.default_rng(1234).uniform(-1.0, 1.0, size=(N_CLASSES, *shape))
    y = rng.integers(0, N_CLASSES, size=count)
    x = 0.5 * patterns[y] + 0.5 * rng.uniform(-1.0, 1.0, size=(count, *shape))
    return Dataset(x.astype(np.float32), y)


def trained_model(kind: str):
    model = build_keras_model(kind, N_CLASSES)
    train = synthetic_task(kind, 512, seed=0)
    import keras

    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy", steps_per_execution=8)
    model.fit(train.x, train.y, epochs=4, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, object]]:
    """For each model kind: (trained Keras model, QuantizeResult with eval on held-out samples)."""
    directory = tmp_path_factory.mktemp("quantized")
    results = {}
    for kind in INPUT_SHAPES:
        model = trained_model(kind)
        calibration = synthetic_task(kind, 100, seed=1)
        held_out = synthetic_task(kind, 200, seed=2)
        result = quantize_model(model, calibration, eval_data=held_out, out=directory / f"{kind}.tflite")
        results[kind] = (model, result)
    return results


@pytest.mark.parametrize("kind", list(INPUT_SHAPES))
def test_result_is_full_int8_at_batch_one(quantized, kind: str) -> None:
    _, result = quantized[kind]
    facts = read_model(result.out)
    assert facts.sha256 == result.facts.sha256
    assert facts.is_full_int8
    assert facts.inputs[0].dtype == "int8" and facts.outputs[0].dtype == "int8"
    assert facts.inputs[0].shape == (1, *INPUT_SHAPES[kind])
    assert facts.outputs[0].shape == (1, N_CLASSES)
    assert not DYNAMIC_BATCH_OPS & set(facts.op_counts), facts.op_counts
    assert all(t.dtype in ("int8", "int32") for t in facts.tensors), [t.dtype for t in facts.tensors]


@pytest.mark.parametrize("kind", list(INPUT_SHAPES))
def test_int8_accuracy_follows_float_accuracy(quantized, kind: str) -> None:
    _, result = quantized[kind]
    assert result.eval_samples == 200
    assert result.float_accuracy > 0.5  # trained: far above the 0.25 of chance
    assert result.int8_accuracy >= result.float_accuracy - 0.05
    assert result.top1_agreement >= 0.9


def test_report_gives_sizes_ops_and_quantization(quantized) -> None:
    _, result = quantized["conv2d"]
    summary = result.to_dict()
    assert summary["int8_size_bytes"] == len(result.tflite_bytes) == result.out.stat().st_size
    assert summary["float_size_bytes"] > 0
    assert summary["size_ratio"] == pytest.approx(result.float_size_bytes / result.int8_size_bytes, rel=1e-3)
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(summary["ops"])
    assert summary["input"]["dtype"] == "int8" and summary["input"]["scale"] > 0
    assert summary["output"]["zero_point"] == -128  # softmax output: scale 1/256, zero point -128
    assert summary["output"]["scale"] == pytest.approx(1 / 256)


def test_float_and_int8_predictions_agree_per_sample(quantized) -> None:
    """The int8 path in the report (quantize input, reference interpreter, dequantize) is consistent."""
    from tinyml.model.reference import ReferenceInterpreter

    model, result = quantized["dense"]
    samples = synthetic_task("dense", 50, seed=3)
    interpreter = ReferenceInterpreter(result.tflite_bytes)
    int8_scores = np.stack(
        [dequantize(interpreter.invoke(quantize_input(x, result.input)), result.output).reshape(-1) for x in samples.x]
    )
    float_scores = model.predict(samples.x, verbose=0)
    assert np.max(np.abs(int8_scores - float_scores)) < 0.1
    assert np.mean(predicted_classes(int8_scores) == predicted_classes(float_scores)) >= 0.9


@pytest.mark.parametrize("kind", list(INPUT_SHAPES))
def test_tflm_matches_reference_on_realistic_inputs(quantized, kind: str) -> None:
    """TFLM and the TFLite reference on 150 calibration-distribution inputs.

    What is true on this stack (tinyml.model.reference; tests/test_tflm.py pins the cause): almost
    every input matches on every output element; rarely one element differs by exactly 1 LSB,
    because TFLM requantizes with double rounding and TFLite's kernels do not always, and the
    two rules disagree next to a .5 tie. So: at least 100 inputs match exactly, at most 2%
    differ, and never by more than 1 LSB.
    """
    from tinyml.model.reference import ReferenceInterpreter
    from tinyml.model.tflm import TflmRunner

    _, result = quantized[kind]
    tflm = TflmRunner(result.tflite_bytes)
    reference = ReferenceInterpreter(result.tflite_bytes)
    samples = synthetic_task(kind, 150, seed=4).x
    diffs = np.stack(
        [np.abs(tflm.invoke(q).astype(int) - reference.invoke(q).astype(int)).reshape(-1) for q in quantize_input(samples, result.input)]
    )
    exact = int(np.sum(diffs.max(axis=1) == 0))
    assert exact >= 100
    assert exact >= 0.98 * len(samples)
    assert diffs.max() <= 1


@pytest.fixture(scope="module")
def quantized_for_board(quantized, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, object]]:
    """For two kinds: (the per-channel QuantizeResult above, the QuantizeResult for nano33ble_sense's library)."""
    from tinyml.firmware.boards import quantize_options

    directory = tmp_path_factory.mktemp("quantized_for_board")
    results = {}
    for kind in ("dense", "conv2d"):
        model, per_channel = quantized[kind]
        calibration, held_out = synthetic_task(kind, 100, seed=1), synthetic_task(kind, 200, seed=2)
        result = quantize_model(model, calibration, eval_data=held_out, out=directory / f"{kind}.tflite", **quantize_options("nano33ble_sense"))
        results[kind] = (per_channel, result)
    return results


@pytest.mark.parametrize("kind", ["dense", "conv2d"])
def test_quantize_for_a_board_gives_per_tensor_dense_weights_and_measures_the_cost(quantized_for_board, kind: str) -> None:
    per_channel, result = quantized_for_board[kind]
    facts = read_model(result.out)
    scales = {op.op: len(facts.tensors[op.inputs[1]].scales) for op in facts.operators if op.op in ("FULLY_CONNECTED", "CONV_2D")}
    assert scales["FULLY_CONNECTED"] == 1  # one scale per Dense weight tensor, what the board's library computes
    if kind == "conv2d":
        assert scales["CONV_2D"] == 6  # convolutions stay per channel: the library computes those
    per_channel_facts = read_model(per_channel.tflite_bytes)
    assert [len(per_channel_facts.tensors[op.inputs[1]].scales) for op in per_channel_facts.operators if op.op == "FULLY_CONNECTED"] != [1]
    assert result.per_channel_dense is False and result.to_dict()["dense_weights"] == "per-tensor"
    # Both measured on the same samples: the per-channel figure is the per-channel model's own.
    assert result.per_channel_int8_accuracy == per_channel.int8_accuracy
    assert result.per_channel_top1_agreement == per_channel.top1_agreement
    assert result.int8_accuracy is not None and result.int8_accuracy >= result.float_accuracy - 0.05


@pytest.mark.parametrize("kind", list(INPUT_SHAPES))
def test_quantized_model_passes_inspect_for_the_board_only_when_quantized_for_it(quantized, quantized_for_board, kind: str) -> None:
    """quantize, then inspect: what render will ask before it writes firmware."""
    from tinyml.firmware.boards import get_board
    from tinyml.model.inspect import check_fits, inspect_model

    board = get_board("nano33ble_sense")
    _, result = quantized[kind]
    report = inspect_model(result.out, board=board)
    assert report.tflm_supported and report.unsupported_ops == []
    assert report.is_full_int8 and report.macs > 0
    assert report.arena_bytes > 0 and report.fit.fits
    # The converter's default, per-channel Dense weights, is what the board's library computes wrongly.
    with pytest.raises(ModelError, match="per-channel weights") as info:
        check_fits(report)
    assert "--board nano33ble_sense" in info.value.fix
    if kind in quantized_for_board:
        check_fits(inspect_model(quantized_for_board[kind][1].out, board=board))


def test_accepts_legacy_h5_savedmodel_and_live_tf_keras(quantized, tmp_path: Path) -> None:
    """.keras files go through the CLI test; here the other sources the issue names."""
    import tf_keras

    model, reference = quantized["dense"]
    calibration = synthetic_task("dense", 20, seed=1)
    saved_model = tmp_path / "saved"
    model.export(saved_model, verbose=False)
    facts = quantize_model(saved_model, calibration).facts
    assert facts.is_full_int8 and facts.inputs[0].shape == (1, 16)
    assert facts.op_counts == reference.facts.op_counts

    # tf_keras is what TFMOT (tinyml optimize) hands over, live or saved as legacy HDF5.
    legacy = tf_keras.Sequential([tf_keras.Input((16,)), tf_keras.layers.Dense(8, activation="relu"), tf_keras.layers.Dense(3, activation="softmax")])
    facts = quantize_model(legacy, calibration).facts
    assert facts.is_full_int8 and facts.outputs[0].shape == (1, 3)
    legacy.save(tmp_path / "legacy.h5")
    assert quantize_model(tmp_path / "legacy.h5", calibration).facts.op_counts == facts.op_counts
    legacy.save(tmp_path / "legacy.keras")
    assert quantize_model(tmp_path / "legacy.keras", calibration).facts.op_counts == facts.op_counts


def test_dynamic_dimension_is_fixed_from_the_data() -> None:
    import keras

    inputs = keras.Input((None, 3))  # variable-length sequences
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    facts = quantize_model(model, np.random.default_rng(0).uniform(-1, 1, (40, 20, 3)).astype(np.float32)).facts
    assert facts.inputs[0].shape == (1, 20, 3)
    assert not DYNAMIC_BATCH_OPS & set(facts.op_counts)


# ---------------------------------------------------------------- bad input, through the CLI


@pytest.fixture(scope="module")
def cli_files(quantized, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("cli")
    model, _ = quantized["dense"]
    files = {"model": directory / "dense.keras"}
    model.save(files["model"])
    task = synthetic_task("dense", 120, seed=5)
    files["data"] = directory / "data.npz"
    np.savez(files["data"], x=task.x, y=task.y)
    files["wrong_shape"] = directory / "wrong_shape.npz"
    np.savez(files["wrong_shape"], x=np.zeros((120, 12), np.float32))
    files["strings"] = directory / "strings.npy"
    np.save(files["strings"], np.array([["a"] * 16] * 120))
    files["few"] = directory / "few.npz"
    np.savez(files["few"], x=task.x[:3])
    files["text_as_keras"] = directory / "notes.keras"
    files["text_as_keras"].write_text("not a model")
    files["garbage_h5"] = directory / "broken.h5"
    files["garbage_h5"].write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    return files


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    import tinyml

    code = tinyml.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_and_reports(cli_files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "dense_int8.tflite"
    code, stdout, _ = run_cli(["quantize", cli_files["model"], "--calibration", cli_files["data"], "--eval", cli_files["data"], "--out", out], capsys)
    assert code == 0
    assert read_model(out).is_full_int8
    assert "int8" in stdout and "FULLY_CONNECTED" in stdout and "accuracy float" in stdout and "zero point" in stdout
    # the second run must not overwrite the user's file without --force
    code, _, stderr = run_cli(["quantize", cli_files["model"], "--calibration", cli_files["data"], "--out", out], capsys)
    assert code == 2 and "already exists" in stderr and "--force" in stderr


def test_cli_quantizes_for_a_board_and_reports_the_accuracy_cost(cli_files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "dense_board.tflite"
    args = ["quantize", cli_files["model"], "--calibration", cli_files["data"], "--eval", cli_files["data"], "--board", "nano_rp2040_connect", "--out", out]
    code, stdout, _ = run_cli(args, capsys)
    assert code == 0
    text = " ".join(stdout.split())
    assert "Dense weights per tensor: board nano_rp2040_connect's TFLM library has no per-channel FULLY_CONNECTED" in text
    assert re.search(r"int8 accuracy per tensor [\d.]+%, per channel [\d.]+% \([+-][\d.]+ points for per tensor\)", text)
    code, _, stderr = run_cli(["quantize", cli_files["model"], "--calibration", cli_files["data"], "--board", "nano99", "--out", tmp_path / "x.tflite"], capsys)
    assert code == 2 and "unknown board 'nano99'" in stderr and not (tmp_path / "x.tflite").exists()


BAD_INPUTS = [
    # (name, model key or literal, calibration key, exit code, words the one line must contain)
    ("missing model", "missing.keras", "data", 2, ["does not exist"]),
    ("not a model", "text_as_keras", "data", 2, ["not a Keras model file", "Fix:"]),
    ("unreadable h5", "garbage_h5", "data", 2, ["could not be read as a Keras model", "Fix:"]),
    ("missing data", "model", "missing.npz", 2, ["does not exist"]),
    ("shape mismatch", "model", "wrong_shape", 2, ["shape (12,)", "expects (16,)"]),
    ("dtype mismatch", "model", "strings", 2, ["dtype <U1", "float32"]),
    ("too few samples", "model", "few", 2, ["3 samples", "at least 10"]),
]


@pytest.mark.parametrize("name,model_key,data_key,exit_code,words", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_cli_refuses_bad_input(cli_files, tmp_path: Path, capsys, name, model_key, data_key, exit_code, words) -> None:
    model = cli_files.get(model_key, tmp_path / model_key)
    data = cli_files.get(data_key, tmp_path / data_key)
    out = tmp_path / "out.tflite"
    code, stdout, stderr = run_cli(["quantize", model, "--calibration", data, "--out", out], capsys)
    assert code == exit_code
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    for word in words:
        assert word in stderr.replace("\n", " "), (word, stderr)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


def test_refuses_hybrid_model() -> None:
    """The converter keeps SIN in float between DEQUANTIZE/QUANTIZE; such a hybrid model is refused."""
    import keras

    inputs = keras.Input((8,))
    hidden = keras.layers.Lambda(lambda z: keras.ops.sin(z))(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    with pytest.raises(ModelError, match="left SIN in float") as caught:
        quantize_model(model, np.random.default_rng(0).uniform(-1, 1, (30, 8)).astype(np.float32))
    assert "hybrid" in caught.value.problem and "SIN" in caught.value.fix


def test_cli_refuses_op_tflm_lacks(tmp_path: Path, capsys) -> None:
    """GELU quantizes to int8 in TFLite, but TFLM has no kernel for it: refused, named, nothing written."""
    import keras

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(8, activation="gelu")(inputs)))
    model_path = tmp_path / "gelu.keras"
    model.save(model_path)
    data = tmp_path / "cal.npy"
    np.save(data, np.random.default_rng(0).uniform(-1, 1, (30, 8)).astype(np.float32))
    out = tmp_path / "gelu_int8.tflite"
    code, _, stderr = run_cli(["quantize", model_path, "--calibration", data, "--out", out], capsys)
    assert code == 3, stderr
    assert "GELU" in stderr and "no kernel" in stderr and "activation='relu'" in stderr
    assert not out.exists()


def test_lambda_layer_in_a_file_gets_a_clear_message(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda z: z * 2.0)(keras.layers.Dense(2)(inputs)))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(InputError, match="Lambda layer"):
        quantize_model(tmp_path / "lambda.keras", np.zeros((20, 8), np.float32))


def test_api_rejects_non_models_and_unlabelled_nan() -> None:
    with pytest.raises(InputError, match="not a Keras model"):
        quantize_model(object(), np.zeros((20, 16), np.float32))
    model = build_keras_model("dense")
    calibration = np.zeros((20, 16), np.float32)
    calibration[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        quantize_model(model, calibration)


def test_quantize_input_rounds_half_away_from_zero_and_saturates() -> None:
    from tinyml.model.modelfile import TensorFacts

    tensor = TensorFacts(index=0, name="x", shape=(1, 6), dtype="int8", scales=(0.5,), zero_points=(3,))
    # 0.25 / 0.5 = +0.5 -> 1 and -0.5 -> -1 (std::round), then + zero point 3; beyond the range: clipped.
    q = quantize_input(np.array([0.25, -0.25, 0.75, -0.75, 100.0, -100.0]), tensor)
    assert q.dtype == np.int8
    assert q.tolist() == [4, 2, 5, 1, 127, -128]
    assert dequantize(q[:2], tensor).tolist() == [0.5, -0.5]
