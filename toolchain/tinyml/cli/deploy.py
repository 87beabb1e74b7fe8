"""`tinyml deploy MODEL --board ID --calibration DATA [--eval DATA] [--labels FILE] [--port PORT|virtual] [--out DIR]`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from tinyml.cli.options import fraction, positive_int

STAGE_NAMES = ("quantize", "inspect", "render", "flash", "validate")


def register(subparsers: Any, summary: str) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help=summary,
        description=summary
        + ". Stages: quantize, inspect, render, flash (or a virtual board), validate. A failed run resumes from the failed stage when run again with the same inputs.",
    )
    parser.add_argument("model", help="Keras model (.keras, .h5, SavedModel folder) or an int8 .tflite")
    parser.add_argument("--board", required=True, help="board profile id (see `tinyml boards`)")
    parser.add_argument("--calibration", help="calibration samples (.npz with x, or .npy): a few hundred typical inputs")
    parser.add_argument("--eval", dest="eval_data", help="held-out samples (.npz with x and y) for accuracy and validation")
    parser.add_argument("--labels", help="class names, one per line")
    parser.add_argument(
        "--port",
        default="virtual",
        help="serial port of the board; 'emulator' for the emulated board (the firmware on QEMU); 'virtual' (default) for the virtual board (the model in TFLM, not the firmware)",
    )
    parser.add_argument("--out", default="deploy", help="output folder (default: deploy)")
    parser.add_argument("--app", default="validation", help="firmware app (default: validation)")
    parser.add_argument("--skip", action="append", default=[], choices=STAGE_NAMES, metavar="STAGE", help="skip a stage (repeatable): " + ", ".join(STAGE_NAMES))
    parser.add_argument("--limit", type=positive_int, default=None, help="validate on at most this many samples")
    parser.add_argument("--min-exact", type=fraction, default=1.0, help="fail unless this fraction of outputs match the host bit for bit (default: 1.0)")
    parser.add_argument("--library", metavar="DIR", help="the board's TFLM library folder: --port emulator builds the firmware against it, and validation compares with it built for the host (default: $TINYML_TFLM_LIBRARY, else PlatformIO's copy in the rendered project)")
    parser.add_argument("--restart", action="store_true", help="run every stage again instead of resuming")
    parser.add_argument("--force", action="store_true", help="write into --out even if it holds files deploy did not write")
    parser.set_defaults(run=run)


class StageBar:
    """A transient rich progress bar for the stage running now, fed by on_stage() and progress()."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from tinyml.cli.console import stderr_console

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=stderr_console(), transient=True, disable=not stderr_console().is_terminal)
        self._task: Any = None

    def __enter__(self) -> StageBar:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._bar.__exit__(*exc_info)

    def on_stage(self, stage: str, status: str) -> None:
        if status == "start":
            self._task = self._bar.add_task(stage, total=None)
        elif self._task is not None and status in ("done", "failed", "failed-input"):
            self._bar.remove_task(self._task)
            self._task = None
        if status == "failed":
            self._bar.console.print(f"[bold red]{stage} failed[/bold red]: run the same command again to resume from here")
        elif status == "failed-input":
            # The same command would stop the same way: the input has to change first.
            self._bar.console.print(f"[bold red]{stage} failed[/bold red]: fix the input the error below names, then run deploy again")

    def progress(self, done: int, total: int) -> None:
        if self._task is not None:
            self._bar.update(self._task, completed=done, total=total)


def run(args: argparse.Namespace) -> int:
    from tinyml.cli.console import stdout_console
    from tinyml.deploy import deploy
    from tinyml.validation.report import ThresholdFailed

    started = time.monotonic()
    bar = StageBar()
    try:
        with bar:
            result = deploy(
                args.model,
                board=args.board,
                out=args.out,
                calibration=args.calibration,
                eval_data=args.eval_data,
                labels=args.labels,
                port=args.port,
                library=args.library,
                app=args.app,
                skip=args.skip,
                resume=not args.restart,
                force=args.force,
                validate_limit=args.limit,
                min_exact=args.min_exact,
                progress=bar.progress,
                on_stage=bar.on_stage,
            )
    except ThresholdFailed as failed:
        print_validation_summary(failed.report, stdout_console())
        raise
    print_deploy_summary(result, stdout_console(), seconds=time.monotonic() - started)
    return 0


def _fmt_bytes(value: Any) -> str:
    if not isinstance(value, int):
        return "-"
    return f"{value:,} B ({value / 1024:.1f} KiB)"


def _fmt_fraction(value: Any) -> str:
    return f"{value * 100:.1f}%" if isinstance(value, (int, float)) else "-"


