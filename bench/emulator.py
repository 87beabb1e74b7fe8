"""The emulated board, measured side by side in one run: the TFLM library's first build against
a cached one, validated samples per second through the emulated UART against the virtual
board, and instructions per MAC for the lab models and the held-out shapes of tests/.

Run: .venv/bin/python bench/emulator.py [--library DIR] [--samples N]
The library is $TINYML_TFLM_LIBRARY, else ../shared/third_party/Arduino_TensorFlowLite beside the
repository. The first build goes to a temporary cache, so it is a true first build (minutes).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # modelzoo: the held-out shapes

from modelzoo import INPUT_SHAPES, build_keras_model, convert_int8, sample_inputs  # noqa: E402

from tinyml.core import native_build  # noqa: E402
from tinyml.device.emulator.build import build_library  # noqa: E402
from tinyml.device.emulator.session import start_emulator  # noqa: E402
from tinyml.device.link import DeviceLink  # noqa: E402
from tinyml.device.virtual_board import VirtualBoard  # noqa: E402
from tinyml.firmware.boards import get_board  # noqa: E402
from tinyml.firmware.library_source import find_library  # noqa: E402
from tinyml.firmware.render import render_project  # noqa: E402
from tinyml.model.inspect import inspect_model  # noqa: E402
from tinyml.validation.validate import prepare_inputs  # noqa: E402

BOARD = "nano33ble_sense"
DEFAULT_LIBRARY = REPO.parent / "shared" / "third_party" / "Arduino_TensorFlowLite"
# What limits the emulated UART (QEMU 7.2 sources, strace; see the README's emulated board section).
UART_LIMIT = (
    "UART limit: QEMU's CMSDK APB UART model holds one received byte and never tells QEMU's main loop when the "
    "guest has read it (no qemu_chr_fe_accept_input, unlike PL011), so each byte host->guest costs one recvmsg and "
    "a wake-up of the I/O thread by the vCPU going idle (WFI): about 50 us per byte on a free core. The socket uses "
    "TCP_NODELAY (nodelay=on); without it Nagle and delayed ACKs held QEMU's 1-byte replies (3 KB/s). Faster needs "
    "another emulated UART or a patched QEMU, not guest changes."
)


def lab_models(work: Path) -> dict[str, Path]:
    """The two labs' architectures (random weights: instructions depend on shapes, not values)."""
    from tinyml.features.imu import ImuWindowSpec
    from tinyml.features.logmel import LogMelSpec
    from tinyml.labs.gesture import build_gesture_model
    from tinyml.labs.keyword_spotting import build_kws_model

    models = {}
    for name, shape, build in (("gesture lab", ImuWindowSpec().input_shape, lambda s: build_gesture_model(s, 7)), ("kws lab", LogMelSpec().input_shape, lambda s: build_kws_model(s, 4))):
        path = work / f"{name.replace(' ', '_')}.tflite"
        path.write_bytes(convert_int8(build(shape), np.random.default_rng(0).uniform(-1, 1, (32, *shape)).astype(np.float32)))
        models[name] = path
    return models


def held_out_models(work: Path) -> dict[str, Path]:
    models = {}
    for kind in INPUT_SHAPES:
        path = work / f"{kind}.tflite"
        path.write_bytes(convert_int8(build_keras_model(kind), sample_inputs(kind, 64)))
        models[kind] = path
    return models


def library_build_times(library) -> tuple[float, float]:
    """First build (in an empty temporary cache) and the cached one, in seconds."""
    saved = os.environ.get(native_build.CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="bench-emulator-cache-") as cache:
        os.environ[native_build.CACHE_ENV] = cache
        try:
            board = get_board(BOARD)
            first = build_library(board, library)
            cached = build_library(board, library)
        finally:
            if saved is None:
                os.environ.pop(native_build.CACHE_ENV)
            else:
                os.environ[native_build.CACHE_ENV] = saved
    assert not first.cached and cached.cached
    return first.seconds, cached.seconds


def samples_per_second(port: str, inputs: np.ndarray) -> float:
    """Inferences with their inputs and outputs through the protocol, as validate sends them."""
    with DeviceLink(port) as link:
        link.infer(inputs[0].tobytes())  # the handshake and the first inference are not counted
        started = time.perf_counter()
        for row in inputs:
            link.infer(row.tobytes())
        return len(inputs) / (time.perf_counter() - started)


def instructions_per_inference(project: Path, library, model: Path) -> tuple[int, int]:
    """(instructions, MACs) for one inference of `model` on the emulated board. The device
    reports whole microseconds, so the count is good to +-1,000 instructions."""
    render_project(BOARD, model, project, force=True)
    facts = inspect_model(model)
    x = prepare_inputs(np.zeros((1, *facts.facts.inputs[0].shape[1:]), np.float32), facts.facts.inputs[0])
    with start_emulator(project, library) as emulator, DeviceLink(emulator.url) as link:
        _, latency_us = link.infer(x[0].tobytes())
    return latency_us * 1000, facts.macs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default=os.environ.get("TINYML_TFLM_LIBRARY") or (DEFAULT_LIBRARY if DEFAULT_LIBRARY.is_dir() else None))
    parser.add_argument("--samples", type=int, default=30, help="samples per target for the UART rate (default 30)")
    args = parser.parse_args()
    library = find_library(args.library)
    work = Path(tempfile.mkdtemp(prefix="bench-emulator-"))
    rows: list[tuple[str, str]] = []

    first, cached = library_build_times(library)
    rows += [(f"library build, first ({library.name})", f"{first:.0f} s"), ("library build, cached", f"{cached:.2f} s")]

    labs = lab_models(work)
    gesture = labs["gesture lab"]
    spec = inspect_model(gesture).facts.inputs[0]
    inputs = prepare_inputs(np.random.default_rng(0).uniform(-1, 1, (args.samples, *spec.shape[1:])).astype(np.float32), spec)
    render_project(BOARD, gesture, work / "uart", force=True)
    started = time.perf_counter()
    with start_emulator(work / "uart", library) as emulator:
        rows.append(("firmware build + QEMU start (library cached)", f"{time.perf_counter() - started:.1f} s"))
        emulated = samples_per_second(emulator.url, inputs)
    with VirtualBoard(gesture, board=BOARD) as board:
        virtual = samples_per_second(board.port, inputs)
    sample_bytes = inputs.shape[1]
    rows.append((f"validated samples/s, emulated board ({sample_bytes}-byte input)", f"{emulated:.1f} ({emulated * sample_bytes / 1000:.1f} kB/s in)"))
    rows.append((f"validated samples/s, virtual board ({sample_bytes}-byte input)", f"{virtual:.1f}"))

    for name, model in {**labs, **held_out_models(work)}.items():
        instructions, macs = instructions_per_inference(work / f"ipm-{name.replace(' ', '_')}", library, model)
        rows.append((f"instructions per MAC, {name} ({macs:,} MACs)", f"{instructions / macs:.2f} ({instructions:,} instructions)"))

    width = max(len(label) for label, _ in rows)
    print(f"Emulated board (QEMU mps2-an386, Cortex-M4F) against {library.describe()}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    print(UART_LIMIT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
