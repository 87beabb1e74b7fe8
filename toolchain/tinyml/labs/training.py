"""What both labs do the same way: fixed seeds, a quiet Keras fit with progress, accuracy.

Models are built with `tf_keras` (Keras 2) rather than Keras 3, because TensorFlow Model
Optimization (quantization-aware training, pruning) works only on tf_keras models.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from tinyml.core.data import Dataset
from tinyml.model.tensorflow_import import import_tensorflow

log = logging.getLogger("tinyml.labs")

Progress = Callable[[int, int], None]


def keras() -> Any:
    """The tf_keras module, with TensorFlow's start-up chatter turned down."""
    import_tensorflow()
    import tf_keras

    return tf_keras


def seed_everything(seed: int) -> None:
    """Python, numpy and TensorFlow seeds, and deterministic TF ops: the same seed, the same model."""
    tf = import_tensorflow()
    keras().utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit_classifier(model: Any, train: Dataset, *, epochs: int, batch_size: int = 64, learning_rate: float = 2e-3, progress: Progress | None = None) -> Any:
    """Compile and fit a softmax classifier quietly; `progress(epoch, epochs)` after each epoch."""
    k = keras()
    model.compile(optimizer=k.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class _EpochProgress(k.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            log.debug("epoch %d/%d: loss %.4f, accuracy %.4f", epoch + 1, epochs, logs.get("loss", float("nan")), logs.get("accuracy", float("nan")))
            if progress is not None:
                progress(epoch + 1, epochs)

    return model.fit(train.x, train.y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=[_EpochProgress()])


def float_accuracy(model: Any, data: Dataset) -> float:
    """Top-1 accuracy of the float Keras model on `data`."""
    scores = model.predict(data.x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(scores, axis=1) == data.y))
