"""Gesture lab: recognise shoulder exercises from a 6-axis IMU, on a Nano 33 BLE Sense.

Data: the smartwatch recordings that ship with `seglearn` (`seglearn.datasets.load_watch`,
Burns et al. 2018): 140 recordings of 7 shoulder-rehabilitation exercises by 10 subjects, at
50 Hz. They are read straight from the package's data file, so seglearn's own imports
(pandas) are not needed. Units are converted to what the board's IMU driver returns:

- acceleration is already in g (gravity included), as Arduino_LSM9DS1 / Arduino_BMI270_BMM150
  report it: kept as is;
- angular rate is in rad/s: multiplied by 180/pi to get degrees per second.

Train and test are split by subject (the test subjects are never seen in training), windows
come from `tinyml.features.imu.ImuWindowSpec`, and the model is a small CNN with (k, 1)
Conv2D kernels, so that TFMOT's quantization-aware training accepts it.

Run it: `python -m tinyml.labs.gesture --out runs/gesture` (the virtual board by default).
On the students' own recordings: `--data DIR` (a `tinyml capture` dataset, tinyml.labs.captured).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset
from tinyml.core.errors import InputError
from tinyml.features.imu import ImuWindowSpec
from tinyml.labs.pipeline import LabResult, deploy_lab_model, lab_stage, prepare_out_dir
from tinyml.labs.training import Progress, fit_classifier, float_accuracy, keras, seed_everything

log = logging.getLogger("tinyml.labs.gesture")

# seglearn's short codes, in its class order, and the names the board prints.
EXERCISES = (
    ("PEN", "pendulum"),
    ("ABD", "abduction"),
    ("FEL", "forward_elevation"),
    ("IR", "internal_rotation"),
    ("ER", "external_rotation"),
    ("TRAP", "trapezius_extension"),
    ("ROW", "upright_row"),
)
LABELS = tuple(name for _, name in EXERCISES)
TEST_SUBJECTS = (9, 10)
RAD_TO_DPS = 180.0 / math.pi
DEFAULT_SEED = 7
DEFAULT_EPOCHS = 12
DEFAULT_BOARD = "nano33ble_sense"


@dataclass(frozen=True)
class GestureData:
    """Windows ready for the model: `train` and `test` are split by subject."""

    train: Dataset
    test: Dataset
    labels: tuple[str, ...]
    spec: ImuWindowSpec
    train_subjects: tuple[int, ...]
    test_subjects: tuple[int, ...]


def _watch_file() -> Path:
    found = importlib.util.find_spec("seglearn")
    if found is None or not found.submodule_search_locations:
        raise InputError("the gesture lab needs the seglearn package (it ships the smartwatch data)", "pip install seglearn==1.2.5, or `pip install tinyml-toolchain[labs]`")
    path = Path(next(iter(found.submodule_search_locations))) / "data" / "watch_dataset.npy"
    if not path.is_file():
        raise InputError(f"seglearn is installed but {path} is missing", "reinstall seglearn==1.2.5")
    return path


def load_recordings() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """All recordings in board units (g, dps) with their class and subject numbers."""
    # A pickled dict of numpy arrays, shipped inside the installed seglearn package.
    raw = np.load(_watch_file(), allow_pickle=True).item()
    if [code for code, _ in EXERCISES] != list(raw["y_labels"]):
        raise InputError(f"unexpected seglearn class list {raw['y_labels']}", "install seglearn==1.2.5")
    recordings = []
    for series in raw["X"]:
        board_units = np.asarray(series, dtype=np.float64).copy()
        board_units[:, 3:] *= RAD_TO_DPS
        recordings.append(board_units.astype(np.float32))
    return recordings, np.asarray(raw["y"], dtype=np.int64), np.asarray(raw["subject"], dtype=np.int64)


def load_gesture_data(spec: ImuWindowSpec | None = None, *, test_subjects: Sequence[int] = TEST_SUBJECTS) -> GestureData:
    """Windows of every recording, split by subject, through the one IMU front end."""
    spec = spec or ImuWindowSpec()
    recordings, classes, subjects = load_recordings()
    unknown = set(test_subjects) - set(subjects.tolist())
    if unknown:
        raise InputError(f"test subjects {sorted(unknown)} are not in the data (subjects are {sorted(set(subjects.tolist()))})", "choose test subjects from that list")
    parts: dict[bool, tuple[list[np.ndarray], list[np.ndarray]]] = {True: ([], []), False: ([], [])}
    for series, label, subject in zip(recordings, classes, subjects):
        windows = spec.windows(series)
        xs, ys = parts[int(subject) in test_subjects]
        xs.append(windows)
        ys.append(np.full(windows.shape[0], label, dtype=np.int64))

    def _dataset(is_test: bool) -> Dataset:
        xs, ys = parts[is_test]
        return Dataset(np.concatenate(xs), np.concatenate(ys))

    return GestureData(
        train=_dataset(False),
        test=_dataset(True),
        labels=LABELS,
        spec=spec,
        train_subjects=tuple(sorted(set(subjects.tolist()) - set(test_subjects))),
        test_subjects=tuple(sorted(test_subjects)),
    )


def build_gesture_model(input_shape: Sequence[int], num_classes: int, *, width: int = 16) -> Any:
    """A small tf_keras CNN: (k, 1) Conv2D along time, pooling, global average, dense softmax."""
    k = keras()
    layers = k.layers
    inputs = k.Input(shape=tuple(input_shape), name="imu_window")
    x = layers.Conv2D(width, (5, 1), padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D((2, 1))(x)
    x = layers.Conv2D(width * 2, (5, 1), padding="same", activation="relu")(x)
    x = layers.MaxPooling2D((2, 1))(x)
    x = layers.Conv2D(width * 2, (5, 1), padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(num_classes)(x)
    outputs = layers.Softmax()(x)
    return k.Model(inputs, outputs, name="gesture_cnn")


def train_gesture_model(data: GestureData, *, epochs: int = DEFAULT_EPOCHS, seed: int = DEFAULT_SEED, progress: Progress | None = None) -> Any:
    """Build and train the CNN with a fixed seed; returns the float tf_keras model."""
    seed_everything(seed)
    model = build_gesture_model(data.spec.input_shape, len(data.labels))
    fit_classifier(model, data.train, epochs=epochs, progress=progress)
    log.info("float accuracy on held-out subjects %s: %.3f", data.test_subjects, float_accuracy(model, data.test))
    return model


def run_gesture_lab(
    out: str | Path,
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    spec: ImuWindowSpec | None = None,
    board: str = DEFAULT_BOARD,
    port: str = "virtual",
    calibration_samples: int = 300,
    validate_limit: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
    on_stage: Callable[[str, str], None] | None = None,
    dataset: str | Path | None = None,
) -> LabResult:
    """The whole lab: data (seglearn's, or a recorded `dataset`), windows, training, then `tinyml.deploy` with the gesture app."""
    out_dir = Path(out)
    prepare_out_dir(out_dir, "gesture", force)
    with lab_stage(on_stage, "data"):
        if dataset is not None:
            from tinyml.labs.captured import captured_gesture_data

            data = captured_gesture_data(dataset, spec)
        else:
            data = load_gesture_data(spec)
        log.info("%d training windows (subjects %s), %d test windows (subjects %s)", len(data.train), data.train_subjects, len(data.test), data.test_subjects)
    with lab_stage(on_stage, "train"):
        model = train_gesture_model(data, epochs=epochs, seed=seed, progress=progress)
    return deploy_lab_model(
        "gesture",
        out_dir,
        model,
        train=data.train,
        test=data.test,
        labels=data.labels,
        calibration_samples=calibration_samples,
        seed=seed,
        board=board,
        port=port,
        app="gesture",
        app_context={"imu": data.spec.template_context()},
        validate_limit=validate_limit,
        progress=progress,
        on_stage=on_stage,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from tinyml.labs.console import lab_main

    return lab_main(
        argv,
        run_gesture_lab,
        module="tinyml.labs.gesture",
        description="Gesture lab: shoulder exercises from a 6-axis IMU, end to end.",
        default_out="runs/gesture",
        default_epochs=DEFAULT_EPOCHS,
        default_board=DEFAULT_BOARD,
    )


if __name__ == "__main__":
    raise SystemExit(main())
