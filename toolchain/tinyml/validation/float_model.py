"""The float model behind validate's "host float accuracy": loaded and checked before the run.

A `--float-model` that cannot be read, that takes another input, that has another number of
outputs, or that is itself an int8 model is refused before a single sample goes to the board:
found after the run, it would cost the whole run (and an int8 model fed float samples reports
0% accuracy without a word).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.errors import InputError, TinyMLError
from tinyml.model.keras import KERAS_SUFFIXES, load_keras_file
from tinyml.model.modelfile import TensorFacts, read_model_bytes
from tinyml.model.quantization import dequantize, predicted_classes

FIX = "give the float model the int8 one was made from: the trained Keras model (.keras/.h5) or a float .tflite"


class FloatModel:
    """A float Keras or TFLite model whose top-1 is compared with the labels."""

    def __init__(self, path: str | Path, input_spec: TensorFacts, output_spec: TensorFacts) -> None:
        self.path = Path(path)
        self.input_spec = input_spec
        if not self.path.is_file():
            raise InputError(f"float model {self.path} does not exist", FIX)
        suffix = self.path.suffix.lower()
        if suffix == ".tflite":
            self._tflite = self._load_tflite()
            self._keras = None
            input_shape, input_dtype, outputs = self._tflite.facts.inputs[0].shape, self._tflite.facts.inputs[0].dtype, self._tflite.facts.outputs[0].element_count
        elif suffix in KERAS_SUFFIXES:
            self._tflite = None
            self._keras, _flavour = load_keras_file(self.path)
            input_shape = tuple(int(d or 1) for d in self._keras.inputs[0].shape)
            input_dtype = str(getattr(self._keras.inputs[0].dtype, "name", self._keras.inputs[0].dtype))
            outputs = int(np.prod([d or 1 for d in self._keras.outputs[0].shape[1:]]))
        else:
            raise InputError(f"float model {self.path} is neither a Keras file nor a .tflite", FIX)
        if not input_dtype.startswith("float"):
            raise InputError(f"float model {self.path} takes {input_dtype} input: it is a quantized model, not the float one", FIX)
        per_sample = int(np.prod(input_shape[1:]))
        if per_sample != input_spec.element_count:
            raise InputError(f"float model {self.path} takes {per_sample} values per sample, the int8 model {input_spec.element_count}", FIX)
        if outputs != output_spec.element_count:
            raise InputError(f"float model {self.path} has {outputs} outputs, the int8 model {output_spec.element_count}", FIX)

    def _load_tflite(self) -> Any:
        from tinyml.model.modelfile import read_model
        from tinyml.model.reference import ReferenceInterpreter

        try:
            data = read_model_bytes(self.path)
            facts = read_model(data)
        except TinyMLError as exc:
            raise InputError(f"float model {self.path} cannot be read ({exc.problem})", FIX) from exc
        if facts.inputs[0].dtype == "int8" or facts.outputs[0].dtype == "int8":
            raise InputError(f"float model {self.path} is an int8 model", FIX)
        try:
            return ReferenceInterpreter(data)
        except TinyMLError as exc:
            raise InputError(f"float model {self.path} cannot be run ({exc.problem})", FIX) from exc

    def top1(self, x: np.ndarray) -> np.ndarray:
        """The class the float model picks for each sample (int8 samples are dequantized first)."""
        if x.dtype in (np.int8, np.uint8):
            x = dequantize(x, self.input_spec, np.float64)
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        if self._tflite is not None:
            return predicted_classes(np.asarray([self._tflite.invoke(sample).reshape(-1) for sample in x]))
        shape = tuple(int(d) for d in self._keras.inputs[0].shape[1:])
        return predicted_classes(self._keras.predict(x.reshape((len(x), *shape)), verbose=0))
