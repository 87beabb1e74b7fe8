"""The validation session over the link: the board checked, every sample sent and run on the host too.

`run_session` opens a DeviceLink, checks over INFO that the board runs this model (by hash)
and tensors of the sizes the model has, then sends each sample and runs the same int8 input on
the host runs: the board's library built for the host when the verdict's reference is that
library (tinyml.validation.host_reference), the TFLite reference (tinyml.model.reference, no
XNNPACK) and the TFLM runtime (tinyml.model.tflm). A board reset in mid-run is handled by the
link (reconnect, same model checked, sample redone).

Each sample's result is appended to `samples.jsonl` in the report folder as it arrives
(`SampleLog`), so a crash or a pulled cable loses nothing, and `resume=True` continues where
it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset
from tinyml.core.errors import DeviceError, InputError
from tinyml.core.files import write_error
from tinyml.firmware.protocol import DeviceInfo
from tinyml.model.modelfile import ModelFacts
from tinyml.validation.host_reference import BOARD_LIBRARY, HostReference

log = logging.getLogger("tinyml.validate")

SAMPLES_FILE = "samples.jsonl"


@dataclass(frozen=True)
class SessionResult:
    """What the board and the host computed, one record per sample in sample order."""

    info: DeviceInfo  # the board's INFO and labels
    records: list[dict]
    resumed: int  # samples done by an earlier run
    link_stats: dict


class SampleLog:
    """samples.jsonl: a header line, then one line per sample, appended and flushed as they come."""

    def __init__(self, path: Path, header: dict, *, resume: bool, force: bool, output_elements: int) -> None:
        self.path = path
        self.output_elements = output_elements
        self.records: dict[int, dict] = {}
        if path.exists():
            if resume:
                self._load(header)
            elif not force:
                raise InputError(f"{path} holds results of an earlier run", "pass --resume to continue it, or --force to start over")
        try:
            if not self.records:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"kind": "header", **header}) + "\n", encoding="utf-8")
            self._file = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise write_error(exc, path) from exc

    def _load(self, header: dict) -> None:
        try:
            lines = self.path.read_bytes().decode("utf-8").split("\n")
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.path} is not UTF-8 text, so not a sample log this tool wrote", "pass --force to start over") from exc
        while lines and not lines[-1].strip():
            lines.pop()
        first = _json_object(lines[0]) if lines else None
        if first is None or first.get("kind") != "header":
            raise InputError(f"{self.path} line 1 is not the header of a sample log", "pass --force to start over")
        for key in ("model_hash", "data_sha256", "reference"):
            if first.get(key) != header[key]:
                raise InputError(f"{self.path} is from a run with another {key.replace('_', ' ')} ({first.get(key)}, now {header[key]})", "use another --report folder, or --force to start over")
        for number, line in enumerate(lines[1:], start=2):
            record = _json_object(line)
            if record is None and number == len(lines):
                continue  # the line a crash cut short: that sample is simply done again
            problem = "it is not a JSON object" if record is None else self._record_problem(record)
            if problem:
                raise InputError(f"{self.path} line {number} is not a sample record: {problem}", f"delete line {number} (that sample is run again), or pass --force to start over")
            self.records[record["index"]] = record
        # Rewrite without a torn last line, so appending continues a clean file.
        kept = [lines[0]] + [json.dumps(self.records[i]) for i in sorted(self.records)]
        self.path.write_text("\n".join(kept) + "\n", encoding="utf-8")

    def _record_problem(self, record: dict) -> str | None:
        """What is wrong with a record read back from the log, None if it is one this tool writes."""
        index = record.get("index")
        if not _is_int(index) or index < 0:
            return f"'index' is {index!r}, not a sample number"
        for key in ("device", "reference", "tflm"):
            values = record.get(key)
            if not isinstance(values, list) or len(values) != self.output_elements or not all(_is_int(v) for v in values):
                return f"'{key}' is not a list of {self.output_elements} integers"
        for key in ("latency_us", "round_trip_ms"):
            if not isinstance(record.get(key), (int, float)) or isinstance(record.get(key), bool):
                return f"'{key}' is not a number"
        return None

    def append(self, record: dict) -> None:
        self.records[record["index"]] = record
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as exc:  # the disk filled up: what was flushed before stays, --resume continues
            raise write_error(exc, self.path) from exc

    def close(self) -> None:
        self._file.close()


def _json_object(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def data_fingerprint(x: np.ndarray, y: np.ndarray | None) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    if y is not None:
        digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()[:16]


def run_session(
    port: str,
    model_name: str,
    model_bytes: bytes,
    facts: ModelFacts,
    dataset: Dataset,
    x_q: np.ndarray,
    *,
    data_sha256: str,
    host_reference: HostReference,
    report_dir: Path | None,
    resume: bool,
    force: bool,
    progress: Callable[[int, int], None] | None,
    link_options: dict[str, Any] | None,
) -> SessionResult:
    """Every sample of `dataset` (its int8 rows `x_q`) on the board on `port` and on the host runs."""
    from tinyml.device.link import DeviceLink
    from tinyml.model.reference import ReferenceInterpreter
    from tinyml.model.tflm import TflmRunner

    spec_out = facts.outputs[0]
    total = len(dataset)
    link = DeviceLink(port, **(link_options or {}))
    sample_log = None
    try:
        # The board first: a wrong port or model fails in a second, before TensorFlow loads.
        link.open()
        info = link.info()
        _check_board(info, facts, port, model_name)
        # Only now, with the right board, does the run touch the report folder.
        if report_dir is not None:
            header = {"model_hash": facts.short_hash, "data_sha256": data_sha256, "port": port, "reference": host_reference.name}
            sample_log = SampleLog(report_dir / SAMPLES_FILE, header, resume=resume, force=force, output_elements=spec_out.element_count)
        records: dict[int, dict] = dict(sample_log.records) if sample_log else {}
        resumed = sum(1 for i in records if i < total)
        todo = [i for i in range(total) if i not in records]
        if resumed:
            log.info("resuming: %d of %d samples are done", resumed, total)
        # Loading takes seconds; the board waits in human mode meanwhile, not timing out in binary.
        link.leave_binary()
        log.info("loading the host runs: %s, the TFLite reference and the TFLM runtime", host_reference.name)
        host_runs = {"reference": ReferenceInterpreter(model_bytes), "tflm": TflmRunner(model_bytes)}
        if host_reference.is_board_library:
            host_runs[BOARD_LIBRARY] = host_reference.runner(model_bytes)
        if progress:
            progress(resumed, total)
        for done, index in enumerate(todo, start=resumed + 1):
            record = _run_sample(link, host_runs, x_q[index], spec_out.dtype)
            record = {"index": index, "label": None if dataset.y is None else int(dataset.y[index]), **record}
            records[index] = record
            if sample_log:
                sample_log.append(record)
            if progress:
                progress(done, total)
    finally:
        link.close()
        if sample_log:
            sample_log.close()
    # The link's counters after close: switching the board back to human mode is part of the run.
    # Labels come from the data set (its fingerprint matched the log's), not from the log's lines.
    labels = [None if dataset.y is None else int(dataset.y[i]) for i in range(total)]
    return SessionResult(info, [{**records[i], "label": labels[i]} for i in range(total)], resumed, link.stats.to_dict())


def _run_sample(link: Any, host_runs: dict[str, Any], sample: np.ndarray, output_dtype: str) -> dict:
    """One sample on the board (with its latency and the host's round trip) and on every host run."""
    started = time.perf_counter()
    output, latency_us = link.infer(sample.tobytes())
    round_trip_ms = (time.perf_counter() - started) * 1000
    return {
        "device": np.frombuffer(output, dtype=output_dtype).tolist(),
        **{name: run.invoke(sample).reshape(-1).tolist() for name, run in host_runs.items()},
        "latency_us": latency_us,
        "round_trip_ms": round(round_trip_ms, 3),
    }


def _check_board(info: DeviceInfo, facts: ModelFacts, port: str, model_name: str) -> None:
    """DeviceError unless the board runs this model, with tensors of this model's sizes."""
    spec_in, spec_out = facts.inputs[0], facts.outputs[0]
    if info.model_hash != facts.short_hash:
        raise DeviceError(
            f"the board on {port} runs model {info.model_hash}, but {model_name} is {facts.short_hash}",
            "flash this model (`tinyml render` then `tinyml flash`), or validate the model the board runs",
        )
    if info.input.byte_size != spec_in.byte_size or info.output.byte_size != spec_out.byte_size:
        raise DeviceError(f"the board reports tensors of {info.input.byte_size}/{info.output.byte_size} bytes, the model has {spec_in.byte_size}/{spec_out.byte_size}", "render and flash the firmware again")
