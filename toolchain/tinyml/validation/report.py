"""The validation report: what was compared, the numbers, and the verdict against the thresholds.

`build_report` turns a session's per-sample records into a `ValidationReport`: device against
the TFLite reference, device against TFLM, TFLM against the reference (tinyml.validation.metrics);
with labels, the accuracy of host float (when a float model is given), host int8, TFLM and the
device side by side and the device's confusion matrix; device latency and host round trip.

Thresholds: `min_exact` is the least device-vs-reference exact-match rate per element and
`min_agreement` the least device-vs-reference top-1 agreement, both fractions in [0, 1]. A
failed threshold raises `ThresholdFailed` (a ValidationFailed, exit code 6) that carries the
report, after the report is written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tinyml.core.errors import ValidationFailed
from tinyml.firmware.protocol import DeviceInfo
from tinyml.model.modelfile import ModelFacts, TensorFacts
from tinyml.validation.metrics import Comparison, Spread, compare, spread, top1


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
    target: str | None = None  # what ran the firmware, when the caller knows (the emulated or virtual board)

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
        on = f" on the {report.target}" if report.target else ""
        super().__init__(f"validation{on} failed: " + "; ".join(report.failures) + where, "look at the per-output error in the report, or relax --min-exact/--min-agreement if the difference is expected")


def build_report(
    port: str,
    model: str | Path | bytes,
    facts: ModelFacts,
    info: DeviceInfo,
    records: list[dict],
    float_top1: np.ndarray | None,
    link_stats: dict,
    min_exact: float | None,
    min_agreement: float | None,
) -> ValidationReport:
    """The report of a session's records: the comparisons, accuracies, timings and the verdict."""
    labels = info.labels
    spec_out = facts.outputs[0]
    device = np.asarray([r["device"] for r in records], dtype=np.int64)
    reference = np.asarray([r["reference"] for r in records], dtype=np.int64)
    tflm = np.asarray([r["tflm"] for r in records], dtype=np.int64)
    n_outputs = device.shape[1]
    accuracy, confusion = _accuracy([r["label"] for r in records], device, reference, tflm, spec_out, float_top1, n_outputs)
    vs_reference = compare(device, reference, spec_out)
    failures = _threshold_failures(vs_reference, min_exact, min_agreement)
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


def _accuracy(
    y: list[int | None], device: np.ndarray, reference: np.ndarray, tflm: np.ndarray, spec_out: TensorFacts, float_top1: np.ndarray | None, n_outputs: int
) -> tuple[dict[str, float | None], list[list[int]] | None]:
    """Top-1 accuracy of each run and the device's confusion matrix; None for all when a sample has no label."""
    accuracy: dict[str, float | None] = {"host_float": None, "host_int8": None, "tflm": None, "device": None}
    if not y or any(label is None for label in y):
        return accuracy, None
    y_arr = np.asarray(y)
    device_top1 = top1(device, spec_out)
    accuracy["host_int8"] = float(np.mean(top1(reference, spec_out) == y_arr))
    accuracy["tflm"] = float(np.mean(top1(tflm, spec_out) == y_arr))
    accuracy["device"] = float(np.mean(device_top1 == y_arr))
    if float_top1 is not None:
        accuracy["host_float"] = float(np.mean(float_top1 == y_arr))
    classes = max(n_outputs, 2, int(y_arr.max()) + 1)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y_arr, device_top1), 1)
    return accuracy, matrix.tolist()


def _threshold_failures(vs_reference: Comparison, min_exact: float | None, min_agreement: float | None) -> list[str]:
    failures = []
    if min_exact is not None and vs_reference.exact_match < min_exact:
        failures.append(f"exact match with the host reference is {vs_reference.exact_match:.2%}, below {min_exact:.2%}")
    if min_agreement is not None and vs_reference.top1_agreement < min_agreement:
        failures.append(f"top-1 agreement with the host reference is {vs_reference.top1_agreement:.2%}, below {min_agreement:.2%}")
    return failures
