"""`tinyml inspect MODEL.tflite [--board BOARD] [--json]`: rendering only; the logic is tinyml.model.inspect."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help=summary,
        description=summary
        + ". Exits 0 when the model can go to the board (full int8, every op in TFLM, fits), 3 when it cannot.",
    )
    parser.add_argument("model", metavar="MODEL.tflite", help="the .tflite model (as written by `tinyml quantize`)")
    parser.add_argument("--board", metavar="BOARD", help="board profile id: check flash and RAM against it")
    parser.add_argument("--json", action="store_true", help="print the facts as JSON on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tinyml.core.errors import ModelError
    from tinyml.model.inspect import check_fits, inspect_model

    board = None
    if args.board:
        from tinyml.firmware.boards import get_board

        board = get_board(args.board)
    report = inspect_model(args.model, board=board)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _render(report)
    try:
        check_fits(report)
    except ModelError as exc:
        if args.json:
            # The JSON already says why; the exit code tells a script the model cannot go.
            return exc.exit_code
        raise
    return 0


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def _render(report) -> None:
    from rich.markup import escape
    from rich.table import Table

    from tinyml.model import ops
    from tinyml.cli.console import stdout_console
    from tinyml.model.inspect import ARENA_FIXED_MARGIN_BYTES

    console = stdout_console()
    facts = report.facts
    console.print(f"[bold]{escape(report.source)}[/bold]  model id {facts.short_hash}  {facts.size_bytes} bytes  schema v{facts.schema_version}")
    for kind, tensors in (("input", facts.inputs), ("output", facts.outputs)):
        for t in tensors:
            quant = f"scale {t.scale:.6g}, zp {t.zero_point}" if t.scales else "not quantized"
            console.print(f"  {kind:<6} {t.dtype} {list(t.shape)}  {quant}")
    console.print(
        f"  {len(facts.operators)} operators, {len(facts.tensors)} tensors, {report.parameter_count:,} parameters, "
        f"{report.macs:,} MACs per inference, {'full int8' if report.is_full_int8 else '[red]not full int8[/red]'}"
    )

    table = Table(title="operators", title_justify="left")
    table.add_column("op")
    table.add_column("count", justify="right")
    table.add_column("TFLM int8")
    table.add_column("resolver method")
    unsupported = {u.op: u for u in report.unsupported}
    for op, count in report.op_counts.items():
        problem = unsupported.get(op)
        method = ops.OPS[op].resolver_method if op in ops.OPS else "-"
        table.add_row(escape(op), str(count), "[red]no[/red]" if problem else "yes", method)
    console.print(table)
    console.print(_tensor_table(facts))
    for u in report.unsupported:
        console.print(f"  [red]{escape(u.op)}[/red]: {escape(u.reason)}. Change: {escape(u.fix)}", soft_wrap=True)

    if report.arena_bytes is not None:
        console.print(
            f"TFLM runtime: loads and runs. Tensor arena: {report.arena_bytes:,} bytes measured (smallest that allocates); "
            f"firmware arena {report.firmware_arena_bytes:,} bytes (+ {report.scratch_margin_bytes:,} CMSIS-NN scratch estimate "
            f"+ {ARENA_FIXED_MARGIN_BYTES} fixed margin, 16-aligned)",
            soft_wrap=True,
        )
    else:
        console.print(f"TFLM runtime: [red]cannot run the model[/red]: {escape(str(report.tflm_error))}", soft_wrap=True)

    if report.library is not None:
        if report.library_problems:
            for problem in report.library_problems:
                console.print(f"Board library: [red]{escape(problem.problem)}[/red]. Change: {escape(problem.fix)}", soft_wrap=True)
        else:
            console.print(f"Board library: {escape(report.library)} has every op of the model", soft_wrap=True)
        for difference in report.library_differences:
            console.print(f"  computed otherwise than the TFLM runtime: {escape(difference)}", soft_wrap=True)

    fit = report.fit
    if fit is not None:
        verdict = "[green]yes[/green]" if fit.fits else "[red]no[/red]"
        console.print(f"Fits {escape(fit.board_name)} ({fit.board_id}): {verdict}")
        console.print(
            f"  flash {_kib(fit.flash_needed)} of {_kib(fit.flash_available)} (headroom {_kib(fit.flash_headroom)}): "
            f"model {_kib(fit.model_flash_bytes)} + kernels ~{_kib(fit.kernel_flash_bytes)} + runtime ~{_kib(fit.runtime_flash_bytes)}",
            soft_wrap=True,
        )
        console.print(
            f"  RAM   {_kib(fit.ram_needed)} of {_kib(fit.ram_available)} (headroom {_kib(fit.ram_headroom)}): "
            f"arena {_kib(fit.arena_ram_bytes)} + runtime ~{_kib(fit.runtime_ram_bytes)}",
            soft_wrap=True,
        )


def _tensor_table(facts):
    from rich.markup import escape
    from rich.table import Table

    inputs = {t.index for t in facts.inputs}
    outputs = {t.index for t in facts.outputs}
    table = Table(title="tensors", title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("name", overflow="ellipsis", no_wrap=True, max_width=24)
    table.add_column("shape", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("scale, zero point", no_wrap=True)
    for t in facts.tensors:
        kind = "input" if t.index in inputs else "output" if t.index in outputs else "constant" if t.is_constant else "activation"
        if len(t.scales) > 1:
            quant = f"{len(t.scales)} per channel"
        elif t.scales:
            quant = f"{t.scale:.4g}, {t.zero_point}"
        else:
            quant = "-"
        table.add_row(str(t.index), kind, escape(t.name), str(list(t.shape)), t.dtype, quant)
    return table
