"""Rebuilding a Keras 3 model in tf_keras, layer by layer, with the same weights.

TensorFlow Model Optimization (pruning, clustering, QAT) works only on tf_keras models, and
switching the whole process with TF_USE_LEGACY_KERAS would break every other stage. So the
optimize stage rebuilds the user's Keras 3 model in tf_keras: each layer from its config (the
keys tf_keras understands), wired the same way, then given the same weights. Initializers are
not carried over because the weights are copied; regularizers and constraints are, because
fine-tuning uses them.
"""

from __future__ import annotations

import inspect
import logging
from functools import cache
from typing import Any

from tinyml.core.errors import InputError, ModelError, ToolError
from tinyml.model.tensorflow_import import import_tensorflow

log = logging.getLogger("tinyml.optimize")

INSTALL_HINT = "install them with `pip install --no-deps tf-keras==2.21.0 tensorflow-model-optimization==0.8.1`"

# Keras 3 config keys with no tf_keras counterpart that carry no meaning for an optimized float model.
_IGNORED_KEYS = {"quantization_config", "lora_rank", "lora_alpha", "synchronized", "seed"}


@cache
def tf_keras_module():
    """`tf_keras`, or the one-line install instruction when it (or TFMOT) is missing."""
    import_tensorflow()
    try:
        import tensorflow_model_optimization  # noqa: F401  # imported here so a missing TFMOT is found up front
        import tf_keras
    except ImportError as exc:
        raise ToolError(f"tf-keras and tensorflow-model-optimization are needed for optimize ({exc})", INSTALL_HINT) from exc
    return tf_keras


def to_tf_keras(model: Any):
    """A fresh tf_keras copy of the model, with the same weights.

    Always a copy: TFMOT wraps the layer objects it is given, so fine-tuning would otherwise
    change the caller's trained model (and every later variant would start from it).
    """
    tf_keras = tf_keras_module()
    if isinstance(model, tf_keras.Model):
        copy = tf_keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        return copy
    import keras

    if not isinstance(model, keras.Model):
        raise InputError(f"{type(model).__name__} is not a Keras model", "give a Keras model or a .keras/.h5 file")
    if isinstance(model, keras.Sequential):
        rebuilt = _rebuild_sequential(model, tf_keras)
    elif _is_functional(model):
        rebuilt = _rebuild_functional(model, tf_keras)
    else:
        raise ModelError(
            f"model '{model.name}' is a subclassed keras.Model, which has no layer graph to rebuild in tf_keras",
            "build it with keras.Sequential or the functional API",
        )
    _copy_weights(model, rebuilt)
    log.debug("rebuilt Keras 3 model '%s' in tf_keras (%d layers)", model.name, len(rebuilt.layers))
    return rebuilt


def _is_functional(model: Any) -> bool:
    import keras

    return isinstance(model, keras.Model) and hasattr(model, "_inbound_nodes") and bool(getattr(model, "inputs", None)) and type(model).__name__ == "Functional"


def _layer_class(layer: Any, tf_keras):
    name = type(layer).__name__
    cls = getattr(tf_keras.layers, name, None)
    if cls is None:
        raise ModelError(
            f"layer '{layer.name}' ({name}) has no tf_keras counterpart, so TFMOT cannot optimize this model",
            "replace it with standard layers (Dense, Conv2D, DepthwiseConv2D, pooling, Flatten, Reshape, ...)",
        )
    return cls


def _accepted_keys(cls) -> set[str] | None:
    """The keyword arguments a tf_keras layer class takes, or None when it takes **kwargs it forwards."""
    keys: set[str] = {"name", "trainable", "dtype"}
    for klass in cls.__mro__:
        if klass.__module__.startswith("tf_keras") and "__init__" in vars(klass):
            parameters = inspect.signature(klass.__init__).parameters
            keys.update(p for p in parameters if p not in ("self", "args", "kwargs"))
    return keys


def _nested(value: Any, getter) -> Any:
    """A Keras 3 serialized object (regularizer, constraint) as the tf_keras object."""
    if not isinstance(value, dict) or "class_name" not in value:
        return value
    return getter({"class_name": value["class_name"], "config": value.get("config", {})})


