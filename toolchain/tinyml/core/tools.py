"""Every external program the toolchain runs goes through here (PlatformIO, compilers).

As in Zephyr's west runners: the quoted command line is logged, a missing program becomes one
clear error that says how to install it, and tests can assert the exact command lines.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from tinyml.core.errors import ToolError

log = logging.getLogger("tinyml.tools")


def require_program(name: str, install_hint: str) -> str:
    """The full path of `name` on PATH, or a ToolError naming how to install it."""
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"'{name}' was not found on PATH", install_hint)
    return found


def run(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its combined output; stream lines to `on_line` if given.

    Raises ToolError if the program does not exist. A non-zero exit is returned, not raised:
    callers turn a tool's own failure text into an error that names the fix.
    """
    log.debug("running: %s", shlex.join(str(c) for c in cmd))
    try:
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise ToolError(f"'{cmd[0]}' was not found", "install it or add it to PATH") from exc
    lines: list[str] = []
    # A watchdog kills a hung program; reading its output alone would block forever.
    timed_out = threading.Event()

    def _expire() -> None:
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(timeout, _expire) if timeout else None
    if watchdog is not None:
        watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
        proc.wait()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if timed_out.is_set():
        raise ToolError(
            f"'{shlex.join(map(str, cmd))}' did not finish in {timeout:.0f} s",
            "run it by hand to see where it stops",
        )
    return subprocess.CompletedProcess(list(map(str, cmd)), proc.returncode, "".join(lines), "")
