"""`tinyml capture`: record takes from a board running the capture app into a dataset folder."""

from __future__ import annotations

import argparse
from collections import deque

from tinyml.cli.options import finite_float, non_negative_int, positive_float, positive_int

SPARK = "▁▂▃▄▅▆▇█"
PLOT_WIDTH = 60
METER_WIDTH = 30


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser(
        "capture",
        help=summary,
        description=summary + ". Flash the capture app first: tinyml render --app capture --board ID --out DIR, then tinyml flash DIR.",
    )
    parser.add_argument("--port", required=True, help="the board's serial port (or a virtual board's, see `tinyml virtual-board --imu/--audio`)")
    parser.add_argument("--label", required=True, help="the class these takes show, e.g. wave or yes (letters, digits, _ - .)")
    parser.add_argument("--out", default="dataset", metavar="DIR", help="the dataset folder (default: dataset)")
    parser.add_argument("--student", default=None, help="who performs the takes; the labs hold out whole students (default: your login name)")
    parser.add_argument("--sensor", choices=("auto", "imu", "microphone"), default="auto", help="what to record (default: auto, the IMU if the board has one)")
    parser.add_argument("--seconds", type=positive_float, default=None, help="length of a take (default: 2 for the IMU, 1 for the microphone)")
    parser.add_argument("--takes", type=positive_int, default=5, help="how many takes (default: 5)")
    parser.add_argument("--trigger", type=finite_float, default=None, metavar="LEVEL", help="start each take when the level crosses LEVEL: g of motion beyond gravity (IMU, e.g. 0.3) or dBFS (microphone, e.g. -30)")
    parser.add_argument("--countdown", type=non_negative_int, default=3, metavar="S", help="seconds of countdown before each take (default: 3)")
    parser.add_argument("--allow-mixed", action="store_true", help="add takes of another rate or board type to an existing dataset")
    parser.add_argument("--yes", action="store_true", help="keep every take without asking (the default when input is not a terminal)")
    parser.set_defaults(run=_run)


def _sparkline(values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * len(SPARK)))] for v in values)


def _meter(share: float) -> str:
    filled = max(0, min(METER_WIDTH, round(share * METER_WIDTH)))
    return "█" * filled + "·" * (METER_WIDTH - filled)


class CaptureView:
    """The live terminal view of a session: countdown, level meter and a plot of the last samples."""

    def __init__(self, console, total: int, interactive: bool) -> None:
        from rich.live import Live

        self.console = console
        self.total = total
        self.interactive = interactive
        self.kind = "imu"
        self.status = ""
        self.level = 0.0
        self.share = 0.0
        self.traces: dict[str, deque[float]] = {}
        self.live = Live(console=console, refresh_per_second=12, transient=True) if console.is_terminal else None

    def __enter__(self) -> CaptureView:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.live is not None:
            self.live.stop()

    def _render(self):
        from rich.console import Group
        from rich.text import Text

        lines = [Text(self.status, style="bold")]
        if self.kind == "imu":
            lines.append(Text(f"motion {_meter(self.level / 2.0)} {self.level:5.2f} g"))
        else:
            lines.append(Text(f"sound  {_meter((self.level + 60.0) / 60.0)} {self.level:6.1f} dBFS"))
        lines.append(Text(f"take   {_meter(self.share)} {self.share * 100:3.0f}%"))
        lines += [Text(f"{name:>6} {_sparkline(list(trace))}") for name, trace in self.traces.items()]
        return Group(*lines)

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def countdown(self, number: int, left: int) -> None:
        self.status, self.share = f"take {number}/{self.total} in {left} ...", 0.0
        if self.live is None:
            self.console.print(self.status, markup=False)
        self._refresh()

    def waiting(self, number: int, level: float) -> None:
        self.status, self.level = f"take {number}/{self.total}: waiting for the trigger", level
        self._refresh()

    def samples(self, number: int, values, level: float, share: float) -> None:
        import numpy as np

        self.status, self.level, self.share = f"take {number}/{self.total}: recording", level, share
        if values.ndim == 2 and values.shape[1] == 6:
            self.kind = "imu"
            columns = {"ax": values[:, 0], "ay": values[:, 1], "az": values[:, 2], "|gyro|": np.linalg.norm(values[:, 3:], axis=1)}
        else:
            self.kind = "microphone"
            columns = {"sound": [float(np.max(np.abs(values.astype(np.int32))))]}  # one envelope point per frame
        for name, column in columns.items():
            trace = self.traces.setdefault(name, deque(maxlen=PLOT_WIDTH))
            trace.extend(float(v) for v in column)
        self._refresh()

    def saved(self, number: int, path, take) -> None:
        self.console.print(f"take {number}: {take.samples} samples ({take.seconds:.2f} s at {take.rate_hz:g} Hz) -> {path}", markup=False, soft_wrap=True)

    def lost(self, number: int, reason: str) -> None:
        self.console.print(f"{reason}: not saved", markup=False, soft_wrap=True, style="yellow")

    def decide(self, number: int, values, take) -> str:
        if not self.interactive:
            return "keep"
        if self.live is not None:
            self.live.stop()
        try:
            answer = self.console.input(f"take {number}: Enter keeps it, r records it again, q keeps it and stops: ").strip().lower()
        finally:
            if self.live is not None:
                self.live.start()
        return {"r": "redo", "q": "stop"}.get(answer[:1], "keep")


def _run(args: argparse.Namespace) -> int:
    import getpass
    import sys

    from tinyml.cli.console import stdout_console
    from tinyml.device.capture import CaptureEvents, CaptureSettings, record_session

    seconds = args.seconds if args.seconds is not None else (1.0 if args.sensor == "microphone" else 2.0)
    settings = CaptureSettings(
        label=args.label,
        student=args.student or getpass.getuser(),
        sensor=args.sensor,
        seconds=seconds,
        takes=args.takes,
        trigger=args.trigger,
        countdown_s=args.countdown,
        allow_mixed=args.allow_mixed,
    )
    settings.check()
    console = stdout_console()
    interactive = not args.yes and sys.stdin.isatty() and console.is_terminal
    with CaptureView(console, settings.takes, interactive) as view:
        events = CaptureEvents(countdown=view.countdown, waiting=view.waiting, samples=view.samples, saved=view.saved, lost=view.lost, decide=view.decide)
        summary = record_session(args.port, args.out, settings, events)
    console.print(
        f"{len(summary.saved)} take(s) of '{settings.label}' by {settings.student} saved in {summary.dataset} "
        f"({summary.sensor} at {summary.rate_hz:g} Hz, board {summary.board}{', serial ' + summary.serial if summary.serial else ''})"
        + (f"; {len(summary.lost)} lost" if summary.lost else "")
        + (f"; {summary.redone} recorded again" if summary.redone else ""),
        markup=False,
        soft_wrap=True,
    )
    console.print(f"next: tinyml dataset stats {summary.dataset}", markup=False)
    return 0 if summary.saved or not summary.lost else 5