def _stage_line(name: str, facts: dict[str, Any]) -> str:
    """The one line of facts a stage shows in the summary."""
    if name == "quantize":
        parts = [f"int8 {_fmt_bytes(facts.get('int8_size_bytes'))}"]
        if facts.get("float_accuracy") is not None:
            parts.append(f"accuracy float {_fmt_fraction(facts['float_accuracy'])} -> int8 {_fmt_fraction(facts.get('int8_accuracy'))}")
        if facts.get("dense_weights") == "per-tensor":
            measured = facts.get("per_channel_int8_accuracy")
            parts.append("Dense weights per tensor" + (f" (per channel: int8 {_fmt_fraction(measured)})" if measured is not None else ""))
        return ", ".join(parts)
    if name == "inspect":
        return f"arena {_fmt_bytes(facts.get('arena_bytes'))}, {facts.get('macs', 0):,} MACs, model {facts.get('model_id', '?')}"
    if name == "render":
        return f"{facts.get('project_dir', '?')} (app {facts.get('app', '?')}, arena {facts.get('arena_bytes', '?')} B, estimated)"
    if name == "flash":
        if "arena" in facts and "memory" in facts:
            return _emulator_build_line(facts)
        return str(facts.get("note") or facts.get("port") or "")
    if name == "validate":
        line = ", ".join(f"{k} {v}" for k, v in _validation_headline(facts).items())
        emulated = facts.get("emulator")
        if emulated:
            line += (
                f"; {emulated['instructions_per_inference']:,} instructions per inference (measured),"
                f" ~{emulated['latency_estimate_us_at_board_clock']:,.0f} us at {emulated['board_clock_hz'] / 1e6:g} MHz (estimate: 1 instruction per cycle)"
            )
        return line
    return ""


def _emulator_build_line(facts: dict[str, Any]) -> str:
    """The emulated board's build: the arena measured there, and flash/RAM measured vs estimated."""
    arena, memory = facts["arena"], facts["memory"]
    flash = memory["tflm_app_model_flash_bytes"] + memory["core_flash_bytes_estimate"]
    ram = memory["tflm_app_model_ram_bytes"] + memory["core_ram_bytes_estimate"]
    return (
        f"built for the emulated board; arena {arena['measured_on_device_bytes']:,} B measured on the device, firmware declares {arena['declared_bytes']:,} B"
        f" (inspect estimated {arena['estimated_by_inspect_bytes']:,} B); TFLM + app + model {memory['tflm_app_model_flash_bytes']:,} B flash,"
        f" {memory['tflm_app_model_ram_bytes']:,} B RAM (measured in the ELF) + core ~{memory['core_flash_bytes_estimate']:,} B flash,"
        f" ~{memory['core_ram_bytes_estimate']:,} B RAM (estimate) = {flash / memory['board_flash_bytes']:.0%} of flash, {ram / memory['board_ram_bytes']:.0%} of RAM"
    )


def _validation_headline(facts: dict[str, Any]) -> dict[str, str]:
    """Samples, bit-exact match against the verdict's host reference, device accuracy, latency, verdict."""
    shown = {"samples": str(facts.get("samples", "?"))}
    exact = facts.get("verdict", {}).get("exact_match")
    if exact is not None:
        shown["exact match"] = f"{_fmt_fraction(exact)} vs {facts.get('reference', {}).get('name', 'the host reference')}"
    accuracy = facts.get("accuracy", {}).get("device")
    if accuracy is not None:
        shown["device accuracy"] = _fmt_fraction(accuracy)
    latency = facts.get("latency_us", {}).get("p50")
    if latency is not None:
        shown["latency p50"] = f"{latency:.0f} us"
    shown["passed"] = "yes" if facts.get("passed") else "no"
    return shown


def print_deploy_summary(result: Any, console: Any, *, seconds: float | None = None) -> None:
    """One table for the stages, then the validation summary."""
    from rich.markup import escape
    from rich.table import Table

    title = escape(f"tinyml deploy: {result.board} on the {result.target or result.port}")
    if seconds is not None:
        title += f" ({seconds:.0f} s)"
    table = Table(title=title, title_justify="left")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("result", overflow="fold")
    styles = {"done": "green", "resumed": "cyan", "skipped": "dim", "failed": "red"}
    for stage in result.stages:
        status = "done earlier" if stage.status == "resumed" else stage.status
        table.add_row(stage.name, f"[{styles.get(stage.status, '')}]{status}[/]", escape(_stage_line(stage.name, stage.facts)) if stage.facts else "")
    console.print(table)
    if result.validation is not None:
        print_validation_summary(result.validation, console)


def print_validation_summary(report: Any, console: Any) -> None:
    """The validation summary, as `tinyml validate` prints it."""
    from tinyml.cli.validate import print_summary

    print_summary(report, console)


def print_lab_summary(lab: Any, console: Any, *, seconds: float | None = None) -> None:
    from rich.markup import escape

    console.print(f"[bold]{lab.name} lab[/bold]: files in {escape(str(lab.out_dir))}")
    if lab.float_accuracy is not None:
        drop = (lab.float_accuracy - (lab.int8_accuracy or 0.0)) * 100
        console.print(f"accuracy on held-out data: float {_fmt_fraction(lab.float_accuracy)}, int8 {_fmt_fraction(lab.int8_accuracy)} (drop {drop:.1f} points)")
    print_deploy_summary(lab.deploy, console, seconds=seconds)
