"""Small real models for the tests of the later stages, built straight with TensorFlow.

The tests of convert, render, the virtual board and validate need int8 `.tflite` files but
should not depend on `tinyml quantize` being right; `test_quantize.py` tests that stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT_SHAPES = {
    "dense": (16,),
    "conv2d": (12, 12, 1),
    "conv1d": (32, 3),
    "depthwise": (10, 10, 4),
}


def build_keras_model(kind: str, n_classes: int = 4, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    shape = INPUT_SHAPES[kind]
    layers = keras.layers
    body = {
        "dense": [layers.Dense(24, activation="relu"), layers.Dense(n_classes, activation="softmax")],
        "conv2d": [
            layers.Conv2D(6, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(n_classes, activation="softmax"),
        ],
        "conv1d": [
            layers.Conv1D(8, 5, activation="relu"),
            layers.GlobalAveragePooling1D(),
            layers.Dense(n_classes, activation="softmax"),
        ],
        "depthwise": [
            layers.DepthwiseConv2D(3, activation="relu"),
            layers.Conv2D(8, 1, activation="relu"),
            layers.AveragePooling2D(2),
            layers.Flatten(),
            layers.Dense(n_classes, activation="softmax"),
        ],
    }[kind]
    return keras.Sequential([keras.Input(shape), *body])


def sample_inputs(kind: str, count: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(count, *INPUT_SHAPES[kind])).astype(np.float32)


def convert_int8(model, calibration: np.ndarray, per_channel_dense: bool = False) -> bytes:
    """Full-integer int8 with int8 input and output, via the plain TFLite converter.

    Dense weights per tensor by default: the boards' TFLM libraries compute per-channel
    FULLY_CONNECTED wrongly, so render refuses such models.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel_dense
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def write_int8_model(kind: str, directory: Path, n_classes: int = 4, per_channel_dense: bool = False) -> Path:
    """Build, convert and save one model of `kind`; returns the `.tflite` path."""
    path = Path(directory) / f"{kind}_int8{'_per_channel_dense' if per_channel_dense else ''}.tflite"
    if not path.exists():
        model = build_keras_model(kind, n_classes)
        path.write_bytes(convert_int8(model, sample_inputs(kind, 64), per_channel_dense))
    return path
