"""`tinyml dataset stats DIR`: what a recorded dataset holds, per label and per student."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("dataset", help=summary, description=summary)
    actions = parser.add_subparsers(dest="dataset_action", metavar="ACTION", required=True)
    stats = actions.add_parser("stats", help="takes and seconds per label and per student, clipping, incomplete takes")
    stats.add_argument("folder", metavar="DIR", help="the folder `tinyml capture --out` wrote")
    stats.add_argument("--json", action="store_true", help="print the numbers as JSON")
    stats.set_defaults(run=_stats)


def _stats(args: argparse.Namespace) -> int:
    import json

    from rich.table import Table

    from tinyml.cli.console import stdout_console
    from tinyml.features.recordings import dataset_stats

    stats = dataset_stats(args.folder)
    console = stdout_console()
    if args.json:
        console.print_json(json.dumps(stats.to_dict()))
        return 0
    info = stats.info
    console.print(
        f"{args.folder}: {stats.takes} takes of {info.kind} at {info.rate_hz:g} Hz from board {info.board}" + (" (mixed rates or boards allowed)" if info.mixed else ""),
        markup=False,
        soft_wrap=True,
    )
    for title, groups in (("label", stats.labels), ("student", stats.students)):
        table = Table(box=None)
        for column in (title, "takes", "seconds", "takes with clipping"):
            table.add_column(column, justify="left" if column == title else "right")
        for name, group in groups.items():
            table.add_row(name, str(group.takes), f"{group.seconds:.1f}", str(group.clipped_takes) if group.clipped_takes else "-")
        console.print(table)
    console.print(f"boards (USB serial): {', '.join(f'{b} ({n})' for b, n in stats.boards.items()) or 'none'}", markup=False, soft_wrap=True)
    if stats.incomplete:
        console.print(f"{stats.incomplete} incomplete take(s) (metadata without data, e.g. a full disk): they are ignored; delete their .json files", markup=False, style="yellow")
    clipped = sum(g.clipped_takes for g in stats.labels.values())
    if clipped:
        console.print(f"{clipped} take(s) reach the sensor's full scale: move more gently, or hold the board further from your mouth", markup=False, style="yellow")
    if len(stats.students) < 2:
        console.print("the labs hold out a whole student for testing: record a second student", markup=False, style="yellow")
    return 0
