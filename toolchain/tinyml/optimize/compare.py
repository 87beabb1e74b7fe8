"""An honest comparison of optimization variants, on the board's terms: flash, RAM, accuracy.

One row per variant: the float baseline, plain post-training int8 (PTQ), and each TFMOT
technique or combination followed by the same full-int8 quantize stage. The columns show
where a saving really is. A pruned or clustered model is NOT smaller as a plain `.tflite`
(a zero or a repeated int8 value is still one byte); it is smaller gzip-compressed (what a
download costs) and with TFLM's LUT weight compression (what flash costs, when the firmware's
TFLM has the DECODE kernel). Latency is the TFLM runtime on the host: compare rows with each
other, not with a board.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset
from tinyml.core.errors import InputError
from tinyml.core.files import atomic_write_bytes, atomic_write_text, check_can_write
from tinyml.optimize.tfmot import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, OptimizeSettings, check_cluster_count, check_dataset, check_qat_layers, optimize_model
from tinyml.optimize.tfkeras_rebuild import tf_keras_module, to_tf_keras
from tinyml.optimize.weight_stats import gzip_size, kernel_bytes, kernel_stats, lut_compress, overall_sparsity

log = logging.getLogger("tinyml.optimize")

# variant name -> (techniques applied before int8; human label template)
VARIANTS: dict[str, tuple[tuple[str, ...], str]] = {
    "float": ((), "float baseline"),
    "ptq": ((), "int8 PTQ"),
    "prune": (("prune",), "pruned {sparsity:.0%} + int8"),
    "cluster": (("cluster",), "clustered {clusters} + int8"),
    "qat": (("qat",), "QAT int8"),
    "prune+cluster": (("prune", "cluster"), "pruned {sparsity:.0%}, clustered {clusters} + int8"),
    "prune+qat": (("prune", "qat"), "pruned {sparsity:.0%} + PQAT int8"),
    "cluster+qat": (("cluster", "qat"), "clustered {clusters} + CQAT int8"),
    "prune+cluster+qat": (("prune", "cluster", "qat"), "pruned {sparsity:.0%}, clustered {clusters} + PCQAT int8"),
}
DEFAULT_VARIANTS = tuple(VARIANTS)
DEFAULT_SPARSITY = 0.5
DEFAULT_CLUSTERS = 16
# Inferences timed per variant on the TFLM runtime (the median is reported).
LATENCY_RUNS = 50
# Above the measured arena for the host runtime's runners, as tinyml.model.tflm.TflmRunner itself adds.
ARENA_SLACK_BYTES = 1024

REPORT_FILES = ("compare.json", "compare.md", "compare.png")

HONESTY_NOTE = (
    "A pruned or clustered model is not smaller as a plain .tflite: a zero or a repeated int8 weight "
    "still takes one byte. The saving shows gzip-compressed (what a download costs) and with TFLM's LUT "
    "weight compression (what flash costs): each kernel becomes per-channel value tables plus bit-packed "
    "indices, decoded at run time by TFLM's DECODE operator. The LUT column is measured on models the TFLM "
    "Python runtime runs with outputs identical to the uncompressed model; the firmware needs TFLM built "
    "with compression (USE_TFLM_COMPRESSION) for it, and the LUT model also needs more arena (see lut_arena_bytes "
    "in compare.json). Latency is the TFLM runtime on this computer: compare rows, not boards."
)


@dataclass(frozen=True)
class VariantRow:
    name: str
    label: str
    float_accuracy: float | None
    int8_accuracy: float | None
    tflite_bytes: int
    gzip_bytes: int | None
    kernel_gzip_bytes: int | None  # the int8 kernels alone, gzipped: where pruning and clustering act
    lut_bytes: int | None  # TFLM LUT-compressed model, None when compression does not save bytes
    lut_note: str
    lut_arena_bytes: int | None
    sparsity: float | None  # zeros over all int8 kernel weights
    unique_per_layer: dict[str, int] = field(default_factory=dict)  # kernel -> most distinct int8 values in one output channel
    arena_bytes: int | None = None
    latency_us: float | None = None
    model_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cells(self, percent: Callable[[float | None], str], number: Callable[[int | None], str]) -> list[str]:
        """The row as text, in the column order of the report's tables, with the given number formats."""
        return [
            self.label,
            percent(self.float_accuracy),
            percent(self.int8_accuracy),
            number(self.tflite_bytes),
            number(self.gzip_bytes),
            number(self.kernel_gzip_bytes),
            number(self.lut_bytes),
            percent(self.sparsity),
            " / ".join(str(v) for v in self.unique_per_layer.values()) or "–",
            number(self.arena_bytes),
            "–" if self.latency_us is None else f"{self.latency_us:.0f}",
        ]


