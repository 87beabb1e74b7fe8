"""Runs a firmware ELF on QEMU's mps2-an386 (a Cortex-M4F), its UART0 on a local TCP socket.

`EmulatedBoard(elf)` is a context manager: it starts QEMU, checks that the firmware boots and
prints, and offers the serial port as a pyserial URL (`socket://127.0.0.1:PORT`) that
`tinyml validate` and `monitor` open like a board's port. Leaving the context stops QEMU.

- Time: `-icount shift=0` makes QEMU's virtual clock the instruction count (1 ns each), so the
  firmware's micros() measures instructions exactly, independent of the host's speed.
- Sensors: the IMU and microphone stand-ins of the emulated board read recordings through
  semihosting from QEMU's working directory, a temporary folder the runner fills.
- No orphans: QEMU runs in its own process group, gets SIGKILL if the Python process dies
  (PR_SET_PDEATHSIG), and is stopped on exit (atexit) and when the context closes.
- Failures come back as one-line DeviceErrors: a HardFault (the firmware's report line and
  QEMU's exit code 240), a lockup, an exit, or a firmware that prints nothing.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from tinyml.core.errors import DeviceError, InputError, ToolError
from tinyml.core.tools import require_program
from tinyml.device.emulator.recordings import AUDIO_FILE, IMU_FILE, write_audio_recording, write_imu_recording

log = logging.getLogger("tinyml.emulator")

QEMU = "qemu-system-arm"
QEMU_INSTALL_HINT = "install QEMU: apt-get install qemu-system-arm"
ADDR2LINE = "arm-none-eabi-addr2line"
MACHINE = "mps2-an386"
# The QEMU exit codes the board support uses (the target's semihosting.h).
EXIT_HARDFAULT = 240
EXIT_UNEXPECTED_INTERRUPT = 241
NOTICE_PREFIX = "tinyml-emulator: "

DEFAULT_STARTUP_TIMEOUT_S = 10.0
_STOP_GRACE_S = 2.0
_PR_SET_PDEATHSIG = 1


# Resolved here, in the parent: the child of a threaded process must not take the loader's lock.
# Linux only; elsewhere the process group, atexit and the context manager remain.
_prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies, however it dies. (Linux sends
    it when the thread that started QEMU ends: start boards from the main thread.)"""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class EmulatedBoard:
    """QEMU mps2-an386 running `elf`; `url` is its serial port for pyserial."""

    def __init__(
        self,
        elf: str | Path,
        *,
        imu: np.ndarray | None = None,
        imu_rate_hz: float | None = None,
        audio: str | Path | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
        icount: str = "shift=0",
    ) -> None:
        self.elf = Path(elf).resolve()  # QEMU runs in the recordings folder
        self.imu = imu
        self.imu_rate_hz = imu_rate_hz
        self.audio = audio
        self.startup_timeout = startup_timeout
        self.icount = icount
        self.port: int | None = None
        self.banner: str = ""
        self.notices: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._stderr: list[str] = []
        self._stderr_reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> EmulatedBoard:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def command(self, listen_fd: int) -> list[str]:
        return [
            QEMU,
            "-M", MACHINE,
            "-nographic",
            "-monitor", "none",
            "-icount", self.icount,
            # QEMU accepts the connection on the socket this process made listen: no port race.
            "-chardev", f"socket,id=uart0,fd={listen_fd},server=on,wait=on,nodelay=on",
            "-serial", "chardev:uart0",
            "-semihosting-config", "enable=on,target=native",
            "-kernel", str(self.elf),
        ]  # fmt: skip

    def start(self) -> str:
        """Starts QEMU and waits for the firmware's first line; returns the serial URL."""
        require_program(QEMU, QEMU_INSTALL_HINT)
        if not self.elf.is_file() or self.elf.read_bytes()[:4] != b"\x7fELF":
            # QEMU would load any other file as a raw image, and the core would lock up.
            raise InputError(f"{self.elf} is not a firmware ELF", "build it first (tinyml emulate builds and runs)")
        if self.imu is not None and not self.imu_rate_hz:
            raise InputError("the IMU recording has no sample rate", "give its rate (--imu-rate HZ)")
        try:
            self._launch()
            self.banner = self._first_line()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _launch(self) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="tinyml-emulator-")
        workdir = Path(self._workdir.name)
        if self.imu is not None:
            write_imu_recording(self.imu, float(self.imu_rate_hz), workdir / IMU_FILE)
        if self.audio is not None:
            write_audio_recording(self.audio, workdir / AUDIO_FILE)
        atexit.register(self.stop)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            self.port = listener.getsockname()[1]
            cmd = self.command(listener.fileno())
            log.debug("running: %s", " ".join(cmd))
            try:
                self._process = subprocess.Popen(
                    cmd,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    pass_fds=(listener.fileno(),),
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise ToolError(f"cannot start {QEMU} ({exc})", QEMU_INSTALL_HINT) from exc
        self._stderr_reader = threading.Thread(target=self._read_stderr, name="qemu-stderr", daemon=True)
        self._stderr_reader.start()

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self._stderr.append(line)
            if line.startswith(NOTICE_PREFIX):
                self.notices.append(line[len(NOTICE_PREFIX) :])
                log.info("%s", line)

    def _first_line(self) -> str:
        """Connects as the first client (QEMU holds the CPU until one connects), reads one line."""
        deadline = time.monotonic() + self.startup_timeout
        received = b""
        try:
            probe = socket.create_connection(("127.0.0.1", self.port), timeout=self.startup_timeout)
        except OSError:
            self._wait_exit(2.0)  # QEMU closed its socket: it is exiting
            self.check()
            raise
        with probe:
            probe.settimeout(0.1)
            while b"\n" not in received:
                self.check()
                if time.monotonic() > deadline:
                    raise DeviceError(
                        f"the emulated firmware printed nothing in {self.startup_timeout:.0f} s",
                        "check that setup() starts Serial and that the app does not block before loop()",
                    )
                try:
                    chunk = probe.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    self._wait_exit(1.0)
                    self.check()
                received += chunk
        return received.split(b"\n", 1)[0].decode(errors="replace").strip()

    def _wait_exit(self, seconds: float) -> None:
        assert self._process is not None
        try:
            self._process.wait(seconds)
        except subprocess.TimeoutExpired:
            pass

    def check(self) -> None:
        """Raises a one-line DeviceError if QEMU has stopped (the firmware crashed or exited)."""
        if self._process is None or self._process.poll() is None:
            return
        if self._stderr_reader is not None:
            self._stderr_reader.join(1.0)
        code = self._process.returncode
        crash = next((line for line in self._stderr if line.startswith(NOTICE_PREFIX) and ("HardFault" in line or "unexpected exception" in line)), None)
        lockup = next((line for line in self._stderr if "Lockup" in line), None)
        if code in (EXIT_HARDFAULT, EXIT_UNEXPECTED_INTERRUPT) and crash:
            report = crash[len(NOTICE_PREFIX) :]
            raise DeviceError(f"the emulated firmware crashed{self._source_of(report)}: {report}", f"see that line; the registers are in the report (ELF: {self.elf})")
        if lockup:
            raise DeviceError(
                f"the emulated firmware locked up: a fault while handling a fault, most likely a stack overflow into the guard below the 32 KiB stack (QEMU: {lockup.removeprefix('qemu: fatal: ')})",
                "look for deep recursion or large local arrays",
            )
        last = next((line for line in reversed(self._stderr) if line.strip()), "no message")
        raise DeviceError(f"QEMU stopped with exit code {code} ({last})", "run the firmware with the emulator's --verbose to see QEMU's output")

    def _source_of(self, report: str) -> str:
        """' in FUNCTION at FILE:LINE' for the pc of a fault report, when the ELF says."""
        pc = re.search(r"pc=(0x[0-9a-f]+)", report)
        if pc is None or shutil.which(ADDR2LINE) is None:
            return ""
        out = subprocess.run([ADDR2LINE, "-f", "-C", "-e", str(self.elf), pc.group(1)], capture_output=True, text=True).stdout.split("\n")
        if len(out) < 2 or out[1].startswith("??"):
            return ""
        function = re.sub(r"\([^()]*\)( const)?$", "", out[0])  # without its parameter list
        return f" in {function} at {Path(out[1].split(' ')[0]).name}"

    def stop(self) -> None:
        """Stops QEMU (its whole process group) and removes the recordings' folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process is not None and process.stderr is not None:
            process.stderr.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        atexit.unregister(self.stop)
