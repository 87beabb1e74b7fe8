"""`compare` on a small classifier: every variant built once (module fixture), then what each
technique must show: pruning's sparsity, clustering's distinct values, QAT's bit-exactness on
TFLM, where the bytes really shrink, and the written report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyml.optimize.compare import CompareReport, check_variants
from tinyml.core.data import Dataset
from tinyml.core.errors import InputError

SPARSITY = 0.5
CLUSTERS = 8
# Each technique alone and each QAT combination; prune, then cluster, then QAT all together runs
# through the command in test_optimize.py (and prune+cluster is its first two steps).
VARIANTS = ("float", "ptq", "prune", "cluster", "qat", "prune+qat", "cluster+qat")
PRUNED = ("prune", "prune+qat")
CLUSTERED = ("cluster", "cluster+qat")
QAT = ("qat", "prune+qat", "cluster+qat")
INT8_VARIANTS = VARIANTS[1:]


def _classification_data(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    return Dataset(x, np.argmax(x.reshape(n, 4, 4).sum(-1), -1))


@pytest.fixture(scope="module")
def eval_data() -> Dataset:
    return _classification_data(128, 1)


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory, eval_data: Dataset) -> tuple[CompareReport, Path]:
    import keras

    from tinyml.firmware.boards import quantize_options
    from tinyml.optimize.compare import compare_variants

    train = _classification_data(256, 0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(train.x, train.y, epochs=8, verbose=0)
    out = tmp_path_factory.mktemp("compare")
    # Quantized for the board the variants are rendered for below (per-tensor Dense weights).
    options = quantize_options("nano33ble")
    report = compare_variants(model, train, eval_data, variants=VARIANTS, sparsity=SPARSITY, clusters=CLUSTERS, epochs=2, out_dir=out, **options)
    return report, out


@pytest.mark.slow
def test_every_variant_has_a_row(compared) -> None:
    report, _ = compared
    assert [r.name for r in report.rows] == list(VARIANTS)
    for row in report.rows[1:]:
        assert row.int8_accuracy is not None and row.float_accuracy is not None
        assert row.arena_bytes and row.arena_bytes > 0
        assert row.latency_us and row.latency_us > 0


@pytest.mark.slow
@pytest.mark.parametrize("variant", PRUNED)
def test_pruning_reaches_the_sparsity_within_one_point(compared, variant: str) -> None:
    report, _ = compared
    assert abs(report.row(variant).sparsity - SPARSITY) <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("variant", CLUSTERED)
def test_clustering_leaves_at_most_n_values_per_kernel_channel(compared, variant: str) -> None:
    report, _ = compared
    unique = report.row(variant).unique_per_layer
    assert unique and all(count <= CLUSTERS for count in unique.values()), unique
    # Without clustering the same kernels hold many more distinct values.
    assert max(report.row("ptq").unique_per_layer.values()) > CLUSTERS


@pytest.mark.slow
@pytest.mark.parametrize("variant", QAT)
def test_qat_is_full_int8_and_agrees_with_the_tflm_runtime(compared, eval_data: Dataset, variant: str) -> None:
    """TFLM runs the QAT model as TFLite does, up to TFLite's FULLY_CONNECTED kernel, which rounds
    an occasional output one LSB away from TFLM (and from the integer arithmetic worked by hand);
    the board's bit-exactness against TFLM is checked through validate below."""
    from tinyml.model.modelfile import read_model
    from tinyml.model.quantization import quantize_input
    from tinyml.model.reference import ReferenceInterpreter
    from tinyml.model.tflm import TflmRunner

    report, _ = compared
    assert report.settings["dense_weights"] == "per-tensor"
    model_bytes = report.tflite[variant]
    assert read_model(model_bytes).is_full_int8
    reference, runtime = ReferenceInterpreter(model_bytes), TflmRunner(model_bytes)
    spec = reference.facts.inputs[0]
    exact = agree = 0
    for sample in eval_data.x:
        x = quantize_input(sample, spec)
        ours, theirs = runtime.invoke(x), reference.invoke(x)
        exact += int(np.array_equal(ours, theirs))
        agree += int(np.argmax(ours) == np.argmax(theirs))
        assert np.max(np.abs(ours.astype(int) - theirs.astype(int))) <= 4
    assert exact >= 0.95 * len(eval_data.x)
    assert agree >= 0.98 * len(eval_data.x)


