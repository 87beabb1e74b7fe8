"""The one place TensorFlow is imported: its start-up chatter goes to the debug log, not the user.

TensorFlow 2.21 logs through absl from C++, which ignores TF_CPP_MIN_LOG_LEVEL for the lines
written while its libraries load ("All log messages before absl::InitializeLog() ...", the
oneDNN notice), and its Python side warns that tf.lite.Interpreter moves to ai_edge_litert.
None of it is for this audience: the C++ lines of the import are caught on file descriptor 2
and logged at debug level (`--verbose` shows them), and the Python warnings and absl logs are
turned down. Keras and tf_keras import TensorFlow too, so every loader calls
`import_tensorflow()` first. The converter's own C++ lines ("fully_quantize: 0 ...") are
caught by the converter's child process (tinyml.model.converter_process).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

log = logging.getLogger("tinyml.tensorflow")

# Python warnings TensorFlow and Keras give about their own APIs, not about the user's model.
_WARNINGS = (
    r".*tf\.lite\.Interpreter is deprecated",
    r".*tf\.lite\.Interpreter.*ai_edge_litert",
    r".*`build\(\)` was called on layer",
)


def import_tensorflow() -> ModuleType:
    """`tensorflow`, imported with its start-up messages sent to the debug log."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if not logging.getLogger("tinyml").isEnabledFor(logging.DEBUG):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ logs after start-up
    for pattern in _WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    with _native_stderr_to_debug_log():
        import tensorflow as tf
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return tf


@contextlib.contextmanager
def _native_stderr_to_debug_log() -> Iterator[None]:
    """Point file descriptor 2 at a temporary file for the duration; log what was written there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    log.debug("tensorflow: %s", line)
