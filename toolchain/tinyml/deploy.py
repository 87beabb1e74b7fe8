"""`tinyml deploy`: quantize, inspect, render, flash (or the virtual or emulated board) and validate.

`port` is a board's serial port, "virtual" (the virtual board: the model in the TFLM Python
runtime, not the firmware) or "emulator" (the emulated board: the rendered firmware built
against the board's TFLM library and run on QEMU, tinyml.device.emulator). On the emulated
board the flash stage builds the firmware, measures the arena the library uses for this model
on the device and re-renders the project with it; validate runs QEMU and talks to it.

Each stage calls the public function of its own module; this module only orders them, keeps
a state file so that a run can resume after a failed stage, and collects one summary.

The state file (`deploy_state.json` in the output folder) records a fingerprint of the inputs
(model, data, labels, board, port, app) and each stage that finished. A later run with the
same inputs skips the stages already done; changed inputs start again from the first stage.
A folder that holds files but no state file is someone's work: it is not written without
`force`.

May import: core, model, features, optimize, firmware, device, validation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset, load_dataset, load_labels
from tinyml.core.errors import InputError, ModelError
from tinyml.core.files import atomic_write_text, check_not_input, check_output_folder, write_error

log = logging.getLogger("tinyml.deploy")

STAGES = ("quantize", "inspect", "render", "flash", "validate")
STATE_FILE = "deploy_state.json"
STATE_VERSION = 1
MODEL_FILE = "model_int8.tflite"
FIRMWARE_DIR = "firmware"
REPORT_DIR = "validation"
VIRTUAL_PORT = "virtual"
EMULATOR_PORT = "emulator"
VIRTUAL_TARGET = "virtual board: the model on the host, not the firmware"

Progress = Callable[[int, int], None]
# (stage, "start" | "done" | "skipped" | "resumed" | "failed" | "failed-input"); "failed-input" is
# a failure that running the same command again would repeat (an input or model error).
StageListener = Callable[[str, str], None]


@dataclass
class StageOutcome:
    """What one stage did: its status and the facts the summary shows."""

    name: str
    status: str  # "done", "resumed" (done by an earlier run), "skipped", "failed"
    facts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "facts": self.facts, "seconds": round(self.seconds, 3)}


@dataclass
class DeployResult:
    out_dir: Path
    board: str
    port: str
    model_path: Path | None
    stages: list[StageOutcome]
    validation: Any = None  # tinyml.validation.report.ValidationReport when validation ran in this process
    target: str = ""  # what ran the model, as every output names it


    def stage(self, name: str) -> StageOutcome:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "board": self.board,
            "port": self.port,
            "target": self.target,
            "model": str(self.model_path) if self.model_path else None,
            "stages": [s.to_dict() for s in self.stages],
        }


def _hash_array(h: Any, array: np.ndarray | None) -> None:
    if array is None:
        h.update(b"none")
        return
    array = np.ascontiguousarray(array)
    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes())


def _model_fingerprint(model: Any) -> str:
    h = hashlib.sha256()
    if isinstance(model, (str, Path)):
        path = Path(model)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for p in files:
            h.update(p.name.encode())
            h.update(p.read_bytes())
    else:  # an in-memory Keras model: its architecture and weights
        h.update(model.to_json().encode())
        for weights in model.get_weights():
            _hash_array(h, weights)
    return h.hexdigest()


def _fingerprint(model: Any, calibration: Dataset | None, eval_data: Dataset | None, labels: Sequence[str] | None, settings: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(_model_fingerprint(model).encode())
    for data in (calibration, eval_data):
        _hash_array(h, None if data is None else data.x)
        _hash_array(h, None if data is None else data.y)
    h.update(json.dumps({"labels": list(labels) if labels else None, **settings}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _as_dataset(data: Dataset | str | Path | None) -> Dataset | None:
    if data is None or isinstance(data, Dataset):
        return data
    return load_dataset(data)


def _is_tflite(model: Any) -> bool:
    return isinstance(model, (str, Path)) and Path(model).suffix.lower() == ".tflite"


class _State:
    """The state file: which stages a run with these inputs has finished, and their facts."""

    def __init__(self, out_dir: Path, fingerprint: str, force: bool) -> None:
        self.path = out_dir / STATE_FILE
        self.fingerprint = fingerprint
        self.stages: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                saved = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                saved = {}
            if saved.get("version") == STATE_VERSION and saved.get("fingerprint") == fingerprint:
                self.stages = dict(saved.get("stages", {}))
            else:
                log.info("the inputs changed since the last run in %s: starting from the first stage", out_dir)
        elif out_dir.is_dir() and any(out_dir.iterdir()) and not force:
            raise InputError(f"{out_dir} holds files that tinyml deploy did not write", "choose another --out, or pass --force to write into it")

    def done(self, stage: str) -> dict[str, Any] | None:
        entry = self.stages.get(stage)
        return entry["facts"] if entry and entry.get("status") == "done" else None

    def record(self, stage: str, status: str, facts: dict[str, Any]) -> None:
        self.stages[stage] = {"status": status, "facts": facts}
        self.save()

    def save(self) -> None:
        payload = {"version": STATE_VERSION, "fingerprint": self.fingerprint, "stages": self.stages}
        atomic_write_text(self.path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class _Settings:
    """The inputs of one run, checked and loaded before any stage starts."""

    model: Any
    board_id: str
    board: Any  # tinyml.firmware.boards.BoardProfile
    out_dir: Path
    model_path: Path  # the int8 model: given, or what the quantize stage writes
    calibration: Dataset | None
    eval_data: Dataset | None
    labels: list[str] | None
    port: str
    # The board's TFLM library: the emulated board is built against it (a LibrarySource, checked
    # before any stage), validation compares with it built for the host (else found as validate finds it).
    library: Any
    app: str
    app_context: dict[str, Any]
    skip: frozenset[str]
    validate_limit: int | None
    min_exact: float | None
    min_agreement: float | None

    @property
    def library_dir(self) -> str | None:
        return str(getattr(self.library, "path", self.library)) if self.library else None

    def fingerprint(self) -> str:
        """What a finished stage's outputs depend on: a run with another fingerprint starts afresh."""
        settings = {
            "board": self.board_id,
            "port": self.port,
            "library": self.library_dir,
            "app": self.app,
            "app_context": self.app_context,
            "limit": self.validate_limit,
            "min_exact": self.min_exact,
            "min_agreement": self.min_agreement,
        }
        return _fingerprint(self.model, self.calibration, self.eval_data, self.labels, settings)


