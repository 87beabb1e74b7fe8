"""Hardware-in-the-loop validation: does the board compute what the host computes?

`validate_device(port, model, data)` checks over INFO that the board runs this model (by
hash), then sends each sample and compares the board's output tensor with two host runs of
the same int8 model: the bit-exact TFLite reference (tinyml.model.reference, no XNNPACK) and the
TFLM runtime (tinyml.model.tflm). The metrics are those of ST's validate-on-target: exact-match
rate per element, max |Δ| in LSB, MAE, RMSE, relative L2 error and cosine similarity on
dequantized outputs, top-1 agreement; with labels, accuracy of host float (when a float
model is given), host int8, TFLM and device side by side and the device's confusion matrix;
device latency p50/p95/max and the host round-trip time.

Each sample's result is appended to `samples.jsonl` in the report folder as it arrives, so a
crash or a pulled cable loses nothing, and `resume=True` continues where it stopped. A board
reset in mid-run is handled by tinyml.device.link (reconnect, same model checked, sample redone).

Thresholds: `min_exact` is the least device-vs-reference exact-match rate per element and
`min_agreement` the least device-vs-reference top-1 agreement, both fractions in [0, 1]. The
report is written first; then a failed threshold raises `ThresholdFailed` (a
ValidationFailed, exit code 6) that carries the report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset, load_dataset
from tinyml.core.errors import DeviceError, InputError, ValidationFailed
from tinyml.model.keras import load_keras_file
from tinyml.model.modelfile import TensorFacts, read_model, read_model_bytes
from tinyml.model.quantization import dequantize, predicted_classes, quantize_input

log = logging.getLogger("tinyml.validate")

SAMPLES_FILE = "samples.jsonl"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


@dataclass(frozen=True)
class Comparison:
    """How closely one int8 output (the device's) follows another (a host run), over all samples."""

    exact_match: float  # fraction of output elements that are equal
    samples_exact: float  # fraction of samples whose whole output is equal
    max_abs_lsb: int
    mae: float  # on dequantized outputs
    rmse: float
    relative_l2: float
    cosine: float  # mean over samples
    top1_agreement: float
    per_output_mean_abs_lsb: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Spread:
    p50: float
    p95: float
    max: float
    mean: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ValidationReport:
    port: str
    model_path: str
    model_hash: str
    device: dict
    samples: int
    device_vs_reference: Comparison
    device_vs_tflm: Comparison
    tflm_vs_reference: Comparison
    latency_us: Spread
    round_trip_ms: Spread
    accuracy: dict[str, float | None]
    confusion: list[list[int]] | None
    class_names: list[str]
    link: dict
    thresholds: dict[str, float | None]
    failures: list[str]
    resumed_samples: int = 0
    report_dir: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def raise_for_thresholds(self) -> None:
        if self.failures:
            raise ThresholdFailed(self)


class ThresholdFailed(ValidationFailed):
    """A threshold failed; `report` holds the whole validation (already written to disk)."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        where = f" (report in {report.report_dir})" if report.report_dir else ""
        super().__init__("validation failed: " + "; ".join(report.failures) + where, "look at the per-output error in the report, or relax --min-exact/--min-agreement if the difference is expected")


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


def _dequantize(q: np.ndarray, spec: TensorFacts) -> np.ndarray:
    return dequantize(q, spec, np.float64)


def _top1(outputs: np.ndarray, spec: TensorFacts) -> np.ndarray:
    return predicted_classes(_dequantize(outputs, spec))


def compare(device: np.ndarray, host: np.ndarray, spec: TensorFacts) -> Comparison:
    """Metrics of `device` against `host`, both (samples, elements) raw output tensors."""
    d = device.reshape(len(device), -1).astype(np.int64)
    h = host.reshape(len(host), -1).astype(np.int64)
    diff = np.abs(d - h)
    df, hf = _dequantize(d, spec), _dequantize(h, spec)
    err = df - hf
    norms = np.linalg.norm(df, axis=1) * np.linalg.norm(hf, axis=1)
    dots = np.sum(df * hf, axis=1)
    same = np.all(df == hf, axis=1)
    cosine = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(same, 1.0, 0.0))
    host_norm = float(np.linalg.norm(hf))
    return Comparison(
        exact_match=float(np.mean(diff == 0)),
        samples_exact=float(np.mean(np.all(diff == 0, axis=1))),
        max_abs_lsb=int(diff.max()) if diff.size else 0,
        mae=float(np.mean(np.abs(err))),
        rmse=float(np.sqrt(np.mean(err**2))),
        relative_l2=float(np.linalg.norm(err) / host_norm) if host_norm > 0 else float(np.linalg.norm(err) > 0),
        cosine=float(np.mean(cosine)),
        top1_agreement=float(np.mean(_top1(d, spec) == _top1(h, spec))),
        per_output_mean_abs_lsb=[float(v) for v in diff.mean(axis=0)],
    )


def spread(values: list[float]) -> Spread:
    if not values:
        return Spread(0.0, 0.0, 0.0, 0.0)
    a = np.asarray(values, dtype=np.float64)
    return Spread(float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.max()), float(a.mean()))


class _SampleLog:
    """samples.jsonl: a header line, then one line per sample, appended and flushed as they come."""

    def __init__(self, path: Path, header: dict, *, resume: bool, force: bool) -> None:
        self.path = path
        self.records: dict[int, dict] = {}
        if path.exists():
            if resume:
                self._load(header)
            elif not force:
                raise InputError(f"{path} holds results of an earlier run", "pass --resume to continue it, or --force to start over")
        if not self.records:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"kind": "header", **header}) + "\n", encoding="utf-8")
        self._file = path.open("a", encoding="utf-8")

    def _load(self, header: dict) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            first = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            first = {}
        for key in ("model_hash", "data_sha256"):
            if first.get(key) != header[key]:
                raise InputError(f"{self.path} is from a run with another {key.replace('_', ' ')} ({first.get(key)}, now {header[key]})", "use another --report folder, or --force to start over")
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line a crash cut short: that sample is simply done again
            self.records[int(record["index"])] = record
        # Rewrite without a torn last line, so appending continues a clean file.
        kept = [lines[0]] + [json.dumps(self.records[i]) for i in sorted(self.records)]
        self.path.write_text("\n".join(kept) + "\n", encoding="utf-8")

    def append(self, record: dict) -> None:
        self.records[record["index"]] = record
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _data_fingerprint(x: np.ndarray, y: np.ndarray | None) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    if y is not None:
        digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()[:16]


def _float_predictions(float_model: str | Path, x: np.ndarray, input_spec: TensorFacts) -> np.ndarray:
    """Top-1 of the float model (Keras file or float .tflite) on the float samples."""
    path = Path(float_model)
    if not path.exists():
        raise InputError(f"float model {path} does not exist", "give the trained Keras model (.keras/.h5) or a float .tflite")
    if x.dtype == np.int8 or x.dtype == np.uint8:
        x = _dequantize(x, input_spec).astype(np.float32)
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
) -> ValidationReport:
    """Validate the board on `port` against the host for every sample of `data` (see module doc)."""
    from tinyml.device.link import DeviceLink
    from tinyml.model.reference import ReferenceInterpreter
    from tinyml.model.tflm import TflmRunner

    for name, value in (("min_exact", min_exact), ("min_agreement", min_agreement)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise InputError(f"{name} is {value}, not a fraction", f"give --{name.replace('_', '-')} between 0 and 1, e.g. 0.99")
    if limit is not None and limit < 1:
        raise InputError(f"limit is {limit}", "give --limit 1 or more")
    if resume and report_dir is None:
        raise InputError("resume needs the report folder of the earlier run", "pass --report DIR")
    model_bytes = bytes(model) if isinstance(model, (bytes, bytearray)) else read_model_bytes(model)
    facts = read_model(model_bytes)
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    fingerprint = _data_fingerprint(dataset.x, dataset.y)
    dataset = dataset.take(limit)
    spec_in, spec_out = facts.inputs[0], facts.outputs[0]
    total = len(dataset)
    if total == 0:
        raise InputError("the data set has no samples", "give a .npz with at least one sample in 'x'")
    x_q = prepare_inputs(dataset.x, spec_in)

    directory = Path(report_dir) if report_dir is not None else None
    if directory is not None and (directory / SAMPLES_FILE).exists() and not (resume or force):
        raise InputError(f"{directory / SAMPLES_FILE} holds results of an earlier run", "pass --resume to continue it, or --force to start over")

    link = DeviceLink(port, **(link_options or {}))
    sample_log = None
    try:
        # The board first: a wrong port or model fails in a second, before TensorFlow loads.
        link.open()
        info = link.info()
        if info.model_hash != facts.short_hash:
            raise DeviceError(
                f"the board on {port} runs model {info.model_hash}, but {model if not isinstance(model, bytes) else 'the given model'} is {facts.short_hash}",
                "flash this model (`tinyml render` then `tinyml flash`), or validate the model the board runs",
            )
        if info.input.byte_size != spec_in.byte_size or info.output.byte_size != spec_out.byte_size:
            raise DeviceError(f"the board reports tensors of {info.input.byte_size}/{info.output.byte_size} bytes, the model has {spec_in.byte_size}/{spec_out.byte_size}", "render and flash the firmware again")
        # Only now, with the right board, does the run touch the report folder.
        if directory is not None:
            header = {"model_hash": facts.short_hash, "data_sha256": fingerprint, "port": port}
            sample_log = _SampleLog(directory / SAMPLES_FILE, header, resume=resume, force=force)
        records: dict[int, dict] = dict(sample_log.records) if sample_log else {}
        resumed = sum(1 for i in records if i < total)
        todo = [i for i in range(total) if i not in records]
        if resumed:
            log.info("resuming: %d of %d samples are done", resumed, total)
        # Loading takes seconds; the board waits in human mode meanwhile, not timing out in binary.
        link.leave_binary()
        log.info("loading the host reference and the TFLM runtime")
        reference = ReferenceInterpreter(model_bytes)
        tflm = TflmRunner(model_bytes)
        if progress:
            progress(resumed, total)
        for done, index in enumerate(todo, start=resumed + 1):
            sample = x_q[index]
            started = time.perf_counter()
            output, latency_us = link.infer(sample.tobytes())
            round_trip_ms = (time.perf_counter() - started) * 1000
            record = {
                "index": index,
                "label": None if dataset.y is None else int(dataset.y[index]),
                "device": np.frombuffer(output, dtype=spec_out.dtype).tolist(),
                "reference": reference.invoke(sample).reshape(-1).tolist(),
                "tflm": tflm.invoke(sample).reshape(-1).tolist(),
                "latency_us": latency_us,
                "round_trip_ms": round(round_trip_ms, 3),
            }
            records[index] = record
            if sample_log:
                sample_log.append(record)
            if progress:
                progress(done, total)
    finally:
        link.close()
        if sample_log:
            sample_log.close()

    float_top1 = _float_predictions(float_model, dataset.x, spec_in) if float_model is not None and dataset.y is not None else None
    report = _build_report(port, model, facts, info, [records[i] for i in range(total)], float_top1, info.labels, link.stats.to_dict(), min_exact, min_agreement)
    report.resumed_samples = resumed
    if directory is not None:
        from tinyml.validation.report import write_report

        report.report_dir = str(directory)
        write_report(report, [records[i] for i in range(total)], directory)
    report.raise_for_thresholds()
    return report


def _build_report(port, model, facts, info, records, float_top1, labels, link_stats, min_exact, min_agreement) -> ValidationReport:
    spec_out = facts.outputs[0]
    device = np.asarray([r["device"] for r in records], dtype=np.int64)
    reference = np.asarray([r["reference"] for r in records], dtype=np.int64)
    tflm = np.asarray([r["tflm"] for r in records], dtype=np.int64)
    accuracy: dict[str, float | None] = {"host_float": None, "host_int8": None, "tflm": None, "device": None}
    confusion = None
    n_outputs = device.shape[1]
    y = [r["label"] for r in records]
    if records and all(label is not None for label in y):
        y_arr = np.asarray(y)
        device_top1 = _top1(device, spec_out)
        accuracy["host_int8"] = float(np.mean(_top1(reference, spec_out) == y_arr))
        accuracy["tflm"] = float(np.mean(_top1(tflm, spec_out) == y_arr))
        accuracy["device"] = float(np.mean(device_top1 == y_arr))
        if float_top1 is not None:
            accuracy["host_float"] = float(np.mean(float_top1 == y_arr))
        classes = max(n_outputs, 2, int(y_arr.max()) + 1)
        matrix = np.zeros((classes, classes), dtype=np.int64)
        np.add.at(matrix, (y_arr, device_top1), 1)
        confusion = matrix.tolist()
    vs_reference = compare(device, reference, spec_out)
    failures = []
    if min_exact is not None and vs_reference.exact_match < min_exact:
        failures.append(f"exact match with the host reference is {vs_reference.exact_match:.2%}, below {min_exact:.2%}")
    if min_agreement is not None and vs_reference.top1_agreement < min_agreement:
        failures.append(f"top-1 agreement with the host reference is {vs_reference.top1_agreement:.2%}, below {min_agreement:.2%}")
    class_names = list(labels) if labels else [str(i) for i in range(n_outputs)]
    return ValidationReport(
        port=port,
        model_path=str(model) if not isinstance(model, (bytes, bytearray)) else "<bytes>",
        model_hash=facts.short_hash,
        device=info.to_dict(),
        samples=len(records),
        device_vs_reference=vs_reference,
        device_vs_tflm=compare(device, tflm, spec_out),
        tflm_vs_reference=compare(tflm, reference, spec_out),
        latency_us=spread([r["latency_us"] for r in records]),
        round_trip_ms=spread([r["round_trip_ms"] for r in records]),
        accuracy=accuracy,
        confusion=confusion,
        class_names=class_names,
        link=link_stats,
        thresholds={"min_exact": min_exact, "min_agreement": min_agreement},
        failures=failures,
    )
