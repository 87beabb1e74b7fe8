"""The optimize stage: settings and data checks, the tf_keras rebuild, QAT's layer check, and one
real pruning + clustering + QAT run through the `tinyml optimize` command.

The per-technique properties (sparsity within a point, at most N values per clustered kernel,
QAT bit-exact on TFLM, render and validate) are checked on the variants of one `compare` run in
test_compare.py, so each model is trained once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyml import main
from tinyml.core.data import Dataset
from tinyml.core.errors import InputError, ModelError, ToolError
from tinyml.optimize.tfmot import OptimizeSettings, check_dataset, check_qat_layers


def _classification_data(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    return Dataset(x, np.argmax(x.reshape(n, 4, 4).sum(-1), -1))


@pytest.fixture(scope="module")
def dense_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small trained Keras 3 classifier and its data, saved as the CLI reads them."""
    import keras

    directory = tmp_path_factory.mktemp("optimize")
    train, val = _classification_data(384, 0), _classification_data(128, 1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(train.x, train.y, epochs=8, verbose=0)
    paths = {"model": directory / "dense.keras", "train": directory / "train.npz", "val": directory / "val.npz", "bad": directory / "bad.npz"}
    model.save(paths["model"])
    np.savez(paths["train"], x=train.x, y=train.y)
    np.savez(paths["val"], x=val.x, y=val.y)
    np.savez(paths["bad"], x=np.zeros((8, 12), np.float32), y=np.zeros(8, np.int64))
    return paths


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (OptimizeSettings(sparsity=0.0), "sparsity 0 is outside (0, 1)"),
        (OptimizeSettings(sparsity=1.0), "sparsity 1 is outside (0, 1)"),
        (OptimizeSettings(clusters=1), "cluster count 1 is outside 2..256"),
        (OptimizeSettings(clusters=257), "cluster count 257 is outside 2..256"),
        (OptimizeSettings(sparsity=0.5, epochs=1), "pruning needs at least 2 epochs"),
        (OptimizeSettings(qat=True, epochs=0), "--epochs 0 is less than 1"),
        (OptimizeSettings(), "no optimization was asked for"),
    ],
)
def test_settings_out_of_range_are_one_clear_input_error(settings: OptimizeSettings, message: str) -> None:
    with pytest.raises(InputError) as info:
        settings.check()
    assert message in info.value.problem
    assert info.value.fix


def test_variant_names_say_what_was_applied() -> None:
    assert OptimizeSettings(sparsity=0.5, clusters=16, qat=True).name == "prune50+cluster16+qat"
    assert OptimizeSettings(clusters=8).techniques == ("cluster",)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--prune", "1.5"], "sparsity 1.5 is outside (0, 1)"),
        (["--cluster", "300"], "cluster count 300 is outside 2..256"),
        (["--prune", "0.5", "--epochs", "1"], "pruning needs at least 2 epochs"),
    ],
)
def test_cli_bad_settings_exit_2_with_one_line(dense_files, tmp_path: Path, capsys, arguments: list[str], message: str) -> None:
    code = main(["optimize", str(dense_files["model"]), "--train", str(dense_files["train"]), "--out", str(tmp_path / "out"), *arguments])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Fix:" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_training_data_that_does_not_fit_the_model_is_refused(dense_files, tmp_path: Path, capsys) -> None:
    code = main(["optimize", str(dense_files["model"]), "--train", str(dense_files["bad"]), "--qat", "--epochs", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "the training samples have shape (12,), the model expects (16,)" in err
    assert not (tmp_path / "out").exists()


def test_labels_beyond_the_model_outputs_are_refused() -> None:
    import keras

    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(3, activation="softmax")])
    data = Dataset(np.zeros((4, 16), np.float32), np.array([0, 1, 2, 3]))
    with pytest.raises(InputError, match="labels run from 0 to 3, the model has 3 classes"):
        check_dataset(model, data, "training")


def test_missing_tf_keras_says_the_pip_line(monkeypatch) -> None:
    from tinyml.optimize import tfkeras_rebuild

    tfkeras_rebuild.tf_keras_module.cache_clear()
    monkeypatch.setitem(sys.modules, "tf_keras", None)  # None in sys.modules makes the import fail
    try:
        with pytest.raises(ToolError) as info:
            tfkeras_rebuild.tf_keras_module()
    finally:
        tfkeras_rebuild.tf_keras_module.cache_clear()
    assert info.value.fix == "install them with `pip install --no-deps tf-keras==2.21.0 tensorflow-model-optimization==0.8.1`"


