"""What a `.tflite` model is, whether TFLM runs it, how much arena it needs and if it fits a board.

`inspect_model` reads the flatbuffer (ops, tensors, parameters, MACs), loads it in the real TFLM
runtime, measures the smallest tensor arena exactly (bisection, `tinyml.model.tflm.measure_arena`)
and, given a board profile, sets the model against the board's flash and RAM.

The arena the firmware gets is the measured one plus a stated margin: the TFLM Python runtime
runs the portable reference kernels, while the firmware on a Cortex-M runs CMSIS-NN kernels that
ask for scratch buffers (im2col for convolutions, accumulators for average pooling). Scratch
buffers live only while their operator runs, so the peak grows by at most the largest one; the
margin is that largest CMSIS-NN scratch estimate (tinyml.model.ops) plus ARENA_FIXED_MARGIN_BYTES for
the kernels' per-operator data, rounded up to 16 bytes (TFLM's arena alignment). The host
runtime is 64-bit, so its pointer-sized bookkeeping in the arena is larger than on a 32-bit
Cortex-M: the measurement errs on the safe side.

Given a board, the model is also set against the board's TFLM library (its facts, from
boards/libraries/): an op the library does not register, or FULLY_CONNECTED weights quantized per
channel where the library applies one scale to every channel, is a `LibraryProblem`; render
refuses such a model, since the board would fail or compute something else than the host.

Flash needed on a board = the model array + the estimated code of the kernels the model uses
(tinyml.model.ops) + the board's runtime estimate (Arduino core + TFLM interpreter, from its profile).
RAM needed = the firmware arena + the board's runtime RAM estimate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from tinyml.model import ops
from tinyml.core.errors import ModelError
from tinyml.model.modelfile import ModelFacts, OperatorFacts, TensorFacts, read_model, read_model_bytes

log = logging.getLogger("tinyml.inspect")

# Per-operator data of the CMSIS-NN kernels beyond what the reference kernels allocate, plus
# alignment padding of the extra buffers.
ARENA_FIXED_MARGIN_BYTES = 1024
ARENA_ALIGNMENT = 16
KIB = 1024


class LibraryFacts(Protocol):
    """The attributes of a TFLM library's facts (tinyml.firmware.libraries.LibraryFacts) that inspect reads."""

    label: str  # e.g. "Arduino_TensorFlowLite 2.4.0-ALPHA at 06841a8 (TFLM of 2022-12-14)"
    ops: frozenset[str]  # the builtin ops it registers
    per_channel_fully_connected: bool
    differences: tuple[ArithmeticDifference, ...]  # ops it computes otherwise than today's TFLM


class ArithmeticDifference(Protocol):
    op: str
    effect: str


class BoardFacts(Protocol):
    """The attributes of a board profile (tinyml.firmware.boards.BoardProfile) that inspect reads."""

    id: str
    name: str
    library: LibraryFacts
    flash_bytes: int  # flash a sketch can use
    ram_bytes: int  # RAM a sketch can use
    runtime_flash_bytes: int  # Arduino core + TFLM interpreter, without kernels (estimate)
    runtime_ram_bytes: int  # RAM the core and the interpreter use besides the arena (estimate)


@dataclass(frozen=True)
class UnsupportedOp:
    op: str
    reason: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"op": self.op, "reason": self.reason, "fix": self.fix}


@dataclass(frozen=True)
class LibraryProblem:
    """Something in the model that the board's TFLM library cannot run, or would compute wrongly."""

    kind: str  # "missing_op" or "per_channel_fully_connected"
    problem: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "problem": self.problem, "fix": self.fix}


@dataclass(frozen=True)
class FitReport:
    board_id: str
    board_name: str
    model_flash_bytes: int
    kernel_flash_bytes: int  # estimate
    runtime_flash_bytes: int  # estimate, from the board profile
    flash_available: int
    arena_ram_bytes: int
    runtime_ram_bytes: int  # estimate, from the board profile
    ram_available: int

    @property
    def flash_needed(self) -> int:
        return self.model_flash_bytes + self.kernel_flash_bytes + self.runtime_flash_bytes

    @property
    def ram_needed(self) -> int:
        return self.arena_ram_bytes + self.runtime_ram_bytes

    @property
    def flash_headroom(self) -> int:
        """Flash left over (negative: missing)."""
        return self.flash_available - self.flash_needed

    @property
    def ram_headroom(self) -> int:
        return self.ram_available - self.ram_needed

    @property
    def fits_flash(self) -> bool:
        return self.flash_headroom >= 0

    @property
    def fits_ram(self) -> bool:
        return self.ram_headroom >= 0

    @property
    def fits(self) -> bool:
        return self.fits_flash and self.fits_ram

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board_id,
            "board_name": self.board_name,
            "fits": self.fits,
            "flash": {
                "needed": self.flash_needed,
                "available": self.flash_available,
                "headroom": self.flash_headroom,
                "model": self.model_flash_bytes,
                "kernels_estimate": self.kernel_flash_bytes,
                "runtime_estimate": self.runtime_flash_bytes,
            },
            "ram": {
                "needed": self.ram_needed,
                "available": self.ram_available,
                "headroom": self.ram_headroom,
                "arena": self.arena_ram_bytes,
                "runtime_estimate": self.runtime_ram_bytes,
            },
        }


