"""Score smoothing for keyword spotting: the settings of the board's recognizer, defined once.

The kws firmware app smooths the model's scores over time before it reports a keyword
(firmware_templates/apps/kws/recognizer.cpp, micro_speech's RecognizeCommands). Its settings
live here, beside the log-mel front end, because the firmware is rendered from them: the
keyword-spotting lab passes its own, and an app rendered without them gets these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecognizerSettings:
    """Score smoothing on the board, as micro_speech's RecognizeCommands (its defaults)."""

    average_window_ms: int = 1000
    detection_threshold: int = 200  # average score 0..255
    suppression_ms: int = 1500
    minimum_count: int = 3
    inference_every_frames: int = 5  # one inference per 100 ms of audio
    # The class index that never counts as a detection. micro_speech's class order, which the
    # keyword-spotting lab keeps (tinyml.labs.speech.LABELS), puts silence first.
    silence_label: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))

    def template_context(self) -> dict[str, int]:
        """The numbers the kws app's `app_config.h` is rendered from."""
        return self.to_dict()
