"""What the results store says, for people and for CI: a dashboard, a JUnit file, a board's history.

- `write_dashboard`: one self-contained HTML page (inline SVG, no scripts, nothing fetched):
  a row per board for the latest run, bars of accuracy and latency across the boards, and lines
  of each board's accuracy and latency across the runs.
- `write_junit`: JUnit XML, one test case per board of a run: a failure for `fail`, an error
  for `error`, skipped for `busy`; CI servers read it.
- `board_history`: one board's results over time; a result is flagged when it changed (verdict,
  exact match or accuracy) while the firmware and library hashes, the model, the data and the
  settings stayed the same:
  the board, its cable or its library behaves differently, not the code.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tinyml import __version__
from tinyml.core.errors import InputError
from tinyml.core.files import atomic_write_text
from tinyml.rig.store import BoardResult, ResultsStore, RunRecord

VERDICT_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#9a6700", "busy": "#6e7781"}


def latest_run(store: ResultsStore, run_id: int | None = None) -> tuple[RunRecord, dict[str, BoardResult]]:
    runs = store.runs()
    if not runs:
        raise InputError(f"the results store {store.path} holds no run yet", "run `tinyml rig run RIGFILE --model M.tflite --data D.npz` first")
    run = store.run(run_id) if run_id is not None else runs[-1]
    return run, store.results(run.id)


# ---- JUnit ---------------------------------------------------------------------------------------
def junit_xml(run: RunRecord, results: dict[str, BoardResult]) -> str:
    counts = {v: sum(1 for r in results.values() if r.verdict == v) for v in ("fail", "error", "busy")}
    suite = ET.Element(
        "testsuite",
        name="tinyml rig",
        tests=str(len(results)),
        failures=str(counts["fail"]),
        errors=str(counts["error"]),
        skipped=str(counts["busy"]),
        time=f"{sum(r.seconds or 0 for r in results.values()):.2f}",
        timestamp=run.started,
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("run", run.id), ("model_hash", run.model_hash), ("data_hash", run.data_hash), ("tool_version", run.tool_version)):
        ET.SubElement(properties, "property", name=name, value=str(value))
    for result in results.values():
        case = ET.SubElement(suite, "testcase", classname=f"rig.{result.profile}", name=result.board, time=f"{result.seconds or 0:.2f}")
        if result.verdict == "fail":
            ET.SubElement(case, "failure", message=result.reason, type="ValidationFailed").text = _numbers(result)
        elif result.verdict == "error":
            ET.SubElement(case, "error", message=result.reason, type="BoardError")
        elif result.verdict == "busy":
            ET.SubElement(case, "skipped", message=result.reason)
        ET.SubElement(case, "system-out").text = _numbers(result)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(store_path: str | Path, out: str | Path, run_id: int | None = None) -> Path:
    with ResultsStore(store_path, create=False) as store:
        run, results = latest_run(store, run_id)
    out = Path(out)
    atomic_write_text(out, junit_xml(run, results))
    return out


def _numbers(result: BoardResult) -> str:
    parts = [f"verdict {result.verdict}", f"firmware {result.firmware_hash}", f"model {result.model_hash}", f"library {result.library_hash}"]
    if result.samples is not None:
        parts += [f"samples {result.samples}", f"exact {_pct(result.exact)}", f"top-1 agreement {_pct(result.agreement)}", f"accuracy {_pct(result.accuracy)}", f"latency p50 {_num(result.latency_p50_us)} us"]
    return ", ".join(parts)


# ---- history -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryEntry:
    result: BoardResult
    run: RunRecord
    changed: str | None  # what changed since the last result with the same firmware, model and data


def board_history(store_path: str | Path, board: str) -> list[HistoryEntry]:
    with ResultsStore(store_path, create=False) as store:
        results = store.board_results(board)
        if not results:
            known = ", ".join(store.boards()) or "none yet"
            raise InputError(f"the results store {store.path} has no results for board '{board}'", f"choose one of: {known}")
        runs = {run.id: run for run in store.runs()}
    entries: list[HistoryEntry] = []
    last_same: dict[tuple, BoardResult] = {}
    for result in results:
        run = runs[result.run_id]
        # The run key covers the model, the data and the settings (a --limit changes the numbers too).
        key = (result.firmware_hash, result.library_hash, run.run_key)
        before = last_same.get(key)
        changed = _what_changed(before, result) if before is not None and result.firmware_hash else None
        entries.append(HistoryEntry(result, run, changed))
        if result.verdict in ("pass", "fail"):
            last_same[key] = result
    return entries


def _what_changed(before: BoardResult, now: BoardResult) -> str | None:
    if now.verdict not in ("pass", "fail"):
        return None  # an unplugged board is not a changed result
    changes = []
    if before.verdict != now.verdict:
        changes.append(f"verdict {before.verdict} -> {now.verdict}")
    for name in ("exact", "accuracy"):
        old, new = getattr(before, name), getattr(now, name)
        if old is not None and new is not None and abs(old - new) > 1e-9:
            changes.append(f"{name} {_pct(old)} -> {_pct(new)}")
    return "; ".join(changes) or None


# ---- the dashboard -------------------------------------------------------------------------------
def write_dashboard(store_path: str | Path, out: str | Path, run_id: int | None = None) -> Path:
    with ResultsStore(store_path, create=False) as store:
        run, results = latest_run(store, run_id)
        runs = store.runs()
        series = {board: store.board_results(board) for board in results}
    out = Path(out)
    atomic_write_text(out, dashboard_html(run, results, runs, series))
    return out


def dashboard_html(run: RunRecord, results: dict[str, BoardResult], runs: list[RunRecord], series: dict[str, list[BoardResult]]) -> str:
    counts = ", ".join(f"{sum(1 for r in results.values() if r.verdict == v)} {v}" for v in VERDICT_COLOURS)
    rows = "".join(_row(r) for r in results.values())
    boards = list(results)
    accuracy_bars = _bars([(b, results[b].accuracy) for b in boards], "device accuracy", percent=True)
    exact_bars = _bars([(b, results[b].exact) for b in boards], "exact match with the host reference", percent=True)
    latency_bars = _bars([(b, results[b].latency_p50_us) for b in boards], "latency p50 (µs)", percent=False)
    run_ids = [r.id for r in runs]
    accuracy_lines = _lines(series, run_ids, "accuracy", "device accuracy across runs", percent=True)
    latency_lines = _lines(series, run_ids, "latency_p50_us", "latency p50 (µs) across runs", percent=False)
    esc = html.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tinyml rig: run {run.id}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #1f2328; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #d0d7de; padding: 4px 8px; text-align: right; font-variant-numeric: tabular-nums; }}
th:first-child, td:first-child, td.reason {{ text-align: left; }}
td.verdict {{ color: white; font-weight: bold; text-align: center; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 2em; }}
svg text {{ font-size: 11px; fill: #1f2328; }}
</style></head><body>
<h1>Rig run {run.id}</h1>
<p>{esc(run.started)} · tinyml {esc(run.tool_version)} · model {esc(run.model_hash)} ({esc(run.model_path)}) · data {esc(run.data_hash)} · {esc(counts)}</p>
<table><thead><tr><th>board</th><th>profile</th><th>verdict</th><th>samples</th><th>exact</th><th>top-1 agreement</th><th>accuracy</th><th>latency p50 µs</th><th>latency p95 µs</th><th>seconds</th><th>USB serial</th><th>firmware</th><th>library</th><th>reason</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Across the boards</h2><div class="plots">{accuracy_bars}{exact_bars}{latency_bars}</div>
<h2>Across the runs</h2><div class="plots">{accuracy_lines}{latency_lines}</div>
<p>Made by tinyml {esc(__version__)} from {len(runs)} run(s) in the results store.</p>
</body></html>
"""