@dataclass
class _Run:
    """One deploy run: its settings and what the stages hand on to the stages after them."""

    settings: _Settings
    progress: Progress | None
    resume_validation: bool = False  # continue a validation that failed midway, not start afresh
    flashed_port: str | None = None  # where the flash stage found the running sketch
    validation: Any = None
    target: str = ""


def _stage_quantize(run: _Run) -> dict[str, Any]:
    from tinyml.firmware.boards import quantize_options
    from tinyml.model.quantize import quantize_model

    s = run.settings
    result = quantize_model(
        s.model, s.calibration, eval_data=s.eval_data, out=s.model_path, force=True, progress=run.progress, **quantize_options(s.board)
    )
    return result.to_dict()


def _stage_inspect(run: _Run) -> dict[str, Any]:
    from tinyml.model.inspect import check_fits, inspect_model

    report = inspect_model(run.settings.model_path, run.settings.board)
    check_fits(report)
    facts = {
        "model_id": report.facts.short_hash,
        "model_bytes": report.facts.size_bytes,
        "arena_bytes": report.arena_bytes,
        "firmware_arena_bytes": report.firmware_arena_bytes,
        "macs": report.macs,
        "ops": report.op_counts,
    }
    if report.fit is not None:
        facts["flash_headroom_bytes"] = report.fit.flash_headroom
        facts["ram_headroom_bytes"] = report.fit.ram_headroom
    return facts


def _stage_render(run: _Run) -> dict[str, Any]:
    from tinyml.firmware.render import render_project

    s = run.settings
    app_context = _app_context(s)
    result = render_project(s.board, s.model_path, s.out_dir / FIRMWARE_DIR, labels=s.labels, app=s.app, app_context=app_context, force=True)
    return _facts_of(result)


