"""Keyword-spotting lab: "yes", "no", "up", "down" (plus silence and unknown) on the PDM microphone.

Data: synthesised with espeak-ng and sox (`tinyml.labs.speech`), split by speaker.
Features: the log-mel spectrogram of `tinyml.features.logmel.LogMelSpec` (49 frames x 40 mel
bins per second); the board computes the same features in C++ rendered from the same spec.
Model: a small CNN (two Conv2D with pooling, one dense layer), int8.

Run it: `python -m tinyml.labs.keyword_spotting --out runs/kws` (the virtual board by default).
On the students' own recordings: `--data DIR` (a `tinyml capture` dataset, tinyml.labs.captured).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset
from tinyml.features.logmel import LogMelSpec
from tinyml.features.recognizer import RecognizerSettings
from tinyml.labs.speech import LABELS, SILENCE, SpeechClips, SpeechSettings, load_or_synthesise
from tinyml.labs.pipeline import LabResult, deploy_lab_model, lab_stage, prepare_out_dir
from tinyml.labs.training import Progress, fit_classifier, float_accuracy, keras, seed_everything

log = logging.getLogger("tinyml.labs.keyword_spotting")

DEFAULT_SEED = 5
DEFAULT_EPOCHS = 40
DEFAULT_BOARD = "nano33ble_sense"
# The board's score smoothing; silence is the class it never reports.
DEFAULT_RECOGNIZER = RecognizerSettings(silence_label=LABELS.index(SILENCE))


@dataclass(frozen=True)
class KwsData:
    train: Dataset
    test: Dataset
    labels: tuple[str, ...]
    spec: LogMelSpec
    clips: SpeechClips  # the audio, for the C++ front-end parity check
    test_audio: np.ndarray  # (n, clip_samples) int16, in the order of `test`


def load_kws_data(cache: Path, settings: SpeechSettings = SpeechSettings(), spec: LogMelSpec | None = None, *, progress: Progress | None = None) -> KwsData:
    """Synthesised clips (cached in `cache`) as log-mel features, split by speaker."""
    spec = spec or LogMelSpec()
    clips = load_or_synthesise(cache, settings, progress=progress)
    train, test = clips.split()
    return KwsData(
        train=Dataset(spec.batch(train.audio), train.labels),
        test=Dataset(spec.batch(test.audio), test.labels),
        labels=LABELS,
        spec=spec,
        clips=clips,
        test_audio=test.audio,
    )


def build_kws_model(input_shape: Sequence[int], num_classes: int, *, width: int = 12) -> Any:
    """A small tf_keras CNN: a strided Conv2D over time x mel, pooling, a second Conv2D, dense.

    (A DS-CNN with batch normalisation did not train on ~400 clips in the time budget; this
    plain CNN reaches ~87% on held-out speakers in ~7 s on 2 cores.)
    """
    k = keras()
    layers = k.layers
    inputs = k.Input(shape=tuple(input_shape), name="log_mel")
    x = layers.Conv2D(width, (5, 3), strides=(2, 2), padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D((2, 2))(x)
    x = layers.Conv2D(width * 2, (3, 3), padding="same", activation="relu")(x)
    x = layers.MaxPooling2D((2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(num_classes)(x)
    outputs = layers.Softmax()(x)
    return k.Model(inputs, outputs, name="kws_cnn")


def train_kws_model(data: KwsData, *, epochs: int = DEFAULT_EPOCHS, seed: int = DEFAULT_SEED, progress: Progress | None = None) -> Any:
    seed_everything(seed)
    model = build_kws_model(data.spec.input_shape, len(data.labels))
    fit_classifier(model, data.train, epochs=epochs, batch_size=32, progress=progress)
    log.info("float accuracy on held-out speakers: %.3f", float_accuracy(model, data.test))
    return model


def run_kws_lab(
    out: str | Path,
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    settings: SpeechSettings = SpeechSettings(),
    spec: LogMelSpec | None = None,
    recognizer: RecognizerSettings = DEFAULT_RECOGNIZER,
    board: str = DEFAULT_BOARD,
    port: str = "virtual",
    calibration_samples: int = 200,
    validate_limit: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
    on_stage: Callable[[str, str], None] | None = None,
    dataset: str | Path | None = None,
) -> LabResult:
    """The whole lab: synthesise (or read a recorded `dataset`), log-mel, train, then `tinyml.deploy` with the kws app."""
    out_dir = Path(out)
    prepare_out_dir(out_dir, "keyword_spotting", force)
    with lab_stage(on_stage, "data"):
        if dataset is not None:
            from tinyml.labs.captured import captured_kws_data, silence_label

            data = captured_kws_data(dataset, spec)
            if recognizer == DEFAULT_RECOGNIZER:
                recognizer = replace(recognizer, silence_label=silence_label(data.labels))
        else:
            data = load_kws_data(out_dir / "speech_clips.npz", settings, spec, progress=progress)
        log.info("%d training clips, %d test clips (held-out speakers %s)", len(data.train), len(data.test), data.clips.test_speakers)
    with lab_stage(on_stage, "train"):
        model = train_kws_model(data, epochs=epochs, seed=seed, progress=progress)
    return deploy_lab_model(
        "keyword_spotting",
        out_dir,
        model,
        train=data.train,
        test=data.test,
        labels=data.labels,
        calibration_samples=calibration_samples,
        seed=seed,
        board=board,
        port=port,
        app="kws",
        app_context={"logmel": data.spec.template_context(), "recognizer": recognizer.template_context()},
        validate_limit=validate_limit,
        progress=progress,
        on_stage=on_stage,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from tinyml.labs.console import lab_main

    return lab_main(
        argv,
        run_kws_lab,
        module="tinyml.labs.keyword_spotting",
        description="Keyword-spotting lab: yes/no/up/down on the microphone, end to end.",
        default_out="runs/kws",
        default_epochs=DEFAULT_EPOCHS,
        default_board=DEFAULT_BOARD,
    )


if __name__ == "__main__":
    raise SystemExit(main())
