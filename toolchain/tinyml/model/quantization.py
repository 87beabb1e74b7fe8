"""int8 <-> float for one tensor, and the class a model's outputs pick: the one home of both.

numpy only, so every stage can use it without TensorFlow: quantize (the accuracy of the int8
model), compare (latency inputs), validation (inputs sent to the board, dequantized metrics).
The firmware's C++ twin of `quantize_input` is firmware_templates/common/input_quantization.h.
"""

from __future__ import annotations

import numpy as np

from tinyml.model.modelfile import TensorFacts


def quantize_input(x: np.ndarray, tensor: TensorFacts) -> np.ndarray:
    """Float samples to the int8 values the model's input tensor expects.

    Rounds half away from zero, as TFLite's QUANTIZE kernel (std::round) does; numpy's
    np.round would round half to even and differ on exact ties.
    """
    scaled = np.asarray(x, dtype=np.float64) / tensor.scale
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + tensor.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, tensor: TensorFacts, dtype: type[np.floating] = np.float32) -> np.ndarray:
    """Quantized values to the real numbers they stand for: scale * (q - zero point), in `dtype`.

    float32 is what the runtimes compute in; validation's metrics ask for float64. A tensor
    without quantization (scale 0) keeps its values.
    """
    values = np.asarray(q).astype(dtype)
    if tensor.scale == 0.0:
        return values
    return (values - tensor.zero_point) * dtype(tensor.scale)


def predicted_classes(outputs: np.ndarray) -> np.ndarray:
    """Class per sample: arg-max over the last axis, or a 0.5 threshold for a single sigmoid output."""
    outputs = np.asarray(outputs).reshape(len(outputs), -1)
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > 0.5).astype(np.int64)
    return np.argmax(outputs, axis=1)
