"""The numbers of a validation: how closely one int8 output follows another, and the spread of a timing.

The metrics are those of ST's validate-on-target: exact-match rate per element, max |Δ| in LSB,
MAE, RMSE, relative L2 error and cosine similarity on dequantized outputs (float64), and top-1
agreement. Outputs are raw tensors, (samples, elements).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from tinyml.model.modelfile import TensorFacts
from tinyml.model.quantization import dequantize, predicted_classes


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


def dequantized(q: np.ndarray, spec: TensorFacts) -> np.ndarray:
    """Raw outputs as real numbers, in float64 for the metrics."""
    return dequantize(q, spec, np.float64)


def top1(outputs: np.ndarray, spec: TensorFacts) -> np.ndarray:
    """The class each sample's raw output picks."""
    return predicted_classes(dequantized(outputs, spec))


def compare(device: np.ndarray, host: np.ndarray, spec: TensorFacts) -> Comparison:
    """Metrics of `device` against `host`, both (samples, elements) raw output tensors."""
    d = device.reshape(len(device), -1).astype(np.int64)
    h = host.reshape(len(host), -1).astype(np.int64)
    diff = np.abs(d - h)
    df, hf = dequantized(d, spec), dequantized(h, spec)
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
        top1_agreement=float(np.mean(top1(d, spec) == top1(h, spec))),
        per_output_mean_abs_lsb=[float(v) for v in diff.mean(axis=0)],
    )


def spread(values: list[float]) -> Spread:
    if not values:
        return Spread(0.0, 0.0, 0.0, 0.0)
    a = np.asarray(values, dtype=np.float64)
    return Spread(float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.max()), float(a.mean()))