def test_keras3_models_are_rebuilt_in_tf_keras_with_the_same_outputs() -> None:
    import keras
    import tf_keras

    from tinyml.optimize.tfkeras_rebuild import to_tf_keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 1, 3))
    conv = keras.layers.Conv2D(6, (3, 1), activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3))(inputs)
    normed = keras.layers.BatchNormalization()(conv)
    merged = keras.layers.Add()([conv, normed])
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Dropout(0.2)(merged))
    functional = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    x = np.random.default_rng(0).normal(size=(5, 8, 1, 3)).astype(np.float32)
    functional.layers[2].set_weights([w + 0.5 for w in functional.layers[2].get_weights()])  # BN not at identity

    rebuilt = to_tf_keras(functional)
    assert isinstance(rebuilt, tf_keras.Model)
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), functional.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert isinstance(rebuilt.get_layer(functional.layers[1].name).kernel_regularizer, tf_keras.regularizers.L2)


def test_more_clusters_than_a_kernel_has_weights_is_refused_before_training() -> None:
    import keras

    from tinyml.optimize.tfmot import optimize_model

    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(24, activation="relu"), keras.layers.Dense(4, activation="softmax", name="head")])
    with pytest.raises(InputError) as info:
        optimize_model(model, _classification_data(64, 0), OptimizeSettings(clusters=256, epochs=1))
    assert info.value.problem == "cluster count 256 is more than the 96 weights of layer 'head'"
    assert info.value.fix == "give --cluster 96 or fewer"


def test_a_tf_keras_model_is_copied_so_fine_tuning_leaves_it_alone() -> None:
    import tf_keras

    from tinyml.optimize.tfkeras_rebuild import to_tf_keras

    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3)])
    before = [w.copy() for w in model.get_weights()]
    copy = to_tf_keras(model)
    assert copy is not model
    copy.set_weights([np.zeros_like(w) for w in before])
    for original, kept in zip(before, model.get_weights()):
        np.testing.assert_array_equal(original, kept)


def test_qat_names_a_conv1d_layer_and_the_conv2d_rewrite() -> None:
    import keras

    from tinyml.optimize.tfkeras_rebuild import to_tf_keras

    model = keras.Sequential([keras.Input((32, 3)), keras.layers.Conv1D(8, 5, name="imu_conv"), keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(4)])
    with pytest.raises(ModelError) as info:
        check_qat_layers(to_tf_keras(model))
    assert "'imu_conv' (Conv1D)" in info.value.problem
    assert "Conv2D(filters, (k, 1))" in info.value.fix


@pytest.mark.slow
def test_cli_prune_cluster_qat_writes_int8_model_and_report(dense_files, tmp_path: Path, capsys) -> None:
    from tinyml.model.modelfile import read_model

    out = tmp_path / "out"
    arguments = ["optimize", str(dense_files["model"]), "--train", str(dense_files["train"]), "--val", str(dense_files["val"])]
    arguments += ["--prune", "0.5", "--cluster", "8", "--qat", "--epochs", "2", "--out", str(out)]
    assert main(arguments) == 0, capsys.readouterr().err
    tflite = out / "dense_prune50+cluster8+qat_int8.tflite"
    report = json.loads((out / "dense_prune50+cluster8+qat.json").read_text())
    assert read_model(tflite).is_full_int8
    assert report["settings"]["techniques"] == ["prune", "cluster", "qat"]
    # Pruning-preserving, cluster-preserving QAT keeps both properties through int8.
    assert abs(report["float_sparsity"] - 0.5) <= 0.01
    assert report["int8_sparsity"] >= 0.49
    assert all(k["unique_values"] <= 8 for k in report["float_kernels"])
    assert all(k["max_unique_per_channel"] <= 8 for k in report["int8_kernels"])
    assert report["int8_accuracy"] is not None
    # A second run does not overwrite the user's results without --force.
    assert main(arguments) == 2
    assert "already exists" in capsys.readouterr().err