def _app_context(s: _Settings) -> dict[str, Any]:
    """The defaults of the features the app's manifest names, overridden by the caller's settings."""
    from tinyml.firmware.apps import default_app_context

    return {**default_app_context(s.app), **s.app_context}


def _stage_flash(run: _Run) -> dict[str, Any]:
    s = run.settings
    if s.port == VIRTUAL_PORT:
        return {"port": VIRTUAL_PORT, "target": VIRTUAL_TARGET, "note": "no board: the validate stage starts a virtual board that runs the model on the host, not the firmware"}
    if s.port == EMULATOR_PORT:
        from tinyml.device.emulator.measure import build_and_measure

        return build_and_measure(s.out_dir / FIRMWARE_DIR, s.library, s.board, s.model_path, labels=s.labels, app=s.app, app_context=_app_context(s))
    from tinyml.device.flash import flash_project

    return _facts_of(flash_project(s.out_dir / FIRMWARE_DIR, port=s.port, board=s.board_id))


def _stage_validate(run: _Run) -> dict[str, Any]:
    from tinyml.validation.validate import validate_device

    s = run.settings
    data = s.eval_data if s.eval_data is not None else s.calibration

    def _validate(port: str, target: str) -> Any:
        run.target = target
        return validate_device(
            port,
            s.model_path,
            data,
            limit=s.validate_limit,
            report_dir=s.out_dir / REPORT_DIR,
            min_exact=s.min_exact,
            min_agreement=s.min_agreement,
            # After a failed validation (a board unplugged midway) continue it; else start afresh.
            resume=run.resume_validation,
            force=not run.resume_validation,
            progress=run.progress,
            library=s.library_dir,
            project_dir=s.out_dir / FIRMWARE_DIR,
            target=target,
        )

    if s.port == VIRTUAL_PORT:
        from tinyml.device.virtual_board import VirtualBoard
        from tinyml.validation.host_reference import choose_reference

        # The stand-in computes as the verdict's reference does: the board's library when found.
        library = choose_reference(s.library_dir, s.out_dir / FIRMWARE_DIR).library_dir
        with VirtualBoard(s.model_path, labels=s.labels, board=s.board_id, library=library) as board:
            report = _validate(board.port, f"{board.description}: the model on the host, not the firmware")
    elif s.port == EMULATOR_PORT:
        from tinyml.device.emulator.measure import emulator_facts
        from tinyml.device.emulator.session import start_emulator

        # The ELF the flash stage built, unless the project changed since.
        with start_emulator(s.out_dir / FIRMWARE_DIR, s.library, reuse=True) as emulator:
            report = _validate(emulator.url, emulator.target)
            emulator.board.check()  # a crash during validation is the firmware's, not the link's
        run.validation = report
        return {**_facts_of(report), "emulator": emulator_facts(report, s.board)}
    else:
        # The sketch may come back on another port than the upload used (or --port auto).
        port = run.flashed_port or s.port
        if port == "auto":
            raise InputError("the board's port is not known (flash was skipped or the board did not show up)", "pass --port PORT")
        report = _validate(port, f"{s.board.name} on {port}")
    run.validation = report
    return _facts_of(report)


def _facts_of(result: Any) -> dict[str, Any]:
    to_dict = getattr(result, "to_dict", None)
    return to_dict() if callable(to_dict) else {}


_STAGE_FUNCTIONS: dict[str, Callable[[_Run], dict[str, Any]]] = {
    "quantize": _stage_quantize,
    "inspect": _stage_inspect,
    "render": _stage_render,
    "flash": _stage_flash,
    "validate": _stage_validate,
}


