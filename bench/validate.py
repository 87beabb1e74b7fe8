"""Protocol efficiency and virtual-board throughput; prints tables, asserts nothing.

    .venv/bin/python bench/validate.py [--model MODEL.tflite] [--samples N]

1. Protocol efficiency: payload bytes (input + output tensor) divided by wire bytes (both
   directions) for one inference, for tensors of 16 B to 4 KiB and receive buffers of 64 and
   256 bytes. Measured on the real link code against the Python device on a pty, counting
   every byte that crosses; the one-time HELLO/INFO exchange is left out.
2. Samples per second: the bare TFLM runtime `invoke`, the same model behind the virtual
   board (pty + protocol), and a whole `validate_device` run (which also runs the TFLite
   reference and TFLM on the host for each sample). Without --model, the conv2d model of
   tests/modelzoo.py is built (needs TensorFlow, a few seconds).
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

import numpy as np

from tinyml.device.protocol_twin import ProtocolTwin
from tinyml.device.link import DeviceLink
from tinyml.firmware.protocol import PROTOCOL_VERSION, DeviceInfo, TensorSpec

SIZES = (16, 64, 256, 1024, 4096)
RX_BUFFERS = (64, 256)


class PtyDevice:
    """The Python device with an echo-like model (output = first bytes of the input) on a pty."""

    def __init__(self, input_bytes: int, output_bytes: int, rx_buffer: int) -> None:
        spec_in = TensorSpec("int8", (1, input_bytes), 1.0, 0)
        spec_out = TensorSpec("int8", (1, output_bytes), 1.0, 0)
        info = DeviceInfo(PROTOCOL_VERSION, "bench", "bench", "0" * 16, 0, rx_buffer, spec_in, spec_out)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.device = ProtocolTwin(info, lambda x: (x * (output_bytes // len(x) + 1))[:output_bytes], lambda data: os.write(self.master, data))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                self.device.receive(os.read(self.master, 4096))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self.slave)


def efficiency_table() -> None:
    print("protocol efficiency: payload bytes / wire bytes for one inference (input and output of the same size)")
    print(f"{'tensor':>8} | " + " | ".join(f"rx {rx:>4} B: eff. requests" for rx in RX_BUFFERS))
    for size in SIZES:
        cells = []
        for rx in RX_BUFFERS:
            board = PtyDevice(size, size, rx)
            try:
                with DeviceLink(board.port) as link:
                    link.info()
                    before = link.stats.to_dict()
                    x = bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8))
                    output, _ = link.infer(x)
                    assert len(output) == size
                    after = link.stats.to_dict()
            finally:
                board.close()
            wire = (after["wire_bytes_out"] - before["wire_bytes_out"]) + (after["wire_bytes_in"] - before["wire_bytes_in"])
            requests = after["requests"] - before["requests"]
            cells.append(f"{2 * size / wire:>14.1%} {requests:>8}")
        print(f"{size:>6} B | " + " | ".join(cells))


def throughput_table(model: Path, samples: int) -> None:
    from tinyml.model.tflm import TflmRunner, measure_arena
    from tinyml.validation.validate import validate_device
    from tinyml.device.virtual_board import VirtualBoard
    from tinyml.core.data import Dataset

    model_bytes = model.read_bytes()
    arena = measure_arena(model_bytes)
    runner = TflmRunner(model_bytes, arena_size=arena + 1024)
    size = runner.facts.inputs[0].element_count
    rng = np.random.default_rng(1)
    inputs = [rng.integers(-128, 128, size, dtype=np.int8) for _ in range(samples)]
    start = time.perf_counter()
    for x in inputs:
        runner.invoke(x)
    bare = samples / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp, VirtualBoard(model_bytes, link=Path(tmp) / "port", arena_bytes=arena) as board:
        with DeviceLink(board.port) as link:
            link.info()
            start = time.perf_counter()
            for x in inputs:
                link.infer(x.tobytes())
            virtual = samples / (time.perf_counter() - start)
        data = Dataset(np.stack(inputs))
        start = time.perf_counter()
        validate_device(board.port, model_bytes, data)
        full = samples / (time.perf_counter() - start)
    print(f"\nthroughput on {model.name} ({size} input bytes, {samples} samples)")
    print(f"{'path':<44} {'samples/s':>10} {'vs bare':>8}")
    for name, rate in (("TFLM runtime, bare invoke", bare), ("virtual board over pty + protocol", virtual), ("validate_device (+ reference, TFLM; incl. startup)", full)):
        print(f"{name:<44} {rate:>10.0f} {rate / bare:>8.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an int8 .tflite (default: the conv2d test model, built now)")
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    efficiency_table()
    model = args.model
    if model is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from modelzoo import write_int8_model

        model = write_int8_model("conv2d", Path(tempfile.mkdtemp(prefix="bench-validate-")))
    throughput_table(model, args.samples)


if __name__ == "__main__":
    main()
