"""The rendered firmware on the emulated board: `tinyml emulate` serves it on socket://,
`tinyml validate` checks it there against the board's library built for the host (exactly),
`deploy --port emulator` runs every stage on it, and the gesture and kws apps run their live
paths on replayed recordings. Exactness op by op is test_board_truth.py's.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import serial
from conftest import require_tool
from emulator_helpers import TINYML, open_sockets, qemu_processes
from modelzoo import sample_inputs
from test_emulator_build import LABELS, render_app

import tinyml
from tinyml.device.emulator.session import Recordings, start_emulator

SAMPLES = 24


@pytest.fixture(scope="module")
def conv2d_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "conv2d.npz"
    np.savez(path, x=sample_inputs("conv2d", SAMPLES))
    return path


def _read_until(process: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
        assert time.monotonic() < deadline, f"no line starting {prefix!r}"
    raise AssertionError(f"tinyml emulate ended before printing {prefix!r}: {process.stderr.read() if process.stderr else ''}")


def test_emulate_serves_validate_and_stops_on_ctrl_c(emulator_library, int8_models, conv2d_data: Path, tmp_path: Path) -> None:
    project = render_app("nano33ble_sense", "validation", tmp_path / "project", int8_models)
    process = subprocess.Popen([*TINYML, "emulate", str(project), "--library", str(emulator_library.path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        target = _read_until(process, "emulated board: ", timeout=300)
        url = _read_until(process, "port: ", timeout=30)
        assert url.startswith("socket://127.0.0.1:")
        report_dir = tmp_path / "report"
        code = tinyml.main(
            ["validate", "--port", url, "--model", str(int8_models["conv2d"]), "--data", str(conv2d_data), "--report", str(report_dir), "--target", f"emulated board: {target}",
             "--library", str(emulator_library.path), "--min-exact", "1.0"]
        )  # fmt: skip
        assert code == 0
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in out
    assert qemu_processes(project) == []
    report = json.loads((report_dir / "report.json").read_text())
    assert report["target"].startswith("emulated board: mps2-an386 Cortex-M4F, QEMU, library Arduino_TensorFlowLite")
    assert report["samples"] == SAMPLES
    assert report["reference"]["kind"] == "board_library"
    assert report["verdict"]["exact_match"] == 1.0 and report["verdict"]["max_abs_lsb"] == 0
    assert report["latency_us"]["p50"] > 0
    print(f"conv2d on the emulated board: {report['device_vs_reference']['exact_match']:.2%} exact vs the host reference")


def test_deploy_on_the_emulated_board_measures_arena_memory_and_instructions(emulator_library, int8_models, conv2d_data: Path, tmp_path: Path) -> None:
    from tinyml.deploy import deploy

    sockets = open_sockets()
    out = tmp_path / "deploy"
    result = deploy(int8_models["conv2d"], board="nano33ble_sense", out=out, eval_data=conv2d_data, port="emulator", library=emulator_library.path, validate_limit=8)
    assert result.target.startswith("emulated board: mps2-an386")
    flashed = result.stage("flash").facts
    arena = flashed["arena"]
    # The device used less than the host runtime's estimate; the firmware now declares exactly that.
    assert 0 < arena["measured_on_device_bytes"] <= arena["declared_bytes"] < arena["estimated_by_inspect_bytes"]
    assert arena["declared_bytes"] - arena["measured_on_device_bytes"] < 16
    runner = (out / "firmware" / "src" / "tflm_model_runner.h").read_text()
    assert f"constexpr size_t kArenaBytes = {arena['declared_bytes']};" in runner
    assert "Measured on the emulated board" in runner
    assert flashed["memory"]["tflm_app_model_flash_bytes"] > 50_000
    validated = result.stage("validate").facts
    assert validated["target"] == result.target
    assert validated["reference"]["kind"] == "board_library" and validated["verdict"]["exact_match"] == 1.0
    assert validated["device"]["arena_used_bytes"] == arena["measured_on_device_bytes"]
    # -icount shift=0: one instruction per virtual nanosecond.
    assert validated["emulator"]["instructions_per_inference"] == round(validated["latency_us"]["p50"] * 1000)
    assert qemu_processes(out) == []
    assert open_sockets() == sockets


def test_gesture_app_classifies_a_replayed_imu_recording(emulator_library, int8_models, tmp_path: Path) -> None:
    project = render_app("nano33ble_sense", "gesture", tmp_path / "project", int8_models)
    rate_hz = 50.0  # the app's default IMU window spec
    t = np.arange(int(8 * rate_hz)) / rate_hz
    frames = np.stack([np.sin(2 * np.pi * f * t) for f in (0.5, 0.7, 0.9, 1.1, 1.3, 1.5)], axis=1).astype(np.float32)
    lines: list[str] = []
    with start_emulator(project, emulator_library, recordings=Recordings(frames, rate_hz)) as emulator:
        with serial.serial_for_url(emulator.url, timeout=1.0) as port:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(line.startswith("exercise: ") for line in lines):
                lines.append(port.readline().decode(errors="replace").strip())
        emulator.board.check()
    predictions = [line for line in lines if line.startswith("exercise: ")]
    assert predictions, lines
    assert predictions[0].split()[1] in LABELS


def test_kws_app_hears_a_replayed_recording_to_its_end(emulator_library, int8_models, tmp_path: Path) -> None:
    import wave

    project = render_app("nano33ble_sense", "kws", tmp_path / "project", int8_models)
    audio = tmp_path / "noise.wav"
    with wave.open(str(audio), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes((np.random.default_rng(0).normal(0, 2000, 16000 * 2)).astype("<i2").tobytes())
    with start_emulator(project, emulator_library, recordings=Recordings(audio=audio)) as emulator:
        deadline = time.monotonic() + 30
        while "the audio recording ended" not in emulator.board.notices and time.monotonic() < deadline:
            emulator.board.check()
            time.sleep(0.2)
        emulator.board.check()
    # The app kept up with the microphone (no buffer left unread) until the recording ended.
    assert "the audio recording ended" in emulator.board.notices
    assert not any("did not read the last microphone buffer" in notice for notice in emulator.board.notices)


def _replayed_slice(recording: np.ndarray, take: np.ndarray) -> np.ndarray:
    """The stretch of the (looping) recording that `take` must equal: found by its first rows."""
    width = min(16, len(take))
    for start in np.flatnonzero((recording.reshape(len(recording), -1) == take[0].reshape(1, -1)).all(axis=1)):
        stretch = recording[(start + np.arange(len(take))) % len(recording)]
        if np.array_equal(stretch[:width], take[:width]):
            return stretch
    raise AssertionError("the take does not start anywhere in the recording")


def test_capture_on_the_emulated_board_writes_back_exactly_what_its_sensors_replayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14: the capture firmware, built for the emulated board, streams the replayed IMU and
    microphone recordings; `tinyml capture` must write back exactly those samples, at their rate.
    It runs no model, so it needs no TFLM library, as on the board (its platformio.ini lists none)."""
    import wave

    from tinyml.device.capture import CaptureSettings, record_session
    from tinyml.features import recordings
    from tinyml.firmware.boards import get_board
    from tinyml.firmware.render import render_project

    for tool in ("arm-none-eabi-g++", "qemu-system-arm"):
        require_tool(tool)
    monkeypatch.delenv("TINYML_TFLM_LIBRARY", raising=False)
    board = get_board("nano33ble_sense")
    imu_rate = float(board.sensors["imu"].sample_rate_hz)
    render_project(board, None, tmp_path / "project", app="capture")
    rng = np.random.default_rng(4)
    # The emulated sensors play their recordings once, from boot: long enough for every take.
    imu = rng.normal(0.0, 1.0, (int(60 * imu_rate), 6)).astype(np.float32) * np.float32([0.5, 0.5, 0.5, 100, 100, 100])
    pcm = rng.integers(-20000, 20000, 16000 * 30).astype("<i2")
    audio = tmp_path / "words.wav"
    with wave.open(str(audio), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm.tobytes())
    with start_emulator(tmp_path / "project", recordings=Recordings(imu, imu_rate, audio)) as emulator:
        assert emulator.target.endswith("no TFLM library (the app runs no model)")
        words = record_session(emulator.url, tmp_path / "words", CaptureSettings("yes", "ann", sensor="microphone", seconds=8, takes=1, countdown_s=0))
        moves = record_session(emulator.url, tmp_path / "moves", CaptureSettings("wave", "ann", seconds=12, takes=2, countdown_s=0))
        emulator.board.check()
    assert moves.lost == [] and words.lost == [] and moves.rate_hz == imu_rate
    takes = [*recordings.iter_takes(tmp_path / "moves"), *recordings.iter_takes(tmp_path / "words")]
    assert [(t.kind, t.samples, t.board) for t in takes] == [("imu", int(12 * imu_rate), board.id)] * 2 + [("microphone", 8 * 16000, board.id)]
    for take in takes:
        data = recordings.load_take(take)
        assert np.array_equal(data, _replayed_slice(imu if take.kind == "imu" else pcm, data)), take.path
