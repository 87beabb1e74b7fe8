"""Child processes of a rig run (virtual boards, labgrid agents) that never outlive it.

Each child is started from the main thread with the kernel's parent-death signal set
(PR_SET_PDEATHSIG: the child gets SIGTERM when the thread that started it ends, so even a
SIGKILLed `tinyml rig run` leaves nothing behind), and `Children.stop_all()` in the run's
`finally` ends the rest by their process ids: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger("tinyml.rig")

STOP_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Children:
    """The processes one rig run started."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self.main_thread = threading.main_thread()

    def start(self, command: Sequence[str], *, log_path: Path | None = None, stdin: int | None = subprocess.DEVNULL, stdout: int | IO | None = None) -> subprocess.Popen:
        if threading.current_thread() is not self.main_thread:
            # The parent-death signal follows the starting thread, not the process.
            raise RuntimeError("rig children must be started from the main thread")
        out: int | IO | None = stdout
        log_file = None
        if out is None and log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = open(log_path, "ab")  # noqa: SIM115 - the child holds it; we close our copy below
            out = log_file
        try:
            proc = subprocess.Popen(
                [str(c) for c in command],
                stdin=stdin,
                stdout=out if out is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT if out not in (None, subprocess.PIPE) else subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only a prctl call, no Python objects
            )
        finally:
            if log_file is not None:
                log_file.close()
        log.debug("started %s (pid %d)", " ".join(map(str, command)), proc.pid)
        with self._lock:
            self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = STOP_GRACE_S) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def stop_all(self) -> None:
        with self._lock:
            procs, self._procs = self._procs, []
        for proc in procs:  # SIGTERM to all first, so their grace periods overlap
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            self.stop(proc)