def _row(r: BoardResult) -> str:
    esc = html.escape
    colour = VERDICT_COLOURS.get(r.verdict, "#6e7781")
    cells = [
        f"<td>{esc(r.board)}</td>",
        f"<td>{esc(r.profile)}</td>",
        f'<td class="verdict" style="background:{colour}">{esc(r.verdict)}</td>',
        f"<td>{'' if r.samples is None else r.samples}</td>",
        f"<td>{_pct(r.exact)}</td>",
        f"<td>{_pct(r.agreement)}</td>",
        f"<td>{_pct(r.accuracy)}</td>",
        f"<td>{_num(r.latency_p50_us)}</td>",
        f"<td>{_num(r.latency_p95_us)}</td>",
        f"<td>{_num(r.seconds, 1)}</td>",
        f"<td>{esc(r.usb_serial or '')}</td>",
        f"<td><code>{esc(r.firmware_hash or '')}</code></td>",
        f"<td><code>{esc(r.library_hash or '')}</code></td>",
        f'<td class="reason">{esc(r.reason)}</td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _num(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:.{digits}f}"


_W, _H, _PAD = 420, 220, 40


def _bars(values: list[tuple[str, float | None]], title: str, *, percent: bool) -> str:
    present = [(name, v) for name, v in values if v is not None]
    top = 1.0 if percent else max([v for _, v in present] + [1e-9]) * 1.1
    width = max(_W, _PAD * 2 + 18 * len(values))
    step = (width - 2 * _PAD) / max(len(values), 1)
    parts = [_frame(width, title, top, percent)]
    for i, (name, value) in enumerate(values):
        x = _PAD + i * step
        if value is not None:
            h = (value / top) * (_H - 2 * _PAD)
            parts.append(f'<rect x="{x + 2:.1f}" y="{_H - _PAD - h:.1f}" width="{max(step - 4, 2):.1f}" height="{h:.1f}" fill="#0969da"><title>{html.escape(name)}: {_pct(value) if percent else _num(value)}</title></rect>')
        parts.append(f'<text x="{x + step / 2:.1f}" y="{_H - _PAD + 12}" text-anchor="end" transform="rotate(-45 {x + step / 2:.1f} {_H - _PAD + 12})">{html.escape(name)}</text>')
    return _svg(width, parts)


def _lines(series: dict[str, list[BoardResult]], run_ids: list[int], attribute: str, title: str, *, percent: bool) -> str:
    points = {board: [(r.run_id, getattr(r, attribute)) for r in results if getattr(r, attribute) is not None] for board, results in series.items()}
    values = [v for pts in points.values() for _, v in pts]
    top = 1.0 if percent else max(values + [1e-9]) * 1.1
    step = (_W - 2 * _PAD) / max(len(run_ids) - 1, 1)
    x_of = {run_id: _PAD + i * step for i, run_id in enumerate(run_ids)}
    parts = [_frame(_W, title, top, percent)]
    for run_id, x in x_of.items():
        parts.append(f'<text x="{x:.1f}" y="{_H - _PAD + 14}" text-anchor="middle">run {run_id}</text>')
    for index, (board, pts) in enumerate(sorted(points.items())):
        colour = f"hsl({(index * 137) % 360}, 60%, 45%)"
        coords = [(x_of[run_id], _H - _PAD - (v / top) * (_H - 2 * _PAD)) for run_id, v in pts if run_id in x_of]
        if len(coords) > 1:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in coords)}"/>')
        for (x, y), (_, v) in zip(coords, pts):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{html.escape(board)}: {_pct(v) if percent else _num(v)}</title></circle>')
    return _svg(_W, parts)


def _frame(width: int, title: str, top: float, percent: bool) -> str:
    label = _pct(top) if percent else _num(top)
    return (
        f'<text x="{_PAD}" y="16" font-weight="bold">{html.escape(title)}</text>'
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{width - _PAD / 2}" y2="{_H - _PAD}" stroke="#8c959f"/>'
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#8c959f"/>'
        f'<text x="{_PAD - 4}" y="{_PAD + 4}" text-anchor="end">{label}</text><text x="{_PAD - 4}" y="{_H - _PAD}" text-anchor="end">0</text>'
    )


def _svg(width: int, parts: list[str]) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_H + 30}" role="img">{"".join(parts)}</svg>'
