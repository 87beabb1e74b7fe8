"""Capture: the firmware app's framing (compiled C++), the virtual board's replaying sensors,
`tinyml capture` writing exactly the replayed samples, faults that lose only their take,
bad inputs, `tinyml dataset stats`, and the labs trained on a captured dataset."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from ccompile import ARM_CORTEX_M4, HOST_GXX, compile_and_run, compile_objects

from tinyml import main
from tinyml.core.errors import DeviceError, InputError
from tinyml.core.resources import templates_dir
from tinyml.device.capture import CaptureSettings, level, record_session
from tinyml.device.link import DeviceLink
from tinyml.device.sensor_replay import Replay, load_audio_recording, load_imu_recording
from tinyml.device.virtual_board import Faults, VirtualBoard
from tinyml.features import recordings
from tinyml.firmware import protocol
from tinyml.firmware.apps import load_app, render_plain_sources
from tinyml.firmware.protocol import Frame, MessageType, Sensor
from tinyml.firmware.render import render_project

HOST_DIR = Path(__file__).parent / "firmware_host"
STUBS = HOST_DIR / "arduino_stubs"
SENSE = "nano33ble_sense"
IMU_RATE = 119.0  # the Sense's LSM9DS1, from its board profile
# Per byte: a 5 s take is 12 KB of frames plus what the board streams ahead of the STOP, so
# about half the takes are hit.
DROP_RATE = 3e-5


def _imu_recording(seconds: float, rate: float = IMU_RATE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (int(seconds * rate), 6)).astype(np.float32) * np.float32([0.5, 0.5, 0.5, 100, 100, 100])


def _audio_recording(seconds: float, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-20000, 20000, int(seconds * 16000)).astype(np.int16)


def _replayed(board: VirtualBoard, recording: np.ndarray, taken: list[recordings.TakeInfo]) -> list[np.ndarray]:
    """What each take must hold: the recording from where the replay stood at its CAPTURE_START."""
    starts = board.capture.take_starts[1:]  # the first start is the session's probe
    assert len(starts) >= len(taken)
    return [recording[(position + np.arange(take.samples)) % recording.shape[0]] for (_, position), take in zip(starts, taken)]


# ---- the protocol ------------------------------------------------------------------------------
def test_capture_payloads_round_trip_and_the_header_names_them() -> None:
    started = protocol.CaptureStarted(Sensor.IMU, "float32", 6, 10, 119.0)
    assert protocol.unpack_capture_started(protocol.pack_capture_started(started)) == started
    status = protocol.CaptureStatus(2, 123456, 7)
    assert protocol.unpack_capture_status(protocol.pack_capture_status(status)) == status
    values = np.arange(60, dtype=np.float32).reshape(10, 6)
    block = protocol.unpack_samples(protocol.pack_samples(99, values), started)
    assert block.first == 99 and np.array_equal(block.values, values)
    with pytest.raises(protocol.FrameError):
        protocol.unpack_samples(protocol.pack_samples(0, values)[:-1], started)
    for fmt in protocol.SAMPLE_FORMATS.values():
        assert protocol.SAMPLES_HEADER_BYTES + fmt.samples_per_frame * fmt.sample_bytes <= protocol.MAX_PAYLOAD_BYTES
    header = protocol.render_c_header()
    for name in ("kMsgCaptureStart = 0x30", "kMsgSamples = 0x33", "kSensorImu = 1", "kImuSamplesPerFrame = 10", "kMicrophoneSamplesPerFrame = 121", "kStatusNoSensor = 9"):
        assert f"constexpr uint8_t {name};" in header or name in header


def test_info_names_the_app_and_reads_replies_of_older_firmware() -> None:
    spec = protocol.TensorSpec("int8", (1, 4), 0.5, 1)
    info = protocol.DeviceInfo(1, "fw", "board", "00112233aabbccdd", 10, 256, spec, spec, app="gesture")
    assert protocol.unpack_info(protocol.pack_info(info)).app == "gesture"
    older = protocol.pack_info(info)[: -len(protocol.pack_string("gesture"))]
    assert protocol.unpack_info(older).app == ""


# ---- the firmware app ----------------------------------------------------------------------------
def _requests(*frames: tuple[MessageType, bytes]) -> bytes:
    return b"".join(protocol.encode_frame(Frame(int(t), seq, payload)) for seq, (t, payload) in enumerate(frames, start=1))


def test_capture_session_cpp_frames_exactly_what_it_was_given(tmp_path: Path) -> None:
    src = tmp_path / "src"
    render_plain_sources("capture", {}, src)
    (src / "tinyml_protocol.h").write_text(protocol.render_c_header())
    sources = [src / "capture_session.cpp", src / "protocol_server.cpp", src / "framing.cpp"]
    compile_objects(sources, [src], compiler=HOST_GXX, flags=(), out_dir=tmp_path)
    compile_objects(sources, [src], flags=ARM_CORTEX_M4, out_dir=tmp_path)
    phases = [
        b"info\n"  # typed in human mode first, as a student would
        + _requests((MessageType.HELLO, bytes([1])), (MessageType.INFO, b""), (MessageType.CAPTURE_START, bytes([Sensor.IMU]))),
        _requests((MessageType.CAPTURE_STATUS, b""), (MessageType.CAPTURE_STOP, b""), (MessageType.CAPTURE_START, bytes([Sensor.MICROPHONE]))),
        _requests((MessageType.CAPTURE_STOP, b""), (MessageType.CAPTURE_START, bytes([7]))),
    ]
    paths = []
    for index, data in enumerate(phases):
        paths.append(tmp_path / f"requests{index}.bin")
        paths[-1].write_bytes(data)
    out = tmp_path / "out.bin"
    # The firmware's own model seam for a model-less app (no_model_runner.h) stands behind the server.
    compile_and_run([HOST_DIR / "capture_main.cpp", *sources], [src, templates_dir() / "common"], args=[*map(str, paths), str(out)], out_dir=tmp_path)
    decoder = protocol.FrameDecoder()
    frames = decoder.feed(out.read_bytes())
    assert not decoder.errors
    assert "no model: this is the capture app" in decoder.text.decode()
    replies = [f for f in frames if f.type not in protocol.UNASKED_TYPES]
    assert [f.type & 0x7F if f.type != MessageType.ERROR else f.type for f in replies] == [
        MessageType.HELLO, MessageType.INFO, MessageType.CAPTURE_START, MessageType.CAPTURE_STATUS, MessageType.CAPTURE_STOP,
        MessageType.CAPTURE_START, MessageType.CAPTURE_STOP, MessageType.ERROR,
    ]  # fmt: skip
    info = protocol.unpack_info(replies[1].payload)
    assert (info.app, info.model_hash, info.input.shape) == ("capture", "", ())
    imu = protocol.unpack_capture_started(replies[2].payload)
    assert imu == protocol.CaptureStarted(Sensor.IMU, "float32", 6, 10, 119.0)
    # STATUS: 1037 samples counted (37 of them lost); STOP after the last frame, the same counts.
    assert protocol.unpack_capture_status(replies[3].payload) == protocol.CaptureStatus(Sensor.IMU, 1037, 37)
    assert protocol.unpack_capture_status(replies[4].payload) == protocol.CaptureStatus(Sensor.IMU, 1037, 37)
    mic = protocol.unpack_capture_started(replies[5].payload)
    assert mic == protocol.CaptureStarted(Sensor.MICROPHONE, "int16", 1, 121, 16000.0)
    assert protocol.unpack_capture_status(replies[6].payload) == protocol.CaptureStatus(Sensor.MICROPHONE, 5000, 0)
    assert protocol.unpack_error(replies[7].payload).status == protocol.Status.NO_SENSOR
    # The samples: frames in order, indices with exactly the one gap of 37.
    order = [f.type for f in frames]
    mic_start = order.index(MessageType.CAPTURE_START | 0x80, order.index(MessageType.CAPTURE_STOP | 0x80))
    imu_blocks = [protocol.unpack_samples(f.payload, imu) for f in frames[:mic_start] if f.type in protocol.UNASKED_TYPES]
    pcm_blocks = [protocol.unpack_samples(f.payload, mic) for f in frames[mic_start:] if f.type in protocol.UNASKED_TYPES]
    firsts = [b.first for b in imu_blocks]
    assert firsts == list(range(0, 500, 10)) + list(range(537, 1037, 10))
    expected = np.float32(np.arange(1000)[:, None]) * np.float32(0.001) + (np.arange(6, dtype=np.float32) - np.float32(2.5))
    assert np.array_equal(np.concatenate([b.values for b in imu_blocks]), expected.astype(np.float32))
    assert [b.first for b in pcm_blocks] == list(range(0, 5000, 121))
    assert np.array_equal(np.concatenate([b.values[:, 0] for b in pcm_blocks]), (np.arange(5000) * 13 - 32000).astype(np.int16))


@pytest.mark.parametrize("board_id", ["nano33ble_sense", "nano33ble_sense_rev2", "nano_rp2040_connect"])
def test_rendered_capture_project_runs_no_model_and_its_glue_compiles(board_id: str, tmp_path: Path) -> None:
    result = render_project(board_id, None, tmp_path / "fw", app="capture")
    src = tmp_path / "fw" / "src"
    names = {p.name for p in src.iterdir()}
    assert {"app.cpp", "capture_session.cpp", "capture_config.h", "no_model_runner.h", "main.cpp", "device_info.h"} <= names
    assert not names & {"model_data.h", "model_data.cc", "tflm_model_runner.h"}
    assert result.model_hash == "" and result.arena_bytes == 0
    ini = (tmp_path / "fw" / "platformio.ini").read_text()
    assert "TensorFlowLite" not in ini and "-DTINYML_MICROPHONE_" in ini and "-DTINYML_IMU_" in ini
    main_cpp = (src / "main.cpp").read_text()
    assert "tensorflow" not in main_cpp and "NoModelRunner" in main_cpp
    # The sketch glue, main.cpp included, against declarations of the Arduino APIs it uses.
    defines = re.findall(r"-D(\w+)", ini)
    sources = [src / n for n in ("app.cpp", "main.cpp", "capture_session.cpp", "protocol_server.cpp", "framing.cpp")]
    compile_objects(sources, [STUBS, src], compiler=HOST_GXX, flags=[f"-D{d}" for d in defines], out_dir=tmp_path)


def test_render_refuses_capture_on_a_board_without_sensors_and_with_a_model(int8_models: dict[str, Path], tmp_path: Path) -> None:
    assert load_app("capture").needs_model is False
    with pytest.raises(InputError, match="needs one of the sensors imu, microphone"):
        render_project("nano33ble", None, tmp_path / "a", app="capture")
    with pytest.raises(InputError, match="runs no model"):
        render_project(SENSE, int8_models["dense"], tmp_path / "b", app="capture")
    with pytest.raises(InputError, match="runs a model"):
        render_project(SENSE, None, tmp_path / "c", app="validation")
    assert not any((tmp_path / d).exists() for d in "abc")


# ---- capture from the virtual board ----------------------------------------------------------------
def test_minutes_of_imu_come_back_exactly_at_the_profile_rate(tmp_path: Path) -> None:
    recording = _imu_recording(4 * 60)
    with VirtualBoard(None, board=SENSE, replay=Replay(imu=recording, imu_rate_hz=IMU_RATE)) as board:
        summary = record_session(board.port, tmp_path / "ds", CaptureSettings("wave", "ann", seconds=60, takes=3, countdown_s=0))
        taken = list(recordings.iter_takes(tmp_path / "ds"))
        expected = _replayed(board, recording, taken)
    assert summary.lost == [] and len(summary.saved) == 3 and summary.rate_hz == IMU_RATE
    for take, want in zip(taken, expected):
        assert (take.samples, take.rate_hz, take.board, take.kind) == (60 * 119, IMU_RATE, SENSE, "imu")
        assert np.array_equal(recordings.load_take(take), want)
    # The .npz the labs and quantize read: x of shape (samples, 6).
    with np.load(taken[0].path) as archive:
        assert archive["x"].shape == (7140, 6) and float(archive["rate_hz"]) == IMU_RATE


def test_a_minute_of_audio_comes_back_exactly_as_16_khz_wav(tmp_path: Path) -> None:
    recording = _audio_recording(25)
    with VirtualBoard(None, board=SENSE, replay=Replay(audio=recording)) as board:
        summary = record_session(board.port, tmp_path / "ds", CaptureSettings("yes", "ann", sensor="microphone", seconds=20, takes=3, countdown_s=0))
        taken = list(recordings.iter_takes(tmp_path / "ds"))
        expected = _replayed(board, recording, taken)
    assert summary.lost == [] and len(taken) == 3
    for take, want in zip(taken, expected):
        with wave.open(str(take.path), "rb") as f:
            assert (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()) == (1, 2, 16000, 320000)
        assert np.array_equal(recordings.load_take(take), want)


def test_a_reset_mid_take_loses_that_take_only(tmp_path: Path) -> None:
    recording = _audio_recording(10)
    faults = Faults(reset_in_take=3)  # the probe is the board's first capture: this is take 2
    with VirtualBoard(None, replay=Replay(audio=recording), faults=faults) as board:
        summary = record_session(board.port, tmp_path / "ds", CaptureSettings("yes", "ann", sensor="microphone", seconds=3, takes=4, countdown_s=0))
        resets = board.stats.resets
    assert resets == 1
    assert summary.lost == ["the board reset during take 2"]
    taken = list(recordings.iter_takes(tmp_path / "ds"))
    assert len(taken) == 3 and all(t.samples == 48000 for t in taken)
    for take in taken:
        values = recordings.load_take(take)
        candidates = np.flatnonzero(recording == values[0])
        assert any(np.array_equal(values, recording[(p + np.arange(48000)) % len(recording)]) for p in candidates)
    assert recordings.dataset_stats(tmp_path / "ds").incomplete == 0


def test_dropped_bytes_lose_only_the_takes_they_hit(tmp_path: Path) -> None:
    recording = _imu_recording(60, rate=100.0)
    with VirtualBoard(None, replay=Replay(imu=recording, imu_rate_hz=100.0), faults=Faults(drop=DROP_RATE, seed=4)) as board:
        summary = record_session(board.port, tmp_path / "ds", CaptureSettings("wave", "ann", seconds=5, takes=16, countdown_s=0))
        taken = list(recordings.iter_takes(tmp_path / "ds"))
        starts = board.capture.take_starts[1:]
        dropped = board.stats.dropped
    assert dropped and summary.lost and summary.saved, "the drop rate should hit some takes and spare others"
    assert len(summary.lost) + len(summary.saved) == 16 and len(taken) == len(summary.saved)
    assert all(re.fullmatch(r"take \d+ lost \d+ samples \(.*\)", reason) for reason in summary.lost)
    # A START whose reply was hit is sent again (a new start), so match each kept take to a start.
    for take in taken:
        values = recordings.load_take(take)
        assert any(np.array_equal(values, recording[(position + np.arange(take.samples)) % len(recording)]) for _, position in starts)


def test_a_triggered_take_starts_at_the_motion(tmp_path: Path) -> None:
    rate = 1000.0  # in real time, so the probe before the take moves the replay by a few samples only
    recording = np.zeros((5000, 6), np.float32)
    recording[:, 2] = 1.0  # still, gravity on z
    recording[600:700, 0] = 1.5  # a movement
    with VirtualBoard(None, replay=Replay(imu=recording, imu_rate_hz=rate), realtime=True) as board:
        summary = record_session(board.port, tmp_path / "ds", CaptureSettings("poke", "ann", seconds=1.0, takes=1, trigger=0.5, countdown_s=0))
        start = board.capture.take_starts[-1][1]
    values = recordings.load_take(next(recordings.iter_takes(tmp_path / "ds")))
    assert summary.lost == [] and values.shape == (1000, 6)
    assert start < 100
    # The take is the recording from the 20% pre-trigger share before the first frame over the level.
    first = np.flatnonzero(values[:, 0] > 1.0)[0]
    assert 200 <= first < 200 + protocol.SAMPLE_FORMATS[Sensor.IMU].samples_per_frame
    assert np.array_equal(values, recording[600 - first : 1600 - first])
    assert level("imu", values) == pytest.approx(np.sqrt(1.5**2 + 1) - 1, rel=1e-5)


# ---- bad input -------------------------------------------------------------------------------------
def test_a_port_with_other_firmware_is_named(int8_models: dict[str, Path], tmp_path: Path) -> None:
    with VirtualBoard(int8_models["dense"]) as board:
        with pytest.raises(DeviceError, match=r"runs the validation app, model [0-9a-f]{16}, not the capture app") as caught:
            record_session(board.port, tmp_path / "ds", CaptureSettings("wave", "ann", countdown_s=0))
    assert "tinyml render --app capture" in caught.value.fix
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("label", ["a/b", "../up", "", ".hidden", "con", "x" * 65, "wave\n"])
def test_a_label_that_cannot_be_a_file_name_is_one_line(label: str) -> None:
    with pytest.raises(InputError, match="cannot be a file name") as caught:
        CaptureSettings(label, "ann").check()
    assert "\n" not in caught.value.problem.replace(repr(label), "")


def test_mixing_rates_or_boards_needs_allow_mixed(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    for rate, board_id in ((IMU_RATE, SENSE), (100.0, "nano33ble_sense_rev2")):
        with VirtualBoard(None, board=board_id, replay=Replay(imu=_imu_recording(5, rate), imu_rate_hz=rate)) as board:
            if rate == IMU_RATE:
                record_session(board.port, out, CaptureSettings("wave", "ann", takes=1, countdown_s=0))
                continue
            with pytest.raises(InputError, match=r"recorded at rate 119.0 \(this board: 100.0\), board nano33ble_sense"):
                record_session(board.port, out, CaptureSettings("wave", "bob", takes=1, countdown_s=0))
            record_session(board.port, out, CaptureSettings("wave", "bob", takes=1, countdown_s=0, allow_mixed=True))
    assert recordings.read_dataset_info(out).mixed
    assert len(list(recordings.iter_takes(out))) == 2


def test_a_full_disk_leaves_no_half_take(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = recordings._write_atomic

    def write_but_data_fails(path: Path, data: bytes) -> None:
        if path.suffix == ".npz":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(recordings, "_write_atomic", write_but_data_fails)
    with VirtualBoard(None, replay=Replay(imu=_imu_recording(5), imu_rate_hz=IMU_RATE)) as board:
        with pytest.raises(InputError, match="disk holding .* is full: the take was not saved"):
            record_session(board.port, tmp_path / "ds", CaptureSettings("wave", "ann", takes=2, countdown_s=0))
    assert [p.name for p in (tmp_path / "ds").rglob("*") if p.is_file()] == ["dataset.json"]


def test_recordings_for_the_virtual_board_are_checked(tmp_path: Path) -> None:
    csv = tmp_path / "imu.csv"
    csv.write_text("ax,ay,az,gx,gy,gz\n" + "\n".join(",".join(str(v) for v in row) for row in _imu_recording(1).tolist()))
    assert load_imu_recording(csv).shape == (119, 6)
    (tmp_path / "bad.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(InputError, match="has shape"):
        load_imu_recording(tmp_path / "bad.csv")
    with wave.open(str(tmp_path / "a.wav"), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(44100)
        f.writeframes(b"\x00\x00" * 10)
    with pytest.raises(InputError, match="44100 Hz"):
        load_audio_recording(tmp_path / "a.wav")
    with pytest.raises(InputError, match="has no microphone"):
        VirtualBoard(None, board="nano33ble", replay=Replay(audio=_audio_recording(1)))


# ---- the command line ----------------------------------------------------------------------------
def test_cli_capture_then_dataset_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = _imu_recording(20)
    recording[::7, 3] = 2000.0  # the gyro's full scale, in every take
    with VirtualBoard(None, board=SENSE, replay=Replay(imu=recording, imu_rate_hz=IMU_RATE)) as board:
        for student in ("ann", "bob"):
            code = main(["capture", "--port", board.port, "--label", "wave", "--student", student, "--takes", "2", "--countdown", "0", "--out", str(tmp_path / "ds")])
            assert code == 0
        assert main(["capture", "--port", board.port, "--label", "a b", "--out", str(tmp_path / "ds")]) == 2
    out = capsys.readouterr()
    assert "2 take(s) of 'wave' by bob saved" in out.out and "imu at 119 Hz, board nano33ble_sense" in out.out
    assert "error: the label 'a b' cannot be a file name" in out.err
    assert main(["dataset", "stats", str(tmp_path / "ds"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    wave_stats = stats["labels"]["wave"]
    assert wave_stats == {"takes": 4, "seconds": 8.0, "clipped_takes": 4}
    assert stats["students"]["ann"]["takes"] == 2 and stats["incomplete"] == 0
    assert main(["dataset", "stats", str(tmp_path)]) == 2


# ---- the labs on a captured dataset ------------------------------------------------------------------
def _gesture(label: str, student: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * IMU_RATE)) / IMU_RATE
    x = np.zeros((t.size, 6))
    x[:, 2] = 1.0
    amp = 1.0 + 0.2 * student
    if label == "circle":
        x[:, 0] += 0.8 * amp * np.sin(2 * np.pi * t)
        x[:, 1] += 0.8 * amp * np.cos(2 * np.pi * t)
        x[:, 5] = 200 * amp * np.sin(2 * np.pi * t)
    elif label == "shake":
        x[:, 0] += 1.5 * amp * np.sin(8 * np.pi * t)
        x[:, 3] = 300 * amp * np.cos(8 * np.pi * t)
    return (x + rng.normal(0, 0.05, x.shape) * [1, 1, 1, 20, 20, 20]).astype(np.float32)


def _sound(label: str, student: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    audio = rng.normal(0, 200, t.size)
    if label != "silence":
        tone = {"low": 400, "high": 2000}[label] * (1 + 0.05 * student)
        audio += (((t % 1.0) > 0.3) & ((t % 1.0) < 0.7)) * 6000 * np.sin(2 * np.pi * tone * t)
    return np.clip(audio, -32768, 32767).astype(np.int16)


def _captured(kind: str, out: Path, labels: tuple[str, ...], takes: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for number, student in enumerate(("ann", "bob", "cy")):
        for label in labels:
            if kind == "imu":
                replay = Replay(imu=_gesture(label, number, 12, rng), imu_rate_hz=IMU_RATE)
            else:
                replay = Replay(audio=_sound(label, number, 6, rng))
            with VirtualBoard(None, board=SENSE, replay=replay) as board:
                record_session(board.port, out, CaptureSettings(label, student, sensor=kind, seconds=2.0 if kind == "imu" else 1.0, takes=takes, countdown_s=0))
    return out


@pytest.mark.slow
def test_gesture_lab_trains_on_a_captured_dataset(tmp_path: Path) -> None:
    from tinyml.labs.gesture import main as gesture_main
    from tinyml.labs.pipeline import DEPLOY_DIR

    data = _captured("imu", tmp_path / "ds", ("circle", "shake", "still"))
    out = tmp_path / "run"
    assert gesture_main(["--data", str(data), "--out", str(out), "--epochs", "6"]) == 0
    assert (out / "labels.txt").read_text().split() == ["circle", "shake", "still"]
    with np.load(out / "test.npz") as test:
        assert test["x"].shape == (15, 238, 1, 6)  # cy's 15 takes, one 2 s window each at 119 Hz
    config = (out / DEPLOY_DIR / "firmware" / "src" / "imu_features.h").read_text()
    assert "kSampleRateHz = 119;" in config and "kWindowSamples = 238;" in config


@pytest.mark.slow
def test_keyword_spotting_lab_trains_on_a_captured_dataset(tmp_path: Path) -> None:
    from tinyml.labs.keyword_spotting import run_kws_lab

    data = _captured("microphone", tmp_path / "ds", ("high", "low", "silence"))
    lab = run_kws_lab(tmp_path / "run", epochs=12, dataset=data)
    assert lab.validation.passed and lab.validation.device_vs_reference.exact_match == 1.0
    assert lab.float_accuracy is not None and lab.float_accuracy >= 0.9
    assert (tmp_path / "run" / "labels.txt").read_text().split() == ["high", "low", "silence"]
    assert "kSilenceLabel = 2;" in (tmp_path / "run" / "deploy" / "firmware" / "src" / "app_config.h").read_text()


def test_one_student_holds_out_the_last_take_of_each_label(tmp_path: Path) -> None:
    from tinyml.labs.captured import captured_gesture_data

    rng = np.random.default_rng(0)
    for label in ("circle", "shake"):
        recordings.open_dataset(tmp_path, "imu", IMU_RATE, SENSE)
        for _ in range(3):
            take = recordings.TakeInfo(label, "ann", "imu", IMU_RATE, SENSE, "", 238)
            recordings.write_take(tmp_path, take, _gesture(label, 0, 2, rng))
    data = captured_gesture_data(tmp_path)
    assert (len(data.train), len(data.test)) == (4, 2) and data.labels == ("circle", "shake")


def test_link_keeps_stream_frames_that_share_a_read_with_a_reply(tmp_path: Path) -> None:
    with VirtualBoard(None, replay=Replay(imu=_imu_recording(30), imu_rate_hz=IMU_RATE)) as board:
        link = DeviceLink(board.port)
        try:
            started = protocol.unpack_capture_started(link.request(MessageType.CAPTURE_START, bytes([Sensor.IMU]), restart_stream=True).payload)
            expected = 0
            for _ in range(40):  # replies interleave with the stream; no frame may go missing
                link.request(MessageType.CAPTURE_STATUS)
                for frame in link.unasked_frames(0.01):
                    block = protocol.unpack_samples(frame.payload, started)
                    assert block.first == expected
                    expected += block.values.shape[0]
            assert expected > 1000
        finally:
            link.close()
        assert struct.calcsize("<IB") == protocol.SAMPLES_HEADER_BYTES


def test_cli_virtual_board_replays_a_csv_for_tinyml_capture(tmp_path: Path) -> None:
    recording = _imu_recording(10, rate=100.0)
    csv = tmp_path / "imu.csv"
    np.savetxt(csv, recording, delimiter=",", header="ax,ay,az,gx,gy,gz", comments="", fmt="%.9g")
    link_path = tmp_path / "port"
    command = [sys.executable, "-c", "import tinyml; raise SystemExit(tinyml.main())", "virtual-board", "--imu", str(csv), "--board", "nano33ble_sense_rev2", "--link", str(link_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        lines = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            lines.append(process.stdout.readline())
            if lines[-1].startswith("port:") or not lines[-1]:
                break
        assert f"port: {link_path}" in "".join(lines)
        assert main(["capture", "--port", str(link_path), "--label", "wave", "--student", "ann", "--takes", "1", "--countdown", "0", "--out", str(tmp_path / "ds")]) == 0
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=20)[0]
        assert process.returncode == 0 and "samples streamed, 0 resets" in rest
        assert "capture firmware, replaying: IMU 1000 samples at 100 Hz" in "".join(lines) + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    take = next(recordings.iter_takes(tmp_path / "ds"))
    assert (take.board, take.rate_hz, take.samples) == ("nano33ble_sense_rev2", 100.0, 200)
    values = recordings.load_take(take)
    candidates = np.flatnonzero(recording[:, 0] == values[0, 0])
    assert any(np.array_equal(values, recording[(p + np.arange(200)) % len(recording)]) for p in candidates)


def test_info_typed_on_capture_firmware_says_there_is_no_model(tmp_path: Path) -> None:
    import serial

    with VirtualBoard(None, replay=Replay(imu=_imu_recording(1)), link=tmp_path / "port") as board:
        port = serial.Serial(board.port, timeout=0.2)
        try:
            port.write(b"info\n")
            text = b""
            deadline = time.monotonic() + 5
            while b"app" not in text and time.monotonic() < deadline:
                text += port.read(512)
        finally:
            port.close()
    assert "no model: this is the capture app" in text.decode()
