"""The board's TFLM library built for the host: what it computes, op by op, against the TFLM runtime.

The facts kept here were measured first with the same library on an emulated Cortex-M4 (the
host build was bit-identical to it on every model tried): the pinned Arduino_TensorFlowLite
computes CONV_2D, DEPTHWISE_CONV_2D, the pools, per-tensor FULLY_CONNECTED, SOFTMAX, ADD and
RESHAPE exactly as today's TFLM (the Python runtime) does, and differs from it on two ops:

- per-channel FULLY_CONNECTED (the converter's default for Dense): the library predates
  per-channel support and applies the first channel's weight scale to every output channel;
- MEAN (GlobalAveragePooling): the int8 arithmetic changed upstream after the snapshot; 1 LSB.

A library or converter change that moves any of these facts fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import require_tool
from modelzoo import SINGLE_OP_MODELS, write_single_op_model
from tinyml.core.errors import InputError, ModelError
from tinyml.model import ops
from tinyml.model.board_library import BoardLibraryRunner, build_host_library, reference_outputs
from tinyml.model.modelfile import read_model

SAMPLES = 100
# Ops the pinned library computes exactly as the TFLM runtime does.
EXACT_OPS = {"conv2d", "conv2d_same_relu", "conv2d_strided", "conv1d", "depthwise_conv2d", "max_pool2d", "average_pool2d", "fc_per_tensor", "softmax", "add", "reshape"}
# Ops where it differs (the defects documented above).
DIFFERING_OPS = {"fc_per_channel", "mean_gap2d", "mean_gap1d"}


@pytest.fixture(scope="module")
def op_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("single_op_models")
    return {name: write_single_op_model(name, directory).read_bytes() for name in SINGLE_OP_MODELS}


def random_inputs(model: bytes, count: int = SAMPLES, seed: int = 3) -> np.ndarray:
    spec = read_model(model).inputs[0]
    return np.random.default_rng(seed).integers(-128, 128, size=(count, *spec.shape), dtype=np.int8)


def tflm_outputs(model: bytes, inputs: np.ndarray) -> np.ndarray:
    from tinyml.model.tflm import TflmRunner

    runner = TflmRunner(model, arena_size=1 << 20)
    return np.stack([runner.invoke(x).reshape(-1) for x in inputs])


def test_every_op_a_lab_or_a_test_model_uses_has_a_single_op_model(op_models: dict[str, bytes], int8_models: dict[str, Path]) -> None:
    # The labs: Conv2D, MaxPooling2D, GlobalAveragePooling2D (MEAN), Flatten (RESHAPE), Dense, Softmax.
    lab_ops = {"CONV_2D", "MAX_POOL_2D", "MEAN", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}
    held_out_ops = {op for path in int8_models.values() for op in read_model(path.read_bytes()).op_counts}
    covered = {op for model in op_models.values() for op in read_model(model).op_counts}
    assert lab_ops | held_out_ops <= covered <= set(ops.OPS)
    for name, model in op_models.items():
        assert SINGLE_OP_MODELS[name][0] in read_model(model).op_counts, name
    assert EXACT_OPS | DIFFERING_OPS == set(SINGLE_OP_MODELS)


@pytest.mark.parametrize("name", sorted(EXACT_OPS))
def test_the_pinned_library_computes_these_ops_as_the_tflm_runtime(name: str, op_models: dict[str, bytes], pinned_host_library) -> None:
    model = op_models[name]
    inputs = random_inputs(model)
    board = reference_outputs(model, inputs, pinned_host_library)
    np.testing.assert_array_equal(board, tflm_outputs(model, inputs))


def test_per_channel_fully_connected_uses_the_first_channels_scale_for_every_channel(op_models: dict[str, bytes], pinned_host_library) -> None:
    model = op_models["fc_per_channel"]
    weights = next(t for t in read_model(model).tensors if t.is_constant and len(t.shape) == 2 and t.dtype == "int8")
    assert len(weights.scales) == 16  # the converter's default: one scale per output channel
    inputs = random_inputs(model)
    board, tflm = reference_outputs(model, inputs, pinned_host_library), tflm_outputs(model, inputs)
    exact_per_channel = (board == tflm).mean(axis=0)
    assert exact_per_channel[0] == 1.0  # channel 0's own scale is the one applied to all
    assert exact_per_channel.mean() < 0.8 and np.abs(board.astype(int) - tflm).max() > 1


@pytest.mark.parametrize("name", ["mean_gap2d", "mean_gap1d"])
def test_mean_differs_from_the_tflm_runtime_by_one_lsb(name: str, op_models: dict[str, bytes], pinned_host_library) -> None:
    model = op_models[name]
    inputs = random_inputs(model)
    board, tflm = reference_outputs(model, inputs, pinned_host_library), tflm_outputs(model, inputs)
    delta = np.abs(board.astype(int) - tflm)
    assert 0.5 < (delta == 0).mean() < 1.0 and delta.max() == 1


def test_the_pinned_and_the_candidate_library_compute_the_same(op_models: dict[str, bytes], pinned_host_library, candidate_host_library) -> None:
    candidate = candidate_host_library
    for name, model in op_models.items():
        inputs = random_inputs(model, 20)
        pinned_runner, candidate_runner = BoardLibraryRunner(model, pinned_host_library), BoardLibraryRunner(model, candidate)
        np.testing.assert_array_equal(np.stack([pinned_runner.invoke(x) for x in inputs]), np.stack([candidate_runner.invoke(x) for x in inputs]), err_msg=name)
        assert pinned_runner.arena_used == candidate_runner.arena_used, name


def test_the_runner_reports_shapes_arena_and_the_ops_the_library_has(op_models: dict[str, bytes], pinned_host_library) -> None:
    runner = BoardLibraryRunner(op_models["conv2d"], pinned_host_library)
    assert runner.inputs[0].shape == (1, 10, 10, 3) and runner.inputs[0].dtype is np.int8
    assert runner.outputs[0].shape == (1, 8, 8, 8)
    assert 0 < runner.arena_used < 64 * 1024
    registered = set(pinned_host_library.builtin_ops())
    assert {"CONV_2D", "FULLY_CONNECTED", "MEAN", "SOFTMAX"} <= registered
    # What the project's op table has and this 2022 library lacks (read from its AllOpsResolver).
    assert {"BATCH_MATMUL", "EMBEDDING_LOOKUP", "REDUCE_MIN", "REVERSE_V2"} <= set(ops.OPS) - registered
    assert pinned_host_library.label == "Arduino_TensorFlowLite 2.4.0-ALPHA"
    assert pinned_host_library.describe() == "Arduino_TensorFlowLite 2.4.0-ALPHA (the board's library, built for the host)"


def test_a_model_with_an_op_the_library_lacks_is_a_model_error(tmp_path: Path, pinned_host_library) -> None:
    import tensorflow as tf

    # REVERSE_V2 is in TFLM today, not in the pinned library.
    @tf.function(input_signature=[tf.TensorSpec((1, 8), tf.float32)])
    def reverse(x):
        return tf.reverse(x, axis=[1])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([reverse.get_concrete_function()], reverse)
    model = converter.convert()
    assert "REVERSE_V2" in read_model(model).op_counts
    with pytest.raises(ModelError, match="REVERSE_V2") as refused:
        BoardLibraryRunner(model, pinned_host_library)
    assert refused.value.exit_code == 3 and "Arduino_TensorFlowLite" in str(refused.value)


def test_bytes_that_are_not_a_model_are_a_model_error(pinned_host_library) -> None:
    with pytest.raises(ModelError, match="not a TFLite model"):
        BoardLibraryRunner(b"\0" * 64, pinned_host_library)


def test_a_folder_without_src_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no src/"):
        build_host_library(tmp_path)


def test_a_library_that_does_not_compile_is_a_tool_error_of_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tinyml.core import native_build
    from tinyml.core.errors import ToolError

    require_tool("g++")
    monkeypatch.setenv(native_build.CACHE_ENV, str(tmp_path / "cache"))
    broken = tmp_path / "Broken"
    header = broken / "src" / "tensorflow" / "lite" / "schema"
    header.mkdir(parents=True)
    (header / "schema_generated.h").write_text("this is not C++\n")
    with pytest.raises(ToolError) as failed:
        build_host_library(broken)
    assert failed.value.exit_code == 4 and "\n" not in failed.value.problem
    assert not list((tmp_path / "cache" / "host_tflm").glob("Broken-*"))
