"""The optimize stage: pruning, weight clustering and quantization-aware training with TFMOT.

Techniques run in the one order TFMOT's collaborative optimization supports: prune, then
cluster (sparsity-preserving when pruned first), then QAT (pruning- and/or cluster-preserving
when they ran first). Each fine-tunes the model for `epochs` epochs; pruning and clustering
are stripped afterwards, so the result is a plain tf_keras model. The result then goes through
the same full-int8 quantize stage as every other model, with its checks.

TFMOT works only on tf_keras models; a Keras 3 model is rebuilt in tf_keras first
(`tinyml.optimize.tfkeras_rebuild`). Only classification models are fine-tuned: the loss is sparse
categorical (or binary) cross-entropy, on probabilities or logits as the model's output shows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.core.data import Dataset, check_class_labels, class_count
from tinyml.core.errors import InputError, ModelError
from tinyml.model.keras import KERAS_SUFFIXES, load_keras_file
from tinyml.optimize.tfkeras_rebuild import to_tf_keras, tf_keras_module
from tinyml.optimize.weight_stats import KernelStats, kernel_stats, overall_sparsity

log = logging.getLogger("tinyml.optimize")

TECHNIQUE_ORDER = ("prune", "cluster", "qat")
MIN_CLUSTERS = 2
MAX_CLUSTERS = 256
# Pruning ramps the sparsity up over all epochs but the last, then fine-tunes at the target.
PRUNE_MIN_EPOCHS = 2
# Pruning updates its masks this many times along the ramp (TFMOT's default is every 100 steps,
# too coarse for classroom data sets of a few hundred windows).
PRUNE_MASK_UPDATES = 10
# Adam learning rates for fine-tuning a trained model (the TFMOT guides' choices: clustering
# moves weights onto centroids and needs a gentler rate than pruning's recovery).
DEFAULT_LEARNING_RATES = {"prune": 1e-3, "cluster": 1e-4, "qat": 1e-4}
DEFAULT_EPOCHS = 3
DEFAULT_BATCH_SIZE = 32

# The rewrite to suggest when QAT meets a layer the default 8-bit scheme does not know.
QAT_REWRITES = {
    "Conv1D": "rewrite Conv1D(filters, k) as Reshape((steps, 1, channels)) then Conv2D(filters, (k, 1)); the gesture lab's model shows how",
    "SeparableConv1D": "rewrite it as Reshape((steps, 1, channels)) then SeparableConv2D(filters, (k, 1))",
    "LSTM": "replace the recurrent layer with Conv2D (k, 1) blocks, which TFLM and QAT both support",
    "GRU": "replace the recurrent layer with Conv2D (k, 1) blocks, which TFLM and QAT both support",
    "SimpleRNN": "replace the recurrent layer with Conv2D (k, 1) blocks, which TFLM and QAT both support",
}
QAT_GENERIC_REWRITE = "use layers the 8-bit QAT scheme supports (Dense, Conv2D, DepthwiseConv2D, pooling, Reshape, Flatten), or leave out --qat"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class OptimizeSettings:
    """What to apply: `sparsity` in (0, 1) prunes, `clusters` in [2, 256] clusters, `qat` runs QAT."""

    sparsity: float | None = None
    clusters: int | None = None
    qat: bool = False
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float | None = None  # None: the per-technique default

    @property
    def techniques(self) -> tuple[str, ...]:
        chosen = {"prune": self.sparsity is not None, "cluster": self.clusters is not None, "qat": self.qat}
        return tuple(t for t in TECHNIQUE_ORDER if chosen[t])

    @property
    def name(self) -> str:
        """A short variant name such as `prune50+cluster16+qat`."""
        parts = []
        for technique in self.techniques:
            if technique == "prune":
                parts.append(f"prune{round(self.sparsity * 100)}")
            elif technique == "cluster":
                parts.append(f"cluster{self.clusters}")
            else:
                parts.append("qat")
        return "+".join(parts) or "none"

    def check(self) -> None:
        """One clear InputError for each setting out of range."""
        if not self.techniques:
            raise InputError("no optimization was asked for", "give --prune SPARSITY, --cluster N and/or --qat")
        if self.sparsity is not None and not 0.0 < self.sparsity < 1.0:
            raise InputError(f"sparsity {self.sparsity:g} is outside (0, 1)", "give the fraction of weights to zero, e.g. --prune 0.5")
        if self.clusters is not None and not MIN_CLUSTERS <= self.clusters <= MAX_CLUSTERS:
            raise InputError(
                f"cluster count {self.clusters} is outside {MIN_CLUSTERS}..{MAX_CLUSTERS}",
                "give a count an int8 weight can hold, e.g. --cluster 16",
            )
        if self.epochs < 1:
            raise InputError(f"--epochs {self.epochs} is less than 1", "fine-tune for at least one epoch")
        if self.sparsity is not None and self.epochs < PRUNE_MIN_EPOCHS:
            raise InputError(
                f"pruning needs at least {PRUNE_MIN_EPOCHS} epochs (ramp to the target sparsity, then fine-tune at it), got --epochs {self.epochs}",
                f"pass --epochs {PRUNE_MIN_EPOCHS} or more",
            )
        if self.batch_size < 1:
            raise InputError(f"batch size {self.batch_size} is less than 1", "give a positive batch size")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise InputError(f"learning rate {self.learning_rate:g} is not positive", "give e.g. --learning-rate 1e-4")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "techniques": list(self.techniques),
            "sparsity": self.sparsity,
            "clusters": self.clusters,
            "qat": self.qat,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
        }


@dataclass(frozen=True)
class FloatKernel:
    """One kernel of the optimized float model (before int8): what TFMOT itself left."""

    layer: str
    elements: int
    zeros: int
    unique_values: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.elements if self.elements else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "elements": self.elements, "zeros": self.zeros, "unique_values": self.unique_values, "sparsity": round(self.sparsity, 4)}


@dataclass
class OptimizeResult:
    settings: OptimizeSettings
    model: Any  # the optimized tf_keras model (pruning/clustering stripped; a QAT model keeps its fake-quant)
    quantized: Any  # tinyml.model.quantize.QuantizeResult
    float_kernels: list[FloatKernel]
    kernels: list[KernelStats]  # the int8 kernels of the quantized model
    history: dict[str, list[float]] = field(default_factory=dict)  # per-technique training loss by epoch

    @property
    def float_accuracy(self) -> float | None:
        """The optimized float (or QAT) model on the validation data, as the quantize stage measured it."""
        return self.quantized.float_accuracy

    @property
    def tflite_bytes(self) -> bytes:
        return self.quantized.tflite_bytes

    @property
    def float_sparsity(self) -> float:
        elements = sum(k.elements for k in self.float_kernels)
        return sum(k.zeros for k in self.float_kernels) / elements if elements else 0.0

    @property
    def int8_sparsity(self) -> float:
        return overall_sparsity(self.kernels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_dict(),
            "float_accuracy": self.float_accuracy,
            "int8_accuracy": self.quantized.int8_accuracy,
            "tflite_bytes": len(self.tflite_bytes),
            "float_sparsity": round(self.float_sparsity, 4),
            "int8_sparsity": round(self.int8_sparsity, 4),
            "float_kernels": [k.to_dict() for k in self.float_kernels],
            "int8_kernels": [k.to_dict() for k in self.kernels],
            "history": self.history,
        }


def load_keras_model(path: str | Path):
    """A Keras model from a `.keras` (Keras 3 or tf_keras) or `.h5` file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist", "check the path")
    if path.suffix not in KERAS_SUFFIXES:
        raise InputError(f"{path} is not a Keras model file", "give the .keras (or .h5) file the model was saved to")
    model, _flavour = load_keras_file(path)
    return model


