"""The default settings of the lab firmware apps, so `tinyml deploy --app gesture|kws` works alone.

A lab passes its own `app_context` (the spec it trained with); these defaults are the same
specs the labs use unless told otherwise.
"""

from __future__ import annotations

from typing import Any

# The apps that print predictions by name on the board.
APPS_NEEDING_LABELS = frozenset({"gesture", "kws"})


def default_app_context(app: str) -> dict[str, Any]:
    """What the app's templates need beyond the model and labels; {} for apps without features."""
    if app == "gesture":
        from tinyml.features.imu import ImuWindowSpec

        return {"imu": ImuWindowSpec().template_context()}
    if app == "kws":
        from tinyml.features.logmel import LogMelSpec
        from tinyml.labs.keyword_spotting import RecognizerSettings

        return {"logmel": LogMelSpec().template_context(), "recognizer": RecognizerSettings().template_context()}
    return {}