@dataclass(frozen=True)
class InspectReport:
    facts: ModelFacts
    macs: int  # multiply-accumulates per inference of the conv, dense, matmul and LSTM ops
    unsupported: tuple[UnsupportedOp, ...]
    tflm_supported: bool  # the TFLM runtime loads, allocates and invokes the model
    tflm_error: str | None
    arena_bytes: int | None  # smallest arena that works in the TFLM runtime (exact)
    scratch_margin_bytes: int  # largest CMSIS-NN scratch buffer (estimate)
    kernel_code_bytes: int  # estimate, Cortex-M4F
    fit: FitReport | None = None
    library_problems: tuple[LibraryProblem, ...] = ()  # against the board's library (with a board)
    library: str | None = None  # the board's library, as messages name it
    library_differences: tuple[str, ...] = ()  # "OP: effect" for the model's ops the library computes otherwise
    source: str = ""

    @property
    def op_counts(self) -> dict[str, int]:
        return dict(self.facts.op_counts)

    @property
    def parameter_count(self) -> int:
        return self.facts.parameter_count

    @property
    def is_full_int8(self) -> bool:
        return self.facts.is_full_int8

    @property
    def unsupported_ops(self) -> list[str]:
        return [u.op for u in self.unsupported]

    @property
    def resolver_methods(self) -> list[str]:
        """MicroMutableOpResolver methods the firmware needs (only when every op is supported)."""
        return ops.resolver_methods(self.facts.op_counts)

    @property
    def firmware_arena_bytes(self) -> int | None:
        """The arena the firmware declares: measured + scratch margin + fixed margin, 16-aligned."""
        if self.arena_bytes is None:
            return None
        return round_up(self.arena_bytes + self.scratch_margin_bytes + ARENA_FIXED_MARGIN_BYTES, ARENA_ALIGNMENT)

    def to_dict(self) -> dict[str, Any]:
        facts = self.facts
        return {
            "source": self.source,
            "sha256": facts.sha256,
            "model_id": facts.short_hash,
            "size_bytes": facts.size_bytes,
            "schema_version": facts.schema_version,
            "ops": self.op_counts,
            "operator_count": len(facts.operators),
            "parameter_count": self.parameter_count,
            "macs": self.macs,
            "is_full_int8": self.is_full_int8,
            "inputs": [_tensor_dict(t) for t in facts.inputs],
            "outputs": [_tensor_dict(t) for t in facts.outputs],
            "tensors": [_tensor_dict(t) for t in facts.tensors],
            "tflm": {
                "supported": self.tflm_supported,
                "error": self.tflm_error,
                "unsupported_ops": [u.to_dict() for u in self.unsupported],
                "resolver_methods": self.resolver_methods if not self.unsupported else [],
            },
            "arena": {
                "measured_bytes": self.arena_bytes,
                "firmware_bytes": self.firmware_arena_bytes,
                "scratch_margin_bytes": self.scratch_margin_bytes,
                "fixed_margin_bytes": ARENA_FIXED_MARGIN_BYTES,
            },
            "kernel_code_bytes_estimate": self.kernel_code_bytes,
            "fit": self.fit.to_dict() if self.fit is not None else None,
            "board_library": (
                None
                if self.library is None
                else {
                    "library": self.library,
                    "problems": [p.to_dict() for p in self.library_problems],
                    "differences": list(self.library_differences),
                }
            ),
        }


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _tensor_dict(t: TensorFacts) -> dict[str, Any]:
    return {
        "index": t.index,
        "name": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype,
        "scale": t.scale if t.scales else None,
        "zero_point": t.zero_point if t.zero_points else None,
        "per_channel": len(t.scales) > 1,
        "constant": t.is_constant,
    }


def _elements(t: TensorFacts) -> int:
    return t.element_count