def _layer_config(layer: Any, cls, tf_keras) -> dict[str, Any]:
    config = dict(layer.get_config())
    accepted = _accepted_keys(cls)
    result: dict[str, Any] = {}
    for key, value in config.items():
        if key.endswith("_initializer"):
            continue  # the weights are copied, so initializers never run
        if key == "dtype":
            value = value.get("config", {}).get("name", "float32") if isinstance(value, dict) else value
        elif key.endswith("_regularizer") or key == "activity_regularizer":
            value = _nested(value, tf_keras.regularizers.get)
        elif key.endswith("_constraint"):
            value = _nested(value, tf_keras.constraints.get)
        if accepted is not None and key not in accepted:
            if key not in _IGNORED_KEYS and value not in (None, False):
                log.debug("layer '%s': tf_keras %s has no option %s=%r; left out", layer.name, cls.__name__, key, value)
            continue
        result[key] = value
    return result


def _make_layer(layer: Any, tf_keras):
    cls = _layer_class(layer, tf_keras)
    config = _layer_config(layer, cls, tf_keras)
    try:
        return cls(**config)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"layer '{layer.name}' ({type(layer).__name__}) could not be rebuilt in tf_keras: {exc}", "use standard layers with standard options") from exc


def _input_shape(model: Any) -> tuple:
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
    if shape is None:
        raise ModelError(f"model '{model.name}' has no known input shape", "build the model with keras.Input(shape) as its first layer")
    return tuple(shape[1:])


def _rebuild_sequential(model: Any, tf_keras):
    inputs = tf_keras.Input(shape=_input_shape(model), dtype=model.inputs[0].dtype, name=model.inputs[0].name)
    layers = [_make_layer(layer, tf_keras) for layer in model.layers]
    return tf_keras.Sequential([inputs, *layers], name=model.name)


def _rebuild_functional(model: Any, tf_keras):
    tensors: dict[int, Any] = {}  # id of a Keras 3 KerasTensor -> the tf_keras tensor in its place
    for source in model.inputs:
        tensors[id(source)] = tf_keras.Input(shape=tuple(source.shape[1:]), dtype=source.dtype, name=source.name)
    model_nodes = getattr(model, "_nodes", None)
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        rebuilt = _make_layer(layer, tf_keras)
        for node_index, node in enumerate(layer._inbound_nodes):
            if model_nodes is not None and f"{id(layer)}_ib-{node_index}" not in model_nodes:
                continue  # a call of the layer outside this model
            if node.arguments.kwargs and any(_is_tensor(v) for v in node.arguments.kwargs.values()):
                raise ModelError(f"layer '{layer.name}' takes tensors as keyword arguments, which the tf_keras rebuild does not follow", "pass the layer's inputs positionally")
            args = node.arguments.args
            if len(args) != 1:
                raise ModelError(f"layer '{layer.name}' is called with {len(args)} positional inputs", "call it with one tensor or one list of tensors")
            argument = args[0]
            if isinstance(argument, (list, tuple)):
                mapped = [tensors[id(t)] for t in argument]
            else:
                mapped = tensors[id(argument)]
            outputs = rebuilt(mapped)
            if not isinstance(outputs, (list, tuple)):
                outputs = [outputs]
            for original, new in zip(node.output_tensors, outputs):
                tensors[id(original)] = new
    try:
        outputs = [tensors[id(t)] for t in model.outputs]
    except KeyError as exc:
        raise ModelError(f"model '{model.name}' could not be rewired in tf_keras", "build it with keras.Sequential or plain functional calls") from exc
    inputs = [tensors[id(t)] for t in model.inputs]
    return tf_keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0], name=model.name)


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "_keras_history")


def _copy_weights(source: Any, target: Any) -> None:
    by_name = {layer.name: layer for layer in target.layers}
    for layer in source.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        weights = layer.get_weights()
        new = by_name[layer.name]
        try:
            new.set_weights(weights)
        except ValueError as exc:
            raise ModelError(f"the weights of layer '{layer.name}' do not fit its tf_keras rebuild: {exc}", "use standard layers with standard options") from exc
