"""The one Keras loader: a `.keras` or `.h5` file as a Keras 3 or a tf_keras model.

A trained model comes from Keras 3, or from tf_keras (Keras 2: what TFMOT's pruning,
clustering and QAT work on); both write `.keras` and `.h5`. `load_keras_file` tries Keras 3
first, then tf_keras, and says what each reported when neither reads the file. The quantize
stage, the optimize stage and validation's float accuracy all load models through it.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from tinyml.core.errors import InputError, first_line
from tinyml.model.tensorflow_import import import_tensorflow

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
FLAVOURS = ("keras", "tf_keras")
_MAGIC = {".keras": b"PK", ".h5": b"\x89HDF", ".hdf5": b"\x89HDF"}
# How Keras 3 ("Could not locate class 'X'") and tf_keras ("Unknown layer: 'X'") name a class
# that the file uses and that no one registered; the message may sit deep in the exception chain.
_UNREGISTERED = re.compile(r"Could not locate (?:class|function) '([^']+)'|Unknown [a-z ]+: '?([\w.>]+)'?")


def load_keras_file(path: str | Path) -> tuple[Any, str]:
    """(model, flavour) from a `.keras` or `.h5` file; the flavour is "keras" or "tf_keras"."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in KERAS_SUFFIXES:
        raise InputError(f"{path} is not a .keras or .h5 file", "save the trained model with model.save('model.keras')")
    with path.open("rb") as f:
        head = f.read(8)
    if not head.startswith(_MAGIC[suffix]):
        if suffix == ".keras":
            raise InputError(f"{path} is not a Keras model file (a .keras file is a zip archive)", "save the model with model.save('model.keras')")
        raise InputError(f"{path} is not an HDF5 file", "save the model with model.save('model.h5') or model.save('model.keras')")
    import_tensorflow()  # Keras and tf_keras load TensorFlow: with its start-up chatter kept from the user
    errors = []
    for flavour in FLAVOURS:
        try:
            model = importlib.import_module(flavour).models.load_model(path, compile=False)
        except Exception as exc:  # noqa: BLE001 - each loader fails in its own way on foreign files
            if "safe_mode" in str(exc):
                raise InputError(
                    f"{path} has a Lambda layer with Python code, which Keras refuses to load from a file (it could run any code)",
                    "replace the Lambda layer with built-in layers, or pass the live model to tinyml.quantize_model() from Python",
                ) from exc
            custom = _unregistered_class(exc)
            if custom is not None:
                raise InputError(
                    f"{path} uses the custom class '{custom}', which Keras cannot find: it is not registered",
                    f"decorate {custom} with @keras.saving.register_keras_serializable() and import its module before loading; "
                    f"or load the model with keras.models.load_model(path, custom_objects={{'{custom}': {custom}}}) and pass it to tinyml.quantize_model()",
                ) from exc
            errors.append(f"{flavour}: {first_line(exc)}")
            continue
        return model, flavour
    raise InputError(f"{path} could not be read as a Keras model ({'; '.join(errors)})", "re-save the trained model with model.save('model.keras')")


def _unregistered_class(exc: BaseException) -> str | None:
    """The name of the custom class or function `exc` says is unknown, or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        match = _UNREGISTERED.search(str(current))
        if match:
            return (match.group(1) or match.group(2)).split(">")[-1]
        current = current.__cause__ or current.__context__
    return None
