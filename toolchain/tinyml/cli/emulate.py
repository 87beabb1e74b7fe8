"""`tinyml emulate PROJECT_DIR`: the rendered firmware, built against the board's TFLM library, on QEMU."""

from __future__ import annotations

import argparse

from tinyml.cli.options import positive_float, positive_int


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser(
        "emulate",
        help=summary,
        description=summary
        + ". It cross-compiles the project's src/ as rendered (arm-none-eabi-gcc, Cortex-M4F), runs it on QEMU's mps2-an386 and prints "
        "its serial port as a socket:// URL; give that to `tinyml validate --port` or `tinyml monitor --port`. Ctrl-C stops it.",
    )
    parser.add_argument("project", metavar="PROJECT_DIR", help="a folder `tinyml render` wrote")
    parser.add_argument("--library", metavar="DIR", help="the board's TFLM Arduino library (default: $TINYML_TFLM_LIBRARY, else PlatformIO's copy for the project)")
    parser.add_argument("--imu", metavar="FILE", help="IMU recording to replay: .npz (array 'imu', optional 'sample_rate_hz') or .csv; rows ax, ay, az in g, gx, gy, gz in deg/s")
    parser.add_argument("--imu-rate", type=positive_float, metavar="HZ", help="the IMU recording's sample rate (default: the .npz's, else the board's IMU rate)")
    parser.add_argument("--audio", metavar="FILE", help="microphone recording to replay: a 16 kHz mono 16-bit WAV")
    parser.add_argument("--startup-timeout", type=positive_float, default=10.0, metavar="S", help="seconds for the firmware's first line (default 10)")
    parser.add_argument("--jobs", type=positive_int, metavar="N", help="parallel compiles (default: the CPU count)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import signal
    import time

    from tinyml.cli.console import stdout_console
    from tinyml.device.emulator.session import check_prerequisites, load_recordings, start_emulator

    library = check_prerequisites(args.project, args.library)
    recordings = load_recordings(args.project, args.imu, args.imu_rate, args.audio)

    def _terminate(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    # Both explicitly: a board started in the background of a script has SIGINT ignored.
    previous = {signum: signal.signal(signum, _terminate) for signum in (signal.SIGTERM, signal.SIGINT)}
    console = stdout_console()
    try:
        with start_emulator(args.project, library, recordings=recordings, startup_timeout=args.startup_timeout, workers=args.jobs) as emulator:
            _print_build(console, emulator.build)
            console.print(emulator.target, markup=False, soft_wrap=True)
            console.print(f"firmware says: {emulator.board.banner}", markup=False, soft_wrap=True)
            console.print(f"port: {emulator.url}", markup=False, soft_wrap=True)
            if library is None:  # the capture app
                console.print(f"try: tinyml capture --port {emulator.url} --label wave   (Ctrl-C stops the emulated board)", markup=False, soft_wrap=True)
            else:
                console.print(f"try: tinyml validate --port {emulator.url} --model MODEL.tflite --data DATA.npz   (Ctrl-C stops the emulated board)", markup=False, soft_wrap=True)
            while True:
                emulator.board.check()
                time.sleep(0.2)
    except KeyboardInterrupt:
        console.print("stopped", markup=False)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def _print_build(console, build) -> None:
    if build.library is None:
        library = "no TFLM library: the app runs no model"
    else:
        library = f"library {build.library.describe()}: " + ("from the cache" if build.library_cached else f"compiled in {build.library_seconds:.0f} s")
    console.print(f"built {build.elf} in {build.firmware_seconds:.1f} s ({library})", markup=False, soft_wrap=True)
    console.print(f"ELF: text {build.text:,} B, data {build.data:,} B, bss {build.bss:,} B", markup=False, soft_wrap=True)
    for part, use in build.parts.items():
        console.print(f"  {part:18} flash {use.flash:>9,} B   RAM {use.ram:>9,} B", markup=False, soft_wrap=True)
