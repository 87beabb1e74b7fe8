"""A recorded dataset: the folder `tinyml capture` writes and the labs read.

    DIR/dataset.json                    the sensor kind, rate and board every take shares
    DIR/<label>/<student>-<NNN>.npz     an IMU take: `x` (samples, 6) float32, ax ay az in g,
                                        gx gy gz in deg/s, and `rate_hz`
    DIR/<label>/<student>-<NNN>.wav     a microphone take: mono PCM16 at 16 kHz
    DIR/<label>/<student>-<NNN>.json    the take's metadata: label, student, board, USB
                                        serial, rate, samples, time

These are the formats the labs and `tinyml quantize` already read (.npz with `x`, .wav).

A take is written atomically: its metadata first, then its data file, each through a
temporary file renamed into place, so the data file's name appearing is the commit. A take
whose data file is missing (the disk filled up, or the machine stopped, between the two
renames) is not a take: readers skip it and `dataset_stats` counts it as incomplete.
A dataset holds one sensor kind at one rate from one board type (profile id), so that a
model never trains on a mix it cannot see on the board; `allow_mixed` records an exception.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import time
import wave
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tinyml.core.errors import InputError
from tinyml.features.imu import ACCEL_FULL_SCALE_G, GYRO_FULL_SCALE_DPS, IMU_CHANNELS

DATASET_FILE = "dataset.json"
KINDS = ("imu", "microphone")
DATA_SUFFIX = {"imu": ".npz", "microphone": ".wav"}
PCM_FULL_SCALE = 32767
# A name that is a safe file name on every OS: letters, digits, '_', '-', '.', not starting with '.' or '-'.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def check_name(value: str, what: str) -> str:
    """`value` if it can be a folder or file name everywhere; else InputError (one line)."""
    if not _NAME.fullmatch(value) or value.lower().split(".")[0] in _WINDOWS_RESERVED:
        raise InputError(
            f"the {what} {value!r} cannot be a file name",
            f"use letters, digits, '_', '-' or '.' (at most 64, not starting with '.' or '-'), e.g. {re.sub(r'[^A-Za-z0-9_.-]+', '_', value).strip('._-') or 'wave'}",
        )
    return value


@dataclass(frozen=True)
class DatasetInfo:
    """What every take of a dataset shares (dataset.json)."""

    kind: str  # "imu" or "microphone"
    rate_hz: float
    board: str  # board profile id, as the firmware reports it
    mixed: bool = False  # takes of other rates or boards were allowed in

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TakeInfo:
    label: str
    student: str
    kind: str
    rate_hz: float
    board: str
    serial: str  # the board's USB serial number ("" when the port has none)
    samples: int
    recorded: str = ""  # ISO 8601, local time
    path: Path | None = field(default=None, compare=False)  # the data file, when read from disk

    @property
    def seconds(self) -> float:
        return self.samples / self.rate_hz if self.rate_hz else 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("path")
        return data


def open_dataset(folder: str | Path, kind: str, rate_hz: float, board: str, *, allow_mixed: bool = False) -> DatasetInfo:
    """The dataset in `folder` (made when new), checked to take `kind` at `rate_hz` from `board`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file", "give a folder for the dataset")
    if kind not in KINDS:
        raise InputError(f"unknown sensor kind {kind!r}", f"choose one of {', '.join(KINDS)}")
    wanted = DatasetInfo(kind, float(rate_hz), board, allow_mixed)
    existing = read_dataset_info(folder)
    if existing is None:
        if folder.is_dir() and any(p for p in folder.iterdir() if not p.name.startswith(".")):
            raise InputError(f"{folder} holds files but no {DATASET_FILE}", "give an empty or new folder for a dataset")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot make the dataset folder {folder} ({exc.strerror or exc})", "give a folder you can write to") from exc
        _write_atomic(folder / DATASET_FILE, (json.dumps(wanted.to_dict(), indent=2) + "\n").encode("utf-8"))
        return wanted
    if existing.kind != kind:
        raise InputError(f"{folder} holds {existing.kind} takes, this is {kind}", "record into another folder (one sensor per dataset)")
    differs = [f"{name} {old} (this board: {new})" for name, old, new in (("rate", existing.rate_hz, float(rate_hz)), ("board", existing.board, board)) if old != new]
    if differs and not (allow_mixed or existing.mixed):
        raise InputError(f"{folder} was recorded at {', '.join(differs)}", "record into another folder, or pass --allow-mixed to mix them knowingly")
    if differs and not existing.mixed:
        existing = DatasetInfo(existing.kind, existing.rate_hz, existing.board, True)
        _write_atomic(folder / DATASET_FILE, (json.dumps(existing.to_dict(), indent=2) + "\n").encode("utf-8"))
    return existing


