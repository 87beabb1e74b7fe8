"""`tinyml rig`: many boards at once: discover them, validate them all, report on the results store."""

from __future__ import annotations

import argparse
import threading

from tinyml.cli.options import fraction, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("rig", help=summary, description=summary + ". See README.md, section Rig.")
    parser.set_defaults(run=lambda args: (parser.print_help(), 2)[1])
    actions = parser.add_subparsers(dest="rig_action", metavar="ACTION")

    discover = actions.add_parser("discover", help="write a rig file from the boards plugged in (by the USB ids in the board profiles)")
    discover.add_argument("--out", default="rig.toml", metavar="RIGFILE", help="the rig file to write (default: rig.toml)")
    discover.add_argument("--profile", metavar="ID", help="only boards of this profile (and use it where two profiles share a USB id)")
    discover.add_argument("--force", action="store_true", help="replace an existing rig file")
    discover.set_defaults(run=_discover)

    run = actions.add_parser("run", help="build once per profile, flash and validate every board in parallel; exit 0 all pass, 6 a board failed, 5 a board could not be validated")
    run.add_argument("rigfile", metavar="RIGFILE")
    run.add_argument("--model", required=True, metavar="MODEL.tflite", help="the int8 model the boards run")
    run.add_argument("--data", required=True, metavar="DATA.npz", help="samples 'x' and optional labels 'y'")
    run.add_argument("--board", action="append", dest="only", metavar="NAME", help="run only this board (repeatable)")
    run.add_argument("--limit", type=positive_int, metavar="N", help="validate only the first N samples")
    run.add_argument("--min-exact", type=fraction, default=1.0, metavar="F", help="least exact-match rate per element against the host reference (default 1.0: the board computes what the host computes)")
    run.add_argument("--min-agreement", type=fraction, metavar="F", help="least top-1 agreement with the host reference")
    run.add_argument("--new", action="store_true", help="start a new run instead of resuming an unfinished one with the same model, data and thresholds")
    run.add_argument("--invoke-timeout", type=positive_float, default=10.0, metavar="S", help="seconds to wait for one inference (default 10)")
    run.add_argument("--reconnect-timeout", type=positive_float, default=10.0, metavar="S", help="seconds a board's port may stay away before it counts as unplugged (default 10)")
    run.add_argument("--library", metavar="DIR", help="the board's TFLM library folder, for boards with emulator = {} (default: $TINYML_TFLM_LIBRARY)")
    run.add_argument("--junit", metavar="FILE", help="also write the JUnit XML of this run")
    run.set_defaults(run=_run)

    report = actions.add_parser("report", help="the class dashboard (HTML) of the latest run, or its JUnit XML for CI")
    report.add_argument("rigfile", metavar="RIGFILE", nargs="?", default="rig.toml", help="the rig file whose store to read (default: rig.toml)")
    report.add_argument("--out", metavar="FILE.html", help="the dashboard to write (default: <rig>-dashboard.html beside the rig file)")
    report.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per board, instead of the dashboard")
    report.add_argument("--run", type=positive_int, dest="run_id", metavar="ID", help="report this run instead of the latest")
    report.set_defaults(run=_report)

    history = actions.add_parser("history", help="one board's results over time, flagging changes while its firmware stayed the same")
    history.add_argument("board", metavar="BOARD")
    history.add_argument("--rig", default="rig.toml", metavar="RIGFILE", help="the rig file whose store to read (default: rig.toml)")
    history.set_defaults(run=_history)

    setup = actions.add_parser("setup-labgrid", help="install labgrid into its own venv in the user cache (it cannot share tinyml's pyserial); needs PyPI once")
    setup.set_defaults(run=_setup_labgrid)


def _discover(args: argparse.Namespace) -> int:
    from tinyml.cli.console import stdout_console
    from tinyml.rig.discover import discover_boards, write_discovered

    found = discover_boards(profile=args.profile)
    path = write_discovered(args.out, found, force=args.force)
    console = stdout_console()
    for item in found:
        console.print(f"{item.board.name}: {item.board.profile} on {item.board.port}", markup=False, soft_wrap=True)
    console.print(f"wrote {path} with {len(found)} board(s); next: tinyml rig run {path} --model MODEL.tflite --data DATA.npz", markup=False, soft_wrap=True)
    return 0


def _run(args: argparse.Namespace) -> int:
    import signal

    from tinyml.cli.console import stderr_console, stdout_console
    from tinyml.rig.report import write_junit
    from tinyml.rig.run import run_rig

    def _terminate(signum, frame):  # noqa: ARG001 - a CI job cancelled with SIGTERM cleans up as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    live = _LiveLines(stderr_console())
    with live:
        result = run_rig(
            args.rigfile,
            args.model,
            args.data,
            min_exact=args.min_exact,
            min_agreement=args.min_agreement,
            limit=args.limit,
            only=args.only,
            resume=not args.new,
            on_status=live.update,
            link_options={"invoke_timeout": args.invoke_timeout, "reconnect_timeout": args.reconnect_timeout},
            library=args.library,
        )
    console = stdout_console()
    console.print(_class_table(result), soft_wrap=True)
    counts = ", ".join(f"{result.count(v)} {v}" for v in ("pass", "fail", "error", "busy") if result.count(v))
    kept = f" ({len(result.kept)} kept from the unfinished run it resumed)" if result.kept else ""
    console.print(f"run {result.run_id}: {counts} in {result.seconds:.0f} s{kept}; store {result.store_path}", markup=False, soft_wrap=True)
    if args.junit:
        console.print(f"JUnit: {write_junit(result.store_path, args.junit, result.run_id)}", markup=False, soft_wrap=True)
    return result.exit_code


