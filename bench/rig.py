"""Boards validated per minute by `rig run`, against the number of boards, and where the time goes.

    .venv/bin/python bench/rig.py [--boards 1,4,16,32] [--samples N] [--slow-ms MS]

Each size is one `run_rig` on a fresh rig of that many virtual boards (each a child process on
its own pty, as `rig run` starts them) validating the dense model of tests/modelzoo.py. The
host side (TensorFlow, the TFLite reference) is loaded once before timing, as one `rig run`
loads it once. Columns:

- wall: the run, from the rig file to the last result in the store;
- boards/min: boards validated per minute of wall time;
- vs 1: wall time against the one-board run (the goal: N boards take no longer than the
  slowest board plus the build; a virtual board needs no build);
- start: a board's port ready (the virtual board process started), mean and max over boards;
- validate: `validate_device` on one board (handshake, samples, host reference), mean and max;
- host cpu, boards cpu: CPU seconds per board, of this process (links, host reference, TFLM)
  and of the virtual board processes;
- cpu/wall: all of it per wall second: on 2 cores, 2.0 is the ceiling; well below it while
  other jobs load the machine means the run waited for a core.

Prints tables, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds of this process (the host side: links, reference, TFLM) and of its finished children (the boards)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default="1,4,16,32", help="rig sizes, comma-separated (default 1,4,16,32)")
    parser.add_argument("--samples", type=int, default=40, help="samples per board (default 40)")
    parser.add_argument("--slow-ms", type=float, default=0.0, help="extra milliseconds per inference on each virtual board, to imitate a slower board")
    args = parser.parse_args()
    sizes = [int(n) for n in args.boards.split(",")]

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from modelzoo import write_int8_model

    from tinyml.model.reference import ReferenceInterpreter
    from tinyml.rig.run import run_rig

    work = Path(tempfile.mkdtemp(prefix="bench-rig-"))
    model = write_int8_model("dense", work)
    rng = np.random.default_rng(0)
    data = work / "data.npz"
    np.savez(data, x=rng.uniform(-1, 1, (args.samples, 16)).astype(np.float32), y=rng.integers(0, 4, args.samples))
    ReferenceInterpreter(model.read_bytes())  # the host side (TensorFlow), loaded once per `rig run` process

    virtual = "virtual = {}" if not args.slow_ms else f"virtual = {{ slow_ms = {args.slow_ms:g} }}"
    rows = []
    for size in sizes:
        folder = work / f"rig{size}"
        folder.mkdir()
        (folder / "rig.toml").write_text("".join(f'[boards.b{i:02d}]\nprofile = "nano33ble_sense"\n{virtual}\n' for i in range(size)))
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        result = run_rig(folder / "rig.toml", model, data)
        wall = time.perf_counter() - started
        host_after, boards_after = _cpu_seconds()
        cpu = (host_after - cpu_before[0], boards_after - cpu_before[1])
        passed = result.count("pass")
        stages = [r.metrics.get("stages", {}) for r in result.results.values()]
        start = [s["port_s"] for s in stages if "port_s" in s]
        validate = [s["validate_s"] for s in stages if "validate_s" in s]
        rows.append((size, passed, wall, start, validate, cpu))

    print(f"rig run of N virtual boards, {args.samples} samples each, dense model; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; TensorFlow loaded before timing")
    print(f"{'boards':>6} {'passed':>6} {'wall s':>7} {'boards/min':>10} {'vs 1':>6} {'start mean/max s':>17} {'validate mean/max s':>20} {'host cpu/board':>14} {'boards cpu/board':>16} {'cpu/wall':>8}")
    base = rows[0][2] if rows else 1.0
    for size, passed, wall, start, validate, cpu in rows:
        print(
            f"{size:>6} {passed:>6} {wall:>7.1f} {60 * passed / wall:>10.1f} {wall / base:>5.1f}x "
            f"{statistics.mean(start):>8.1f}/{max(start):<8.1f} {statistics.mean(validate):>10.1f}/{max(validate):<9.1f} "
            f"{cpu[0] / size:>13.2f}s {cpu[1] / size:>15.2f}s {sum(cpu) / wall:>8.2f}"
        )


if __name__ == "__main__":
    main()
