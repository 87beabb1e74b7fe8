"""tinyml deploy: stages in order, skippable, resumable after a failure, one summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyml.core.data import Dataset
from tinyml.deploy import STATE_FILE, deploy
from tinyml.core.errors import InputError, ModelError, TinyMLError

BOARD = "nano33ble_sense"


def _events() -> tuple[list[tuple[str, str]], object]:
    seen: list[tuple[str, str]] = []
    return seen, lambda stage, status: seen.append((stage, status))


def test_tflite_skips_quantize_and_renders(int8_models: dict[str, Path], tmp_path: Path) -> None:
    seen, on_stage = _events()
    result = deploy(int8_models["dense"], board=BOARD, out=tmp_path / "out", skip=["validate"], labels=["a", "b", "c", "d"], on_stage=on_stage)
    assert [(s.name, s.status) for s in result.stages] == [
        ("quantize", "skipped"),
        ("inspect", "done"),
        ("render", "done"),
        ("flash", "done"),
        ("validate", "skipped"),
    ]
    assert result.stage("inspect").facts["arena_bytes"] > 0
    assert (tmp_path / "out" / "firmware" / "platformio.ini").is_file()
    state = json.loads((tmp_path / "out" / STATE_FILE).read_text())
    assert state["stages"]["render"]["status"] == "done"
    assert ("render", "start") in seen and ("render", "done") in seen


def test_failed_stage_is_recorded_and_the_next_run_resumes_after_the_done_ones(int8_models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    data = Dataset(np.zeros((4, 16), np.float32), np.zeros(4, np.int64))
    with pytest.raises(TinyMLError):
        deploy(int8_models["dense"], board=BOARD, out=out, port=str(tmp_path / "no-such-port"), eval_data=data)
    state = json.loads((out / STATE_FILE).read_text())
    assert state["stages"]["render"]["status"] == "done"
    assert state["stages"]["flash"]["status"] == "failed"
    # The same inputs again: the finished stages are not redone.
    seen, on_stage = _events()
    with pytest.raises(TinyMLError):
        deploy(int8_models["dense"], board=BOARD, out=out, port=str(tmp_path / "no-such-port"), eval_data=data, on_stage=on_stage)
    assert ("inspect", "resumed") in seen and ("render", "resumed") in seen
    assert ("flash", "start") in seen


def test_changed_inputs_start_again(int8_models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    deploy(int8_models["dense"], board=BOARD, out=out, skip=["validate"])
    seen, on_stage = _events()
    deploy(int8_models["dense"], board=BOARD, out=out, skip=["validate"], labels=["w", "x", "y", "z"], on_stage=on_stage)
    assert ("inspect", "start") in seen, "new labels: every stage runs again"
    seen.clear()
    deploy(int8_models["dense"], board=BOARD, out=out, skip=["validate"], labels=["w", "x", "y", "z"], on_stage=on_stage)
    assert ("render", "resumed") in seen
    # A stage whose output was deleted runs again, and so does every stage after it.
    shutil.rmtree(out / "firmware")
    seen.clear()
    deploy(int8_models["dense"], board=BOARD, out=out, skip=["validate"], labels=["w", "x", "y", "z"], on_stage=on_stage)
    assert ("inspect", "resumed") in seen and ("render", "start") in seen and ("flash", "start") in seen
    assert (out / "firmware" / "platformio.ini").is_file()


def test_a_folder_of_someone_elses_files_is_not_touched(int8_models: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="did not write"):
        deploy(int8_models["dense"], board=BOARD, out=tmp_path, skip=["validate"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_bad_requests_are_input_errors(int8_models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown stage"):
        deploy(int8_models["dense"], board=BOARD, out=tmp_path / "a", skip=["bake"])
    with pytest.raises(InputError, match="does not exist"):
        deploy(tmp_path / "model.keras", board=BOARD, out=tmp_path / "b")
    (tmp_path / "model.keras").write_bytes(b"not read before the checks")
    with pytest.raises(InputError, match="needs an int8 .tflite"):
        deploy(tmp_path / "model.keras", board=BOARD, out=tmp_path / "b", skip=["quantize"])
    with pytest.raises(InputError, match="calibration"):
        deploy(tmp_path / "model.keras", board=BOARD, out=tmp_path / "c")
    with pytest.raises(InputError, match="--labels"):
        deploy(int8_models["dense"], board=BOARD, out=tmp_path / "d", app="gesture", skip=["validate"])


def test_keras_model_is_quantized_for_the_boards_library(tmp_path: Path) -> None:
    from modelzoo import build_keras_model, sample_inputs

    result = deploy(build_keras_model("dense"), board=BOARD, out=tmp_path / "out", calibration=Dataset(sample_inputs("dense", 64)), skip=["flash", "validate"])
    # Arduino_TensorFlowLite 06841a8 has no per-channel FULLY_CONNECTED: render would refuse per-channel Dense weights.
    assert result.stage("quantize").facts["dense_weights"] == "per-tensor"
    assert result.stage("render").status == "done"


def test_models_and_boards_the_library_cannot_serve_are_refused(per_channel_dense_model: Path, int8_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="per-channel weights") as info:
        deploy(per_channel_dense_model, board=BOARD, out=tmp_path / "a", skip=["validate"])
    assert f"--board {BOARD}" in info.value.fix
    assert not (tmp_path / "a" / "firmware").exists()

    boards = tmp_path / "boards"
    boards.mkdir()
    profile = (Path(__file__).resolve().parent.parent / "boards" / "nano_rp2040_connect.toml").read_text()
    (boards / "rp2040_pinned.toml").write_text(profile.replace('"chirale_tensorflowlite_2_0_0"', '"arduino_tensorflowlite_06841a8"'))
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(boards))
    with pytest.raises(ModelError, match="board rp2040_pinned cannot run tinyml firmware"):
        deploy(int8_models["dense"], board="rp2040_pinned", out=tmp_path / "b", skip=["validate"])
    assert not (tmp_path / "b").exists()


def test_validation_without_data_says_what_to_pass(int8_models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--eval"):
        deploy(int8_models["dense"], board=BOARD, out=tmp_path / "out")


def test_virtual_board_validation_is_bit_exact(int8_models: dict[str, Path], tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(24, 16)).astype(np.float32)
    result = deploy(int8_models["dense"], board=BOARD, out=tmp_path / "out", eval_data=Dataset(x, np.zeros(24, np.int64)), labels=["a", "b", "c", "d"])
    assert result.stage("validate").status == "done"
    assert result.validation.passed
    assert result.validation.device_vs_reference.exact_match == 1.0
    assert result.stage("validate").facts["samples"] == 24


def test_deploy_passes_the_boards_library_to_validate_and_the_virtual_board(int8_models: dict[str, Path], tmp_path: Path, pinned_host_library) -> None:
    """The dense model's Dense layers are per-channel, which the pinned library computes its own
    way: the virtual board computes with that library too, so the verdict against it is exact."""
    x = np.random.default_rng(0).normal(size=(12, 16)).astype(np.float32)
    result = deploy(int8_models["dense"], board=BOARD, out=tmp_path / "out", eval_data=Dataset(x, np.zeros(12, np.int64)), library=pinned_host_library.library_dir)
    facts = result.stage("validate").facts
    assert facts["reference"]["name"] == "Arduino_TensorFlowLite 2.4.0-ALPHA (the board's library, built for the host)"
    assert result.validation.passed and facts["verdict"] == facts["device_vs_board_library"] and facts["verdict"]["exact_match"] == 1.0


def test_cli_deploy_prints_one_summary(int8_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinyml import main

    code = main(["deploy", str(int8_models["dense"]), "--board", BOARD, "--out", str(tmp_path / "out"), "--skip", "validate"])
    out = capsys.readouterr().out
    assert code == 0
    assert "tinyml deploy" in out and "inspect" in out and "skipped" in out


def test_cli_deploy_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinyml import main

    code = main(["deploy", str(tmp_path / "missing.tflite"), "--board", BOARD, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:")
