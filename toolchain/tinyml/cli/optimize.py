"""`tinyml optimize MODEL --train DATA [--prune S] [--cluster N] [--qat]`: rendering only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyml.cli.options import add_board, add_fine_tuning, add_keras_model, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser(
        "optimize",
        help=summary,
        description=summary + ". Techniques run in TFMOT's collaborative order: prune, then cluster, then QAT; "
        "the result goes through the same full-int8 quantize stage as `tinyml quantize`.",
    )
    add_keras_model(parser)
    parser.add_argument("--train", required=True, metavar="DATA", help=".npz with x and y (class indices) to fine-tune on; it also calibrates int8")
    parser.add_argument("--val", metavar="DATA", help=".npz with x and y: float and int8 accuracy of the result")
    parser.add_argument("--prune", type=float, metavar="SPARSITY", help="magnitude pruning to this fraction of zero weights, in (0, 1), e.g. 0.5")
    parser.add_argument("--cluster", type=positive_int, metavar="N", help="weight clustering to N centroids per kernel (2..256), e.g. 16")
    parser.add_argument("--qat", action="store_true", help="quantization-aware training (pruning/cluster-preserving after --prune/--cluster)")
    add_fine_tuning(parser, epochs_note="; pruning needs 2 or more")
    parser.add_argument("--learning-rate", type=positive_float, metavar="LR", help="Adam learning rate (default: 1e-3 pruning, 1e-4 clustering and QAT)")
    add_board(parser)
    parser.add_argument("--out", metavar="DIR", help="output folder (default: MODEL's name with _optimized, next to it)")
    parser.add_argument("--force", action="store_true", help="overwrite outputs that exist")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from tinyml.cli.console import stdout_console
    from tinyml.core.data import load_dataset
    from tinyml.firmware.boards import quantize_options
    from tinyml.core.files import atomic_write_text, check_can_write
    from tinyml.optimize.tfmot import OptimizeSettings, load_keras_model, optimize_model
    from tinyml.optimize.tfkeras_rebuild import tf_keras_module

    settings = OptimizeSettings(
        sparsity=args.prune, clusters=args.cluster, qat=args.qat, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate
    )
    settings.check()
    tf_keras_module()  # a missing tf-keras/TFMOT is said before any data is read
    model_path = Path(args.model)
    out_dir = Path(args.out) if args.out else model_path.with_name(f"{model_path.stem}_optimized")
    tflite_path = out_dir / f"{model_path.stem}_{settings.name}_int8.tflite"
    report_path = out_dir / f"{model_path.stem}_{settings.name}.json"
    for path in (tflite_path, report_path):
        check_can_write(path, args.force, inputs=[model_path, args.train, args.val])
    train = load_dataset(args.train)
    val = load_dataset(args.val) if args.val else None
    model = load_keras_model(model_path)

    console = stdout_console()
    with console.status(f"optimizing: {settings.name}") as status:
        result = optimize_model(
            model,
            train,
            settings,
            val=val,
            out=tflite_path,
            force=args.force,
            progress=lambda done, total: status.update(f"optimizing: {settings.name}, epoch {done} of {total}"),
            **quantize_options(args.board),
        )
    report = {"model": str(model_path), "tflite": str(tflite_path), **result.to_dict()}
    atomic_write_text(report_path, json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    console.print(f"[bold]{escape(str(tflite_path))}[/bold]  {settings.name}  {len(result.tflite_bytes):,} B full-integer int8")
    if result.float_accuracy is not None:
        console.print(f"  accuracy  float {result.float_accuracy:.2%}, int8 {result.quantized.int8_accuracy:.2%} on {result.quantized.eval_samples} samples")
    console.print(f"  sparsity  {result.float_sparsity:.1%} of float kernel weights, {result.int8_sparsity:.1%} of int8 kernel weights")
    for kernel in result.kernels:
        console.print(f"  kernel    {kernel.name}: {kernel.elements} weights, {kernel.sparsity:.1%} zero, at most {kernel.max_unique_per_channel} distinct values per channel", markup=False)
    console.print(f"  report    {report_path}", markup=False)
    console.print("  [dim]a pruned or clustered .tflite is not smaller on its own: run `tinyml compare` to see gzip and TFLM LUT sizes[/dim]", soft_wrap=True)
    return 0