@dataclass
class CompareReport:
    rows: list[VariantRow]
    settings: dict[str, Any]
    eval_samples: int
    note: str = HONESTY_NOTE
    files: list[str] = field(default_factory=list)
    tflite: dict[str, bytes] = field(default_factory=dict, repr=False)  # variant -> int8 model bytes

    def row(self, name: str) -> VariantRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "eval_samples": self.eval_samples, "note": self.note, "rows": [r.to_dict() for r in self.rows]}

    def to_markdown(self) -> str:
        header = ["variant", "float acc", "int8 acc", ".tflite B", "gzip B", "kernels gzip B", "TFLM LUT B", "sparsity", "unique/channel per kernel", "arena B", "TFLM µs (host)"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in self.rows:
            lines.append("| " + " | ".join(r.cells(_percent, _number)) + " |")
        return "\n".join(lines) + f"\n\nAccuracy on {self.eval_samples} evaluation samples.\n\n{self.note}\n"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _number(value: int | None) -> str:
    return "–" if value is None else str(value)


def check_variants(variants: Sequence[str]) -> tuple[str, ...]:
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant {', '.join(unknown)}", f"choose from {', '.join(VARIANTS)}")
    if not variants:
        raise InputError("no variant was asked for", f"choose from {', '.join(VARIANTS)}")
    return tuple(dict.fromkeys(variants))


def _settings_for(name: str, sparsity: float, clusters: int, epochs: int, batch_size: int) -> OptimizeSettings:
    techniques = VARIANTS[name][0]
    return OptimizeSettings(
        sparsity=sparsity if "prune" in techniques else None,
        clusters=clusters if "cluster" in techniques else None,
        qat="qat" in techniques,
        epochs=epochs,
        batch_size=batch_size,
    )


def measure_latency_us(runner, samples: np.ndarray, runs: int = LATENCY_RUNS) -> float:
    """Median microseconds of one inference on a `tinyml.model.tflm.TflmRunner`, over `runs` inputs."""
    from tinyml.model.quantization import quantize_input

    spec = runner.facts.inputs[0]
    times = []
    for i in range(runs):
        x = quantize_input(samples[i % len(samples)], spec)
        start = time.perf_counter()
        runner.invoke(x)
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def lut_size_checked(plain, samples: np.ndarray, stats) -> tuple[int | None, str, int | None]:
    """LUT size, a note, and the LUT model's arena; only when TFLM runs it exactly like `plain`."""
    from tinyml.core.errors import ModelError
    from tinyml.model.quantization import quantize_input
    from tinyml.model.tflm import TflmRunner, measure_arena

    lut = lut_compress(plain.model_bytes, stats)
    if lut.model_bytes is None:
        return None, lut.note, None
    try:
        # Measured by the runtime itself: the ops table of `inspect` does not list TFLM's DECODE.
        lut_arena = measure_arena(lut.model_bytes)
        compressed = TflmRunner(lut.model_bytes, arena_size=lut_arena + ARENA_SLACK_BYTES)
    except ModelError as exc:
        return None, f"the TFLM runtime does not run the LUT model: {exc.problem}", None
    spec = plain.facts.inputs[0]
    for sample in samples[:16]:
        x = quantize_input(sample, spec)
        if not np.array_equal(plain.invoke(x), compressed.invoke(x)):
            return None, "the LUT model's outputs differ from the uncompressed model's in the TFLM runtime", None
    return lut.size_bytes, lut.note, lut_arena


def compare_variants(
    model: Any,
    train: Dataset,
    eval_data: Dataset,
    *,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    sparsity: float = DEFAULT_SPARSITY,
    clusters: int = DEFAULT_CLUSTERS,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    out_dir: str | Path | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    per_channel_dense: bool = True,
) -> CompareReport:
    """Build each variant of a trained Keras model and measure it; write the report to `out_dir`.

    Every int8 variant goes through `tinyml.model.quantize.quantize_model` (with `per_channel_dense`);
    its `.tflite` is kept in `report.tflite` and written to `out_dir/variants/` so it can be
    rendered and validated.
    """
    from tinyml.model.quantize import quantize_model

    variants = check_variants(variants)
    _check_inputs(model, train, eval_data, variants, sparsity, clusters, epochs, batch_size)
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        for name in (*REPORT_FILES, *(f"variants/{v}.tflite" for v in variants if v != "float")):
            check_can_write(out_path / name, force)

    calibration = train.x.astype(np.float32)  # the quantize stage takes evenly spaced samples from it
    rows: list[VariantRow] = []
    tflite: dict[str, bytes] = {}
    ptq = None
    for done, name in enumerate(variants):
        log.info("variant %s (%d of %d)", name, done + 1, len(variants))
        label = VARIANTS[name][1].format(sparsity=sparsity, clusters=clusters)
        if name in ("float", "ptq"):
            if ptq is None:
                ptq = quantize_model(model, calibration, eval_data=eval_data, per_channel_dense=per_channel_dense)
            quantized = ptq
        else:
            variant_settings = _settings_for(name, sparsity, clusters, epochs, batch_size)
            quantized = optimize_model(model, train, variant_settings, val=eval_data, per_channel_dense=per_channel_dense).quantized
        if name == "float":
            rows.append(VariantRow(name, label, ptq.float_accuracy, None, ptq.float_size_bytes, None, None, None, "the firmware runs int8 models only", None, None))
        else:
            tflite[name] = quantized.tflite_bytes
            rows.append(_measure_int8(name, label, quantized, eval_data, out_path))
        if progress is not None:
            progress(done + 1, len(variants))

    settings = {
        "variants": list(variants),
        "sparsity": sparsity,
        "clusters": clusters,
        "epochs": epochs,
        "batch_size": batch_size,
        "dense_weights": "per-channel" if per_channel_dense else "per-tensor",
    }
    report = CompareReport(rows, settings, len(eval_data), tflite=tflite)
    if out_path is not None:
        write_report(report, out_path)
    return report


def _check_inputs(model: Any, train: Dataset, eval_data: Dataset, variants: Sequence[str], sparsity: float, clusters: int, epochs: int, batch_size: int) -> None:
    """Every setting, data set and layer problem, said before the first variant trains, not after half of them did."""
    tf_keras_module()  # missing TFMOT is said before any work
    for name in variants:
        if name not in ("float", "ptq"):
            _settings_for(name, sparsity, clusters, epochs, batch_size).check()
    check_dataset(model, train, "training")
    check_dataset(model, eval_data, "evaluation")
    if any("cluster" in VARIANTS[v][0] for v in variants):
        check_cluster_count(model, clusters)
    if any("qat" in VARIANTS[v][0] for v in variants):
        check_qat_layers(to_tf_keras(model))


def _measure_int8(name: str, label: str, quantized: Any, eval_data: Dataset, out_path: Path | None) -> VariantRow:
    """One int8 variant's row: sizes plain, gzip and LUT, sparsity, arena and TFLM latency; its .tflite written to out_path."""
    from tinyml.model.inspect import inspect_model
    from tinyml.model.tflm import TflmRunner

    model_bytes = quantized.tflite_bytes
    stats = kernel_stats(model_bytes)
    arena = inspect_model(model_bytes).arena_bytes
    runner = TflmRunner(model_bytes, arena_size=None if arena is None else arena + ARENA_SLACK_BYTES)
    lut_bytes, lut_note, lut_arena = lut_size_checked(runner, eval_data.x, stats)
    model_file = None
    if out_path is not None:
        model_file = f"variants/{name}.tflite"
        atomic_write_bytes(out_path / model_file, model_bytes)
    return VariantRow(
        name=name,
        label=label,
        float_accuracy=quantized.float_accuracy,
        int8_accuracy=quantized.int8_accuracy,
        tflite_bytes=len(model_bytes),
        gzip_bytes=gzip_size(model_bytes),
        kernel_gzip_bytes=gzip_size(kernel_bytes(model_bytes, stats)),
        lut_bytes=lut_bytes,
        lut_note=lut_note,
        lut_arena_bytes=lut_arena,
        sparsity=overall_sparsity(stats),
        unique_per_layer={s.name: s.max_unique_per_channel for s in stats},
        arena_bytes=arena,
        latency_us=measure_latency_us(runner, eval_data.x),
        model_file=model_file,
    )


def write_report(report: CompareReport, out_dir: Path) -> None:
    """compare.json, compare.md and the bar chart compare.png, each written atomically."""
    atomic_write_text(out_dir / "compare.json", json.dumps(report.to_dict(), indent=2) + "\n")
    atomic_write_text(out_dir / "compare.md", report.to_markdown())
    atomic_write_bytes(out_dir / "compare.png", _bar_chart(report))
    report.files = [str(out_dir / name) for name in REPORT_FILES]


def _bar_chart(report: CompareReport) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = [r for r in report.rows if r.name != "float"]
    labels = [r.label for r in rows]
    positions = np.arange(len(rows))
    figure = Figure(figsize=(max(7.0, 1.3 * len(rows)), 7.5), layout="constrained")
    sizes, accuracy = figure.subplots(2, 1, sharex=True)
    width = 0.27
    series = [
        (".tflite (flash, plain)", [r.tflite_bytes for r in rows]),
        ("gzip (download)", [r.gzip_bytes or 0 for r in rows]),
        ("TFLM LUT (flash, with DECODE)", [r.lut_bytes or 0 for r in rows]),
    ]
    for offset, (name, values) in zip((-width, 0.0, width), series):
        sizes.bar(positions + offset, [v / 1024 for v in values], width, label=name)
    sizes.set_ylabel("KiB")
    sizes.set_title("Model bytes per variant (a missing LUT bar: compression would not save bytes)")
    sizes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    float_acc = [100 * (r.float_accuracy or 0) for r in rows]
    int8_acc = [100 * (r.int8_accuracy or 0) for r in rows]
    accuracy.bar(positions - width / 2, float_acc, width, label="float (before int8)")
    accuracy.bar(positions + width / 2, int8_acc, width, label="int8")
    low = min([v for v in float_acc + int8_acc if v > 0], default=0.0)
    accuracy.set_ylim(max(0.0, low - 10.0), 100.0)
    accuracy.set_ylabel(f"accuracy % ({report.eval_samples} samples)")
    float_row = next((r for r in report.rows if r.name == "float"), None)
    if float_row is not None and float_row.float_accuracy is not None:
        accuracy.axhline(100 * float_row.float_accuracy, color="grey", linestyle="--", linewidth=1, label="float baseline")
    accuracy.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    accuracy.set_xticks(positions, labels, rotation=20, ha="right", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
