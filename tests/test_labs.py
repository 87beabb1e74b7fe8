"""Both labs end to end at reduced size: data, features, train, quantize, render, virtual board, validate.

Each lab runs once per module (about 40 s and 25 s on 2 cores). Floors are set well below what
the reduced runs reach (gesture ~77%, keyword spotting ~76%) so that they catch a broken
pipeline, not noise; the int8 drop and the bit-exact virtual board are the issue's own limits.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tool

from tinyml.firmware.boards import get_board
from tinyml.features.imu import ImuWindowSpec
from tinyml.labs.pipeline import LabResult

GESTURE_FLOOR = 0.65
KWS_FLOOR = 0.60
MAX_INT8_DROP = 0.02
SENSE_BOARDS = ("nano33ble_sense", "nano33ble_sense_rev2")
ARM_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os", "-Wall", "-Wextra", "-Werror")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gesture_lab(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    from tinyml.labs.gesture import run_gesture_lab

    out = tmp_path_factory.mktemp("gesture_lab")
    return run_gesture_lab(out, epochs=8, spec=ImuWindowSpec(stride_samples=50), validate_limit=200, calibration_samples=300)


@pytest.fixture(scope="module")
def kws_lab(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    require_tool("espeak-ng")
    require_tool("sox")
    from tinyml.labs.keyword_spotting import run_kws_lab
    from tinyml.labs.speech import SpeechSettings

    out = tmp_path_factory.mktemp("kws_lab")
    return run_kws_lab(out, epochs=25, settings=SpeechSettings(speakers=16))


def _check_lab(lab: LabResult, floor: float) -> None:
    assert lab.float_accuracy is not None and lab.int8_accuracy is not None
    assert lab.float_accuracy >= floor
    assert lab.float_accuracy - lab.int8_accuracy <= MAX_INT8_DROP
    report = lab.validation
    assert report.passed
    assert report.device_vs_reference.exact_match == 1.0
    assert report.device_vs_reference.samples_exact == 1.0
    assert [s.status for s in lab.deploy.stages] == ["done"] * 5
    for name in ("model_float.h5", "calibration.npz", "test.npz", "labels.txt", "deploy/model_int8.tflite", "deploy/firmware/platformio.ini"):
        assert (lab.out_dir / name).exists(), name


def test_gesture_lab_end_to_end(gesture_lab: LabResult) -> None:
    _check_lab(gesture_lab, GESTURE_FLOOR)
    assert gesture_lab.validation.samples == 200
    assert (gesture_lab.out_dir / "labels.txt").read_text().splitlines()[0] == "pendulum"


def test_kws_lab_end_to_end(kws_lab: LabResult) -> None:
    _check_lab(kws_lab, KWS_FLOOR)


@pytest.mark.parametrize(("lab_fixture", "app"), [("gesture_lab", "gesture"), ("kws_lab", "kws")])
def test_the_lab_validates_exactly_on_the_emulated_board(lab_fixture: str, app: str, request: pytest.FixtureRequest, emulator_library, pinned_host_library, tmp_path: Path) -> None:
    """Issue 11's "done when": the lab's own model, in the lab's app firmware built against the
    pinned library, on the emulated Cortex-M4, 100% exact against the tool's reference."""
    from tinyml.deploy import deploy

    lab: LabResult = request.getfixturevalue(lab_fixture)
    result = deploy(
        lab.out_dir / "deploy" / "model_int8.tflite",
        board=get_board("nano33ble_sense").id,
        out=tmp_path / "emulated",
        eval_data=lab.out_dir / "test.npz",
        labels=lab.out_dir / "labels.txt",
        app=app,
        port="emulator",
        library=emulator_library.path,
        validate_limit=40,
    )
    report = result.validation
    assert result.target.startswith("emulated board: mps2-an386")
    assert report.reference["kind"] == "board_library" and report.verdict is report.device_vs_board_library
    assert report.verdict.exact_match == 1.0 and report.verdict.samples_exact == 1.0, f"{report.verdict.exact_match:.1%} exact, max {report.verdict.max_abs_lsb} LSB"
    assert report.passed