def deploy(
    model: Any,
    *,
    board: str,
    out: str | Path,
    calibration: Dataset | str | Path | None = None,
    eval_data: Dataset | str | Path | None = None,
    labels: Sequence[str] | str | Path | None = None,
    port: str = VIRTUAL_PORT,
    library: str | Path | None = None,
    app: str = "validation",
    app_context: Mapping[str, Any] | None = None,
    skip: Sequence[str] = (),
    resume: bool = True,
    force: bool = False,
    validate_limit: int | None = None,
    min_exact: float | None = 1.0,
    min_agreement: float | None = None,
    progress: Progress | None = None,
    on_stage: StageListener | None = None,
) -> DeployResult:
    """Run every stage not in `skip`, resuming after the last finished one, and return the summary.

    `model` is a Keras model (in memory or a file that `tinyml.model.quantize` reads) or an int8
    `.tflite` (then quantize is skipped). `port` is a serial port, "virtual" or "emulator".
    `library` is the board's TFLM library folder: the emulated board builds the firmware against
    it, and validation compares with it built for the host; without it, tinyml.firmware.library_source
    looks in $TINYML_TFLM_LIBRARY and the rendered project. A stage that
    fails raises its tinyml error after recording the failure in the state file; run again
    with the same inputs to resume from that stage.
    """
    settings = _check_inputs(
        model,
        board=board,
        out=out,
        calibration=calibration,
        eval_data=eval_data,
        labels=labels,
        port=port,
        library=library,
        app=app,
        app_context=app_context,
        skip=skip,
        validate_limit=validate_limit,
        min_exact=min_exact,
        min_agreement=min_agreement,
    )
    state = _State(settings.out_dir, settings.fingerprint() if resume else "", force)
    if not resume:
        state.stages.clear()
    try:
        settings.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, settings.out_dir) from exc
    run = _Run(settings, progress)
    previous_validation = state.stages.get("validate", {})
    run.resume_validation = previous_validation.get("status") == "failed" and (settings.out_dir / REPORT_DIR).is_dir()
    outcomes = _run_stages(run, state, on_stage)
    target = run.target or _planned_target(settings, outcomes)
    return DeployResult(out_dir=settings.out_dir, board=board, port=port, model_path=settings.model_path, stages=outcomes, validation=run.validation, target=target)


def _planned_target(settings: _Settings, outcomes: Sequence[StageOutcome]) -> str:
    """The target when validation did not run in this process: what the flash stage named."""
    flashed = next((o.facts for o in outcomes if o.name == "flash" and o.facts), {})
    if flashed.get("target"):
        return str(flashed["target"])
    return VIRTUAL_TARGET if settings.port == VIRTUAL_PORT else f"{settings.board.name} on {settings.port}"


def _check_inputs(
    model: Any,
    *,
    board: str,
    out: str | Path,
    calibration: Dataset | str | Path | None,
    eval_data: Dataset | str | Path | None,
    labels: Sequence[str] | str | Path | None,
    port: str,
    library: str | Path | None,
    app: str,
    app_context: Mapping[str, Any] | None,
    skip: Sequence[str],
    validate_limit: int | None,
    min_exact: float | None,
    min_agreement: float | None,
) -> _Settings:
    """The run's settings, with every input problem found before any stage runs, not after minutes of work."""
    from tinyml.firmware.apps import check_labels, load_app
    from tinyml.firmware.boards import get_board

    unknown = sorted(set(skip) - set(STAGES))
    if unknown:
        raise InputError(f"unknown stage(s) to skip: {', '.join(unknown)}", f"choose from {', '.join(STAGES)}")
    board_profile = get_board(board)
    board_profile.check_firmware()
    if isinstance(model, (str, Path)) and not Path(model).exists():
        raise InputError(f"model {model} does not exist", "give a Keras model file (.keras, .h5), a SavedModel folder or an int8 .tflite")
    skipped = set(skip)
    check_labels(load_app(app), labels)
    out_dir = Path(out)
    check_output_folder(out_dir)
    inputs = [model if isinstance(model, (str, Path)) else None, *(d for d in (calibration, eval_data, labels) if isinstance(d, (str, Path)))]
    written = (STATE_FILE, FIRMWARE_DIR, REPORT_DIR) if _is_tflite(model) else (STATE_FILE, MODEL_FILE, FIRMWARE_DIR, REPORT_DIR)
    for name in written:
        check_not_input(out_dir / name, inputs)
    if _is_tflite(model):
        skipped.add("quantize")
        model_path = Path(model)
    else:
        model_path = out_dir / MODEL_FILE
        if "quantize" in skipped:
            raise InputError("--skip quantize needs an int8 .tflite model", "give the .tflite that `tinyml quantize` wrote, or let deploy quantize")
    if isinstance(labels, (str, Path)):
        labels = load_labels(labels)
    calibration_data = _as_dataset(calibration)
    evaluation = _as_dataset(eval_data)
    if "quantize" not in skipped and calibration_data is None:
        raise InputError("quantizing needs calibration data", "pass --calibration DATA.npz (a few hundred typical inputs), or give an int8 .tflite")
    if "validate" not in skipped and evaluation is None and calibration_data is None:
        raise InputError("validation needs data", "pass --eval DATA.npz (or --calibration), or --skip validate")
    if port == EMULATOR_PORT:
        from tinyml.device.emulator.measure import check_emulator_inputs

        library = check_emulator_inputs(board_profile, library)
    return _Settings(
        model=model,
        board_id=board,
        board=board_profile,
        out_dir=out_dir,
        model_path=model_path,
        calibration=calibration_data,
        eval_data=evaluation,
        labels=list(labels) if labels else None,
        port=port,
        library=library,
        app=app,
        app_context=dict(app_context or {}),
        skip=frozenset(skipped),
        validate_limit=validate_limit,
        min_exact=min_exact,
        min_agreement=min_agreement,
    )


