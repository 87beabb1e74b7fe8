"""`tinyml convert`: a .tflite model as model_data.h / model_data.cc for TFLM firmware."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("convert", help=summary, description=summary)
    parser.add_argument("model", metavar="MODEL.tflite", help="the int8 model")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for <name>_data.h and <name>_data.cc")
    parser.add_argument("--name", default="model", help="C++ namespace and file prefix (default: model)")
    parser.add_argument("--labels", metavar="FILE", help="class labels, one per line (UTF-8)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from tinyml.cli.console import stdout_console
    from tinyml.firmware.convert import convert_model
    from tinyml.core.data import load_labels

    labels = load_labels(args.labels) if args.labels else None
    result = convert_model(args.model, args.out, name=args.name, labels=labels, force=args.force)
    stdout_console().print(
        f"wrote {result.header} and {result.source}: {result.model_size_bytes} bytes, model {result.model_hash}, {result.label_count} labels",
        markup=False,
    )
    return 0