def test_gesture_data_is_split_by_subject_in_board_units() -> None:
    from tinyml.labs.gesture import load_gesture_data, load_recordings

    data = load_gesture_data(ImuWindowSpec(stride_samples=100))
    assert not set(data.train_subjects) & set(data.test_subjects)
    assert data.train.x.shape[1:] == (100, 1, 6)
    recordings, _, _ = load_recordings()
    everything = np.concatenate(recordings)
    # Gravity is ~1 g; arm swings reach hundreds of degrees per second (not ~5 rad/s).
    assert 0.8 < np.median(np.linalg.norm(everything[:, :3], axis=1)) < 1.3
    assert np.percentile(np.abs(everything[:, 3:]), 99) > 100


def test_the_lab_files_deploy_by_hand(gesture_lab: LabResult) -> None:
    """The worksheet's by-hand step: `tinyml deploy` on the files the lab saved, with the gesture app."""
    from tinyml.deploy import deploy
    from tinyml.labs.gesture import DEFAULT_BOARD

    again = deploy(
        gesture_lab.out_dir / "deploy" / "model_int8.tflite",
        board=DEFAULT_BOARD,
        out=gesture_lab.out_dir / "redeploy",
        eval_data=gesture_lab.out_dir / "test.npz",
        labels=gesture_lab.out_dir / "labels.txt",
        app="gesture",
        validate_limit=20,
    )
    assert again.validation.passed


def _render_for(lab: LabResult, board: str, app: str, out: Path) -> Path:
    from tinyml.deploy import deploy

    deploy(lab.out_dir / "deploy" / "model_int8.tflite", board=board, out=out, labels=lab.out_dir / "labels.txt", app=app, skip=["validate"])
    return out / "firmware" / "src"


def _compile_plain_parts(src: Path, sources: tuple[str, ...], headers: tuple[str, ...], board: str, work: Path) -> None:
    gxx = require_tool("arm-none-eabi-g++")
    std = get_board(board).cpp_standard
    (work / "headers.cpp").write_text("".join(f'#include "{h}"\n' for h in headers))
    for source in (*sources, "headers.cpp"):
        path = work / source if source == "headers.cpp" else src / source
        result = subprocess.run([gxx, f"-std={std}", *ARM_FLAGS, f"-I{src}", "-c", str(path), "-o", str(work / f"{Path(source).stem}.o")], capture_output=True, text=True)
        assert result.returncode == 0, f"{source} for {board}:\n{result.stderr}"


@pytest.mark.parametrize("board", SENSE_BOARDS)
def test_gesture_firmware_plain_cpp_compiles_for_each_sense_board(gesture_lab: LabResult, board: str, tmp_path: Path) -> None:
    src = _render_for(gesture_lab, board, "gesture", tmp_path / "render")
    assert "TINYML_IMU_" in (src.parent / "platformio.ini").read_text()
    # The live input is quantized with exactly the model's float32 scale.
    from tinyml.model.modelfile import read_model

    scale = re.search(r"kInputScale = ([^f;]+)f;", (src / "app_config.h").read_text()).group(1)
    assert np.float32(float(scale)) == np.float32(read_model(gesture_lab.out_dir / "deploy" / "model_int8.tflite").inputs[0].scale)
    _compile_plain_parts(src, ("imu_window.cpp",), ("app_config.h", "imu_features.h", "imu_window.h"), board, tmp_path)


@pytest.mark.parametrize("board", SENSE_BOARDS)
def test_kws_firmware_plain_cpp_compiles_for_each_sense_board(kws_lab: LabResult, board: str, tmp_path: Path) -> None:
    src = _render_for(kws_lab, board, "kws", tmp_path / "render")
    _compile_plain_parts(src, ("logmel.cpp", "logmel_tables.cpp", "recognizer.cpp"), ("app_config.h", "logmel_features.h", "logmel.h", "recognizer.h"), board, tmp_path)


