"""`tinyml flash`: build a rendered project and upload it to the board through PlatformIO."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("flash", help=summary, description=summary)
    parser.add_argument("project", metavar="DIR", help="the project `tinyml render` wrote")
    parser.add_argument("--port", default="auto", help="serial port of the board, or `auto` to find it by its USB id (default)")
    parser.add_argument("--board", metavar="ID", help="board profile id (default: the one the project was rendered for)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from tinyml.cli.console import stderr_console, stdout_console
    from tinyml.device.flash import flash_project

    progress = stderr_console()
    result = flash_project(
        args.project,
        port=args.port,
        board=args.board,
        on_line=lambda line: progress.print(line, markup=False, highlight=False, style="dim"),
    )
    stdout_console().print(
        f"flashed {result.project_dir} to {result.board_id} in {result.seconds:.0f} s; the board is on {result.port}",
        markup=False,
    )
    return 0