def _run_stages(run: _Run, state: _State, on_stage: StageListener | None) -> list[StageOutcome]:
    """Each stage in order: skipped, resumed from an earlier run while its outputs are still there, or run."""
    outcomes: list[StageOutcome] = []
    redo_rest = False  # once a stage runs again, the stages after it use its new outputs
    for name in STAGES:
        if name in run.settings.skip:
            outcomes.append(StageOutcome(name, "skipped"))
            _notify(on_stage, name, "skipped")
            continue
        earlier = state.done(name) if _outputs_exist(name, run.settings) else None
        if name == "flash" and earlier is not None:
            run.flashed_port = earlier.get("port") if earlier.get("port") not in (VIRTUAL_PORT, EMULATOR_PORT) else None
        # A resumed validation would report nothing new: validation always runs again.
        if earlier is not None and not redo_rest and name != "validate":
            outcomes.append(StageOutcome(name, "resumed", earlier))
            _notify(on_stage, name, "resumed")
            continue
        redo_rest = True
        outcomes.append(_run_stage(name, run, state, on_stage))
    return outcomes


def _run_stage(name: str, run: _Run, state: _State, on_stage: StageListener | None) -> StageOutcome:
    """Run one stage, recording in the state file that it finished or failed."""
    _notify(on_stage, name, "start")
    started = time.monotonic()
    try:
        facts = _STAGE_FUNCTIONS[name](run)
    except BaseException as exc:
        state.record(name, "failed", {"error": str(exc)})
        _notify(on_stage, name, "failed-input" if isinstance(exc, (InputError, ModelError)) else "failed")
        raise
    seconds = time.monotonic() - started
    if name == "flash" and run.settings.port not in (VIRTUAL_PORT, EMULATOR_PORT):
        run.flashed_port = facts.get("port")
    state.record(name, "done", facts)
    log.info("%s: done in %.1f s", name, seconds)
    _notify(on_stage, name, "done")
    return StageOutcome(name, "done", facts, seconds)


def _outputs_exist(stage: str, settings: _Settings) -> bool:
    """A stage done earlier counts only while what it wrote is still there."""
    if stage == "quantize":
        return settings.model_path.is_file()
    if stage == "render":
        return (settings.out_dir / FIRMWARE_DIR / "platformio.ini").is_file()
    if stage == "flash" and settings.port == EMULATOR_PORT:
        from tinyml.device.emulator.measure import firmware_elf

        return firmware_elf(settings.out_dir / FIRMWARE_DIR).is_file()
    return True


def _notify(listener: StageListener | None, stage: str, status: str) -> None:
    if listener is not None:
        listener(stage, status)