def test_kws_top1_on_c_features_equals_top1_on_numpy_features(kws_lab: LabResult, tmp_path: Path) -> None:
    """Every test clip through the board's C++ front end and through numpy: the model agrees."""
    from test_features_logmel import LOGMEL_HARNESS

    from tinyml.firmware.apps import render_plain_sources
    from tinyml.features.logmel import LogMelSpec
    from tinyml.labs.speech import SpeechSettings, load_or_synthesise
    from tinyml.model.modelfile import read_model
    from tinyml.model.quantization import quantize_input
    from tinyml.model.reference import ReferenceInterpreter

    gxx = require_tool("g++")
    spec = LogMelSpec()
    render_plain_sources("kws", {"logmel": spec.template_context()}, tmp_path)
    (tmp_path / "main.cpp").write_text(LOGMEL_HARNESS)
    exe = tmp_path / "harness"
    subprocess.run([gxx, "-std=gnu++14", "-O2", "-o", str(exe), str(tmp_path / "main.cpp"), str(tmp_path / "logmel.cpp"), str(tmp_path / "logmel_tables.cpp")], check=True)

    model_bytes = (kws_lab.out_dir / "deploy" / "model_int8.tflite").read_bytes()
    tensor = read_model(model_bytes).inputs[0]
    reference = ReferenceInterpreter(model_bytes)
    _, test = load_or_synthesise(kws_lab.out_dir / "speech_clips.npz", SpeechSettings(speakers=16)).split()
    assert len(test.audio) > 20
    for clip in test.audio:
        (tmp_path / "pcm.bin").write_bytes(clip.astype("<i2").tobytes())
        subprocess.run([str(exe), str(tmp_path / "pcm.bin"), str(tmp_path / "f.bin"), repr(tensor.scale), str(tensor.zero_point), str(tmp_path / "in.bin")], check=True)
        c_input = np.fromfile(tmp_path / "in.bin", dtype=np.int8)
        numpy_input = quantize_input(spec.features(clip)[None], tensor).reshape(-1)
        assert np.argmax(reference.invoke(c_input)) == np.argmax(reference.invoke(numpy_input))


def test_a_lab_does_not_write_into_someone_elses_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinyml.labs.gesture import main

    (tmp_path / "thesis.tex").write_text("mine")
    assert main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did not write" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_native_library_output_goes_to_the_log_not_the_terminal(tmp_path: Path) -> None:
    import os
    import sys

    from tinyml.labs.console import native_stderr_to

    log = tmp_path / "native.log"
    with native_stderr_to(log):
        os.write(2, b"I0000 absl chatter\n")
        print("for the user", file=sys.stderr)
    assert log.read_bytes() == b"I0000 absl chatter\n"


def test_gesture_firmware_path_on_a_real_recording_gives_the_host_inputs(gesture_lab: LabResult, tmp_path: Path) -> None:
    """A held-out recording, sample by sample through the board's C++ window, equals the host's int8 inputs."""
    from test_features_imu import HARNESS

    from tinyml.firmware.apps import render_plain_sources
    from tinyml.labs.gesture import TEST_SUBJECTS, load_recordings
    from tinyml.model.modelfile import read_model
    from tinyml.model.quantization import quantize_input

    gxx = require_tool("g++")
    spec = ImuWindowSpec(stride_samples=50)  # the spec the lab fixture trained with
    render_plain_sources("gesture", {"imu": spec.template_context()}, tmp_path)
    (tmp_path / "main.cpp").write_text(HARNESS)
    exe = tmp_path / "harness"
    subprocess.run([gxx, "-std=gnu++14", "-O2", "-o", str(exe), str(tmp_path / "main.cpp"), str(tmp_path / "imu_window.cpp")], check=True)

    model_bytes = (gesture_lab.out_dir / "deploy" / "model_int8.tflite").read_bytes()
    tensor = read_model(model_bytes).inputs[0]
    recordings, _, subjects = load_recordings()
    recording = recordings[int(np.flatnonzero(subjects == TEST_SUBJECTS[0])[0])]
    (tmp_path / "raw.bin").write_bytes(recording.astype("<f4").tobytes())
    subprocess.run([str(exe), str(tmp_path / "raw.bin"), str(tmp_path / "out.bin"), repr(tensor.scale), str(tensor.zero_point)], check=True)
    floats = spec.window_samples * spec.channels
    board = np.fromfile(tmp_path / "out.bin", dtype=np.dtype([("values", "<f4", (floats,)), ("bytes", "i1", (floats,))]))["bytes"]
    host = quantize_input(spec.windows(recording), tensor).reshape(len(board), -1)
    assert len(board) > 10
    np.testing.assert_array_equal(board, host)  # so the board's model sees exactly what validation sent