def operator_macs(op: OperatorFacts, tensors: tuple[TensorFacts, ...]) -> int:
    """Multiply-accumulates of one operator instance (0 for ops that are not matrix products)."""

    def inp(position: int) -> TensorFacts | None:
        if position >= len(op.inputs) or op.inputs[position] < 0:
            return None
        return tensors[op.inputs[position]]

    out = tensors[op.outputs[0]] if op.outputs else None
    if out is None:
        return 0
    if op.op == "FULLY_CONNECTED":
        weights = inp(1)
        return _elements(out) * weights.shape[-1] if weights is not None and weights.shape else 0
    if op.op == "CONV_2D":
        weights = inp(1)  # (out_channels, kh, kw, in_channels)
        if weights is None or len(weights.shape) != 4:
            return 0
        _, kh, kw, cin = weights.shape
        return _elements(out) * kh * kw * cin
    if op.op == "DEPTHWISE_CONV_2D":
        weights = inp(1)  # (1, kh, kw, out_channels)
        if weights is None or len(weights.shape) != 4:
            return 0
        return _elements(out) * weights.shape[1] * weights.shape[2]
    if op.op == "TRANSPOSE_CONV":
        weights, data = inp(1), inp(2)  # inputs: output_shape, weights (O, kh, kw, I), input
        if weights is None or data is None or len(weights.shape) != 4:
            return 0
        cout, kh, kw, _ = weights.shape
        return _elements(data) * kh * kw * cout
    if op.op == "BATCH_MATMUL":
        lhs = inp(0)
        return _elements(out) * lhs.shape[-1] if lhs is not None and lhs.shape else 0
    if op.op == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        data, recurrent = inp(0), inp(5)  # input (batch, time, features), recurrent weights (units, units)
        if data is None or recurrent is None or len(data.shape) != 3 or len(recurrent.shape) != 2:
            return 0
        batch, steps, features = data.shape
        units = recurrent.shape[0]
        return batch * steps * 4 * units * (features + units)
    return 0


def model_macs(facts: ModelFacts) -> int:
    return sum(operator_macs(op, facts.tensors) for op in facts.operators)


def max_scratch_bytes(facts: ModelFacts) -> int:
    return max((ops.scratch_bytes(op, facts.tensors) for op in facts.operators), default=0)


def find_unsupported(facts: ModelFacts) -> tuple[UnsupportedOp, ...]:
    found = []
    for name in facts.op_names:
        reason = ops.unsupported_reason(name)
        if reason is not None:
            found.append(UnsupportedOp(name, reason, ops.fix_for(name)))
    return tuple(found)


def per_channel_fully_connected(facts: ModelFacts) -> list[int]:
    """Indexes of the FULLY_CONNECTED operators whose weights have one scale per output channel."""
    found = []
    for index, op in enumerate(facts.operators):
        if op.op == "FULLY_CONNECTED" and len(op.inputs) > 1 and op.inputs[1] >= 0 and len(facts.tensors[op.inputs[1]].scales) > 1:
            found.append(index)
    return found


def library_problems(facts: ModelFacts, board: BoardFacts) -> tuple[LibraryProblem, ...]:
    """What the board's TFLM library cannot run in this model, or would compute wrongly."""
    library = board.library
    problems = []
    missing = [op for op in facts.op_names if op in ops.OPS and op not in library.ops]
    if missing:
        problems.append(
            LibraryProblem(
                "missing_op",
                f"board {board.id}'s TFLM library {library.label} has no kernel for {', '.join(missing)}",
                "replace the layers that use it, or choose a board whose library has it (`tinyml boards show ID` names each board's library)",
            )
        )
    per_channel = per_channel_fully_connected(facts)
    if per_channel and not library.per_channel_fully_connected:
        problems.append(
            LibraryProblem(
                "per_channel_fully_connected",
                f"{len(per_channel)} FULLY_CONNECTED (Dense) layer(s) have per-channel weights, which board {board.id}'s "
                f"TFLM library {library.label} computes wrongly (one scale for every channel)",
                f"re-quantize with `tinyml quantize MODEL --calibration DATA --board {board.id}` (per-tensor Dense weights)",
            )
        )
    return tuple(problems)


def fit_for(report: InspectReport, board: BoardFacts) -> FitReport:
    """Flash and RAM the model needs on `board`, against what the board has."""
    if report.firmware_arena_bytes is None:
        raise ModelError(
            f"cannot size the model for {board.id}: {report.tflm_error or 'the TFLM runtime cannot run it'}",
            _unsupported_fix(report),
        )
    return FitReport(
        board_id=board.id,
        board_name=board.name,
        model_flash_bytes=round_up(report.facts.size_bytes, ARENA_ALIGNMENT),
        kernel_flash_bytes=report.kernel_code_bytes,
        runtime_flash_bytes=int(board.runtime_flash_bytes),
        flash_available=int(board.flash_bytes),
        arena_ram_bytes=report.firmware_arena_bytes,
        runtime_ram_bytes=int(board.runtime_ram_bytes),
        ram_available=int(board.ram_bytes),
    )


