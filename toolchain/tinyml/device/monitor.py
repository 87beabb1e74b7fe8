"""Reading a board's human-mode lines (predictions, INFO) for `tinyml monitor`.

The firmware prints readable lines in human mode. A board that a crashed host left in binary
mode is woken with a HUMAN frame; its frame replies (0x00 ... 0x00) are cut out of the text,
so only lines a person should read come through.

What the device sends is not trusted with the terminal: escape sequences (a window title, a
cleared screen, colours, a moved cursor) are removed, and other control characters are shown
as their visible symbols, as pyserial's miniterm does.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator

from tinyml.firmware import protocol
from tinyml.device.link import DEFAULT_BAUDRATE, RECONNECT_TIMEOUT_S, open_port, reopen_port
from tinyml.core.errors import DeviceError
from tinyml.firmware.protocol import Frame, MessageType

log = logging.getLogger("tinyml.monitor")

# ESC or the 8-bit CSI/OSC/DCS... introducers, then what the sequence runs to: CSI parameters and
# final byte; OSC, DCS, SOS, PM and APC strings up to BEL or ST; or one character (ESC 7, ESC c).
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Every other C0 and C1 control but tab, shown as its Control Pictures symbol (U+2400 + code) or U+FFFD.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(line: str) -> str:
    """`line` without escape sequences, other control characters made visible: safe for a terminal."""
    line = _ESCAPE_SEQUENCE.sub("", line)
    return _CONTROL.sub(lambda m: chr(0x2400 + ord(m.group())) if ord(m.group()) < 0x20 else "\u2421" if m.group() == "\x7f" else "\ufffd", line)


class Monitor:
    """Lines from the board and typed commands to it; use as a context manager."""

    def __init__(self, port: str, baudrate: int = DEFAULT_BAUDRATE) -> None:
        self.port = port
        self.baudrate = baudrate
        self._serial = open_port(port, baudrate)
        self._pending = bytearray()
        self._in_frame = False

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._serial.close()

    def wake(self) -> None:
        """Switch a board that was left in binary mode back to human mode (harmless otherwise)."""
        self._serial.write(protocol.encode_frame(Frame(MessageType.HUMAN, 0)))

    def command(self, text: str) -> None:
        """Send one typed command (`help`, `info`, `run`)."""
        import serial

        data = text.strip().encode("utf-8") + b"\n"
        try:
            self._serial.write(data)
        except (serial.SerialException, OSError):
            if not self._wait_for_port(time.monotonic() + RECONNECT_TIMEOUT_S):
                raise DeviceError(f"{self.port} went away and did not come back", "check the cable and reset the board") from None
            self._serial.write(data)

    def lines(self, duration: float | None = None) -> Iterator[str]:
        """The board's lines as they arrive, for `duration` seconds (None: until closed)."""
        import serial

        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            try:
                data = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError):
                self._wait_for_port(deadline)
                continue
            yield from self._split(data)

    def _wait_for_port(self, deadline: float | None) -> bool:
        """The board reset or the cable was pulled: wait for the port to come back."""
        import serial

        log.warning("lost %s; waiting for the board to come back", self.port)
        try:
            self._serial.close()
        except (OSError, serial.SerialException):
            log.debug("closing the lost port failed")
        handle = reopen_port(self.port, self.baudrate, deadline)
        if handle is None:
            return False
        self._serial = handle
        log.warning("%s is back", self.port)
        self._in_frame = False
        self._pending.clear()
        return True

    def _split(self, data: bytes) -> Iterator[str]:
        for byte in data:
            if byte == protocol.DELIMITER:
                self._in_frame = not self._in_frame  # human mode: a frame is 0x00 ... 0x00
                continue
            if self._in_frame:
                continue
            if byte in (0x0A, 0x0D):
                if self._pending:
                    yield printable(self._pending.decode("utf-8", "replace"))
                    self._pending.clear()
            else:
                self._pending.append(byte)
