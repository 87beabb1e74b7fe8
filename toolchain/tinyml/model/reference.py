"""The host reference for int8 models: the TFLite interpreter with its builtin kernels, no XNNPACK.

How close it is to TFLM, measured on TensorFlow 2.21 and tflite-micro 0.dev20261023 (the
pinned stack): over 1,000 calibration-distribution inputs per test model (dense, Conv2D, Conv1D,
depthwise) 0 to 4 inputs differ from TFLM, each in one output element by exactly 1 LSB; on
full-range random int8 inputs 0 to 1 in 1,000. The cause is the rounding of the int8
requantization (accumulator x Q31 multiplier >> shift):

- TFLM uses gemmlowp's double rounding (SaturatingRoundingDoublingHighMul, then
  RoundingDivideByPOT), as CMSIS-NN does by default on the board;
- TFLite's BUILTIN_REF kernels in the TensorFlow wheel use single rounding (one 64-bit multiply,
  ties rounded up), and its default optimized kernels, used here, follow double rounding on
  some layer shapes and not on others.

The two rules disagree only when the scaled accumulator lies next to a .5 tie (37 of 48,000
requantizations in the dense test model's first layer). tests/test_tflm.py emulates both rules
and checks them element by element. BUILTIN_REF is not closer to TFLM overall (9 vs 3 inputs in
1,000 on the dense model), so the optimized kernels stay. The XNNPACK delegate is kept out: it
differs from TFLM far more often (about 1 inference in 10).

Imports TensorFlow (about 4 s), so only the stages that compare against the host load it.
"""

from __future__ import annotations

import numpy as np

from tinyml.core.errors import ModelError
from tinyml.model.modelfile import read_model
from tinyml.model.tensorflow_import import import_tensorflow


class ReferenceInterpreter:
    """TFLite without XNNPACK; `invoke` takes and returns raw (int8) tensors of input/output 0."""

    def __init__(self, model_bytes: bytes) -> None:
        tf = import_tensorflow()

        self.model_bytes = bytes(model_bytes)
        self.facts = read_model(self.model_bytes)
        try:
            # tf.lite.Interpreter's warning that it moves to ai_edge_litert is silenced in import_tensorflow:
            # its kernels are the reference we want.
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