def inspect_model(model: str | Path | bytes, board: BoardFacts | None = None) -> InspectReport:
    """Facts, TFLM support, exact arena and (with a board) the fit of a `.tflite` model."""
    from tinyml.model import tflm

    if isinstance(model, (bytes, bytearray, memoryview)):
        model_bytes, source = bytes(model), "<bytes>"
    else:
        model_bytes, source = read_model_bytes(model), str(model)
    facts = read_model(model_bytes)
    unsupported = find_unsupported(facts)
    log.info("model %s: %d ops, %d parameters", facts.short_hash, len(facts.operators), facts.parameter_count)

    arena: int | None = None
    error: str | None = None
    if any(op not in ops.OPS for op in facts.op_counts):
        # An op without a TFLM kernel: ask the runtime for its own words instead of bisecting.
        error = tflm.load_error(model_bytes) or "the TFLM runtime has no kernel for " + ", ".join(u.op for u in unsupported)
    else:
        log.info("measuring the tensor arena in the TFLM runtime")
        try:
            arena = tflm.measure_arena(model_bytes)
        except ModelError as exc:
            error = exc.problem.removeprefix("the TFLM runtime cannot run this model: ")  # check_fits says it once
    report = InspectReport(
        facts=facts,
        macs=model_macs(facts),
        unsupported=unsupported,
        tflm_supported=arena is not None,
        tflm_error=error,
        arena_bytes=arena,
        scratch_margin_bytes=max_scratch_bytes(facts),
        kernel_code_bytes=ops.kernel_code_bytes(facts.op_counts),
        source=source,
    )
    if board is not None:
        differences = tuple(f"{d.op}: {d.effect}" for d in board.library.differences if d.op in facts.op_counts)
        report = replace(report, library_problems=library_problems(facts, board), library=board.library.label, library_differences=differences)
    if board is not None and arena is not None:
        report = replace(report, fit=fit_for(report, board))
    return report


def _kib(n: int) -> str:
    return f"{n / KIB:.1f} KiB"


def _unsupported_fix(report: InspectReport) -> str:
    if report.unsupported:
        first = report.unsupported[0]
        return f"{first.op}: {first.fix}"
    # Every op has a kernel: there is no op to replace, the file itself is suspect.
    return "TFLM has a kernel for every op of this model, so the file is probably damaged: re-create it with `tinyml quantize`"


def check_fits(report: InspectReport, board: BoardFacts | None = None) -> None:
    """Raise ModelError unless the model is full int8, TFLM runs every op, the board's TFLM
    library runs it as the host does, and it fits the board.

    `board` defaults to the board the report was made for (`inspect_model(..., board=...)`).
    Called by `render` before it writes anything.
    """
    if report.unsupported:
        names = ", ".join(report.unsupported_ops)
        raise ModelError(f"the model uses {names}, which the int8 TFLM firmware cannot run ({report.unsupported[0].reason})", _unsupported_fix(report))
    if not report.is_full_int8:
        raise ModelError(
            "the model is not full-integer int8 (float or hybrid tensors remain); the firmware runs int8 models only",
            "quantize it with `tinyml quantize MODEL --calibration DATA`",
        )
    problems = library_problems(report.facts, board) if board is not None else report.library_problems
    if problems:
        raise ModelError(problems[0].problem, problems[0].fix)
    if not report.tflm_supported:
        raise ModelError(f"the TFLM runtime cannot run the model: {report.tflm_error}", _unsupported_fix(report))
    fit = fit_for(report, board) if board is not None else report.fit
    if fit is None:
        return
    if not fit.fits_flash:
        raise ModelError(
            f"the model needs {_kib(fit.flash_needed)} flash (model {_kib(fit.model_flash_bytes)} + kernels "
            f"~{_kib(fit.kernel_flash_bytes)} + runtime ~{_kib(fit.runtime_flash_bytes)}), board {fit.board_id} has {_kib(fit.flash_available)}",
            "make the model smaller (fewer units or filters, `tinyml optimize`), or choose a board with more flash",
        )
    if not fit.fits_ram:
        raise ModelError(
            f"the model needs {_kib(fit.ram_needed)} RAM (arena {_kib(fit.arena_ram_bytes)} + runtime ~{_kib(fit.runtime_ram_bytes)}), "
            f"board {fit.board_id} has {_kib(fit.ram_available)}",
            "shrink the largest activations (smaller input, fewer filters, pool earlier), or choose a board with more RAM",
        )
