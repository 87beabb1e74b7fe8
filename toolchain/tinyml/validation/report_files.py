"""The validation report on disk: `report.json` and a self-contained `report.html`.

The HTML embeds its plots as base64 PNGs (confusion matrix, device latency histogram,
per-output error against the host reference), so it can be mailed or attached to a CI run
as one file. Plots use matplotlib's object API with the Agg canvas, never pyplot, so no GUI
backend is touched.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml.core.files import atomic_write_text
from tinyml.validation.host_reference import BOARD_LIBRARY

if TYPE_CHECKING:
    from tinyml.validation.report import ValidationReport

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def write_report(report: ValidationReport, records: list[dict], directory: Path) -> tuple[Path, Path]:
    """Write report.json and report.html into `directory`; returns their paths."""
    directory = Path(directory)
    json_path, html_path = directory / REPORT_JSON, directory / REPORT_HTML
    atomic_write_text(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
    atomic_write_text(html_path, render_html(report, records))
    return json_path, html_path


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float = 6.0, height: float = 3.5):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def confusion_png(confusion: list[list[int]], names: list[str]) -> str:
    size = len(confusion)
    names = (names + [str(i) for i in range(len(names), size)])[:size]
    figure = _figure(1.2 + 0.5 * size, 1.0 + 0.45 * size)
    axes = figure.add_subplot()
    image = axes.imshow(confusion, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(size), names, rotation=45, ha="right")
    axes.set_yticks(range(size), names)
    axes.set_xlabel("device prediction")
    axes.set_ylabel("true label")
    peak = max((max(row) for row in confusion), default=0)
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            if count:
                axes.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black", fontsize=8)
    axes.set_title("confusion matrix (device)")
    return _png(figure)


def latency_png(latencies_us: list[float]) -> str:
    figure = _figure()
    axes = figure.add_subplot()
    axes.hist(latencies_us, bins=min(40, max(5, len(latencies_us) // 4)), color="#3b6ea5")
    axes.set_xlabel("device inference time (µs)")
    axes.set_ylabel("samples")
    axes.set_title("device latency")
    return _png(figure)


def per_output_png(reference_error: list[float], tflm_error: list[float], names: list[str]) -> str:
    count = len(reference_error)
    figure = _figure(max(6.0, 0.25 * count), 3.5)
    axes = figure.add_subplot()
    positions = list(range(count))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], reference_error, width, label="vs TFLite reference")
    axes.bar([p + width / 2 for p in positions], tflm_error, width, label="vs TFLM runtime")
    if count <= 40:
        labels = (names + [str(i) for i in range(len(names), count)])[:count]
        axes.set_xticks(positions, labels, rotation=45, ha="right")
    axes.set_xlabel("output element")
    axes.set_ylabel("mean |Δ| (LSB)")
    axes.set_title("device error per output element")
    axes.legend()
    return _png(figure)


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


MAX_MISMATCH_ROWS = 20


def _mismatch_table(records: list[dict], reference_key: str) -> str:
    """The first samples where the device differs from the verdict's reference, to start debugging."""
    rows = []
    count = 0
    for record in records:
        diff = [abs(d - r) for d, r in zip(record["device"], record[reference_key])]
        if not any(diff):
            continue
        count += 1
        if len(rows) < MAX_MISMATCH_ROWS:
            where = [i for i, value in enumerate(diff) if value]
            rows.append(
                f"<tr><td>{record['index']}</td><td>{'' if record.get('label') is None else record['label']}</td>"
                f"<td>{max(diff)}</td><td>{html.escape(', '.join(map(str, where[:12])))}{' …' if len(where) > 12 else ''}</td></tr>"
            )
    if not count:
        return "<h2>Samples that differ from the reference</h2><p>None: every output element of every sample is equal.</p>"
    shown = f" (the first {len(rows)})" if count > len(rows) else ""
    return (
        f"<h2>Samples that differ from the reference</h2><p>{count} of {len(records)} samples{shown}; the rows of samples.jsonl hold the tensors.</p>"
        "<table><tr><th>sample</th><th>label</th><th>max |Δ| LSB</th><th>elements that differ</th></tr>" + "".join(rows) + "</table>"
    )


