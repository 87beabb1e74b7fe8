"""The bit-exact host reference: the TFLite interpreter with its builtin kernels only.

With the default XNNPACK delegate about 1 in 10 inferences differs from TFLM by one LSB, so
the reference runs `BUILTIN_WITHOUT_DEFAULT_DELEGATES`: the same reference kernels TFLM ports.
Imports TensorFlow (about 4 s), so only the stages that compare against the host load it.
"""

from __future__ import annotations

import warnings

import numpy as np

from tinyml.errors import ModelError
from tinyml.modelfile import read_model


class ReferenceInterpreter:
    """TFLite without XNNPACK; `invoke` takes and returns raw (int8) tensors of input/output 0."""

    def __init__(self, model_bytes: bytes) -> None:
        import tensorflow as tf

        self.model_bytes = bytes(model_bytes)
        self.facts = read_model(self.model_bytes)
        try:
            with warnings.catch_warnings():
                # tf.lite.Interpreter warns that it moves to ai_edge_litert; its kernels are what we want.
                warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
                self._interpreter = tf.lite.Interpreter(
                    model_content=self.model_bytes,
                    experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                )
            self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"the TFLite interpreter could not load the model: {exc}", "re-create the model with `tinyml quantize`") from exc
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]

    def invoke(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        shape = tuple(self._input["shape"])
        if x.size != int(np.prod(shape)):
            raise ModelError(f"input has {x.size} elements, the model expects {int(np.prod(shape))} {shape}", "reshape the sample to the model's input shape")
        self._interpreter.set_tensor(self._input["index"], x.reshape(shape).astype(self._input["dtype"], copy=False))
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output["index"]), copy=True)