def check_dataset(model: Any, data: Dataset, role: str) -> None:
    """Training or validation data must have labels and samples of the model's input shape."""
    if data.y is None:
        raise InputError(f"the {role} data has no labels ('y')", "save it with numpy.savez(path, x=samples, y=labels)")
    if len(data) == 0:
        raise InputError(f"the {role} data is empty", "give at least one sample")
    expected = tuple(model.inputs[0].shape[1:])
    got = tuple(data.x.shape[1:])
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got)):
        raise InputError(
            f"the {role} samples have shape {got}, the model expects {tuple(e if e is not None else 'any' for e in expected)}",
            "give data made the same way as the model's training data",
        )
    check_class_labels(data, class_count(int(model.outputs[0].shape[-1])), role)


def _outputs_are_probabilities(model: Any, x: np.ndarray) -> bool:
    y = np.asarray(model(x[:32].astype(np.float32), training=False))
    if y.shape[-1] == 1:
        return bool(np.all((y >= 0) & (y <= 1)))
    return bool(np.all(y >= 0) and np.allclose(y.sum(axis=-1), 1.0, atol=1e-3))


def _compile(model: Any, technique: str, settings: OptimizeSettings, from_logits: bool) -> None:
    tf_keras = tf_keras_module()
    rate = settings.learning_rate or DEFAULT_LEARNING_RATES[technique]
    if int(model.outputs[0].shape[-1]) == 1:
        loss = tf_keras.losses.BinaryCrossentropy(from_logits=from_logits)
    else:
        loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    model.compile(optimizer=tf_keras.optimizers.Adam(rate), loss=loss, metrics=["accuracy"])


