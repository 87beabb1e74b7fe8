"""`tinyml validate`: the board's outputs against the host's, sample by sample, with a report."""

from __future__ import annotations

import argparse

from tinyml.cli.options import fraction, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser(
        "validate",
        help=summary,
        description=summary + ". Exit code 6 when a threshold fails, so a rig's CI can gate on it.",
    )
    parser.add_argument("--port", required=True, help="serial device, or a pyserial URL: socket://HOST:PORT (ser2net), rfc2217://HOST:PORT, loop://")
    parser.add_argument("--model", required=True, metavar="MODEL.tflite", help="the int8 model the board runs")
    parser.add_argument("--data", required=True, metavar="DATA.npz", help="samples 'x' (float or int8) and optional labels 'y'")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="validate only the first N samples")
    parser.add_argument("--report", default="validation-report", metavar="DIR", help="folder for samples.jsonl, report.json and report.html (default: validation-report)")
    parser.add_argument("--min-exact", type=fraction, metavar="F", help="least exact-match rate per element against the host reference, e.g. 1.0")
    parser.add_argument("--min-agreement", type=fraction, metavar="F", help="least top-1 agreement with the host reference, e.g. 0.99")
    parser.add_argument("--float-model", metavar="MODEL", help="the float model (.keras/.h5 or float .tflite), for host float accuracy")
    parser.add_argument("--resume", action="store_true", help="continue the run recorded in --report DIR")
    parser.add_argument("--force", action="store_true", help="start over, replacing the results in --report DIR")
    parser.add_argument("--baud", type=positive_int, default=115200, help="baud rate of a UART link (default 115200)")
    parser.add_argument("--library", metavar="DIR", help="the board's TFLM library folder (Arduino_TensorFlowLite as PlatformIO downloads it): the verdict compares the device with it, built for the host (default: $TINYML_TFLM_LIBRARY, else the copy in --project)")
    parser.add_argument("--project", metavar="DIR", help="the rendered PlatformIO project whose downloaded library is the board's (default: none)")
    parser.add_argument("--invoke-timeout", type=positive_float, default=10.0, metavar="S", help="seconds to wait for the first inference (default 10)")
    parser.add_argument("--target", metavar="TEXT", help="what runs the firmware, for the report and the verdict (e.g. what `tinyml emulate` printed)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from tinyml.cli.console import stderr_console, stdout_console
    from tinyml.validation.report import ThresholdFailed
    from tinyml.validation.validate import validate_device

    with Progress(TextColumn("validating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=stderr_console(), transient=True, disable=not stderr_console().is_terminal) as bar:
        task = bar.add_task("validate", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = validate_device(
                args.port,
                args.model,
                args.data,
                limit=args.limit,
                report_dir=args.report,
                min_exact=args.min_exact,
                min_agreement=args.min_agreement,
                resume=args.resume,
                force=args.force,
                float_model=args.float_model,
                progress=progress,
                link_options={"baudrate": args.baud, "invoke_timeout": args.invoke_timeout},
                library=args.library,
                project_dir=args.project,
                target=args.target,
            )
        except ThresholdFailed as failed:
            bar.stop()
            print_summary(failed.report, stdout_console())
            raise
    print_summary(report, stdout_console())
    return 0


def print_summary(report, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    on = report.target or report.device.get("board_id")
    table = Table(title=escape(f"{report.samples} samples on {on} ({report.port}), model {report.model_hash}"))
    table.add_column("", no_wrap=True)
    for column in ("exact", "max|Δ|", "MAE", "RMSE", "rel L2", "cosine", "top-1"):
        table.add_column(column, justify="right", no_wrap=True)
    rows = (("device:board library", report.device_vs_board_library), ("device:TFLite", report.device_vs_reference), ("device:TFLM", report.device_vs_tflm), ("TFLM:TFLite", report.tflm_vs_reference))
    for title, c in rows:
        if c is not None:
            marker = " (verdict)" if c is report.verdict else ""
            table.add_row(title + marker, f"{c.exact_match:.2%}", str(c.max_abs_lsb), f"{c.mae:.1e}", f"{c.rmse:.1e}", f"{c.relative_l2:.1e}", f"{c.cosine:.4f}", f"{c.top1_agreement:.1%}")
    console.print(table)
    console.print(f"reference: {report.reference['name']}", markup=False, soft_wrap=True)
    if report.device_vs_board_library is None:
        console.print(f"  {report.reference['note']}", markup=False, soft_wrap=True)
    accuracy = report.accuracy
    if accuracy.get("device") is not None:
        runs = (("host float", accuracy["host_float"]), ("host int8", accuracy["host_int8"]), ("TFLM", accuracy["tflm"]), ("board library", accuracy["board_library"]), ("device", accuracy["device"]))
        parts = [f"{name} {value:.2%}" for name, value in runs if value is not None]
        console.print("accuracy: " + ", ".join(parts), markup=False, soft_wrap=True)
    lat, rtt = report.latency_us, report.round_trip_ms
    console.print(f"device latency p50 {lat.p50:.0f} µs, p95 {lat.p95:.0f} µs, max {lat.max:.0f} µs; host round trip p50 {rtt.p50:.2f} ms, p95 {rtt.p95:.2f} ms", markup=False, soft_wrap=True)
    link = report.link
    if link.get("retries") or link.get("reconnects"):
        console.print(f"link: {link['retries']} retries, {link['reconnects']} reconnects, {link['bad_frames']} bad frames", markup=False, soft_wrap=True)
    if report.report_dir:
        console.print(f"report: {report.report_dir}/report.html", markup=False, soft_wrap=True)
    if report.passed:
        on = f" on the {report.target}" if report.target else ""
        console.print(f"[bold green]PASSED[/]{on}" if any(v is not None for v in report.thresholds.values()) else f"done{on} (no thresholds set)", soft_wrap=True)
    else:
        for failure in report.failures:
            console.print(f"FAILED: {failure}", style="bold red", markup=False, soft_wrap=True)
