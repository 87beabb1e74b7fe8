"""Facts read from .tflite flatbuffers without TensorFlow, and clear errors for anything else."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyml.core.errors import InputError
from tinyml.model.modelfile import SUPPORTED_SCHEMA_VERSION, read_model


def test_facts_of_the_dense_model(int8_models: dict[str, Path]) -> None:
    path = int8_models["dense"]
    data = path.read_bytes()
    facts = read_model(path)
    assert facts == read_model(data)
    assert facts.size_bytes == len(data)
    assert facts.sha256 == hashlib.sha256(data).hexdigest()
    assert facts.short_hash == facts.sha256[:16]
    assert facts.schema_version == SUPPORTED_SCHEMA_VERSION
    assert facts.subgraph_count == 1
    assert facts.op_counts == {"FULLY_CONNECTED": 2, "SOFTMAX": 1}
    assert facts.op_names == ["FULLY_CONNECTED", "SOFTMAX"]
    assert [op.op for op in facts.operators] == ["FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]

    (data_in,) = facts.inputs
    (data_out,) = facts.outputs
    assert (data_in.shape, data_in.dtype, data_in.is_constant) == ((1, 16), "int8", False)
    assert (data_out.shape, data_out.dtype) == ((1, 4), "int8")
    assert data_in.scale > 0 and -128 <= data_in.zero_point <= 127
    assert data_out.scale == pytest.approx(1 / 256) and data_out.zero_point == -128
    assert data_in.byte_size == 16

    weights = [t for t in facts.tensors if t.is_constant]
    assert sorted(t.shape for t in weights) == [(4, 24), (24, 16)]
    assert all(t.dtype == "int8" and len(t.scales) == 1 for t in weights)  # per tensor, as the zoo converts Dense layers
    assert facts.parameter_count == 16 * 24 + 24 * 4
    assert facts.is_full_int8


def test_per_channel_dense_weights_read_as_one_scale_per_output_unit(per_channel_dense_model: Path) -> None:
    weights = [t for t in read_model(per_channel_dense_model).tensors if t.is_constant and t.dtype == "int8"]
    assert sorted(t.shape for t in weights) == [(4, 24), (24, 16)]
    assert all(len(t.scales) == t.shape[0] and t.quantized_dimension == 0 for t in weights)


def test_every_zoo_model_reads_as_full_int8(int8_models: dict[str, Path]) -> None:
    for kind, path in int8_models.items():
        facts = read_model(path)
        assert facts.is_full_int8, kind
        assert len(facts.inputs) == 1 and len(facts.outputs) == 1, kind
        assert all(0 <= i < len(facts.tensors) for op in facts.operators for i in op.outputs), kind


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as caught:
        read_model(tmp_path / "nothing.tflite")
    assert "tinyml quantize" in caught.value.fix
    keras_file = tmp_path / "model.keras"
    keras_file.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(InputError, match="is not a TensorFlow Lite flatbuffer"):
        read_model(keras_file)
    with pytest.raises(InputError, match="not a TensorFlow Lite flatbuffer"):
        read_model(b"")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupt_flatbuffers_give_input_errors_not_tracebacks(int8_models: dict[str, Path], data: st.DataObject) -> None:
    original = bytearray(int8_models["conv2d"].read_bytes())
    flips = data.draw(st.lists(st.tuples(st.integers(8, len(original) - 1), st.integers(0, 255)), max_size=20))
    for position, value in flips:
        original[position] = value
    cut = data.draw(st.integers(8, len(original)))
    corrupted = bytes(original[:cut])
    try:
        facts = read_model(corrupted)
    except InputError as exc:
        assert "flatbuffer" in exc.problem or "subgraph" in exc.problem
    else:
        assert facts.size_bytes == len(corrupted)
