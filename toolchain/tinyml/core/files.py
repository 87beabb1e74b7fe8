"""Writing outputs safely: never half-written, never over the user's work without --force."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tinyml.core.errors import InputError


def check_can_write(path: Path, force: bool) -> None:
    """Refuse to replace an existing file unless the user said --force."""
    if path.exists() and not force:
        raise InputError(f"{path} already exists", "choose another --out, or pass --force to overwrite it")
    if path.exists() and path.is_dir():
        raise InputError(f"{path} is a directory", "give a file name for the output")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder and rename, so a crash leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); an output should get the mode any new file gets.
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
