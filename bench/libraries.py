"""Board TFLM libraries side by side, built for the host in one run; prints a table, asserts nothing.

    .venv/bin/python bench/libraries.py PINNED_DIR CANDIDATE_DIR [--samples N] [--cached]

For each library folder (e.g. ../shared/third_party/Arduino_TensorFlowLite and
Chirale_TensorFlowLite): the host build's wall time (in a fresh temporary cache, so both are
built now under the same load; --cached uses the user's cache and shows the time recorded when
the build was made), the builtin ops its AllOpsResolver registers, and for each single-op
model of tests/modelzoo.py the exact-match rate against the TFLM Python runtime (with the
largest difference in LSB) and the host arena (arena_used_bytes with 64-bit pointers: larger
than the board's figure). Random full-range int8 inputs, the same for every library.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from modelzoo import SINGLE_OP_MODELS, write_single_op_model  # noqa: E402

from tinyml.core import native_build  # noqa: E402
from tinyml.model.board_library import BoardLibraryRunner, HostLibrary, build_host_library, library_label  # noqa: E402
from tinyml.model.modelfile import read_model  # noqa: E402
from tinyml.model.tflm import TflmRunner, runtime_version  # noqa: E402


def build(library_dir: Path, cached: bool) -> tuple[HostLibrary, float]:
    """The host build and its wall time: measured now, or as recorded for a cached build."""
    started = time.monotonic()
    library = build_host_library(library_dir)
    seconds = time.monotonic() - started
    if cached and library.cached:
        seconds = library.build_info()["build_seconds"]
    return library, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("libraries", nargs="+", type=Path, metavar="LIBRARY_DIR")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--cached", action="store_true", help="use the user's cache instead of building afresh")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tinyml-bench-libraries-"))
    if not args.cached:
        os.environ[native_build.CACHE_ENV] = str(work / "cache")
    try:
        columns = measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nhost builds of board libraries against the TFLM Python runtime (tflite-micro {runtime_version()}), {args.samples} random int8 inputs per model\n")
    names = list(columns)
    print("| | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for row in columns[names[0]]:
        print(f"| {row} | " + " | ".join(columns[name][row] for name in names) + " |")


def measure(args: argparse.Namespace, work: Path) -> dict[str, dict[str, str]]:
    """One column per library: build time, ops, and each single-op model's exactness and arena."""
    models = {name: write_single_op_model(name, work).read_bytes() for name in SINGLE_OP_MODELS}
    inputs = {name: np.random.default_rng(3).integers(-128, 128, size=(args.samples, *read_model(m).inputs[0].shape), dtype=np.int8) for name, m in models.items()}
    tflm = {}
    for name, model in models.items():
        runner = TflmRunner(model, arena_size=1 << 20)
        tflm[name] = np.stack([runner.invoke(x).reshape(-1) for x in inputs[name]])

    columns = {}
    for library_dir in args.libraries:
        library, seconds = build(library_dir, args.cached)
        column = {"host build": f"{seconds:.0f} s{' (recorded)' if args.cached and library.cached else ''}", "builtin ops registered": str(len(library.builtin_ops()))}
        for name, model in models.items():
            runner = BoardLibraryRunner(model, library)
            outputs = np.stack([runner.invoke(x).reshape(-1) for x in inputs[name]])
            delta = np.abs(outputs.astype(np.int32) - tflm[name])
            column[f"{name} ({SINGLE_OP_MODELS[name][0]})"] = f"{(delta == 0).mean():.1%} exact, max {delta.max()} LSB, arena {runner.arena_used:,} B"
        columns[library_label(library_dir)] = column
    return columns


if __name__ == "__main__":
    main()
