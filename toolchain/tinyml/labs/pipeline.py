"""The part every lab shares after training: save the lab's files, then `tinyml.deploy`.

A lab's output folder holds what a student needs to repeat any step by hand:

    model_float.h5            the trained float model (tf_keras, HDF5: loads in Keras 3 and tf_keras)
    calibration.npz           training samples for int8 calibration (x, y)
    test.npz                  held-out samples (x, y)
    labels.txt                one class name per line
    deploy/                   `tinyml deploy` output: int8 model, firmware project, validation report

`deploy/` is written by `tinyml.deploy.deploy`, the same function as `tinyml deploy`, so the
lab and the command are one code path.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset
from tinyml.core.errors import InputError
from tinyml.core.files import atomic_write_bytes, atomic_write_text, check_output_folder

log = logging.getLogger("tinyml.labs")

MARKER = ".tinyml-lab"
DEPLOY_DIR = "deploy"


@dataclass
class LabResult:
    """A lab run: where its files are, the accuracies, and the deploy result with its validation."""

    name: str
    out_dir: Path
    float_accuracy: float | None
    int8_accuracy: float | None
    deploy: Any  # tinyml.deploy.DeployResult

    @property
    def validation(self) -> Any:
        return self.deploy.validation

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.name,
            "out_dir": str(self.out_dir),
            "float_accuracy": self.float_accuracy,
            "int8_accuracy": self.int8_accuracy,
            "deploy": self.deploy.to_dict(),
        }


@contextlib.contextmanager
def lab_stage(listener: Callable[[str, str], None] | None, stage: str) -> Iterator[None]:
    """Tell the lab's progress display (if any) that `stage` starts, and that it is done when the block ends."""
    if listener is not None:
        listener(stage, "start")
    yield
    if listener is not None:
        listener(stage, "done")


def prepare_out_dir(out_dir: Path, lab: str, force: bool) -> None:
    """Claim `out_dir` for a lab: empty, or a folder this lab wrote before; anything else needs force."""
    out_dir = Path(out_dir)
    check_output_folder(out_dir)  # before the data is downloaded and the model trained
    marker = out_dir / MARKER
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        if not marker.is_file() or marker.read_text(encoding="utf-8").strip() != lab:
            raise InputError(f"{out_dir} holds files that the {lab} lab did not write", "choose another --out, or pass --force to write into it")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, lab + "\n")


def save_dataset(path: Path, data: Dataset) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=data.x, y=data.y)
    atomic_write_bytes(path, buffer.getvalue())


def calibration_subset(train: Dataset, count: int, seed: int) -> Dataset:
    """`count` training samples drawn with a fixed seed: what the int8 converter calibrates on."""
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(train), size=min(count, len(train)), replace=False))
    return Dataset(train.x[index], None if train.y is None else train.y[index])


def deploy_lab_model(
    lab: str,
    out_dir: Path,
    model: Any,
    *,
    train: Dataset,
    test: Dataset,
    labels: Sequence[str],
    calibration_samples: int,
    seed: int,
    board: str,
    port: str,
    app: str,
    app_context: Mapping[str, Any],
    validate_limit: int | None,
    progress: Callable[[int, int], None] | None = None,
    on_stage: Callable[[str, str], None] | None = None,
) -> LabResult:
    """Save the lab's files, then quantize, inspect, render, flash or virtual board, and validate.

    The int8 converter calibrates on `calibration_samples` training samples drawn with `seed`.
    """
    from tinyml.deploy import deploy

    calibration = calibration_subset(train, calibration_samples, seed)
    with warnings.catch_warnings():
        # HDF5 on purpose: both Keras 3 and tf_keras (TFMOT) load it; tf_keras calls it legacy.
        warnings.simplefilter("ignore", UserWarning)
        model.save(out_dir / "model_float.h5")
    save_dataset(out_dir / "calibration.npz", calibration)
    save_dataset(out_dir / "test.npz", test)
    atomic_write_text(out_dir / "labels.txt", "\n".join(labels) + "\n")
    result = deploy(
        model,
        board=board,
        out=out_dir / DEPLOY_DIR,
        calibration=calibration,
        eval_data=test,
        labels=list(labels),
        port=port,
        app=app,
        app_context=app_context,
        validate_limit=validate_limit,
        min_exact=1.0,
        progress=progress,
        on_stage=on_stage,
    )
    # The accuracy on the held-out data, float and int8, as the quantize stage measured it.
    facts = result.stage("quantize").facts
    return LabResult(lab, out_dir, facts.get("float_accuracy"), facts.get("int8_accuracy"), result)
