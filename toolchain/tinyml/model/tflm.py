"""The TFLM Python runtime (`tflite-micro` on PyPI): running a model and measuring its arena.

The runtime has no `arena_used_bytes()`, so the arena is measured as the smallest size with
which the interpreter allocates and invokes. The runtime's recording allocator prints the
bytes it used: that figure is tried first, and taken when it allocates and one byte less does
not (two probes); otherwise the smallest size is found by bisection. An arena that is too
small, or a damaged model, can crash the runtime's process outright (a segfault inside TFLM,
not an exception), so each probe runs in a child process: forked where the platform allows,
which costs milliseconds once the runtime is imported before the fork. A probe that runs
longer than PROBE_TIMEOUT_S is stopped: no model this toolchain targets takes that long.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import os
import re
import sys
import tempfile
from functools import cache

import numpy as np

from tinyml.core.errors import InputError, ModelError
from tinyml.model.modelfile import read_model

log = logging.getLogger("tinyml.tflm")

# The largest arena the bisection tries: beyond any board this toolchain targets.
MAX_ARENA_BYTES = 64 * 1024 * 1024
# One load and inference on the host takes milliseconds for the models a microcontroller runs.
PROBE_TIMEOUT_S = 120.0


@cache
def _runtime():
    from tflite_micro import runtime

    return runtime


def runtime_version() -> str:
    """The installed tflite-micro runtime's version, as a report names it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tflite-micro")
    except PackageNotFoundError:
        return "not installed"


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


def _cannot_run_fix(model_bytes: bytes) -> str:
    from tinyml.model import ops

    if all(op in ops.OPS for op in read_model(model_bytes).op_counts):
        # A kernel for every op, and still no run: not an op to replace.
        return "TFLM has a kernel for every op of this model, so the file is probably damaged: re-create it with `tinyml quantize`"
    return "run `tinyml inspect` to see the ops, and replace the ones TFLM lacks"


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


def _run_probe(target, args: tuple) -> int | None:
    """Run `target(*args)` in a child process; its exit code (negative: killed by a signal)."""
    _runtime()  # imported once here, not in every forked child
    process = _probe_context().Process(target=target, args=args)
    process.start()
    process.join(PROBE_TIMEOUT_S)
    if process.is_alive():
        process.kill()
        process.join()
        raise ModelError(
            f"the TFLM runtime did not finish loading and running the model in {PROBE_TIMEOUT_S:.0f} s",
            "if the model is small, the file is probably damaged: re-create it with `tinyml quantize`",
        )
    return process.exitcode


def _allocates(model_bytes: bytes, arena_size: int) -> bool:
    return _run_probe(_probe, (model_bytes, arena_size)) == 0


def _largest_arena_probe(model_bytes: bytes, path: str) -> None:
    """Child-process body: run in the largest arena, with the runtime's stderr in `path`.

    On success the recording allocator's report follows; on an exception, its first line.
    """
    faulthandler.disable()
    os.dup2(os.open(path, os.O_WRONLY), 2)
    try:
        facts = read_model(model_bytes)
        interpreter = _runtime().Interpreter.from_bytes(model_bytes, arena_size=MAX_ARENA_BYTES)
        for i, spec in enumerate(facts.inputs):
            interpreter.set_input(np.zeros(spec.shape, dtype=spec.dtype), i)
        interpreter.invoke()
        interpreter.print_allocations()
    except BaseException as exc:  # noqa: BLE001 - reported through the file and the exit code
        os.write(2, f"\n{_EXCEPTION_MARK}{type(exc).__name__}: {first_line(exc)}\n".encode("utf-8", "replace"))
        os._exit(1)
    os._exit(0)


_EXCEPTION_MARK = "tinyml-probe-exception: "


def _largest_arena_run(model_bytes: bytes) -> tuple[int | None, str | None]:
    """(arena bytes the recording allocator reports, None) when the model runs in the largest
    arena; (None, why not, in the runtime's own words) when it does not."""
    with tempfile.NamedTemporaryFile(prefix="tinyml-probe-") as output:
        code = _run_probe(_largest_arena_probe, (model_bytes, output.name))
        text = output.read().decode("utf-8", "replace")
    if code == 0:
        found = re.search(r"Arena allocation total (\d+) bytes", text)
        return (int(found.group(1)) if found else None), None
    if code is not None and code < 0:
        return None, f"the runtime crashed (signal {-code}) on the model"
    # The runtime's own words (e.g. "Didn't find op for builtin opcode 'GELU'") come before
    # the exception, which is the generic one.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    raised = [line.removeprefix(_EXCEPTION_MARK) for line in lines if line.startswith(_EXCEPTION_MARK)]
    own = [line for line in lines if not line.startswith(_EXCEPTION_MARK)]
    useful = own[-2:] + raised[-1:]
    return None, (" / ".join(useful).rstrip(".") if useful else f"the runtime exited with code {code}")


def load_error(model_bytes: bytes) -> str | None:
    """Why the TFLM runtime cannot load and run this model even with a huge arena, or None.

    Runs in a child process for the same reason as the probes; the runtime's own message
    (an op it has no kernel for, a kernel that rejects int8 only when invoked) is captured
    from its stderr.
    """
    try:
        read_model(model_bytes)
    except InputError as exc:
        return exc.problem
    return _largest_arena_run(model_bytes)[1]


def measure_arena(model_bytes: bytes) -> int:
    """The smallest tensor arena, in bytes, with which the TFLM runtime allocates and invokes."""
    return _smallest_arena(bytes(model_bytes))


@cache  # a pure function of the model: a rig validating 32 boards measures it once, not 32 times
def _smallest_arena(model_bytes: bytes) -> int:
    recorded, reason = _largest_arena_run(model_bytes)
    if reason is not None:
        raise ModelError(f"the TFLM runtime cannot run this model: {reason}", _cannot_run_fix(model_bytes))
    if recorded is None:  # a runtime that prints no report: bisect the whole range
        recorded = MAX_ARENA_BYTES
    # The recorded figure is exact for most models and a little short for some (what the
    # allocator does not record): search up from it in growing steps, then bisect.
    low, high, step = 0, recorded, 256  # invariant once searching: low fails (or is zero), high allocates
    if _allocates(model_bytes, recorded):
        if not _allocates(model_bytes, recorded - 1):
            return recorded
    else:
        low, high = recorded, recorded + step
        while not _allocates(model_bytes, high):
            if high >= MAX_ARENA_BYTES:
                raise ModelError("the TFLM runtime ran this model in the largest arena once, then not again", _cannot_run_fix(model_bytes))
            step *= 2
            low, high = high, min(recorded + step, MAX_ARENA_BYTES)
    while high - low > 1:
        mid = (low + high) // 2
        if _allocates(model_bytes, mid):
            high = mid
        else:
            low = mid
    log.debug("smallest arena for the model: %d bytes", high)
    return high
