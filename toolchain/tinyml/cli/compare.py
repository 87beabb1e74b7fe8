"""`tinyml compare MODEL --train DATA --eval DATA [--variants ...]`: rendering only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyml.cli.options import add_board, add_fine_tuning, add_keras_model, positive_int

# Kept here as text so `tinyml --help` does not import the stage; checked by compare.check_variants.
VARIANT_NAMES = "float, ptq, prune, cluster, qat, prune+cluster, prune+qat, cluster+qat, prune+cluster+qat"


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("compare", help=summary, description=summary + ". Every int8 variant goes through the same quantize stage.")
    add_keras_model(parser)
    parser.add_argument("--train", required=True, metavar="DATA", help=".npz with x and y to fine-tune the variants on (and calibrate int8)")
    parser.add_argument("--eval", required=True, metavar="DATA", help=".npz with x and y the accuracies are measured on")
    parser.add_argument("--variants", nargs="+", metavar="V", help=f"variants to build (default: all): {VARIANT_NAMES}")
    parser.add_argument("--prune", type=float, default=0.5, metavar="SPARSITY", help="sparsity of the pruned variants (default 0.5)")
    parser.add_argument("--cluster", type=positive_int, default=16, metavar="N", help="centroids of the clustered variants (default 16)")
    add_fine_tuning(parser)
    add_board(parser)
    parser.add_argument("--out", metavar="DIR", help="report folder (default: MODEL's name with _compare, next to it)")
    parser.add_argument("--force", action="store_true", help="overwrite a report that exists")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from tinyml.cli.console import stdout_console
    from tinyml.core.files import check_not_input, check_output_folder
    from tinyml.optimize.compare import DEFAULT_VARIANTS, REPORT_FILES, check_variants, compare_variants
    from tinyml.core.data import load_dataset
    from tinyml.firmware.boards import quantize_options
    from tinyml.optimize.tfkeras_rebuild import tf_keras_module
    from tinyml.optimize.tfmot import load_keras_model

    variants = check_variants(args.variants or DEFAULT_VARIANTS)
    options = quantize_options(args.board)
    tf_keras_module()  # a missing tf-keras/TFMOT is said before any data is read
    model_path = Path(args.model)
    out_dir = Path(args.out) if args.out else model_path.with_name(f"{model_path.stem}_compare")
    # Before the model and the data load: compare_variants checks the files again, with --force.
    check_output_folder(out_dir)
    for name in REPORT_FILES:
        check_not_input(out_dir / name, [model_path, args.train, args.eval])
    train = load_dataset(args.train)
    eval_data = load_dataset(args.eval)
    model = load_keras_model(model_path)
    console = stdout_console()
    with console.status("comparing") as status:
        report = compare_variants(
            model,
            train,
            eval_data,
            variants=variants,
            sparsity=args.prune,
            clusters=args.cluster,
            epochs=args.epochs,
            batch_size=args.batch_size,
            out_dir=out_dir,
            force=args.force,
            progress=lambda done, total: status.update(f"comparing: {done} of {total} variants done"),
            **options,
        )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    table = Table(title=f"Optimization variants, accuracy on {report.eval_samples} samples")
    for column in ("variant", "float acc", "int8 acc", ".tflite B", "gzip B", "kernels gzip B", "TFLM LUT B", "sparsity", "unique/channel", "arena B", "TFLM µs (host)"):
        table.add_column(column, justify="left" if column == "variant" else "right", no_wrap=column == "variant")
    for row in report.rows:
        table.add_row(*row.cells(_pct, _num))
    console.print(table)
    console.print(report.note, soft_wrap=True, style="dim")
    for path in report.files:
        console.print(f"wrote {path}", soft_wrap=True, markup=False)
    return 0


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"
