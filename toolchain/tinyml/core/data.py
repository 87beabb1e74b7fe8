"""Loading the user's data sets and label files, with errors that say what to fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml.core.errors import InputError


@dataclass(frozen=True)
class Dataset:
    """Samples `x` (first axis is the sample) and optional integer class labels `y`.

    `one_hot_width` is the width of the one-hot rows `y` was read from (None for class
    indices), so that the label check can compare it with the model's class count.
    """

    x: np.ndarray
    y: np.ndarray | None = None
    one_hot_width: int | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, limit: int | None) -> Dataset:
        if limit is None:
            return self
        return Dataset(self.x[:limit], None if self.y is None else self.y[:limit], self.one_hot_width)


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
    one_hot_width = None
    if y is not None:
        if y.ndim == 2 and y.shape[1] > 1:
            one_hot_width = int(y.shape[1])
            y = np.argmax(y, axis=1)  # one-hot labels
        y = y.reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise InputError(f"{path} has {x.shape[0]} samples in 'x' but {y.shape[0]} labels in 'y'", "give one label per sample")
        if not np.issubdtype(y.dtype, np.integer):
            if np.all(np.mod(y, 1) == 0):
                y = y.astype(np.int64)
            else:
                raise InputError(f"'y' in {path} is not integer class labels", "store class indices 0..N-1 in 'y'")
    return Dataset(x, y, one_hot_width)


def load_labels(path: str | Path) -> list[str]:
    """Class labels from a UTF-8 text file, one per line (blank trailing lines ignored).

    The one labels-file reader. A byte-order mark (Notepad, Excel) is dropped, and lines end
    only at \\n or \\r\\n: str.splitlines() would also split at U+0085, U+2028 and friends,
    which may sit inside a label and would make a wrong count look right.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file {path} does not exist", "give a text file with one label per line")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"labels file {path} is not UTF-8 text", "save it as UTF-8, one label per line") from exc
    labels = [line.removesuffix("\r") for line in text.split("\n")]
    while labels and not labels[-1].strip():
        labels.pop()
    if not labels:
        raise InputError(f"labels file {path} is empty", "write one label per line")
    return labels


def class_count(output_units: int) -> int:
    """Classes a model with `output_units` outputs tells apart: one sigmoid unit is two classes."""
    return 2 if output_units == 1 else output_units


def check_class_labels(data: Dataset, classes: int, what: str) -> None:
    """InputError unless every label is a class index 0..classes-1: the one label check.

    Labels that are out of range or negative would otherwise give a made-up accuracy, or
    (validate) land in another row of the confusion matrix; a huge label would ask for a
    huge matrix. One-hot labels must have one column per class.
    """
    y = data.y
    if y is None or y.size == 0:
        return
    if data.one_hot_width is not None and data.one_hot_width != classes:
        raise InputError(
            f"the {what} labels are one-hot rows of width {data.one_hot_width}, the model has {classes} classes",
            f"give one-hot rows of width {classes}, or class indices 0..{classes - 1}",
        )
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= classes:
        raise InputError(
            f"the {what} labels run from {low} to {high}, the model has {classes} classes",
            f"use class indices 0..{classes - 1}, in the model's output order",
        )


def check_finite(x: np.ndarray, what: str) -> None:
    """InputError when float samples hold NaN or infinity (each would become an arbitrary int8)."""
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=1))) if x.ndim > 1 else 1
        raise InputError(f"{what} has NaN or infinite values (in {bad} of {len(x)} samples)", "clean the data: the model was trained on finite values")
