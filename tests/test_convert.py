"""tinyml convert: model_data.h/.cc that compile strictly and read back byte-identical."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ccompile import ARM_CORTEX_M4, compile_and_run, compile_objects
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tinyml.firmware.convert import c_byte_array, c_float_literal, c_string_literal, check_identifier, convert_model, generate_model_data
from tinyml.core.errors import InputError, ModelError
from tinyml.model.modelfile import read_model
from tinyml.core.tools import run

# Writes the array and the labels (each ended by a NUL) to files, and prints the facts.
READER_CC = r"""
#include <stdint.h>
#include <stdio.h>
#include "model_data.h"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  FILE* data = fopen(argv[1], "wb");
  if (data == NULL || fwrite(model::kData, 1, model::kDataLen, data) != model::kDataLen) return 3;
  fclose(data);
  FILE* labels = fopen(argv[2], "wb");
  if (labels == NULL) return 4;
  for (uint16_t i = 0; i < model::kLabelCount; ++i) {
    fputs(model::kLabels[i], labels);
    fputc('\0', labels);
  }
  fclose(labels);
  printf("hash=%s schema=%u aligned=%d in_dims=%d in_bytes=%u out_bytes=%u in_zp=%d dtype=%s\n", model::kHash,
         model::kSchemaVersion, static_cast<int>(reinterpret_cast<uintptr_t>(model::kData) % 16 == 0),
         model::kInputDims, static_cast<unsigned>(model::kInputBytes), static_cast<unsigned>(model::kOutputBytes),
         static_cast<int>(model::kInputZeroPoint), model::kInputDtype);
  return 0;
}
"""

# The installed command, as a user runs it (the venv need not be on PATH).
TINYML = str(Path(sys.executable).parent / "tinyml")

NASTY_LABELS = ['say "hi"', "back\\slash */ /* //", "what??/ ??= ??'", "Grüße 🙂 ünïcödé"]


@pytest.fixture(scope="module")
def dense(int8_models: dict[str, Path]) -> Path:
    return int8_models["dense"]


@pytest.fixture(scope="module")
def reader_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("reader")
    (directory / "reader.cc").write_text(READER_CC)
    return directory / "reader.cc"


def _read_back(model: Path, labels: list[str], directory: Path, reader: Path, std: str = "gnu++14") -> tuple[bytes, list[str], str]:
    convert_model(model, directory, labels=labels, force=True)
    output = compile_and_run([reader, directory / "model_data.cc"], [directory], std=std, args=[str(directory / "data.bin"), str(directory / "labels.bin")], out_dir=directory)
    raw = (directory / "labels.bin").read_bytes()
    read_labels = [item.decode("utf-8") for item in raw.split(b"\0")[:-1]]
    return (directory / "data.bin").read_bytes(), read_labels, output


def test_model_bytes_and_labels_read_back_identical(dense: Path, tmp_path: Path, reader_object: Path) -> None:
    data, labels, output = _read_back(dense, NASTY_LABELS, tmp_path, reader_object)
    facts = read_model(dense)
    assert data == dense.read_bytes()
    assert labels == NASTY_LABELS
    assert f"hash={facts.short_hash} " in output
    assert f"schema={facts.schema_version} " in output
    assert "aligned=1" in output
    assert f"in_dims={len(facts.inputs[0].shape)} in_bytes={facts.inputs[0].byte_size} out_bytes={facts.outputs[0].byte_size}" in output
    assert f"in_zp={facts.inputs[0].zero_point} dtype=int8" in output


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0"), max_size=12), min_size=4, max_size=4))
@example(labels=["??/", "*/", '\\"', "\u00e9\U0001f600"])
@example(labels=["\\0", "\\x41", "?\n?", "\t\r\x7f\x01"])
def test_any_label_text_compiles_and_reads_back(labels: list[str], dense: Path, tmp_path_factory: pytest.TempPathFactory, reader_object: Path) -> None:
    # Strict c++14 is the hard case: it still translates trigraphs, which gnu++14 ignores.
    _, read_labels, _ = _read_back(dense, labels, tmp_path_factory.mktemp("labels"), reader_object, std="c++14")
    assert read_labels == labels


def test_model_data_compiles_for_cortex_m4(int8_models: dict[str, Path], tmp_path: Path) -> None:
    sources = []
    for kind, model in int8_models.items():
        out = tmp_path / kind
        convert_model(model, out, labels=[f"class {i}" for i in range(4)])
        sources.append(out / "model_data.cc")
    compile_objects(sources, [tmp_path / "dense"], std="gnu++14", flags=ARM_CORTEX_M4, out_dir=tmp_path)


def test_output_is_identical_on_every_run(dense: Path, tmp_path: Path) -> None:
    first = convert_model(dense, tmp_path / "a", labels=list("abcd"))
    second = convert_model(dense.read_bytes(), tmp_path / "b", labels=list("abcd"))
    assert first.header.read_bytes() == second.header.read_bytes()
    assert first.source.read_bytes() == second.source.read_bytes()


def test_name_sets_namespace_and_files(dense: Path, tmp_path: Path) -> None:
    result = convert_model(dense, tmp_path, name="gesture_model")
    assert result.header.name == "gesture_model_data.h"
    assert result.source.name == "gesture_model_data.cc"
    assert "namespace gesture_model {" in result.header.read_text()
    main = tmp_path / "main.cc"
    main.write_text('#include "gesture_model_data.h"\nint main() { return gesture_model::kDataLen > 0 && gesture_model::kLabelCount == 0 && gesture_model::kLabels[0] == nullptr ? 0 : 1; }\n')
    compile_and_run([main, result.source], [tmp_path], out_dir=tmp_path)


@pytest.mark.parametrize("name", ["class", "int", "1model", "my-model", "__x", "_Model", "", "NULL"])
def test_bad_names_are_refused(dense: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError):
        convert_model(dense, tmp_path, name=name)
    assert not any(tmp_path.iterdir())


def test_label_count_must_match_outputs(dense: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="3 labels but the model has 4 output values"):
        convert_model(dense, tmp_path, labels=["a", "b", "c"])
    assert not any(tmp_path.iterdir())


def test_existing_files_are_kept_without_force(dense: Path, tmp_path: Path) -> None:
    (tmp_path / "model_data.cc").write_text("// mine\n")
    with pytest.raises(InputError, match="already exists"):
        convert_model(dense, tmp_path)
    assert (tmp_path / "model_data.cc").read_text() == "// mine\n"
    assert not (tmp_path / "model_data.h").exists()
    convert_model(dense, tmp_path, force=True)
    assert "kDataLen" in (tmp_path / "model_data.cc").read_text()


def test_two_input_model_is_refused(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    a, b = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])))
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    with pytest.raises(ModelError, match="2 inputs and 1 outputs"):
        generate_model_data(tflite)


def test_cli_convert_writes_files_and_reports_errors(dense: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("up\ndown\nleft\nright\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run([TINYML, "convert", str(dense), "--out", str(out), "--labels", str(labels)])
    assert result.returncode == 0, result.stdout
    assert '"right",' in (out / "model_data.cc").read_text()
    again = run([TINYML, "convert", str(dense), "--out", str(out)])
    assert again.returncode == 2
    assert "already exists" in again.stdout and "--force" in again.stdout
    assert len(again.stdout.strip().splitlines()) == 1
    bad = run([TINYML, "convert", str(labels), "--out", str(tmp_path / "x")])
    assert bad.returncode == 2 and "not a TensorFlow Lite flatbuffer" in bad.stdout
    assert not (tmp_path / "x").exists()


def test_literals() -> None:
    assert c_string_literal('a"b\\c?') == '"a\\"b\\\\c\\?"'
    assert c_string_literal("é") == '"\\303\\251"'
    assert c_float_literal(0.0) == "0.0f"
    assert c_float_literal(0.00390625) == "0.00390625f"
    assert c_float_literal(1e-10) == "1e-10f"
    assert c_byte_array(bytes(range(17)), indent="") == (
        "0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,\n0x10,"
    )
    with pytest.raises(InputError, match="NUL"):
        c_string_literal("a\0b")
    with pytest.raises(InputError, match="not valid Unicode"):
        c_string_literal("\ud800")
    assert check_identifier("model") == "model"

