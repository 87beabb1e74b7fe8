"""The validation report: what was compared, the numbers, and the verdict against the thresholds.

`build_report` turns a session's per-sample records into a `ValidationReport`: device against
the board's library built for the host (when it is the reference), device against the TFLite
reference, device against TFLM, TFLM against the TFLite reference (tinyml.validation.metrics);
with labels, the accuracy of host float (when a float model is given), host int8, TFLM and the
device side by side and the device's confusion matrix; device latency and host round trip.

The verdict compares the device with the host reference of tinyml.validation.host_reference:
the board's library when its source is found, else the TFLM runtime (`reference` names it).
Thresholds: `min_exact` is the least device-vs-verdict-reference exact-match rate per element
and `min_agreement` the least top-1 agreement with it, both fractions in [0, 1]. A
failed threshold raises `ThresholdFailed` (a ValidationFailed, exit code 6) that carries the
report, after the report is written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tinyml.core.errors import ValidationFailed
from tinyml.firmware.protocol import DeviceInfo
from tinyml.model.modelfile import ModelFacts, TensorFacts
from tinyml.validation.host_reference import BOARD_LIBRARY, MEASURED_TOLERANCES, HostReference
from tinyml.validation.metrics import Comparison, Spread, compare, spread, top1


@dataclass
class ValidationReport:
    port: str
    model_path: str
    model_hash: str
    device: dict
    samples: int
    reference: dict  # the verdict's host reference (HostReference.to_dict())
    device_vs_board_library: Comparison | None  # None when the board's library was not found
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
    tolerances: dict[str, str] = field(default_factory=lambda: dict(MEASURED_TOLERANCES))
    target: str | None = None  # what ran the firmware, when the caller knows (the emulated or virtual board)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def verdict(self) -> Comparison:
        """The device against the verdict's reference: the board's library, else the TFLM runtime."""
        return self.device_vs_board_library if self.device_vs_board_library is not None else self.device_vs_tflm

    def to_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        data["verdict"] = self.verdict.to_dict()
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
    host_reference: HostReference,
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
    board = np.asarray([r[BOARD_LIBRARY] for r in records], dtype=np.int64) if host_reference.is_board_library else None
    n_outputs = device.shape[1]
    accuracy, confusion = _accuracy([r["label"] for r in records], device, reference, tflm, board, spec_out, float_top1, n_outputs)
    vs_board = compare(device, board, spec_out) if board is not None else None
    vs_tflm = compare(device, tflm, spec_out)
    failures = _threshold_failures(vs_board if vs_board is not None else vs_tflm, host_reference.name, min_exact, min_agreement)
    class_names = list(labels) if labels else [str(i) for i in range(n_outputs)]
    return ValidationReport(
        port=port,
        model_path=str(model) if not isinstance(model, (bytes, bytearray)) else "<bytes>",
        model_hash=facts.short_hash,
        device=info.to_dict(),
        samples=len(records),
        reference=host_reference.to_dict(),
        device_vs_board_library=vs_board,
        device_vs_reference=compare(device, reference, spec_out),
        device_vs_tflm=vs_tflm,
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
    y: list[int | None],
    device: np.ndarray,
    reference: np.ndarray,
    tflm: np.ndarray,
    board: np.ndarray | None,
    spec_out: TensorFacts,
    float_top1: np.ndarray | None,
    n_outputs: int,
) -> tuple[dict[str, float | None], list[list[int]] | None]:
    """Top-1 accuracy of each run and the device's confusion matrix; None for all when a sample has no label."""
    accuracy: dict[str, float | None] = {"host_float": None, "host_int8": None, "tflm": None, BOARD_LIBRARY: None, "device": None}
    if not y or any(label is None for label in y):
        return accuracy, None
    y_arr = np.asarray(y)
    device_top1 = top1(device, spec_out)
    accuracy["host_int8"] = float(np.mean(top1(reference, spec_out) == y_arr))
    accuracy["tflm"] = float(np.mean(top1(tflm, spec_out) == y_arr))
    if board is not None:
        accuracy[BOARD_LIBRARY] = float(np.mean(top1(board, spec_out) == y_arr))
    accuracy["device"] = float(np.mean(device_top1 == y_arr))
    if float_top1 is not None:
        accuracy["host_float"] = float(np.mean(float_top1 == y_arr))
    classes = max(n_outputs, 2, int(y_arr.max()) + 1)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y_arr, device_top1), 1)
    return accuracy, matrix.tolist()


def _threshold_failures(verdict: Comparison, reference_name: str, min_exact: float | None, min_agreement: float | None) -> list[str]:
    failures = []
    if min_exact is not None and verdict.exact_match < min_exact:
        failures.append(f"exact match with the host reference ({reference_name}) is {verdict.exact_match:.2%}, below {min_exact:.2%}")
    if min_agreement is not None and verdict.top1_agreement < min_agreement:
        failures.append(f"top-1 agreement with the host reference ({reference_name}) is {verdict.top1_agreement:.2%}, below {min_agreement:.2%}")
    return failures