def render_html(report: ValidationReport, records: list[dict]) -> str:
    reference = report.reference
    comparisons = [
        ("device_vs_board_library", "device vs the board's library (host build)", report.device_vs_board_library),
        ("device_vs_reference", "device vs TFLite reference", report.device_vs_reference),
        ("device_vs_tflm", "device vs TFLM runtime", report.device_vs_tflm),
        ("tflm_vs_reference", "TFLM vs TFLite reference", report.tflm_vs_reference),
    ]
    metric_rows = []
    for key, title, c in comparisons:
        if c is None:
            continue
        if c is report.verdict:
            title += " (verdict)"
        metric_rows.append(
            f"<tr><th>{html.escape(title)}</th><td>{c.exact_match:.4%}</td><td>{c.samples_exact:.2%}</td><td>{c.max_abs_lsb}</td>"
            f"<td>{c.mae:.3g}</td><td>{c.rmse:.3g}</td><td>{c.relative_l2:.3g}</td><td>{c.cosine:.6f}</td><td>{c.top1_agreement:.2%}</td>"
            f"<td>{html.escape(report.tolerances.get(key, ''))}</td></tr>"
        )
    device = report.device
    summary = _rows(
        [
            ("result", "PASSED" if report.passed else "FAILED: " + "; ".join(report.failures)),
            ("reference", f"{reference['name']}; {reference['note']}"),
            ("target", report.target or "the board on the port"),
            ("port", report.port),
            ("model", f"{report.model_path} ({report.model_hash})"),
            ("board", f"{device.get('board_id')} running firmware {device.get('firmware_version')}, arena {device.get('arena_used_bytes')} bytes"),
            ("samples", f"{report.samples} ({report.resumed_samples} from an earlier run)"),
            ("device latency", f"p50 {report.latency_us.p50:.0f} µs, p95 {report.latency_us.p95:.0f} µs, max {report.latency_us.max:.0f} µs"),
            ("host round trip", f"p50 {report.round_trip_ms.p50:.2f} ms, p95 {report.round_trip_ms.p95:.2f} ms, max {report.round_trip_ms.max:.2f} ms"),
            ("link", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.link.items())),
            ("thresholds", ", ".join(f"{k} {v}" for k, v in report.thresholds.items() if v is not None) or "none"),
        ]
    )
    accuracy = ""
    if report.accuracy.get("device") is not None:
        accuracy = "<h2>Accuracy</h2><table>" + _rows(
            [
                ("host float", _pct(report.accuracy["host_float"])),
                ("host int8 (TFLite reference)", _pct(report.accuracy["host_int8"])),
                ("TFLM runtime", _pct(report.accuracy["tflm"])),
                *([("the board's library (host build)", _pct(report.accuracy["board_library"]))] if report.device_vs_board_library is not None else []),
                ("device", _pct(report.accuracy["device"])),
            ]
        ) + "</table>"
    plots = []
    if report.confusion:
        plots.append(("Confusion matrix", confusion_png(report.confusion, report.class_names)))
    plots.append(("Latency", latency_png([r["latency_us"] for r in records])))
    plots.append(("Per-output error", per_output_png(report.device_vs_reference.per_output_mean_abs_lsb, report.device_vs_tflm.per_output_mean_abs_lsb, report.class_names)))
    mismatches = _mismatch_table(records, BOARD_LIBRARY if report.device_vs_board_library is not None else "tflm")
    images = "\n".join(f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">' for title, data in plots)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tinyml validation {html.escape(report.model_hash)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
.passed {{ color: #176b2c; }} .failed {{ color: #a11; }}
</style></head><body>
<h1 class="{'passed' if report.passed else 'failed'}">Validation {'passed' if report.passed else 'failed'}</h1>
<table>{summary}</table>
<h2>Output agreement</h2>
<table><tr><th></th><th>exact match (elements)</th><th>exact samples</th><th>max |Δ| LSB</th><th>MAE</th><th>RMSE</th><th>relative L2</th><th>cosine</th><th>top-1 agreement</th><th>measured tolerance</th></tr>
{''.join(metric_rows)}</table>
{accuracy}
{mismatches}
{images}
</body></html>
"""
