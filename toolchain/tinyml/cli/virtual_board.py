"""`tinyml virtual-board`: a pseudo-terminal that behaves as the firmware, running the model on
the TFLM runtime, or on the board's TFLM library built for the host (--library DIR)."""

from __future__ import annotations

import argparse

from tinyml.cli.options import non_negative_float, positive_int, probability


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser(
        "virtual-board",
        help=summary,
        description=summary + ". It prints its port; give that to `tinyml validate --port` or `tinyml monitor --port`. Ctrl-C stops it.",
    )
    parser.add_argument("--model", required=True, metavar="MODEL.tflite", help="the int8 model to run")
    parser.add_argument("--labels", metavar="FILE", help="class labels, one per line (UTF-8)")
    parser.add_argument("--board", metavar="ID", help="board profile to imitate (its id and receive buffer); default: a generic board")
    parser.add_argument("--library", metavar="DIR", help="run the model on this TFLM Arduino library built for the host (the board's arithmetic) instead of the TFLM Python runtime; the first build takes minutes")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--name", default="default", help="the port is /tmp/tinyml-vboard-NAME (default: default)")
    where.add_argument("--link", metavar="PATH", help="the port's symlink, instead of /tmp/tinyml-vboard-NAME")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--noise", type=probability, default=0.0, metavar="RATE", help="probability per byte of a corrupted byte, both directions")
    faults.add_argument("--drop", type=probability, default=0.0, metavar="RATE", help="probability per byte of a lost byte, both directions")
    faults.add_argument("--rx-buffer", type=positive_int, metavar="BYTES", help="a UART receive buffer of this size that overflows (e.g. 64)")
    faults.add_argument("--reset-every", type=positive_int, default=0, metavar="N", help="reset in mid-inference every N inferences")
    faults.add_argument("--slow-ms", type=non_negative_float, default=0.0, metavar="MS", help="extra milliseconds per inference")
    faults.add_argument("--skew-every", type=positive_int, default=0, metavar="N", help="every N-th output is off by one LSB (a wrong kernel): validation must catch it")
    faults.add_argument("--seed", type=int, default=0, help="seed of the fault generator")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import signal

    from tinyml.cli.console import stdout_console
    from tinyml.core.data import load_labels
    from tinyml.device.virtual_board import Faults, VirtualBoard, default_link_path

    labels = load_labels(args.labels) if args.labels else None
    faults = Faults(noise=args.noise, drop=args.drop, rx_buffer=args.rx_buffer, reset_every=args.reset_every, slow_ms=args.slow_ms, skew_every=args.skew_every, seed=args.seed)
    link = args.link or default_link_path(args.name)
    board = VirtualBoard(args.model, labels=labels, board=args.board, faults=faults, link=link, library=args.library)

    def _terminate(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    # Both explicitly: a board started in the background of a script has SIGINT ignored.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    console = stdout_console()
    try:
        board.start()
        info = board.info
        console.print(f"{board.description} on {board.pty_path}", markup=False, soft_wrap=True)
        console.print(f"port: {board.port}", markup=False, soft_wrap=True)
        console.print(
            f"model {info.model_hash}, arena {info.arena_used_bytes} bytes, input {info.input.dtype}{list(info.input.shape)}, "
            f"output {info.output.dtype}{list(info.output.shape)}, {len(info.labels)} labels, receive buffer {info.rx_buffer_bytes} bytes",
            markup=False,
            soft_wrap=True,
        )
        console.print(f"faults: {faults.describe()}", markup=False, soft_wrap=True)
        console.print(f"try: tinyml validate --port {board.port} --model {args.model} --data DATA.npz   (Ctrl-C stops the board)", markup=False, soft_wrap=True)
        board.wait()
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
    stats = board.stats
    console.print(f"stopped after {stats.inferences} inferences, {stats.resets} resets", markup=False, soft_wrap=True)
    return 0
