"""Bad data and settings, generated: labels files, class labels, NaN samples, validate's settings and files.

Each class of bad input is tried with many generated instances (hypothesis), and each must give
an InputError (one line, exit code 2) before any work or any write, never a traceback or a
made-up number.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyml.core.data import Dataset, check_class_labels, check_finite, load_dataset, load_labels
from tinyml.core.errors import InputError
from tinyml.device.link import MAX_BAUDRATE, MIN_BAUDRATE, open_port
from tinyml.validation.session import SampleLog
from tinyml.validation.validate import validate_device

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NO_PORT = "/nonexistent/tinyml-test-port"  # reaching the port would be a DeviceError, not an InputError

# Characters str.splitlines() breaks at besides \n and \r: a labels file must not.
OTHER_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
label_text = st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)) | st.sampled_from(OTHER_LINE_BREAKS), max_size=12)


@FAST
@given(
    labels=st.lists(label_text, min_size=1, max_size=8).filter(lambda labels: labels[-1].strip()),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    trailing=st.sampled_from(["", "\n", "\r\n", "\n\n"]),
)
def test_labels_file_round_trips_with_bom_and_any_line_end(tmp_path: Path, labels: list[str], bom: bool, newline: str, trailing: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (newline.join(labels) + trailing).encode("utf-8"))
    assert load_labels(path) == labels


@FAST
@given(classes=st.integers(1, 300), labels=st.lists(st.integers(-(10**7), 10**7), min_size=1, max_size=50))
def test_class_labels_outside_the_model_are_refused(classes: int, labels: list[int]) -> None:
    y = np.asarray(labels, dtype=np.int64)
    data = Dataset(np.zeros((len(y), 2), np.float32), y)
    if y.min() < 0 or y.max() >= classes:
        with pytest.raises(InputError, match=f"0..{classes - 1}"):
            check_class_labels(data, classes, "test")
    else:
        check_class_labels(data, classes, "test")


@FAST
@given(width=st.integers(2, 20), classes=st.integers(2, 20), rows=st.integers(1, 30))
def test_one_hot_labels_of_another_width_are_refused(tmp_path: Path, width: int, classes: int, rows: int) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((rows, 3), np.float32), y=np.eye(width)[np.arange(rows) % width])
    data = load_dataset(path)
    if width != classes:
        with pytest.raises(InputError, match=f"width {width}"):
            check_class_labels(data, classes, "test")
    else:
        check_class_labels(data, classes, "test")


@FAST
@given(
    shape=st.tuples(st.integers(1, 20), st.integers(1, 8)),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.floats(0, 1, exclude_max=True),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
)
def test_nan_or_inf_anywhere_is_refused(shape: tuple[int, int], bad: float, where: float, dtype: type) -> None:
    x = np.zeros(shape, dtype)
    x.flat[int(where * x.size)] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        check_finite(x, "the data")


@FAST
@given(baudrate=st.integers(-(10**12), MIN_BAUDRATE - 1) | st.integers(MAX_BAUDRATE + 1, 10**15) | st.sampled_from([0, 1.5, "115200", True]))
def test_baud_rates_that_are_no_serial_speed_are_refused_before_the_port(baudrate) -> None:
    with pytest.raises(InputError, match="baud rate"):
        open_port("loop://", baudrate)


# ------------------------------------------------------------------ validate refuses before the run


@pytest.fixture(scope="module")
def dense(int8_models: dict[str, Path]) -> Path:
    return int8_models["dense"]  # 16 float inputs, 4 classes


@FAST
@given(labels=st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=20).filter(lambda y: min(y) < 0 or max(y) >= 4))
def test_validate_refuses_labels_outside_the_model_before_the_port(dense: Path, labels: list[int]) -> None:
    data = Dataset(np.zeros((len(labels), 16), np.float32), np.asarray(labels))
    with pytest.raises(InputError, match="labels run from"):
        validate_device(NO_PORT, dense, data)


@FAST
@given(rows=st.integers(1, 10), bad=st.sampled_from([np.nan, np.inf, -np.inf]), where=st.floats(0, 1, exclude_max=True))
def test_validate_refuses_nan_or_inf_samples_before_the_port(dense: Path, rows: int, bad: float, where: float) -> None:
    x = np.zeros((rows, 16), np.float32)
    x.flat[int(where * x.size)] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        validate_device(NO_PORT, dense, Dataset(x, np.zeros(rows, np.int64)))


@pytest.fixture(scope="module")
def float_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The dense model in float (.keras and .tflite), and float models of other shapes."""
    import keras
    import tensorflow as tf

    from modelzoo import build_keras_model

    directory = tmp_path_factory.mktemp("float_models")
    paths = {}
    for name, model in (("dense", build_keras_model("dense")), ("conv2d", build_keras_model("conv2d")), ("six_classes", build_keras_model("dense", n_classes=6))):
        paths[name + ".keras"] = directory / f"{name}.keras"
        model.save(paths[name + ".keras"])
        paths[name + ".tflite"] = directory / f"{name}.tflite"
        paths[name + ".tflite"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    del keras
    return paths


@pytest.mark.parametrize("name", ["conv2d.keras", "conv2d.tflite", "six_classes.keras", "six_classes.tflite", "int8"])
def test_validate_refuses_a_float_model_that_does_not_match_before_the_port(dense: Path, float_models: dict[str, Path], name: str) -> None:
    path = dense if name == "int8" else float_models[name]
    data = Dataset(np.zeros((3, 16), np.float32), np.zeros(3, np.int64))
    with pytest.raises(InputError, match="float model") as caught:
        validate_device(NO_PORT, dense, data, float_model=path)
    assert "int8 model" in caught.value.problem if name == "int8" else True


@pytest.mark.parametrize("suffix", [".keras", ".tflite"])
@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_validate_refuses_a_truncated_float_model_before_the_port(dense: Path, float_models: dict[str, Path], tmp_path: Path, suffix: str, keep: float) -> None:
    whole = float_models["dense" + suffix].read_bytes()
    path = tmp_path / ("cut" + suffix)
    path.write_bytes(whole[: int(len(whole) * keep)])
    data = Dataset(np.zeros((3, 16), np.float32), np.zeros(3, np.int64))
    with pytest.raises(InputError):
        validate_device(NO_PORT, dense, data, float_model=path)


def test_validate_accepts_the_matching_float_models(dense: Path, float_models: dict[str, Path]) -> None:
    from tinyml.model.modelfile import read_model
    from tinyml.validation.float_model import FloatModel

    facts = read_model(dense.read_bytes())
    x = np.random.default_rng(0).uniform(-1, 1, (5, 16)).astype(np.float32)
    keras_top1 = FloatModel(float_models["dense.keras"], facts.inputs[0], facts.outputs[0]).top1(x)
    tflite_top1 = FloatModel(float_models["dense.tflite"], facts.inputs[0], facts.outputs[0]).top1(x)
    assert keras_top1.tolist() == tflite_top1.tolist()


# ------------------------------------------------------------------ a hand-damaged samples.jsonl

HEADER = {"model_hash": "abc", "data_sha256": "def", "port": "p", "reference": "the TFLM Python runtime"}


def _record(index: int) -> dict:
    return {"index": index, "label": 1, "device": [1, 2, 3, 4], "reference": [1, 2, 3, 4], "tflm": [1, 2, 3, 4], "latency_us": 10, "round_trip_ms": 1.5}


DAMAGE = {
    "not JSON": lambda r: "{index: 3",
    "a list": lambda r: json.dumps([r]),
    "a number": lambda r: "7",
    "no index": lambda r: json.dumps({k: v for k, v in r.items() if k != "index"}),
    "negative index": lambda r: json.dumps({**r, "index": -1}),
    "text index": lambda r: json.dumps({**r, "index": "3"}),
    "short output": lambda r: json.dumps({**r, "device": [1, 2]}),
    "float output": lambda r: json.dumps({**r, "tflm": [1.5, 2, 3, 4]}),
    "no latency": lambda r: json.dumps({k: v for k, v in r.items() if k != "latency_us"}),
    "text latency": lambda r: json.dumps({**r, "round_trip_ms": "fast"}),
}


@FAST
@given(count=st.integers(2, 12), data=st.data(), damage=st.sampled_from(sorted(DAMAGE)))
def test_a_damaged_sample_line_names_the_file_and_line(tmp_path: Path, count: int, data: st.DataObject, damage: str) -> None:
    line = data.draw(st.integers(2, count))  # not the last line: a torn last line is a crash, redone quietly
    lines = [json.dumps({"kind": "header", **HEADER})] + [json.dumps(_record(i)) for i in range(count)]
    lines[line - 1] = DAMAGE[damage](_record(line - 2))
    path = tmp_path / f"samples-{count}-{line}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"{path.name} line {line} ") as caught:
        SampleLog(path, HEADER, resume=True, force=False, output_elements=4)
    assert f"delete line {line}" in caught.value.fix


@pytest.mark.parametrize("first", ["", "garbage", "[]", json.dumps({"kind": "sample"}), "\udcff"])
def test_a_damaged_header_is_refused(tmp_path: Path, first: str) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_bytes(first.encode("utf-8", "surrogateescape") + b"\n" + json.dumps(_record(0)).encode() + b"\n")
    with pytest.raises(InputError, match="--force|line 1"):
        SampleLog(path, HEADER, resume=True, force=False, output_elements=4)


def test_a_torn_last_line_is_redone_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps({"kind": "header", **HEADER}) + "\n" + json.dumps(_record(0)) + "\n" + json.dumps(_record(1))[:20], encoding="utf-8")
    log = SampleLog(path, HEADER, resume=True, force=False, output_elements=4)
    log.close()
    assert sorted(log.records) == [0]


@pytest.mark.timeout(120)
def test_a_float_model_that_fails_after_the_run_still_leaves_the_report(dense: Path, float_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tinyml.device.virtual_board import VirtualBoard
    from tinyml.model.tflm import measure_arena
    from tinyml.validation.float_model import FloatModel

    def fail(self, x):
        raise InputError("the float model failed late", "a test")

    monkeypatch.setattr(FloatModel, "top1", fail)
    data = Dataset(np.zeros((3, 16), np.float32), np.zeros(3, np.int64))
    with VirtualBoard(dense, labels=["a", "b", "c", "d"], link=tmp_path / "port", arena_bytes=measure_arena(dense.read_bytes())) as board:
        with pytest.raises(InputError, match="failed late"):
            validate_device(board.port, dense, data, report_dir=tmp_path / "report", float_model=float_models["dense.keras"], link_options={"reply_timeout": 0.25})
    assert json.loads((tmp_path / "report" / "report.json").read_text())["samples"] == 3
