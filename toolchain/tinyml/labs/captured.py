"""The labs on a dataset the students recorded (`tinyml capture`), instead of the shipped one.

`python -m tinyml.labs.gesture --data DIR` and `python -m tinyml.labs.keyword_spotting --data
DIR` read the folder through tinyml.features.recordings and window it with the same feature
code the board runs: IMU windows (`ImuWindowSpec`, at the dataset's rate, so the gesture
firmware samples at the rate the data was recorded at) and log-mel features (`LogMelSpec`).
Classes are the dataset's labels, in sorted order. Train and test are split by student, as
the shipped data is split by subject or speaker: the test students' takes are never seen in
training. With a single student, the last take of each label is held out instead (and the
log says the accuracy then measures the same person).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinyml.core.data import Dataset
from tinyml.core.errors import InputError
from tinyml.features import recordings
from tinyml.features.imu import ImuWindowSpec
from tinyml.features.logmel import LogMelSpec
from tinyml.features.recordings import TakeInfo

log = logging.getLogger("tinyml.labs.captured")

# The window of a gesture, and how often a new one starts: the shipped lab's 2 s and 0.5 s.
GESTURE_WINDOW_S = 2.0
GESTURE_STRIDE_S = 0.5
SILENCE = "silence"


def gesture_spec(rate_hz: float) -> ImuWindowSpec:
    """The IMU windows for a dataset recorded at `rate_hz`: 2 s windows every 0.5 s, at that rate."""
    rate = int(round(rate_hz))
    return ImuWindowSpec(sample_rate_hz=rate, window_samples=round(GESTURE_WINDOW_S * rate), stride_samples=max(1, round(GESTURE_STRIDE_S * rate)))


def held_out(takes: Sequence[TakeInfo], test_students: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """(is_test per take, train students, test students): the last student by name unless given."""
    students = sorted({t.student for t in takes})
    if test_students:
        unknown = sorted(set(test_students) - set(students))
        if unknown:
            raise InputError(f"test students {', '.join(unknown)} have no takes (students: {', '.join(students)})", "choose test students from that list")
        chosen = tuple(sorted(test_students))
    elif len(students) > 1:
        chosen = (students[-1],)
    else:
        log.warning("one student only (%s): holding out each label's last take; the test then measures the same person", students[0])
        last = {t.label: i for i, t in enumerate(takes)}
        return np.asarray([last[t.label] == i for i, t in enumerate(takes)]), tuple(students), tuple(students)
    if len(chosen) == len(students):
        raise InputError("every student is a test student", "leave at least one student for training")
    is_test = np.asarray([t.student in chosen for t in takes])
    return is_test, tuple(s for s in students if s not in chosen), chosen


def _one_rate(info: recordings.DatasetInfo, takes: Sequence[TakeInfo]) -> float:
    rates = sorted({t.rate_hz for t in takes})
    if len(rates) > 1:
        raise InputError(f"the dataset mixes rates {', '.join(f'{r:g}' for r in rates)} Hz", "train on takes of one rate: move the others to another folder")
    return rates[0] if rates else info.rate_hz


def captured_gesture_data(folder: str | Path, spec: ImuWindowSpec | None = None, *, test_students: Sequence[str] | None = None):
    """GestureData from a recorded IMU dataset: windows per take, split by student."""
    from tinyml.labs.gesture import GestureData

    info, loaded = recordings.load_dataset_takes(folder, "imu")
    rate = _one_rate(info, [t for t, _ in loaded])
    spec = spec or gesture_spec(rate)
    if spec.sample_rate_hz != int(round(rate)):
        raise InputError(f"the windows are for {spec.sample_rate_hz} Hz, the dataset was recorded at {rate:g} Hz", "use the dataset's rate")
    usable = [(t, x) for t, x in loaded if x.shape[0] >= spec.window_samples]
    if len(usable) < len(loaded):
        log.warning("%d take(s) shorter than a %d-sample window are left out", len(loaded) - len(usable), spec.window_samples)
    if not usable:
        raise InputError(f"no take in {folder} is as long as a window ({spec.window_seconds:g} s)", f"record takes of at least {spec.window_seconds:g} s (--seconds)")
    labels = tuple(sorted({t.label for t, _ in usable}))
    is_test, train_students, test_students_ = held_out([t for t, _ in usable], test_students)
    parts: dict[bool, tuple[list[np.ndarray], list[np.ndarray]]] = {True: ([], []), False: ([], [])}
    for (take, values), test in zip(usable, is_test):
        windows = spec.windows(values)
        xs, ys = parts[bool(test)]
        xs.append(windows)
        ys.append(np.full(windows.shape[0], labels.index(take.label), dtype=np.int64))
    if not parts[False][0] or not parts[True][0]:
        raise InputError("the split left no training or no test takes", "record more takes (and a second student)")

    def _dataset(test: bool) -> Dataset:
        xs, ys = parts[test]
        return Dataset(np.concatenate(xs), np.concatenate(ys))

    return GestureData(train=_dataset(False), test=_dataset(True), labels=labels, spec=spec, train_subjects=train_students, test_subjects=test_students_)


def one_second(pcm: np.ndarray, samples: int) -> np.ndarray:
    """The loudest `samples` of a take (a word said anywhere in a longer take), zero-padded when shorter."""
    if pcm.size <= samples:
        return np.pad(pcm, (0, samples - pcm.size)).astype(np.int16)
    energy = np.cumsum(np.concatenate([[0.0], pcm.astype(np.float64) ** 2]))
    hop = max(1, samples // 100)
    starts = np.arange(0, pcm.size - samples + 1, hop)
    best = int(starts[np.argmax(energy[starts + samples] - energy[starts])])
    return pcm[best : best + samples].astype(np.int16)


def captured_kws_data(folder: str | Path, spec: LogMelSpec | None = None, *, test_students: Sequence[str] | None = None):
    """KwsData from a recorded microphone dataset: one second per take, log-mel features, split by student."""
    from tinyml.labs.keyword_spotting import KwsData
    from tinyml.labs.speech import SpeechClips

    spec = spec or LogMelSpec()
    info, loaded = recordings.load_dataset_takes(folder, "microphone")
    rate = _one_rate(info, [t for t, _ in loaded])
    if int(round(rate)) != spec.sample_rate_hz:
        raise InputError(f"the dataset was recorded at {rate:g} Hz, the features need {spec.sample_rate_hz} Hz", "record with the capture firmware (16 kHz)")
    takes = [t for t, _ in loaded]
    labels = tuple(sorted({t.label for t in takes}))
    students = sorted({t.student for t in takes})
    audio = np.stack([one_second(pcm, spec.clip_samples) for _, pcm in loaded])
    classes = np.asarray([labels.index(t.label) for t in takes], dtype=np.int64)
    is_test, _, test_students_ = held_out(takes, test_students)
    if is_test.all() or not is_test.any():
        raise InputError("the split left no training or no test takes", "record more takes (and a second student)")
    # SpeechClips splits by speaker number; a single student's held-out takes get a number of their own.
    speakers = np.asarray([students.index(t.student) for t in takes], dtype=np.int64)
    speakers = np.where(is_test, len(students), speakers)
    clips = SpeechClips(audio, classes, speakers, (len(students),))
    train, test = clips.split()
    return KwsData(
        train=Dataset(spec.batch(train.audio), train.labels),
        test=Dataset(spec.batch(test.audio), test.labels),
        labels=labels,
        spec=spec,
        clips=clips,
        test_audio=test.audio,
    )


def silence_label(labels: Sequence[str]) -> int:
    """The recognizer's silence class: a label named 'silence', else none (an index past the classes)."""
    if SILENCE in labels:
        return list(labels).index(SILENCE)
    log.warning("no '%s' label: the board reports every class it hears; record some background as --label %s", SILENCE, SILENCE)
    return len(labels)
