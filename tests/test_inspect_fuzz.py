"""`inspect` on damaged models: every single-byte corruption of each lab model is a report or one clear error.

The two lab models (gesture and keyword spotting) are built with the labs' own model
builders and the quantize stage, untrained: corruption tests the file, not the weights.
`inspect_model` is called in-process. Its TFLM part runs in child processes already (a
damaged model can crash the runtime), so a crash there is an error message, not a dead test.

Speed: a flatbuffer that does not hold together is refused by modelfile's structure check in
milliseconds. What passes runs the real TFLM measurement (three forked probes). A mutation
inside a weight buffer cannot change the arena (TFLM plans memory from shapes and types,
never from weight values), so those reuse the unmutated model's measurement: that keeps the
2,000 mutations within about a minute on two cores.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from tinyml.core.errors import InputError, ModelError
from tinyml.model import inspect as inspect_module
from tinyml.model import tflm
from tinyml.model.inspect import inspect_model
from tinyml.model.modelfile import _schema

MUTATIONS = 1000


def _lab_model(kind: str) -> bytes:
    from tinyml.core.data import Dataset
    from tinyml.labs.gesture import build_gesture_model
    from tinyml.labs.keyword_spotting import build_kws_model
    from tinyml.labs.training import seed_everything
    from tinyml.model.quantize import quantize_model

    seed_everything(0)
    if kind == "gesture":
        from tinyml.features.imu import ImuWindowSpec
        from tinyml.labs.gesture import LABELS

        shape = ImuWindowSpec().input_shape
        model = build_gesture_model(shape, len(LABELS))
    else:
        from tinyml.features.logmel import LogMelSpec
        from tinyml.labs.speech import LABELS

        shape = LogMelSpec().input_shape
        model = build_kws_model(shape, len(LABELS))
    x = np.random.default_rng(0).normal(size=(64, *shape)).astype(np.float32)
    return quantize_model(model, Dataset(x, None)).tflite_bytes


@pytest.fixture(scope="module", params=["gesture", "keyword_spotting"])
def lab_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    cached = Path(tmp_path_factory.getbasetemp()) / f"lab_{request.param}.tflite"
    if not cached.exists():
        cached.write_bytes(_lab_model(request.param))
    return cached.read_bytes()


def _weight_ranges(model_bytes: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the constant buffers' contents in the file."""
    schema = _schema()
    model = schema.Model.GetRootAsModel(model_bytes, 0)
    ranges = []
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if buffer.DataLength():
            start = buffer._tab.Vector(buffer._tab.Offset(4))
            ranges.append((start, start + buffer.DataLength()))
    return ranges


# What TFLM never reads when it plans memory and runs: tensor and subgraph names, shape
# signatures, the model's description and signatures, operator code versions (the op resolver
# goes by builtin code), the float min/max of quantization (kernels use scale and zero point),
# and the values (not the sizes) of buffers. Two mutations that differ only there are one
# model to TFLM, measured once.
_IGNORED = {
    "TensorT": {"name", "shapeSignature"},
    "SubGraphT": {"name"},
    "ModelT": {"description", "signatureDefs"},
    "OperatorCodeT": {"version"},
    "QuantizationParametersT": {"min", "max"},
}


def _as_tflm_sees_it(value):
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_as_tflm_sees_it(v) for v in value)
    if hasattr(value, "__dict__"):
        kind = type(value).__name__
        fields = {k: v for k, v in vars(value).items() if k not in _IGNORED.get(kind, ())}
        if kind == "BufferT" and fields.get("data") is not None:
            fields["data"] = len(fields["data"])
        return (kind, tuple((k, _as_tflm_sees_it(v)) for k, v in sorted(fields.items())))
    return value


def _tflm_key(model_bytes: bytes):
    schema = _schema()
    return _as_tflm_sees_it(schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0)))


def test_every_corruption_is_a_report_or_one_clear_error(lab_model: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = _weight_ranges(lab_model)
    assert sum(end - start for start, end in weights) > len(lab_model) // 3  # the ranges were found
    real_measure = tflm.measure_arena
    original_arena = real_measure(lab_model)
    measured = {_tflm_key(lab_model): original_arena}
    in_weights = False  # whether the mutation being inspected lies inside a weight buffer

    def measure(model_bytes: bytes) -> int:
        if in_weights:
            return original_arena
        key = _tflm_key(model_bytes)
        if key not in measured:
            measured[key] = real_measure(model_bytes)
        return measured[key]

    monkeypatch.setattr(tflm, "measure_arena", measure)
    rng = random.Random(15)
    outcomes = {"report": 0, "corrupt": 0, "tflm refused": 0}
    for _ in range(MUTATIONS):
        position = rng.randrange(len(lab_model))
        value = rng.choice([v for v in range(256) if v != lab_model[position]])
        in_weights = any(start <= position < end for start, end in weights)
        mutated = bytearray(lab_model)
        mutated[position] = value
        try:
            report = inspect_model(bytes(mutated))
        except InputError as exc:
            assert "corrupt" in exc.problem or "not a TensorFlow Lite" in exc.problem, (position, value, exc)
            outcomes["corrupt"] += 1
            continue
        except ModelError as exc:  # a probe that timed out
            pytest.fail(f"byte {position} set to {value}: {exc}")
        if report.tflm_error is not None:
            assert "replace the ops" not in report.tflm_error
            with pytest.raises(ModelError) as refused:
                inspect_module.check_fits(report)
            if not report.unsupported:
                assert "replace the ops" not in str(refused.value), (position, value, refused.value)
            outcomes["tflm refused"] += 1
        else:
            outcomes["report"] += 1
    assert sum(outcomes.values()) == MUTATIONS
    print(outcomes, f"{len(measured)} distinct models measured in TFLM")
