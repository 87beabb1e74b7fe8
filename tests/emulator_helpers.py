"""What the emulator tests share: running `tinyml` as a user would, and finding a QEMU left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINYML = [sys.executable, "-m", "tinyml"]


def qemu_processes(marker: str | Path) -> list[int]:
    """The pids of QEMU processes whose command line names `marker` (a project's path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-arm") and any(str(marker).encode() in arg for arg in argv):
            found.append(int(entry.name))
    return found


def open_sockets() -> int:
    """How many sockets this process holds."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return count


def run_tinyml(*args: object, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TINYML, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]
