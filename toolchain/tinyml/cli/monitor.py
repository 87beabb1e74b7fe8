"""`tinyml monitor`: the board's live predictions, readably, and INFO on request."""

from __future__ import annotations

import argparse

from tinyml.cli.options import positive_float, positive_int


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help=summary,
        description=summary + ". Type help, info or run and Enter to send a command; Ctrl-C quits.",
    )
    parser.add_argument("--port", required=True, help="serial device or pyserial URL (as for validate)")
    parser.add_argument("--info", action="store_true", help="ask the board for INFO first")
    parser.add_argument("--run-every", type=positive_float, metavar="S", help="ask for one inference every S seconds (boards without a sensor app, the virtual board)")
    parser.add_argument("--duration", type=positive_float, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    parser.add_argument("--baud", type=positive_int, default=115200, help="baud rate of a UART link (default 115200)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import sys
    import threading
    import time

    from tinyml.cli.console import stdout_console
    from tinyml.device.monitor import Monitor

    console = stdout_console()
    with Monitor(args.port, args.baud) as monitor:
        monitor.wake()
        if args.info:
            monitor.command("info")
        if sys.stdin is not None and sys.stdin.isatty():
            # Typed commands go to the board; the reader thread dies with the process.
            def forward() -> None:
                for line in sys.stdin:
                    monitor.command(line)

            threading.Thread(target=forward, name="tinyml-monitor-stdin", daemon=True).start()
        next_run = time.monotonic() if args.run_every else None
        end = None if args.duration is None else time.monotonic() + args.duration
        try:
            while end is None or time.monotonic() < end:
                for line in monitor.lines(duration=0.1):
                    _show(console, line)
                if next_run is not None and time.monotonic() >= next_run:
                    monitor.command("run")
                    next_run += args.run_every
        except KeyboardInterrupt:
            pass
    return 0


def _show(console, line: str) -> None:
    from rich.text import Text

    if line.startswith("prediction:"):
        console.print(Text(line, style="bold green"))
    elif line.startswith(("unknown command", "run: ")):
        console.print(Text(line, style="yellow"))
    else:
        console.print(Text(line))