@pytest.mark.slow
@pytest.mark.parametrize("variant", INT8_VARIANTS)
def test_every_variant_renders_and_validates_exactly_on_the_virtual_board(compared, eval_data: Dataset, tmp_path: Path, variant: str) -> None:
    from tinyml.firmware.render import render_project
    from tinyml.validation.validate import validate_device
    from tinyml.device.virtual_board import VirtualBoard

    report, _ = compared
    assert report.settings["dense_weights"] == "per-tensor"
    model_bytes = report.tflite[variant]
    labels = ["a", "b", "c", "d"]
    project = render_project("nano33ble", model_bytes, tmp_path / "project", labels=labels)
    assert (project.project_dir / "platformio.ini").is_file()
    with VirtualBoard(model_bytes, labels=labels, board="nano33ble", link=tmp_path / "port", arena_bytes=project.arena_bytes) as board:
        result = validate_device(board.port, model_bytes, eval_data.take(32), report_dir=tmp_path / "report")
    assert result.samples == 32
    assert result.device_vs_tflm.exact_match == 1.0 and result.device_vs_tflm.max_abs_lsb == 0
    assert result.accuracy["device"] == result.accuracy["tflm"]


@pytest.mark.slow
def test_savings_show_compressed_not_as_plain_tflite(compared) -> None:
    report, _ = compared
    ptq = report.row("ptq")
    for variant in ("prune", "cluster"):
        row = report.row(variant)
        assert row.gzip_bytes < ptq.gzip_bytes, variant
        # The plain file keeps one byte per weight: pruning or clustering barely moves it.
        assert row.tflite_bytes > 0.9 * ptq.tflite_bytes, variant


@pytest.mark.slow
def test_report_files_are_written(compared) -> None:
    report, out = compared
    data = json.loads((out / "compare.json").read_text())
    assert [row["name"] for row in data["rows"]] == list(VARIANTS)
    assert "not smaller as a plain .tflite" in data["note"]
    markdown = (out / "compare.md").read_text()
    for row in report.rows:
        assert f"| {row.label} |" in markdown
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for variant in INT8_VARIANTS:
        assert (out / "variants" / f"{variant}.tflite").read_bytes() == report.tflite[variant]


def test_lut_compression_shrinks_a_clustered_model_and_runs_bit_exactly_on_tflm() -> None:
    import keras

    from modelzoo import convert_int8
    from tinyml.optimize.compare import lut_size_checked
    from tinyml.model.tflm import TflmRunner
    from tinyml.optimize.weight_stats import kernel_stats, lut_compress

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(4)])
    for layer in model.layers:
        kernel, bias = layer.get_weights()
        centroids = np.linspace(kernel.min(), kernel.max(), 4)
        layer.set_weights([centroids[np.abs(kernel[..., None] - centroids).argmin(-1)].astype(np.float32), bias])
    samples = np.random.default_rng(0).normal(size=(32, 64)).astype(np.float32)
    model_bytes = convert_int8(model, samples)
    stats = kernel_stats(model_bytes)
    assert [s.max_unique_per_channel <= 4 for s in stats] == [True, True]

    lut = lut_compress(model_bytes, stats)
    # The 64x64 kernel drops from 4096 bytes to 2-bit indices plus per-channel tables; the small
    # 64x4 kernel would grow, so it stays plain.
    assert lut.compressed_tensors == (stats[0].name,)
    assert lut.size_bytes < 0.8 * len(model_bytes)
    plain = TflmRunner(model_bytes)
    size, note, arena = lut_size_checked(plain, samples, stats)
    assert size == lut.size_bytes and "1 of 2 kernels as LUT (2-bit indices)" == note
    assert arena is not None and arena > 0
    compressed = TflmRunner(lut.model_bytes)
    for x in np.random.default_rng(1).integers(-128, 128, size=(16, 64), dtype=np.int8):
        np.testing.assert_array_equal(compressed.invoke(x), plain.invoke(x))


def test_unknown_variant_is_one_clear_error(tmp_path: Path, capsys) -> None:
    from tinyml import main

    with pytest.raises(InputError, match="unknown variant pruned"):
        check_variants(["ptq", "pruned"])
    code = main(["compare", str(tmp_path / "m.keras"), "--train", "t.npz", "--eval", "e.npz", "--variants", "ptq", "magic"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown variant magic" in err and "choose from float, ptq" in err


@pytest.mark.slow
def test_cli_compare_prints_the_table_and_writes_the_report(tmp_path: Path, capsys) -> None:
    import keras

    from tinyml import main

    train, test = _classification_data(128, 0), _classification_data(64, 1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4, activation="softmax")])
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "train.npz", x=train.x, y=train.y)
    np.savez(tmp_path / "test.npz", x=test.x, y=test.y)
    arguments = ["compare", str(tmp_path / "m.keras"), "--train", str(tmp_path / "train.npz"), "--eval", str(tmp_path / "test.npz"), "--variants", "float", "ptq", "--board", "nano33ble"]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "float baseline" in out and "not smaller as a plain .tflite" in out
    settings = json.loads((tmp_path / "m_compare" / "compare.json").read_text())["settings"]
    assert settings["variants"] == ["float", "ptq"] and settings["dense_weights"] == "per-tensor"
    assert main(arguments) == 2  # the report is the user's now: no overwrite without --force
    assert "already exists" in capsys.readouterr().err
