"""`tinyml boards`: list the board profiles, show one, or pre-fetch what a board builds with."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("boards", help=summary, description=summary)
    parser.set_defaults(run=_list)
    actions = parser.add_subparsers(dest="boards_action", metavar="ACTION")
    show = actions.add_parser("show", help="print one board profile")
    show.add_argument("board_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print the profile as JSON")
    show.set_defaults(run=_show)
    prepare = actions.add_parser(
        "prepare",
        help="download the board's PlatformIO platform, toolchain and libraries while online",
        description="Download everything `tinyml flash` needs for a board (PlatformIO platform, toolchain, "
        "framework, upload tool, TFLM and sensor libraries), so a classroom can then work offline.",
    )
    prepare.add_argument("board_id", metavar="ID")
    prepare.set_defaults(run=_prepare)


def _list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from tinyml.firmware.boards import list_boards
    from tinyml.cli.console import stdout_console

    table = Table(box=None)
    # The id is what people type: never shortened.
    table.add_column("id", no_wrap=True, min_width=max(len(b.id) for b in list_boards()))
    for column in ("name", "MCU", "flash / RAM (KiB)", "TFLM library", "sensors"):
        table.add_column(column, overflow="fold")
    table.add_column("firmware", no_wrap=True)
    for board in list_boards():
        table.add_row(
            board.id,
            board.name,
            board.mcu,
            f"{board.flash_bytes // 1024} / {board.ram_bytes // 1024}",
            f"{board.library.name} {board.library.version}",
            ", ".join(board.sensors) or "-",
            "[red]cannot build[/red]" if board.firmware_problem else "on hardware" if board.verified_on_hardware else "not on hardware yet",
        )
    stdout_console().print(table)
    return 0


def _show(args: argparse.Namespace) -> int:
    import json

    from tinyml.firmware.boards import get_board
    from tinyml.cli.console import stdout_console

    board = get_board(args.board_id)
    console = stdout_console()
    if args.json:
        console.print_json(json.dumps(board.to_dict()))
        return 0
    pio = board.platformio
    rows = [
        ("id", board.id),
        ("name", f"{board.name} ({board.vendor})"),
        ("MCU", f"{board.mcu}, {board.core}, {board.clock_hz / 1e6:g} MHz"),
        ("flash for sketches", f"{board.flash_bytes} bytes (core + TFLM runtime about {board.runtime_flash_bytes})"),
        ("RAM for sketches", f"{board.ram_bytes} bytes (core about {board.runtime_ram_bytes})"),
        ("C++ standard", board.cpp_standard),
        ("serial", f"{board.serial_baud} baud, {board.rx_buffer_bytes}-byte receive buffer"),
        ("USB VID:PID", f"sketch {', '.join(board.usb_ids.sketch)}; bootloader {', '.join(board.usb_ids.bootloader) or '-'}"),
        ("PlatformIO", f"platform {pio.platform}, board {pio.board}, framework {pio.framework}, upload {pio.upload_protocol}"),
        ("TFLM library", f"{board.library.label}, lib_deps {board.library.lib_deps}, header {board.library.header}"),
        ("library limits", _library_limits(board)),
        ("firmware", _firmware_state(board)),
        ("on hardware", "verified" if board.verified_on_hardware else "not verified on real hardware yet"),
        ("profile", str(board.source)),
    ]
    for label, value in rows:
        console.print(f"[bold]{label}:[/bold] ", end="")
        console.print(value, markup=False)
    for kind, sensor in board.sensors.items():
        units = ", ".join(f"{q} in {u}" for q, u in sensor.units.items())
        library = sensor.library or "ships with the board core"
        console.print(f"[bold]sensor {kind}:[/bold] ", end="")
        console.print(f"{sensor.part} ({units}); library {library}", markup=False)
    for quirk in board.quirks:
        console.print("[bold]quirk:[/bold] ", end="")
        console.print(quirk, markup=False)
    return 0


def _library_limits(board) -> str:
    library = board.library
    limits = [
        "per-channel FULLY_CONNECTED: yes"
        if library.per_channel_fully_connected
        else f"no per-channel FULLY_CONNECTED (quantize with --board {board.id} for per-tensor Dense weights)",
        f"{len(library.ops)} builtin ops",
        "builds for " + (", ".join(library.board_defines) if library.board_defines else "any board"),
    ]
    limits += [f"{d.op}: {d.effect}" for d in library.differences]
    return "; ".join(limits)


def _firmware_state(board) -> str:
    problem = board.firmware_problem
    if problem is not None:
        return f"cannot be built: {problem}"
    link = board.firmware_link
    if link is None:
        return "no link check recorded in the profile"
    return f"links (text {link.text_bytes:,} B, data {link.data_bytes:,} B, bss {link.bss_bytes:,} B): {link.how}"


def _prepare(args: argparse.Namespace) -> int:
    from tinyml.firmware.boards import get_board
    from tinyml.cli.console import stderr_console, stdout_console
    from tinyml.device.flash import prepare_board

    board = get_board(args.board_id)
    console = stderr_console()
    prepare_board(board, on_line=lambda line: console.print(line, markup=False, highlight=False))
    stdout_console().print(f"{board.name}: platform, toolchain, upload tool and libraries are installed; builds now work offline.")
    return 0
