"""`tinyml virtual-board`: a pseudo-terminal that behaves as the firmware, running the model on
the TFLM runtime, or on the board's TFLM library built for the host (--library DIR)."""

from __future__ import annotations

import argparse

from tinyml.cli.options import non_negative_float, positive_float, positive_int, probability


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser(
        "virtual-board",
        help=summary,
        description=summary + ". It prints its port; give that to `tinyml validate --port` or `tinyml monitor --port`. Ctrl-C stops it.",
    )
    parser.add_argument("--model", metavar="MODEL.tflite", help="the int8 model to run (the validation firmware)")
    capture = parser.add_argument_group("capture firmware (instead of --model): sensors that replay recordings")
    capture.add_argument("--imu", metavar="FILE", help="IMU recording, .npz (array x) or .csv: six columns ax, ay, az in g, gx, gy, gz in deg/s")
    capture.add_argument("--audio", metavar="FILE.wav", help="microphone recording: mono 16-bit .wav at 16 kHz")
    capture.add_argument("--imu-rate", type=positive_float, metavar="HZ", help="the IMU's rate (default: the --board profile's, else 100)")
    capture.add_argument("--realtime", action="store_true", help="stream at the sensors' rate, not as fast as the host reads")
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
    faults.add_argument("--reset-in-take", type=positive_int, default=0, metavar="N", help="capture: reset once, half a second into the N-th capture start (tinyml capture's probe is the first, its first take the second)")
    faults.add_argument("--seed", type=int, default=0, help="seed of the fault generator")
    parser.set_defaults(run=_run)


def _replay(args: argparse.Namespace):
    """The recordings the capture firmware's sensors replay, at the board profile's IMU rate."""
    from tinyml.core.errors import InputError
    from tinyml.device.sensor_replay import Replay, load_audio_recording, load_imu_recording
    from tinyml.firmware.boards import get_board

    if args.model:
        raise InputError("--model runs the validation firmware, --imu/--audio the capture firmware", "give one or the other")
    rate = args.imu_rate
    if rate is None and args.board:
        imu = get_board(args.board).sensors.get("imu")
        rate = imu.sample_rate_hz if imu is not None else None
    return Replay(
        imu=load_imu_recording(args.imu) if args.imu else None,
        audio=load_audio_recording(args.audio) if args.audio else None,
        imu_rate_hz=float(rate or 100.0),
    )


def _run(args: argparse.Namespace) -> int:
    import signal

    from tinyml.cli.console import stdout_console
    from tinyml.core.data import load_labels
    from tinyml.device.virtual_board import Faults, VirtualBoard, default_link_path

    labels = load_labels(args.labels) if args.labels else None
    faults = Faults(
        noise=args.noise,
        drop=args.drop,
        rx_buffer=args.rx_buffer,
        reset_every=args.reset_every,
        slow_ms=args.slow_ms,
        skew_every=args.skew_every,
        reset_in_take=args.reset_in_take,
        seed=args.seed,
    )
    link = args.link or default_link_path(args.name)
    replay = _replay(args) if args.imu or args.audio else None
    board = VirtualBoard(args.model, labels=labels, board=args.board, faults=faults, link=link, library=args.library, replay=replay, realtime=args.realtime)

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
        if replay is not None:
            sensors = []
            if replay.imu is not None:
                sensors.append(f"IMU {len(replay.imu)} samples at {replay.imu_rate_hz:g} Hz")
            if replay.audio is not None:
                sensors.append(f"microphone {len(replay.audio) / 16000:.1f} s at 16 kHz")
            console.print(f"capture firmware, replaying: {', '.join(sensors)}{' in real time' if args.realtime else ''}", markup=False, soft_wrap=True)
        else:
            console.print(
                f"model {info.model_hash}, arena {info.arena_used_bytes} bytes, input {info.input.dtype}{list(info.input.shape)}, "
                f"output {info.output.dtype}{list(info.output.shape)}, {len(info.labels)} labels, receive buffer {info.rx_buffer_bytes} bytes",
                markup=False,
                soft_wrap=True,
            )
        console.print(f"faults: {faults.describe()}", markup=False, soft_wrap=True)
        # Last of the facts: scripts wait for this line, and the board serves from now on.
        console.print(f"port: {board.port}", markup=False, soft_wrap=True)
        if replay is not None:
            console.print(f"try: tinyml capture --port {board.port} --label wave   (Ctrl-C stops the board)", markup=False, soft_wrap=True)
        else:
            console.print(f"try: tinyml validate --port {board.port} --model {args.model} --data DATA.npz   (Ctrl-C stops the board)", markup=False, soft_wrap=True)
        board.wait()
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
    stats = board.stats
    if replay is not None:
        console.print(f"stopped after {stats.samples} samples streamed, {stats.resets} resets", markup=False, soft_wrap=True)
    else:
        console.print(f"stopped after {stats.inferences} inferences, {stats.resets} resets", markup=False, soft_wrap=True)
    return 0
