"""`compare` on the gesture lab's model: what pruning, clustering and QAT buy on a real task.

    .venv/bin/python bench/optimize.py [--out runs/bench_optimize] [--epochs 3] [--train-epochs 12]

Trains the gesture lab's CNN (seglearn's smartwatch data, test subjects held out), runs every
variant of `tinyml compare` on it and prints the table, then checks the issue's expectations:

- QAT int8 accuracy at least PTQ int8 accuracy minus 0.5 points;
- pruned 50% + int8 within 2 points of the float model;
- pruned 50% + int8 gzip bytes at most 0.7 times PTQ's.

Exit code 0 when all hold, 1 when one does not (the table says which). Then, because the gzip
expectation depends on how far pruning goes, a sweep of higher sparsities prints where the saving
reaches 0.7x and what it costs in accuracy, next to the order-0 entropy of the kernels (the bound a
byte-wise coder such as deflate's Huffman stage can reach). Takes about fifteen minutes on two cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench_optimize", help="report folder (overwritten)")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs per technique")
    parser.add_argument("--train-epochs", type=int, default=12, help="epochs to train the float model")
    parser.add_argument("--clusters", type=int, default=16)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--sweep", type=float, nargs="*", default=[0.6, 0.7, 0.8], help="further sparsities to measure gzip bytes at")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")

    from tinyml.optimize.compare import compare_variants
    from tinyml.labs.gesture import load_gesture_data, train_gesture_model
    from tinyml.optimize.weight_stats import kernel_bytes

    started = time.perf_counter()
    data = load_gesture_data()
    print(f"gesture data: {len(data.train)} training windows, {len(data.test)} test windows (subjects {data.test_subjects}), input {data.spec.input_shape}")
    model = train_gesture_model(data, epochs=args.train_epochs)
    trained = time.perf_counter()
    report = compare_variants(
        model,
        data.train,
        data.test,
        sparsity=args.sparsity,
        clusters=args.clusters,
        epochs=args.epochs,
        out_dir=Path(args.out),
        force=True,
        progress=lambda done, total: print(f"  {done}/{total} variants ({time.perf_counter() - trained:.0f} s)", flush=True),
    )
    print()
    print(report.to_markdown())
    print(f"training {trained - started:.0f} s, compare {time.perf_counter() - trained:.0f} s; report in {args.out}")

    float_acc = report.row("float").float_accuracy
    ptq, pruned, qat = report.row("ptq"), report.row("prune"), report.row("qat")
    checks = [
        (f"QAT int8 {qat.int8_accuracy:.1%} >= PTQ int8 {ptq.int8_accuracy:.1%} - 0.5 points", qat.int8_accuracy >= ptq.int8_accuracy - 0.005),
        (f"pruned {args.sparsity:.0%} + int8 {pruned.int8_accuracy:.1%} within 2 points of float {float_acc:.1%}", abs(pruned.int8_accuracy - float_acc) <= 0.02),
        (f"pruned gzip {pruned.gzip_bytes} B <= 0.7 x PTQ gzip {ptq.gzip_bytes} B ({pruned.gzip_bytes / ptq.gzip_bytes:.2f}x)", pruned.gzip_bytes <= 0.7 * ptq.gzip_bytes),
    ]
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    # Where the gzip saving lives: the kernels shrink; the rest of the file (tensor names, scales,
    # zero points, graph) does not, and weighs more the smaller the model.
    print(f"      kernels alone, gzip: pruned {pruned.kernel_gzip_bytes} B vs PTQ {ptq.kernel_gzip_bytes} B ({pruned.kernel_gzip_bytes / ptq.kernel_gzip_bytes:.2f}x)")

    ptq_entropy = entropy_bytes(kernel_bytes(report.tflite["ptq"]))
    sweep = [(args.sparsity, pruned, report.tflite["prune"])]
    for sparsity in args.sweep:
        swept = compare_variants(model, data.train, data.test, variants=("prune",), sparsity=sparsity, epochs=args.epochs)
        sweep.append((sparsity, swept.row("prune"), swept.tflite["prune"]))
    print()
    print(f"Pruning sweep against int8 PTQ (gzip {ptq.gzip_bytes} B, kernels gzip {ptq.kernel_gzip_bytes} B, kernels order-0 entropy {ptq_entropy:.0f} B, int8 accuracy {ptq.int8_accuracy:.1%}):")
    print()
    print("| sparsity | int8 acc | gzip B | gzip x PTQ | kernels gzip x PTQ | kernels entropy x PTQ |")
    print("|---|---|---|---|---|---|")
    for sparsity, row, model_bytes in sweep:
        entropy = entropy_bytes(kernel_bytes(model_bytes))
        print(
            f"| {sparsity:.0%} | {row.int8_accuracy:.1%} | {row.gzip_bytes} | {row.gzip_bytes / ptq.gzip_bytes:.2f} "
            f"| {row.kernel_gzip_bytes / ptq.kernel_gzip_bytes:.2f} | {entropy / ptq_entropy:.2f} |"
        )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0 if all(ok for _, ok in checks) else 1


def entropy_bytes(kernels: bytes) -> float:
    """Order-0 entropy of the bytes, in bytes: what a coder of single bytes (Huffman, as in deflate) can reach at best."""
    counts = np.bincount(np.frombuffer(kernels, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(kernels)
    return float(-(p * np.log2(p)).sum() * len(kernels) / 8)


if __name__ == "__main__":
    sys.exit(main())
