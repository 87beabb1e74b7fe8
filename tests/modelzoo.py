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


# Single-op int8 models, one per op of tinyml.model.ops.OPS that a lab (gesture, KWS) or a model
# above uses, for checking a host reference op by op: name -> (op under test, input shape,
# per-tensor Dense weights?). Each model is that op alone between an int8 input and output.
SINGLE_OP_MODELS: dict[str, tuple[str, tuple[int, ...], bool]] = {
    "fc_per_channel": ("FULLY_CONNECTED", (32,), False),
    "fc_per_tensor": ("FULLY_CONNECTED", (32,), True),
    "conv2d": ("CONV_2D", (10, 10, 3), False),
    "conv2d_same_relu": ("CONV_2D", (12, 3, 3), False),
    "conv2d_strided": ("CONV_2D", (16, 12, 1), False),
    "conv1d": ("CONV_2D", (32, 3), False),
    "depthwise_conv2d": ("DEPTHWISE_CONV_2D", (10, 10, 4), False),
    "max_pool2d": ("MAX_POOL_2D", (8, 8, 4), False),
    "average_pool2d": ("AVERAGE_POOL_2D", (8, 8, 4), False),
    "mean_gap2d": ("MEAN", (6, 6, 8), False),
    "mean_gap1d": ("MEAN", (20, 8), False),
    "softmax": ("SOFTMAX", (10,), False),
    "add": ("ADD", (16,), False),
    "reshape": ("RESHAPE", (4, 4, 2), False),
}


def _single_op_layer(name: str):
    import keras

    layers, ops = keras.layers, keras.ops
    constant = np.random.default_rng(7).uniform(-1, 1, size=(16,)).astype(np.float32)
    return {
        "fc_per_channel": layers.Dense(16),
        "fc_per_tensor": layers.Dense(16),
        "conv2d": layers.Conv2D(8, 3),
        "conv2d_same_relu": layers.Conv2D(8, (5, 1), padding="same", activation="relu"),
        "conv2d_strided": layers.Conv2D(6, (5, 3), strides=(2, 2), padding="same"),
        "conv1d": layers.Conv1D(8, 5),
        "depthwise_conv2d": layers.DepthwiseConv2D(3),
        "max_pool2d": layers.MaxPooling2D(2),
        "average_pool2d": layers.AveragePooling2D(2),
        "mean_gap2d": layers.GlobalAveragePooling2D(),
        "mean_gap1d": layers.GlobalAveragePooling1D(),
        "softmax": layers.Softmax(),
        "add": layers.Lambda(lambda x: ops.add(x, constant)),
        "reshape": layers.Flatten(),
    }[name]


def write_single_op_model(name: str, directory: Path) -> Path:
    """Build and convert the single-op model `name` of SINGLE_OP_MODELS; returns the `.tflite` path.

    Per-tensor Dense weights use the TF 2.21 converter's flag for it; by default the converter
    quantizes Dense weights per output channel.
    """
    import keras
    import tensorflow as tf

    path = Path(directory) / f"op_{name}.tflite"
    if path.exists():
        return path
    _op, shape, per_tensor_dense = SINGLE_OP_MODELS[name]
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    model = keras.Model(inputs, _single_op_layer(name)(inputs))
    calibration = np.random.default_rng(1).uniform(-1, 1, size=(64, *shape)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if per_tensor_dense:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    path.write_bytes(converter.convert())
    return path
