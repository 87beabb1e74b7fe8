"""Hardware-in-the-loop validation: does the board compute what the host computes?

`validate_device(port, model, data)` checks over INFO that the board runs this model (by
hash), then sends each sample and compares the board's output tensor with host runs of the
same int8 model. The verdict's reference is the board's own TFLM library built for the host
(tinyml.model.board_library), found from `library`, $TINYML_TFLM_LIBRARY or the rendered
`project_dir`; without a library source it is the TFLM runtime, and the report says so
(tinyml.validation.host_reference). The TFLite reference (tinyml.model.reference, no XNNPACK)
and the TFLM runtime (tinyml.model.tflm) stay beside it. It reads where a reader would stop:

- the session over the link, with the sample log and resume: tinyml.validation.session;
- the metrics: tinyml.validation.metrics;
- the report, its accuracies and the verdict against the thresholds: tinyml.validation.report;
- report.json and report.html: tinyml.validation.report_files.

Thresholds: `min_exact` is the least exact-match rate per element and `min_agreement` the
least top-1 agreement with the verdict's reference, both fractions in [0, 1]. The
report is written first; then a failed threshold raises `ThresholdFailed` (a
ValidationFailed, exit code 6) that carries the report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset, check_class_labels, check_finite, class_count, load_dataset
from tinyml.core.errors import InputError
from tinyml.core.files import check_not_input, check_output_folder
from tinyml.model.modelfile import TensorFacts, read_model, read_model_bytes
from tinyml.model.quantization import quantize_input
from tinyml.validation.float_model import FloatModel
from tinyml.validation.host_reference import choose_reference
from tinyml.validation.report import ValidationReport, build_report
from tinyml.validation.session import SAMPLES_FILE, data_fingerprint, run_session

log = logging.getLogger("tinyml.validate")


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
    library: str | Path | None = None,
    project_dir: str | Path | None = None,
    target: str | None = None,
) -> ValidationReport:
    """Validate the board on `port` against the host for every sample of `data` (see module doc).
    `target` names what runs the firmware (e.g. the emulated board) in the report and verdict."""
    _check_arguments(limit, report_dir, min_exact, min_agreement, resume)
    host_reference = choose_reference(library, project_dir)
    if not host_reference.is_board_library:
        log.warning("reference: %s, %s", host_reference.name, host_reference.note)
    model_bytes = bytes(model) if isinstance(model, (bytes, bytearray)) else read_model_bytes(model)
    facts = read_model(model_bytes)
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    data_sha256 = data_fingerprint(dataset.x, dataset.y)
    dataset = dataset.take(limit)
    if len(dataset) == 0:
        raise InputError("the data set has no samples", "give a .npz with at least one sample in 'x'")
    check_class_labels(dataset, class_count(facts.outputs[0].element_count), "validation")
    x_q = prepare_inputs(dataset.x, facts.inputs[0])
    float_reference = FloatModel(float_model, facts.inputs[0], facts.outputs[0]) if float_model is not None and dataset.y is not None else None
    directory = Path(report_dir) if report_dir is not None else None
    if directory is not None:
        _check_report_dir(directory, resume, force, [model if not isinstance(model, bytes) else None, data if not isinstance(data, Dataset) else None, float_model])

    session = run_session(
        port,
        str(model) if not isinstance(model, bytes) else "the given model",
        model_bytes,
        facts,
        dataset,
        x_q,
        data_sha256=data_sha256,
        host_reference=host_reference,
        report_dir=directory,
        resume=resume,
        force=force,
        progress=progress,
        link_options=link_options,
    )
    float_top1, late_error = None, None
    if float_reference is not None:
        try:
            float_top1 = float_reference.top1(dataset.x)
        except Exception as exc:  # noqa: BLE001 - the run's results are written first, then it is raised
            late_error = exc
    report = build_report(port, model, facts, session.info, host_reference, session.records, float_top1, session.link_stats, min_exact, min_agreement)
    report.resumed_samples = session.resumed
    report.target = target
    if directory is not None:
        from tinyml.validation.report_files import write_report

        report.report_dir = str(directory)
        write_report(report, session.records, directory)
    if late_error is not None:
        raise late_error
    report.raise_for_thresholds()
    return report


def _check_report_dir(directory: Path, resume: bool, force: bool, inputs: list[Any]) -> None:
    """Before the board is touched: the folder can be written, holds no input, and no earlier results are replaced without --force."""
    from tinyml.validation.report_files import REPORT_HTML, REPORT_JSON

    check_output_folder(directory)
    outputs = [directory / name for name in (SAMPLES_FILE, REPORT_JSON, REPORT_HTML)]
    for path in outputs:
        check_not_input(path, inputs)
        if path.is_dir():
            raise InputError(f"{path} is a folder, where validate writes a file", "choose another --report folder, or move that folder away")
    # --resume continues the run whose samples.jsonl is there: its report is the tool's own to rewrite.
    resuming = resume and outputs[0].exists()
    existing = [p.name for p in outputs if p.exists()]
    if existing and not (resuming or force):
        if outputs[0].exists():
            raise InputError(f"{outputs[0]} holds results of an earlier run", "pass --resume to continue it, or --force to start over")
        raise InputError(f"{directory} already holds {', '.join(existing)}", "choose another --report folder, or pass --force to replace them")


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
    check_finite(x, "the validation data")
    if x.dtype == np.dtype(spec.dtype):
        return x
    if spec.dtype != "int8":
        raise InputError(f"the model's input is {spec.dtype}", "validate a full-int8 model made by `tinyml quantize`")
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"the samples are {x.dtype}, neither float nor the model's int8", "give float samples (they are quantized with the model's input scale) or int8 ones")
    if spec.scale == 0.0:
        raise InputError("the model's int8 input has no quantization scale", "quantize the model with `tinyml quantize`")
    return quantize_input(x, spec)
