"""The TFLM Python runtime (`tflite-micro` on PyPI): running a model and measuring its arena.

The runtime has no `arena_used_bytes()`, so the arena is measured as the smallest size with
which the interpreter allocates and invokes, found by bisection. An arena that is too small
can crash the runtime's process outright (a segfault inside TFLM, not an exception), so each
probe runs in a child process: forked where the platform allows, which costs milliseconds.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import os
import sys
from functools import cache

import numpy as np

from tinyml.core.errors import InputError, ModelError
from tinyml.model.modelfile import read_model

log = logging.getLogger("tinyml.tflm")

# The largest arena the bisection tries: beyond any board this toolchain targets.
MAX_ARENA_BYTES = 64 * 1024 * 1024


@cache
def _runtime():
    from tflite_micro import runtime

    return runtime


def _probe_context() -> multiprocessing.context.BaseContext:
    # fork keeps the already imported runtime; elsewhere spawn re-imports it (slower, correct).
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class TflmRunner:
    """One TFLM interpreter for one model. `invoke` takes and returns the raw int8 tensors."""

    def __init__(self, model_bytes: bytes, arena_size: int | None = None) -> None:
        self.model_bytes = bytes(model_bytes)
        self.facts = read_model(self.model_bytes)
        if arena_size is None:
            arena_size = measure_arena(self.model_bytes) + 1024
        self.arena_size = arena_size
        try:
            self._interpreter = _runtime().Interpreter.from_bytes(self.model_bytes, arena_size=arena_size)
        except (RuntimeError, ValueError) as exc:
            from tinyml.model import ops

            missing = [op for op in self.facts.op_counts if op not in ops.OPS]
            reason = f"it has no kernel for {', '.join(missing)}" if missing else first_line(exc)
            raise ModelError(f"the TFLM runtime could not load the model: {reason}", "run `tinyml inspect` on the model to see which op or tensor TFLM rejects") from exc

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """Run one inference; `x` is the input tensor (any shape with the right element count)."""
        spec = self.facts.inputs[0]
        x = np.asarray(x)
        if x.size != spec.element_count:
            raise ModelError(f"input has {x.size} elements, the model expects {spec.element_count} {spec.shape}", "reshape the sample to the model's input shape")
        self._interpreter.set_input(x.reshape(spec.shape).astype(spec.dtype, copy=False), 0)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_output(0), copy=True)

    def reset(self) -> None:
        self._interpreter.reset()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _probe(model_bytes: bytes, arena_size: int) -> None:
    """Child-process body: exit 0 if the model allocates and invokes in `arena_size` bytes."""
    # Silence TFLM's allocation-failure chatter on fd 2 for the probes that are meant to fail,
    # and the fault handler (pytest enables one) that would dump a crashing probe's stack.
    faulthandler.disable()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        facts = read_model(model_bytes)
        interpreter = _runtime().Interpreter.from_bytes(model_bytes, arena_size=arena_size)
        for i, spec in enumerate(facts.inputs):
            interpreter.set_input(np.zeros(spec.shape, dtype=spec.dtype), i)
        interpreter.invoke()
    except BaseException:  # noqa: BLE001 - any failure means "too small" for this probe
        os._exit(1)
    os._exit(0)


def _allocates(model_bytes: bytes, arena_size: int) -> bool:
    process = _probe_context().Process(target=_probe, args=(model_bytes, arena_size))
    process.start()
    process.join()
    return process.exitcode == 0


def load_error(model_bytes: bytes) -> str | None:
    """Why the TFLM runtime cannot load and run this model even with a huge arena, or None.

    Runs in a child process for the same reason as the probes; the runtime's own message
    (an op it has no kernel for, a kernel that rejects int8 only when invoked) is captured
    from its stderr.
    """
    import subprocess

    try:
        specs = [(list(t.shape), t.dtype) for t in read_model(model_bytes).inputs]
    except InputError as exc:
        return exc.problem
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from tflite_micro import runtime\n"
        "data = sys.stdin.buffer.read()\n"
        f"interpreter = runtime.Interpreter.from_bytes(data, arena_size={MAX_ARENA_BYTES})\n"
        f"for i, (shape, dtype) in enumerate({specs!r}):\n"
        "    interpreter.set_input(np.zeros(shape, dtype=dtype), i)\n"
        "interpreter.invoke()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], input=model_bytes, capture_output=True, timeout=120)
    if proc.returncode == 0:
        return None
    # The runtime's own words (e.g. "Didn't find op for builtin opcode 'GELU'") come before
    # the Python traceback; its last line is the generic exception.
    text = proc.stderr.decode("utf-8", "replace")
    own, _, traceback = text.partition("Traceback (most recent call last):")
    own_lines = [line.strip() for line in own.splitlines() if line.strip()]
    trace_lines = [line.strip() for line in traceback.splitlines() if line.strip()]
    useful = own_lines[-2:] + trace_lines[-1:]
    return " / ".join(useful).rstrip(".") if useful else f"the runtime exited with code {proc.returncode}"


def measure_arena(model_bytes: bytes) -> int:
    """The smallest tensor arena, in bytes, with which the TFLM runtime allocates and invokes."""
    return _smallest_arena(bytes(model_bytes))


@cache  # a pure function of the model: a rig validating 32 boards probes (13 forks) once, not 32 times
def _smallest_arena(model_bytes: bytes) -> int:
    high = max(4096, len(model_bytes) // 4)
    if not _allocates(model_bytes, high):
        # Before doubling towards the limit, ask once whether any arena works at all.
        if not _allocates(model_bytes, MAX_ARENA_BYTES):
            reason = load_error(model_bytes) or "it did not allocate even in the largest arena tried"
            raise ModelError(f"the TFLM runtime cannot run this model: {reason}", "run `tinyml inspect` to see the ops, and replace the ones TFLM lacks")
        while not _allocates(model_bytes, high):
            high *= 2
    low = 0  # invariant: low fails (or is zero), high allocates
    while high - low > 1:
        mid = (low + high) // 2
        if _allocates(model_bytes, mid):
            high = mid
        else:
            low = mid
    log.debug("smallest arena for the model: %d bytes", high)
    return high
