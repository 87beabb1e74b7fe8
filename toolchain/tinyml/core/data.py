"""Loading the user's data sets and label files, with errors that say what to fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml.core.errors import InputError


@dataclass(frozen=True)
class Dataset:
    """Samples `x` (first axis is the sample) and optional integer class labels `y`."""

    x: np.ndarray
    y: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, limit: int | None) -> Dataset:
        if limit is None:
            return self
        return Dataset(self.x[:limit], None if self.y is None else self.y[:limit])


def load_dataset(path: str | Path) -> Dataset:
    """Read `.npz` (arrays `x`, optional `y`) or `.npy` (samples only)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file {path} does not exist", "check the path")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            x = np.load(path, allow_pickle=False)
            y = None
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive.files:
                    raise InputError(
                        f"{path} has no array named 'x' (it has: {', '.join(archive.files) or 'nothing'})",
                        "save it with numpy.savez(path, x=samples, y=labels)",
                    )
                x = archive["x"]
                y = archive["y"] if "y" in archive.files else None
        else:
            raise InputError(f"{path} is not a .npz or .npy file", "save the data with numpy.savez(path, x=..., y=...)")
    except InputError:
        raise
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} could not be read as numpy data ({exc})", "save it with numpy.savez(path, x=..., y=...)") from exc
    if x.ndim < 2:
        raise InputError(f"'x' in {path} has shape {x.shape}", "the first axis must be the sample axis, e.g. (n, features)")
    if y is not None:
        if y.ndim == 2 and y.shape[1] > 1:
            y = np.argmax(y, axis=1)  # one-hot labels
        y = y.reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise InputError(f"{path} has {x.shape[0]} samples in 'x' but {y.shape[0]} labels in 'y'", "give one label per sample")
        if not np.issubdtype(y.dtype, np.integer):
            if np.all(np.mod(y, 1) == 0):
                y = y.astype(np.int64)
            else:
                raise InputError(f"'y' in {path} is not integer class labels", "store class indices 0..N-1 in 'y'")
    return Dataset(x, y)


def load_labels(path: str | Path) -> list[str]:
    """Class labels from a UTF-8 text file, one per line (blank trailing lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file {path} does not exist", "give a text file with one label per line")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"labels file {path} is not UTF-8 text", "save it as UTF-8, one label per line") from exc
    labels = text.splitlines()
    while labels and not labels[-1].strip():
        labels.pop()
    if not labels:
        raise InputError(f"labels file {path} is empty", "write one label per line")
    return labels