def _epoch_callback(tf_keras, technique: str, history: dict[str, list[float]], progress: Progress | None, offset: int, total: int):
    class _Report(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            loss = float((logs or {}).get("loss", float("nan")))
            history.setdefault(technique, []).append(round(loss, 5))
            log.info("%s: epoch %d, loss %.4f, accuracy %.3f", technique, epoch + 1, loss, float((logs or {}).get("accuracy", float("nan"))))
            if progress is not None:
                progress(offset + epoch + 1, total)

    return _Report()


def _prune(model: Any, train: Dataset, settings: OptimizeSettings, fit: Callable) -> Any:
    import tensorflow_model_optimization as tfmot

    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    ramp_steps = steps_per_epoch * (settings.epochs - 1)
    frequency = max(1, ramp_steps // PRUNE_MASK_UPDATES)
    end_step = frequency * (ramp_steps // frequency)  # the last mask update lands exactly on end_step
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=settings.sparsity, begin_step=0, end_step=end_step, frequency=frequency)
    try:
        wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    except ValueError as exc:
        raise ModelError(f"TFMOT cannot prune this model: {exc}", "prune only models built from Dense and convolution layers") from exc
    fit(wrapped, "prune", [tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def _cluster(model: Any, settings: OptimizeSettings, preserve_sparsity: bool, fit: Callable) -> Any:
    import tensorflow_model_optimization as tfmot

    clustering = tfmot.clustering.keras
    init = clustering.CentroidInitialization.KMEANS_PLUS_PLUS
    try:
        wrapped = clustering.cluster_weights(model, number_of_clusters=settings.clusters, cluster_centroids_init=init, preserve_sparsity=preserve_sparsity)
    except ValueError as exc:
        raise ModelError(f"TFMOT cannot cluster this model: {exc}", "cluster only models built from Dense and convolution layers") from exc
    fit(wrapped, "cluster", [])
    return clustering.strip_clustering(wrapped)


def check_cluster_count(model: Any, clusters: int) -> None:
    """k-means++ cannot pick more centroids than a kernel has weights (TensorFlow fails deep inside)."""
    smallest = min(float_kernels(model), key=lambda k: k.elements, default=None)
    if smallest is not None and smallest.elements < clusters:
        raise InputError(
            f"cluster count {clusters} is more than the {smallest.elements} weights of layer '{smallest.layer}'",
            f"give --cluster {smallest.elements} or fewer",
        )


def check_qat_layers(model: Any) -> None:
    """A ModelError naming every layer the default 8-bit QAT scheme cannot quantize, with the rewrite."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import default_8bit_quantize_registry

    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    unsupported = [layer for layer in model.layers if type(layer).__name__ != "InputLayer" and not registry.supports(layer)]
    if not unsupported:
        return
    first = type(unsupported[0]).__name__
    names = ", ".join(f"'{layer.name}' ({type(layer).__name__})" for layer in unsupported)
    raise ModelError(f"quantization-aware training does not support layer {names}", QAT_REWRITES.get(first, QAT_GENERIC_REWRITE))


def _qat(model: Any, pruned: bool, clustered: bool, fit: Callable) -> Any:
    import tensorflow_model_optimization as tfmot

    quantization = tfmot.quantization.keras
    combine = tfmot.experimental.combine
    if clustered:
        scheme = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=pruned)
    elif pruned:
        scheme = combine.Default8BitPrunePreserveQuantizeScheme()
    else:
        scheme = quantization.default_8bit.Default8BitQuantizeScheme()
    try:
        qat_model = quantization.quantize_apply(quantization.quantize_annotate_model(model), scheme)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"TFMOT cannot apply quantization-aware training: {str(exc).splitlines()[0]}", QAT_GENERIC_REWRITE) from exc
    tf_logger = logging.getLogger("tensorflow")
    quiet = _DropMessage("Gradients do not exist for variables")
    if clustered:
        # Cluster-preserving QAT trains the centroids, not the kernels it rebuilds from them, so
        # TensorFlow warns at every step that the kernels get no gradient. That is the design.
        tf_logger.addFilter(quiet)
    try:
        fit(qat_model, "qat", [])
    finally:
        tf_logger.removeFilter(quiet)
    return qat_model


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)


def float_kernels(model: Any) -> list[FloatKernel]:
    """Zeros and distinct values of each layer's kernel in a (stripped) tf_keras model."""
    kernels = []
    for layer in model.layers:
        # By variable name: a QAT wrapper replaces the inner layer's `kernel` attribute with
        # its fake-quantized tensor, but keeps the variable.
        for weight in layer.weights:
            if weight.name.split("/")[-1].split(":")[0] in ("kernel", "depthwise_kernel"):
                values = np.asarray(weight.numpy())
                name = getattr(layer, "layer", layer).name
                kernels.append(FloatKernel(name, int(values.size), int(np.count_nonzero(values == 0)), int(np.unique(values).size)))
    return kernels


def optimize_model(
    model: Any,
    train: Dataset,
    settings: OptimizeSettings,
    *,
    val: Dataset | None = None,
    out: str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    per_channel_dense: bool = True,
) -> OptimizeResult:
    """Apply the techniques in `settings` to a trained Keras 3 or tf_keras model, then quantize it.

    `per_channel_dense` goes to the quantize stage (False: per-tensor Dense weights, what a
    board whose TFLM library lacks per-channel FULLY_CONNECTED needs).

    `out` is where the int8 `.tflite` goes (written by the quantize stage; refused if it exists
    unless `force`). Raises InputError for bad settings or data, ModelError for layers TFMOT
    or the quantize stage cannot handle.
    """
    from tinyml.model.quantize import quantize_model

    settings.check()
    tf_keras = tf_keras_module()
    check_dataset(model, train, "training")
    if val is not None:
        check_dataset(model, val, "validation")
    working = to_tf_keras(model)
    if settings.clusters is not None:
        check_cluster_count(working, settings.clusters)
    if settings.qat:
        check_qat_layers(working)
    x = train.x.astype(np.float32)
    from_logits = not _outputs_are_probabilities(working, x)
    validation = (val.x.astype(np.float32), val.y) if val is not None else None
    history: dict[str, list[float]] = {}
    total_epochs = settings.epochs * len(settings.techniques)
    done = [0]

    def fit(target: Any, technique: str, callbacks: list) -> None:
        log.info("%s: fine-tuning %d epochs on %d samples", technique, settings.epochs, len(train))
        _compile(target, technique, settings, from_logits)
        report = _epoch_callback(tf_keras, technique, history, progress, done[0], total_epochs)
        target.fit(x, train.y, epochs=settings.epochs, batch_size=settings.batch_size, validation_data=validation, callbacks=[*callbacks, report], verbose=0, shuffle=True)
        done[0] += settings.epochs

    techniques = settings.techniques
    if "prune" in techniques:
        working = _prune(working, train, settings, fit)
    if "cluster" in techniques:
        working = _cluster(working, settings, preserve_sparsity="prune" in techniques, fit=fit)
    if "qat" in techniques:
        working = _qat(working, pruned="prune" in techniques, clustered="cluster" in techniques, fit=fit)

    kernels_float = float_kernels(working)
    # All of the training data: the quantize stage takes evenly spaced samples from it.
    quantized = quantize_model(working, x, eval_data=val, out=out, force=force, per_channel_dense=per_channel_dense)
    kernels = kernel_stats(quantized.tflite_bytes)
    log.info("%s: float sparsity %.1f%%, int8 sparsity %.1f%%", settings.name, 100 * (sum(k.zeros for k in kernels_float) / max(1, sum(k.elements for k in kernels_float))), 100 * overall_sparsity(kernels))
    return OptimizeResult(settings, working, quantized, kernels_float, kernels, history)
