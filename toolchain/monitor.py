"""Reading a board's human-mode lines (predictions, INFO) for `tinyml monitor`.

The firmware prints readable lines in human mode. A board that a crashed host left in binary
mode is woken with a HUMAN frame; its frame replies (0x00 ... 0x00) are cut out of the text,
so only lines a person should read come through.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from tinyml import protocol
from tinyml.link import DEFAULT_BAUDRATE, open_port
from tinyml.protocol import Frame, MessageType


class Monitor:
    """Lines from the board and typed commands to it; use as a context manager."""

    def __init__(self, port: str, baudrate: int = DEFAULT_BAUDRATE) -> None:
        self.port = port
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
        self._serial.write(text.strip().encode("utf-8") + b"\n")

    def lines(self, duration: float | None = None) -> Iterator[str]:
        """The board's lines as they arrive, for `duration` seconds (None: until closed)."""
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            data = self._serial.read(max(1, self._serial.in_waiting))
            yield from self._split(data)

    def _split(self, data: bytes) -> Iterator[str]:
        for byte in data:
            if byte == protocol.DELIMITER:
                self._in_frame = not self._in_frame  # human mode: a frame is 0x00 ... 0x00
                continue
            if self._in_frame:
                continue
            if byte in (0x0A, 0x0D):
                if self._pending:
                    yield self._pending.decode("utf-8", "replace")
                    self._pending.clear()
            else:
                self._pending.append(byte)