class _LiveLines:
    """One live line per board (stage, progress, verdict) on a terminal; one line per finished board in a log."""

    def __init__(self, console) -> None:
        self.console = console
        self.statuses: dict = {}
        self._lock = threading.Lock()
        self._live = None

    def __enter__(self):
        if self.console.is_terminal:
            from rich.live import Live

            self._live = Live(console=self.console, refresh_per_second=4, transient=False, get_renderable=self._render)
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._live is not None:
            self._live.__exit__(*exc_info)

    def update(self, status) -> None:
        with self._lock:
            self.statuses[status.name] = status
        if self._live is None and status.stage == "done":
            kept = " (kept)" if status.kept else ""
            self.console.print(f"{status.name}: {status.verdict}{kept} {status.reason}", markup=False, soft_wrap=True)

    def _render(self):
        from rich.table import Table

        from tinyml.rig.run import STAGES

        with self._lock:
            statuses = list(self.statuses.values())
        # Name, stage, progress and verdict keep their width; the reason takes what is left.
        table = Table(box=None, pad_edge=False, show_header=False, expand=True)
        table.add_column(no_wrap=True, min_width=max([len(s.name) for s in statuses] + [4]))
        table.add_column(no_wrap=True, min_width=max(len(stage) for stage in STAGES))
        table.add_column(no_wrap=True, min_width=7, justify="right")
        table.add_column(no_wrap=True, min_width=5)
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        for s in statuses:
            progress = f"{s.done}/{s.total}" if s.total else ""
            verdict = f"[{_STYLE.get(s.verdict, '')}]{s.verdict}[/]" if s.verdict else ""
            table.add_row(s.name, s.stage, progress, verdict, s.reason)
        return table


_STYLE = {"pass": "bold green", "fail": "bold red", "error": "bold yellow", "busy": "dim"}


def _class_table(result):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"rig run {result.run_id}")
    for column in ("board", "profile", "verdict", "samples", "exact", "accuracy", "p50 µs", "s", "reason"):
        table.add_column(column, justify="right" if column in ("samples", "exact", "accuracy", "p50 µs", "s") else "left", no_wrap=column != "reason", overflow="fold")
    for r in result.results.values():
        table.add_row(
            escape(r.board),
            r.profile,
            f"[{_STYLE.get(r.verdict, '')}]{r.verdict}[/]",
            "" if r.samples is None else str(r.samples),
            "" if r.exact is None else f"{r.exact:.2%}",
            "" if r.accuracy is None else f"{r.accuracy:.2%}",
            "" if r.latency_p50_us is None else f"{r.latency_p50_us:.0f}",
            "" if r.seconds is None else f"{r.seconds:.1f}",
            escape(r.reason),
        )
    return table


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tinyml.cli.console import stdout_console
    from tinyml.rig.report import write_dashboard, write_junit
    from tinyml.rig.rigfile import load_rig

    rig = load_rig(args.rigfile)
    if args.junit:
        path = write_junit(rig.store_path, args.junit, args.run_id)
    else:
        path = write_dashboard(rig.store_path, args.out or Path(rig.path).with_name(f"{Path(rig.path).stem}-dashboard.html"), args.run_id)
    stdout_console().print(f"wrote {path}", markup=False, soft_wrap=True)
    return 0


def _history(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from tinyml.cli.console import stdout_console
    from tinyml.rig.report import board_history
    from tinyml.rig.rigfile import load_rig

    rig = load_rig(args.rig)
    entries = board_history(rig.store_path, args.board)
    table = Table(title=f"board {args.board}")
    for column in ("run", "time", "verdict", "exact", "accuracy", "p50 µs", "firmware", "changed while the firmware did not"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        r = entry.result
        table.add_row(
            str(entry.run.id),
            r.recorded,
            f"[{_STYLE.get(r.verdict, '')}]{r.verdict}[/]",
            "" if r.exact is None else f"{r.exact:.2%}",
            "" if r.accuracy is None else f"{r.accuracy:.2%}",
            "" if r.latency_p50_us is None else f"{r.latency_p50_us:.0f}",
            r.firmware_hash or "",
            f"[bold red]{escape(entry.changed)}[/]" if entry.changed else "",
        )
    console = stdout_console()
    console.print(table)
    flagged = sum(1 for e in entries if e.changed)
    if flagged:
        console.print(f"{flagged} result(s) changed while the firmware, model and data did not: look at the board, its cable or its library", style="bold red", markup=False, soft_wrap=True)
    return 0


def _setup_labgrid(args: argparse.Namespace) -> int:  # noqa: ARG001 - the parser's signature
    from tinyml.cli.console import stdout_console
    from tinyml.rig.labgrid import ensure_labgrid

    stdout_console().print(f"labgrid is ready: {ensure_labgrid()}", markup=False, soft_wrap=True)
    return 0
