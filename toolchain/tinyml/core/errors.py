"""One error family for everything the user, the input or the device got wrong.

The CLI prints such an error as one line, the problem and then the fix, and exits with the
class's code. Anything else that escapes is a bug in the toolchain and shows a traceback.

Exit codes (documented in README.md):
    0  success
    1  internal error (a bug: please report it with --verbose output)
    2  bad input: a file, an argument or data that does not fit
    3  the model cannot go to the board: quantization, an op TFLM lacks, too big for the board
    4  an external tool is missing or failed (PlatformIO, a compiler)
    5  the board or the serial link failed (no board, busy port, protocol errors)
    6  validation ran but a threshold failed
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations


class TinyMLError(Exception):
    """A problem the user can fix. `problem` says what is wrong, `fix` what to do."""

    exit_code = 1

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.problem}. Fix: {self.fix}"
        return self.problem


class InputError(TinyMLError):
    """A file, argument or data set that is missing, malformed or does not fit."""

    exit_code = 2


class ModelError(TinyMLError):
    """The model cannot be made into int8 TFLM firmware for the chosen board."""

    exit_code = 3


class ToolError(TinyMLError):
    """An external program (PlatformIO, a compiler) is missing or failed."""

    exit_code = 4


class DeviceError(TinyMLError):
    """The board, its serial port or the link protocol failed."""

    exit_code = 5


class ValidationFailed(TinyMLError):
    """Validation completed, but a threshold the user set was not met."""

    exit_code = 6


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), to quote in a problem."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
