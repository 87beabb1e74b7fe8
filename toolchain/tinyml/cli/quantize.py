"""`tinyml quantize MODEL --calibration DATA [--eval DATA] [--board ID] [--out FILE]`: rendering only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyml.cli.options import add_board


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("quantize", help=summary, description=summary + ". Refuses hybrid or float results; writes nothing then.")
    parser.add_argument("model", metavar="MODEL", help="trained Keras model: .keras, legacy .h5, or a SavedModel folder")
    parser.add_argument("--calibration", required=True, metavar="DATA", help="representative samples, .npz (x, optional y) or .npy; 100-500 is plenty")
    parser.add_argument("--eval", metavar="DATA", help=".npz with x and y: float and int8 accuracy on the same samples")
    add_board(parser)
    parser.add_argument("--out", metavar="FILE", help="output .tflite (default: MODEL's name with _int8.tflite, next to it)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.set_defaults(run=run)


def default_out(model: str) -> Path:
    path = Path(model.rstrip("/\\"))
    return path.with_name(f"{path.stem if path.suffix else path.name}_int8.tflite")


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from tinyml.cli.console import stdout_console
    from tinyml.core.data import load_dataset
    from tinyml.firmware.boards import quantize_options
    from tinyml.model.quantize import quantize_model

    options = quantize_options(args.board)
    calibration = load_dataset(args.calibration)
    eval_data = load_dataset(args.eval) if args.eval else None
    out = Path(args.out) if args.out else default_out(args.model)
    if args.quiet or eval_data is None:
        result = quantize_model(args.model, calibration, eval_data=eval_data, out=out, force=args.force, **options)
    else:
        from rich.progress import Progress

        from tinyml.cli.console import stderr_console

        with Progress(console=stderr_console(), transient=True, disable=not stderr_console().is_terminal) as bar:
            task = bar.add_task("evaluating float and int8", total=None)
            result = quantize_model(
                args.model,
                calibration,
                eval_data=eval_data,
                out=out,
                force=args.force,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                **options,
            )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    console = stdout_console()
    console.print(f"[bold]{escape(str(result.out))}[/bold]  model id {result.facts.short_hash}  full-integer int8")
    console.print(
        f"  size   float {result.float_size_bytes:,} B -> int8 {result.int8_size_bytes:,} B  (float/int8 = {result.size_ratio:.2f}x)",
        markup=False,
    )
    console.print("  ops    " + ", ".join(f"{op} x{n}" for op, n in result.ops.items()), markup=False)
    for kind, t in (("input", result.input), ("output", result.output)):
        console.print(f"  {kind:<6} {t.dtype} {list(t.shape)}  scale {t.scale:.6g}  zero point {t.zero_point}", markup=False)
    console.print(f"  calibrated on {result.calibration_samples} samples", markup=False)
    if result.eval_samples:
        line = f"  eval   {result.eval_samples} samples: "
        if result.float_accuracy is not None:
            line += f"accuracy float {result.float_accuracy:.2%}, int8 {result.int8_accuracy:.2%} (TFLite reference, no XNNPACK); "
        line += f"float and int8 agree on {result.top1_agreement:.2%} of predictions"
        console.print(line, soft_wrap=True, markup=False)
    if not result.per_channel_dense:
        line = f"  Dense  weights per tensor: board {args.board}'s TFLM library has no per-channel FULLY_CONNECTED"
        if result.per_channel_int8_accuracy is not None and result.int8_accuracy is not None:
            change = (result.int8_accuracy - result.per_channel_int8_accuracy) * 100
            line += (
                f"; int8 accuracy per tensor {result.int8_accuracy:.2%}, per channel {result.per_channel_int8_accuracy:.2%} "
                f"({change:+.1f} points for per tensor)"
            )
        console.print(line, soft_wrap=True, markup=False)
    return 0