def read_dataset_info(folder: str | Path) -> DatasetInfo | None:
    path = Path(folder) / DATASET_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DatasetInfo(str(data["kind"]), float(data["rate_hz"]), str(data["board"]), bool(data.get("mixed", False)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a dataset description ({exc})", "restore it, or record into a new folder") from exc


def write_take(folder: str | Path, take: TakeInfo, values: np.ndarray) -> Path:
    """Write one take atomically (metadata, then the data file as the commit); returns the data file.

    A full disk or any write failure leaves no take behind (InputError, one line).
    """
    folder = Path(folder)
    check_name(take.label, "label")
    check_name(take.student, "student name")
    label_dir = folder / take.label
    data = _encode(take, values)
    try:
        label_dir.mkdir(parents=True, exist_ok=True)
        stem = _next_stem(label_dir, take.student)
        meta_path, data_path = label_dir / f"{stem}.json", label_dir / f"{stem}{DATA_SUFFIX[take.kind]}"
        _write_atomic(meta_path, (json.dumps(take.to_dict(), indent=2) + "\n").encode("utf-8"))
        try:
            _write_atomic(data_path, data)
        except OSError:
            meta_path.unlink(missing_ok=True)
            raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InputError(f"the disk holding {folder} is full: the take was not saved", "free some space, then record the take again") from exc
        raise InputError(f"could not write the take into {folder} ({exc.strerror or exc}): it was not saved", "check the folder's permissions and the disk") from exc
    return data_path


def _next_stem(label_dir: Path, student: str) -> str:
    numbers = [int(m.group(1)) for p in label_dir.glob(f"{student}-*.json") if (m := re.fullmatch(re.escape(student) + r"-(\d+)", p.stem))]
    return f"{student}-{max(numbers, default=0) + 1:03d}"


def _encode(take: TakeInfo, values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    if take.kind == "imu":
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != len(IMU_CHANNELS):
            raise InputError(f"an IMU take has shape {values.shape}", "give (samples, 6)")
        np.savez(buffer, x=values, rate_hz=np.float64(take.rate_hz))
    else:
        pcm = np.asarray(values, dtype=np.int16).reshape(-1)
        with wave.open(buffer, "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(int(round(take.rate_hz)))
            f.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def iter_takes(folder: str | Path) -> Iterator[TakeInfo]:
    """Every complete take of a dataset, by label then file name."""
    folder = Path(folder)
    for meta_path in sorted(folder.glob("*/*.json")):
        info = _read_take_info(meta_path)
        if info is not None:
            yield info


def _read_take_info(meta_path: Path) -> TakeInfo | None:
    data_path = meta_path.with_suffix(DATA_SUFFIX.get(_json_kind(meta_path), ".npz"))
    if not data_path.is_file():
        return None
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
        return TakeInfo(**{k: data[k] for k in ("label", "student", "kind", "rate_hz", "board", "serial", "samples")}, recorded=str(data.get("recorded", "")), path=data_path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{meta_path} is not a take's metadata ({exc})", "delete the take (its .json and data file) and record it again") from exc


def _json_kind(meta_path: Path) -> str:
    try:
        return str(json.loads(meta_path.read_text(encoding="utf-8")).get("kind", ""))
    except (OSError, ValueError):
        return ""


def load_take(take: TakeInfo) -> np.ndarray:
    """The take's samples: (samples, 6) float32 for the IMU, (samples,) int16 for the microphone."""
    assert take.path is not None
    try:
        if take.kind == "imu":
            with np.load(take.path, allow_pickle=False) as archive:
                return archive["x"].astype(np.float32)
        with wave.open(str(take.path), "rb") as f:
            return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.int16)
    except (OSError, KeyError, ValueError, EOFError, wave.Error) as exc:
        raise InputError(f"the take {take.path} could not be read ({exc})", "delete it (and its .json) and record it again") from exc


def load_dataset_takes(folder: str | Path, kind: str) -> tuple[DatasetInfo, list[tuple[TakeInfo, np.ndarray]]]:
    """A dataset's description and every take with its samples; InputError when there is none or another kind."""
    folder = Path(folder)
    info = read_dataset_info(folder)
    if info is None:
        raise InputError(f"{folder} is not a recorded dataset (no {DATASET_FILE})", "record one with `tinyml capture --port PORT --label NAME --out DIR`")
    if info.kind != kind:
        raise InputError(f"{folder} holds {info.kind} takes, this needs {kind}", "give a dataset recorded from the right sensor")
    takes = [(take, load_take(take)) for take in iter_takes(folder)]
    if not takes:
        raise InputError(f"{folder} holds no complete takes", "record some with `tinyml capture`")
    return info, takes


def clipped_fraction(kind: str, values: np.ndarray) -> float:
    """The fraction of samples at the sensor's full scale on any channel (the sensor saturated)."""
    if values.size == 0:
        return 0.0
    if kind == "imu":
        limit = np.asarray((ACCEL_FULL_SCALE_G,) * 3 + (GYRO_FULL_SCALE_DPS,) * 3, dtype=np.float32) * np.float32(0.999)
        return float(np.mean(np.any(np.abs(values) >= limit, axis=1)))
    return float(np.mean(np.abs(values.astype(np.int32)) >= PCM_FULL_SCALE))


@dataclass
class GroupStats:
    takes: int = 0
    seconds: float = 0.0
    clipped_takes: int = 0  # takes with any clipped sample


@dataclass
class DatasetStats:
    info: DatasetInfo
    labels: dict[str, GroupStats]
    students: dict[str, GroupStats]
    boards: dict[str, int]  # USB serial (or board id) -> takes
    incomplete: int  # metadata without a data file: takes cut short while writing

    @property
    def takes(self) -> int:
        return sum(g.takes for g in self.labels.values())

    def to_dict(self) -> dict:
        return {
            "dataset": self.info.to_dict(),
            "labels": {k: asdict(v) for k, v in self.labels.items()},
            "students": {k: asdict(v) for k, v in self.students.items()},
            "boards": dict(self.boards),
            "incomplete": self.incomplete,
        }


def dataset_stats(folder: str | Path) -> DatasetStats:
    """Takes and seconds per label and per student, takes with clipping, incomplete takes."""
    folder = Path(folder)
    info = read_dataset_info(folder)
    if info is None:
        raise InputError(f"{folder} is not a recorded dataset (no {DATASET_FILE})", "give the folder `tinyml capture --out` wrote")
    labels: dict[str, GroupStats] = {}
    students: dict[str, GroupStats] = {}
    boards: dict[str, int] = {}
    complete = 0
    for take in iter_takes(folder):
        complete += 1
        clipped = clipped_fraction(take.kind, load_take(take)) > 0
        for groups, key in ((labels, take.label), (students, take.student)):
            group = groups.setdefault(key, GroupStats())
            group.takes += 1
            group.seconds += take.seconds
            group.clipped_takes += int(clipped)
        board = take.serial or take.board
        boards[board] = boards.get(board, 0) + 1
    incomplete = len(list(folder.glob("*/*.json"))) - complete
    return DatasetStats(info, dict(sorted(labels.items())), dict(sorted(students.items())), boards, incomplete)


def local_timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
