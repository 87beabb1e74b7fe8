"""`tinyml render`: a PlatformIO project of TFLM firmware for a board, a model and an app."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("render", help=summary, description=summary)
    parser.add_argument("--board", required=True, metavar="ID", help="board profile id (see `tinyml boards`)")
    parser.add_argument("--model", metavar="MODEL.tflite", help="the int8 model (not for an app that runs none, such as capture)")
    parser.add_argument("--labels", metavar="FILE", help="class labels, one per line (UTF-8)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the project folder")
    parser.add_argument("--app", default="validation", help="firmware app (default: validation, the model behind the serial protocol)")
    parser.add_argument("--force", action="store_true", help="overwrite files you added or edited in DIR")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from tinyml.cli.console import stdout_console
    from tinyml.core.data import load_labels
    from tinyml.firmware.apps import default_app_context
    from tinyml.firmware.render import render_project

    labels = load_labels(args.labels) if args.labels else None
    result = render_project(args.board, args.model, args.out, labels=labels, app=args.app, app_context=default_app_context(args.app), force=args.force)
    console = stdout_console()
    console.print(
        f"rendered {result.project_dir} ({result.app} app, board {result.board_id}, {'model ' + result.model_hash if result.model_hash else 'no model'}): "
        f"{len(result.written)} files written, {len(result.unchanged)} unchanged"
        + (f", {len(result.removed)} removed" if result.removed else ""),
        markup=False,
    )
    if result.model_hash:
        console.print(f"arena {result.arena_bytes} bytes; ops: {', '.join(m.removeprefix('Add') for m in result.resolver_methods)}", markup=False)
    console.print(f"next: tinyml flash {result.project_dir} --port auto", markup=False)
    return 0
