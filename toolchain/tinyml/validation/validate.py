"""Hardware-in-the-loop validation: does the board compute what the host computes?

`validate_device(port, model, data)` checks over INFO that the board runs this model (by
hash), then sends each sample and compares the board's output tensor with two host runs of
the same int8 model: the bit-exact TFLite reference (tinyml.model.reference, no XNNPACK) and
the TFLM runtime (tinyml.model.tflm). It reads where a reader would stop:

- the session over the link, with the sample log and resume: tinyml.validation.session;
- the metrics: tinyml.validation.metrics;
- the report, its accuracies and the verdict against the thresholds: tinyml.validation.report;
- report.json and report.html: tinyml.validation.report_files.

Thresholds: `min_exact` is the least device-vs-reference exact-match rate per element and
`min_agreement` the least device-vs-reference top-1 agreement, both fractions in [0, 1]. The
report is written first; then a failed threshold raises `ThresholdFailed` (a
ValidationFailed, exit code 6) that carries the report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset, load_dataset
from tinyml.core.errors import InputError
from tinyml.model.keras import load_keras_file
from tinyml.model.modelfile import TensorFacts, read_model, read_model_bytes
from tinyml.model.quantization import dequantize, predicted_classes, quantize_input
from tinyml.validation.report import ValidationReport, build_report
from tinyml.validation.session import SAMPLES_FILE, data_fingerprint, run_session


def validate_device(
    port: str,
    model: str | Path | bytes,
    data: Dataset | str | Path,
    *,
    limit: int | None = None,
    report_dir: str | Path | None = None,
    min_exact: float | None = None,
    min_agreement: float | None = None,
    resume: bool = False,
    force: bool = False,
    float_model: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    link_options: dict[str, Any] | None = None,
    target: str | None = None,
) -> ValidationReport:
    """Validate the board on `port` against the host for every sample of `data` (see module doc).
    `target` names what runs the firmware (e.g. the emulated board) in the report and verdict."""
    _check_arguments(limit, report_dir, min_exact, min_agreement, resume)
    model_bytes = bytes(model) if isinstance(model, (bytes, bytearray)) else read_model_bytes(model)
    facts = read_model(model_bytes)
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    data_sha256 = data_fingerprint(dataset.x, dataset.y)
    dataset = dataset.take(limit)
    if len(dataset) == 0:
        raise InputError("the data set has no samples", "give a .npz with at least one sample in 'x'")
    x_q = prepare_inputs(dataset.x, facts.inputs[0])
    directory = Path(report_dir) if report_dir is not None else None
    if directory is not None and (directory / SAMPLES_FILE).exists() and not (resume or force):
        raise InputError(f"{directory / SAMPLES_FILE} holds results of an earlier run", "pass --resume to continue it, or --force to start over")

    session = run_session(
        port,
        str(model) if not isinstance(model, bytes) else "the given model",
        model_bytes,
        facts,
        dataset,
        x_q,
        data_sha256=data_sha256,
        report_dir=directory,
        resume=resume,
        force=force,
        progress=progress,
        link_options=link_options,
    )
    float_top1 = _float_predictions(float_model, dataset.x, facts.inputs[0]) if float_model is not None and dataset.y is not None else None
    report = build_report(port, model, facts, session.info, session.records, float_top1, session.link_stats, min_exact, min_agreement)
    report.resumed_samples = session.resumed
    report.target = target
    if directory is not None:
        from tinyml.validation.report_files import write_report

        report.report_dir = str(directory)
        write_report(report, session.records, directory)
    report.raise_for_thresholds()
    return report


def _check_arguments(limit: int | None, report_dir: str | Path | None, min_exact: float | None, min_agreement: float | None, resume: bool) -> None:
    for name, value in (("min_exact", min_exact), ("min_agreement", min_agreement)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise InputError(f"{name} is {value}, not a fraction", f"give --{name.replace('_', '-')} between 0 and 1, e.g. 0.99")
    if limit is not None and limit < 1:
        raise InputError(f"limit is {limit}", "give --limit 1 or more")
    if resume and report_dir is None:
        raise InputError("resume needs the report folder of the earlier run", "pass --report DIR")


def prepare_inputs(x: np.ndarray, spec: TensorFacts) -> np.ndarray:
    """Samples as rows of the model's input dtype: int8 data as is, float data quantized.

    Float data goes through tinyml.model.quantization.quantize_input, the one formula for it.
    """
    x = np.asarray(x)
    per_sample = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    if per_sample != spec.element_count:
        raise InputError(f"each sample has {per_sample} values (shape {x.shape[1:]}), the model's input {spec.shape} needs {spec.element_count}", "give samples shaped like the model's input")
    x = x.reshape(x.shape[0], -1)
    if x.dtype == np.dtype(spec.dtype):
        return x
    if spec.dtype != "int8":
        raise InputError(f"the model's input is {spec.dtype}", "validate a full-int8 model made by `tinyml quantize`")
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"the samples are {x.dtype}, neither float nor the model's int8", "give float samples (they are quantized with the model's input scale) or int8 ones")
    if spec.scale == 0.0:
        raise InputError("the model's int8 input has no quantization scale", "quantize the model with `tinyml quantize`")
    return quantize_input(x, spec)


def _float_predictions(float_model: str | Path, x: np.ndarray, input_spec: TensorFacts) -> np.ndarray:
    """Top-1 of the float model (Keras file or float .tflite) on the float samples."""
    path = Path(float_model)
    if not path.exists():
        raise InputError(f"float model {path} does not exist", "give the trained Keras model (.keras/.h5) or a float .tflite")
    if x.dtype == np.int8 or x.dtype == np.uint8:
        x = dequantize(x, input_spec, np.float64).astype(np.float32)
    x = x.astype(np.float32)
    if path.suffix == ".tflite":
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        detail_in, detail_out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        outputs = []
        for sample in x:
            interpreter.set_tensor(detail_in["index"], sample.reshape(detail_in["shape"]).astype(detail_in["dtype"]))
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(detail_out["index"]).reshape(-1))
        return predicted_classes(np.asarray(outputs))
    model, _flavour = load_keras_file(path)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return predicted_classes(model.predict(x.reshape((len(x), *shape)), verbose=0))
