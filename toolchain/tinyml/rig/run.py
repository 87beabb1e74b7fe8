"""`rig run`: every board of a rig validated at once, each with its own verdict and reason.

Each board runs in its own thread: get its port (start its virtual board, acquire its labgrid
place, build and start its emulated board, or wait for its profile's firmware build and upload
to it), then `validate_device`, the
same public API as `tinyml validate`, with its sample log under the run's reports folder. A
board that fails (unplugged, garbage on the line, never answering, a wrong kernel) ends only
its own thread: the others neither stop nor wait for it. Firmware is built once per profile,
in parallel with everything that needs no build.

Verdicts: `pass`, `fail` (validation ran and a threshold failed), `error` (the board could not
be validated: the reason says why) and `busy` (its labgrid place is held by someone else).
Results go to the store (tinyml.rig.store) as each board finishes; a second run with the same
model, data and thresholds resumes that run: finished boards keep their results and only the
others run again, each continuing its own sample log.

The exit code for CI (`RigRunResult.exit_code`): 0 when every board passed, 6 when a board
failed validation, else 5 when a board could not be validated (error or busy).

Every board is judged against one reference: the board's TFLM library built for the host when
it is found (`library`, $TINYML_TFLM_LIBRARY), which the virtual boards then run too; else the
TFLM runtime.

Child processes (virtual boards, QEMU, labgrid agents) are stopped, and places released, on every way
out: the end of the run, an error, Ctrl-C (tinyml.rig.children).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tinyml import __version__
from tinyml.core.data import Dataset, load_dataset, load_labels
from tinyml.core.errors import DeviceError, InputError, TinyMLError
from tinyml.device.virtual_board import Faults
from tinyml.model.board_library import build_host_library
from tinyml.model.modelfile import read_model, read_model_bytes
from tinyml.rig.children import Children
from tinyml.rig.rigfile import Rig, RigBoard, load_rig
from tinyml.rig.store import BoardResult, ResultsStore
from tinyml.validation.host_reference import choose_reference
from tinyml.validation.session import data_fingerprint

log = logging.getLogger("tinyml.rig")

# A virtual board process imports numpy and the TFLM runtime; on a loaded 2-core machine many at once take a while.
VIRTUAL_START_TIMEOUT_S = 180.0
# How long a flashed board's port may take to come back (USB re-enumeration after the upload).
SKETCH_PORT_WAIT_S = 10.0
DEFAULT_MIN_EXACT = 1.0
STAGES = ("queued", "starting", "building", "flashing", "acquiring", "validating", "done")


@dataclass
class BoardStatus:
    """What one board is doing, for the live line: stage, progress, verdict."""

    name: str
    profile: str
    kind: str
    stage: str = "queued"
    done: int = 0
    total: int = 0
    verdict: str | None = None
    reason: str = ""
    kept: bool = False  # the result is from an earlier, resumed, run


@dataclass
class RigRunResult:
    run_id: int
    store_path: Path
    reports_dir: Path
    results: dict[str, BoardResult]
    kept: list[str]  # boards whose results came from the run this one resumed
    seconds: float

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.results.values() if r.verdict == verdict)

    @property
    def exit_code(self) -> int:
        if self.count("fail"):
            return 6
        if self.count("error") or self.count("busy"):
            return 5
        return 0


StatusListener = Callable[[BoardStatus], None]


def run_rig(
    rig: Rig | str | Path,
    model: str | Path,
    data: Dataset | str | Path,
    *,
    min_exact: float | None = DEFAULT_MIN_EXACT,
    min_agreement: float | None = None,
    limit: int | None = None,
    only: list[str] | None = None,
    resume: bool = True,
    on_status: StatusListener | None = None,
    link_options: dict[str, Any] | None = None,
    library: str | Path | None = None,
) -> RigRunResult:
    """Validate every board of the rig (or those in `only`) in parallel; see the module doc."""
    started = time.monotonic()
    rig = rig if isinstance(rig, Rig) else load_rig(rig)
    boards = _selected(rig, only)
    model_bytes = read_model_bytes(model)
    facts = read_model(model_bytes)
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    labels = load_labels(rig.labels_path) if rig.labels_path else None
    # One reference for every board: the board's library when found (built for the host); the
    # virtual boards then run it too, and the emulated boards are built against it.
    library = choose_reference(library).library_dir
    if library is not None and any(b.kind == "virtual" for b in boards):
        build_host_library(library)  # now, once, rather than inside each virtual board's start-up timeout
    places = {b.name: b.place for b in boards if b.kind == "place" and b.place}
    if places:
        from tinyml.rig.labgrid import check_places

        assert rig.coordinator is not None  # the rig file requires it for places
        check_places(rig.path, rig.coordinator, places)
    settings = {"min_exact": min_exact, "min_agreement": min_agreement, "limit": limit}
    data_hash = data_fingerprint(dataset.x, dataset.y)
    run_key = hashlib.sha256(json.dumps([facts.short_hash, data_hash, settings], sort_keys=True).encode()).hexdigest()[:16]
    with ResultsStore(rig.store_path, lock=True) as store:
        record, earlier = store.start_run(rig_file=str(rig.path), model_path=str(model), model_hash=facts.short_hash, data_hash=data_hash, settings=settings, run_key=run_key, resume=resume)
        run_dir = rig.reports_dir / f"run-{record.id}"
        kept = {name: result for name, result in earlier.items() if result.finished and name in {b.name for b in boards}}
        todo = [b for b in boards if b.name not in kept]
        for name, result in kept.items():
            board = rig.boards[name]
            _notify(on_status, BoardStatus(name, board.profile, board.kind, "done", result.samples or 0, result.samples or 0, result.verdict, result.reason, kept=True))
        context = _RunContext(rig, run_dir, model_bytes, facts.short_hash, dataset, labels, settings, limit, link_options or {}, on_status, library)
        results = dict(kept)
        results.update(_run_boards(context, todo, store, record.id))
        store.finish_run(record.id)
    seconds = time.monotonic() - started
    ordered = {b.name: results[b.name] for b in boards if b.name in results}
    return RigRunResult(record.id, rig.store_path, rig.reports_dir, ordered, sorted(kept), seconds)


def _selected(rig: Rig, only: list[str] | None) -> list[RigBoard]:
    if not only:
        return list(rig.boards.values())
    unknown = [name for name in only if name not in rig.boards]
    if unknown:
        raise InputError(f"{rig.path} has no board '{unknown[0]}'", f"choose from: {', '.join(rig.boards)}")
    return [rig.boards[name] for name in only]


def _notify(listener: StatusListener | None, status: BoardStatus) -> None:
    if listener is not None:
        listener(replace(status))


@dataclass
class _RunContext:
    rig: Rig
    run_dir: Path
    model_bytes: bytes
    model_hash: str
    dataset: Dataset
    labels: list[str] | None
    settings: dict[str, Any]
    limit: int | None
    link_options: dict[str, Any]
    on_status: StatusListener | None
    library: str | None  # the board's TFLM library: the reference, and what emulated and virtual boards run
    cancelled: threading.Event = field(default_factory=threading.Event)  # the run is over: boards still busy stop

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise DeviceError("the rig run was stopped before this board finished", "run the same command again: it resumes")

    @property
    def model_path(self) -> Path:
        return self.run_dir / "model.tflite"


def _run_boards(context: _RunContext, boards: list[RigBoard], store: ResultsStore, run_id: int) -> dict[str, BoardResult]:
    """Start every board's thread, record each result as it arrives (in this thread: SQLite's owner)."""
    if not boards:
        return {}
    context.run_dir.mkdir(parents=True, exist_ok=True)
    if not context.model_path.exists():
        context.model_path.write_bytes(context.model_bytes)  # the virtual boards' model, and a record of the run's
    children = Children()
    finished: queue.Queue[BoardResult] = queue.Queue()
    results: dict[str, BoardResult] = {}
    held: dict[str, Any] = {}  # board -> the labgrid place or emulated board it holds
    try:
        builds = _start_builds(context, boards)
        for board in boards:
            source = _start_source(context, board, children)  # processes start here, in the main thread
            thread = threading.Thread(target=_board_thread, args=(context, board, source, builds, finished, held), name=f"rig {board.name}", daemon=True)
            thread.start()
        while len(results) < len(boards):
            try:
                result = finished.get(timeout=0.5)  # a timeout keeps Ctrl-C responsive
            except queue.Empty:
                continue
            results[result.board] = result
            store.record(run_id, result)
    finally:
        context.cancelled.set()
        for place in list(held.values()):
            place.release()
        children.stop_all()
    return results


# ---- where each board's port comes from ------------------------------------------------------
@dataclass
class _Source:
    """What the main thread started for a board: a virtual board process or a labgrid agent."""

    process: Any = None
    link: Path | None = None
    started: float = field(default_factory=time.monotonic)


def _start_source(context: _RunContext, board: RigBoard, children: Children) -> _Source:
    if board.kind == "virtual":
        link = _link_path(context, board)
        link.unlink(missing_ok=True)
        command = [sys.executable, "-m", "tinyml", "-q", "virtual-board", "--model", context.model_path, "--link", link, "--board", board.profile, *_fault_flags(board.faults)]
        if context.rig.labels_path:
            command += ["--labels", context.rig.labels_path]
        if context.library:
            command += ["--library", context.library]
        process = children.start(command, log_path=context.run_dir / board.name / "virtual-board.log")
        return _Source(process, link)
    if board.kind == "place":
        from tinyml.rig.labgrid import start_agent

        assert context.rig.coordinator is not None and board.place is not None
        wait = board.wait_s if board.busy == "wait" else 0.0
        return _Source(start_agent(children, context.rig.coordinator, board.place, wait))
    return _Source()


def _link_path(context: _RunContext, board: RigBoard) -> Path:
    # A pty symlink in a short private folder: the run folder may be deep, and ports are not results.
    folder = Path(tempfile.gettempdir()) / f"tinyml-rig-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{hashlib.sha256(str(context.run_dir.resolve()).encode()).hexdigest()[:8]}-{board.name}"


def _fault_flags(faults: Faults) -> list[str]:
    flags = []
    for item in fields(Faults):
        value = getattr(faults, item.name)
        if value not in (0, 0.0, None):
            flags += [f"--{item.name.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
    return flags


def _start_builds(context: _RunContext, boards: list[RigBoard]) -> dict[str, Future]:
    """One firmware build per profile of the boards the rig flashes, each in its own thread."""
    builds: dict[str, Future] = {}
    for profile in sorted({b.profile for b in boards if b.flashable}):
        future: Future = Future()
        builds[profile] = future

        def build(profile: str = profile, future: Future = future) -> None:
            from tinyml.rig.firmware import build_for_profile

            try:
                future.set_result(build_for_profile(profile, context.model_bytes, context.run_dir / "firmware" / profile, context.labels))
            except BaseException as exc:  # noqa: BLE001 - every board of the profile reports it
                future.set_exception(exc)

        threading.Thread(target=build, name=f"rig build {profile}", daemon=True).start()
    return builds


# ---- one board ---------------------------------------------------------------------------------
def _board_thread(context: _RunContext, board: RigBoard, source: _Source, builds: dict[str, Future], finished: queue.Queue, held: dict[str, Any]) -> None:
    status = BoardStatus(board.name, board.profile, board.kind)
    started = time.monotonic()
    stages: dict[str, float] = {}
    result = BoardResult(board=board.name, profile=board.profile, kind=board.kind, verdict="error", reason="", model_hash=context.model_hash, usb_serial=board.usb_serial, port=board.port)
    try:
        port = _board_port(context, board, source, builds, status, result, held)
        stages["port_s"] = time.monotonic() - started
        _validate(context, board, port, status, result)
        if board.kind == "emulator":
            held[board.name].check()
        stages["validate_s"] = time.monotonic() - started - stages["port_s"]
    except TinyMLError as exc:
        from tinyml.rig.labgrid import PlaceBusy

        result.verdict = "busy" if isinstance(exc, PlaceBusy) else "error"
        result.reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever happens, this board gets a verdict and the others go on
        result.verdict = "error"
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            result.reason = f"the disk is full ({exc.filename or 'the reports folder'}). Fix: free space and run the same command again: this board resumes where its sample log stops"
        else:  # a bug: its traceback goes to the log
            log.exception("board %s: internal error", board.name)
            result.reason = f"internal error: {type(exc).__name__}: {exc} (please report it with --verbose output)"
    finally:
        place = held.pop(board.name, None)
        if place is not None:
            place.release()
    result.seconds = round(time.monotonic() - started, 2)
    result.metrics.setdefault("stages", {k: round(v, 2) for k, v in stages.items()})
    status.stage, status.verdict, status.reason = "done", result.verdict, result.reason
    _notify(context.on_status, status)
    finished.put(result)


def _board_port(context: _RunContext, board: RigBoard, source: _Source, builds: dict[str, Future], status: BoardStatus, result: BoardResult, held: dict[str, Any]) -> str:
    """The port to validate through, once the board is there and runs the firmware."""
    if board.kind == "virtual":
        status.stage = "starting"
        _notify(context.on_status, status)
        assert source.link is not None
        _wait_for_virtual_board(context, board, source)
        result.port = str(source.link)
        result.firmware_hash = _hash("virtual", __version__, context.model_hash)
        result.library_hash = _hash("board library", context.library) if context.library else _hash("tflite-micro", _tflm_version())
        return str(source.link)
    if board.kind == "place":
        from tinyml.rig.labgrid import await_place

        status.stage = "acquiring"
        _notify(context.on_status, status)
        assert board.place is not None and context.rig.coordinator is not None
        place = await_place(source.process, context.rig.coordinator, board.place, board.wait_s if board.busy == "wait" else 0.0)
        held[board.name] = place
        result.port = place.url
        return place.url
    if board.kind == "emulator":
        from tinyml.rig.firmware import EmulatedRigBoard

        status.stage = "building"
        _notify(context.on_status, status)
        emulated = EmulatedRigBoard(board.profile, context.model_bytes, context.run_dir / board.name / "firmware", context.labels, context.library)
        held[board.name] = emulated
        result.port = emulated.url
        result.firmware_hash, result.library_hash = emulated.firmware_hash, emulated.library_hash
        return emulated.url
    if board.kind == "network":
        return board.port or ""
    # A board on a local serial port: the profile's firmware, built once, uploaded to it.
    from tinyml.rig.firmware import upload_built

    status.stage = "building"
    _notify(context.on_status, status)
    built = builds[board.profile].result()
    status.stage = "flashing"
    _notify(context.on_status, status)
    assert board.port is not None
    upload_built(built, board.port)
    result.firmware_hash, result.library_hash = built.firmware_hash, built.library_hash
    deadline = time.monotonic() + SKETCH_PORT_WAIT_S
    while not os.path.exists(board.port) and time.monotonic() < deadline:
        time.sleep(0.2)
    return board.port


def _wait_for_virtual_board(context: _RunContext, board: RigBoard, source: _Source) -> None:
    deadline = source.started + VIRTUAL_START_TIMEOUT_S
    assert source.link is not None
    while not source.link.is_symlink():
        if source.process.poll() is not None:
            raise DeviceError(f"the virtual board of {board.name} stopped at start (exit {source.process.returncode})", "see virtual-board.log in the board's reports folder")
        context.check_cancelled()
        if time.monotonic() > deadline:
            raise DeviceError(f"the virtual board of {board.name} did not start in {VIRTUAL_START_TIMEOUT_S:.0f} s", "the machine is overloaded: run fewer boards at once")
        time.sleep(0.1)


def _validate(context: _RunContext, board: RigBoard, port: str, status: BoardStatus, result: BoardResult) -> None:
    from tinyml.validation.report import ThresholdFailed
    from tinyml.validation.validate import validate_device

    status.stage = "validating"
    _notify(context.on_status, status)

    def progress(done: int, total: int) -> None:
        context.check_cancelled()  # after Ctrl-C a board's thread ends at its next sample, not at the end of the data
        status.done, status.total = done, total
        _notify(context.on_status, status)

    try:
        report = validate_device(
            port,
            context.model_path,
            context.dataset,
            limit=context.limit,
            report_dir=context.run_dir / board.name,
            min_exact=context.settings["min_exact"],
            min_agreement=context.settings["min_agreement"],
            resume=True,
            progress=progress,
            link_options=context.link_options,
            library=context.library,
        )
        result.verdict, result.reason = "pass", "passed"
    except ThresholdFailed as failed:
        report = failed.report
        result.verdict, result.reason = "fail", "; ".join(report.failures)
    _fill_metrics(result, report)
    if result.firmware_hash is None:
        # A board the rig did not flash: what it says it runs is the best name for its firmware.
        device = report.device
        result.firmware_hash = _hash(str(device.get("firmware_version")), str(device.get("board_id")), str(device.get("model_hash")))


def _fill_metrics(result: BoardResult, report: Any) -> None:
    result.samples = report.samples
    result.exact = report.device_vs_reference.exact_match
    result.agreement = report.device_vs_reference.top1_agreement
    result.accuracy = report.accuracy.get("device")
    result.latency_p50_us = report.latency_us.p50
    result.latency_p95_us = report.latency_us.p95
    result.metrics = {
        "device_vs_reference": report.device_vs_reference.to_dict(),
        "device_vs_tflm": report.device_vs_tflm.to_dict(),
        "accuracy": report.accuracy,
        "round_trip_ms": report.round_trip_ms.to_dict(),
        "link": report.link,
        "device": report.device,
        "resumed_samples": report.resumed_samples,
    }


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _tflm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tflite-micro")
    except PackageNotFoundError:
        return "unknown"
