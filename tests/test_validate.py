"""`validate` end to end: a virtual board on a pty, pyserial, the real TFLite and TFLM runs."""

from __future__ import annotations

import html
import json
import socket
import threading
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pytest

import tinyml
from tinyml.core.data import Dataset
from tinyml.core.errors import DeviceError, InputError
from tinyml.model.modelfile import read_model
from tinyml.model.tflm import measure_arena
from tinyml.validation.report import ThresholdFailed
from tinyml.validation.session import SAMPLES_FILE
from tinyml.validation.validate import prepare_inputs, validate_device
from tinyml.device.virtual_board import Faults, VirtualBoard

FAST_LINK = {"reply_timeout": 0.25, "reconnect_timeout": 5.0}


@pytest.fixture(autouse=True)
def _no_library_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test names the board's library it means; none comes from the developer's shell."""
    monkeypatch.delenv("TINYML_TFLM_LIBRARY", raising=False)


@pytest.fixture(scope="module")
def dense(int8_models: dict[str, Path]) -> Path:
    return int8_models["dense"]


@pytest.fixture(scope="module")
def dense_arena(dense: Path) -> int:
    return measure_arena(dense.read_bytes())


@pytest.fixture(scope="module")
def dense_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(5)
    path = tmp_path_factory.mktemp("validate_data") / "data.npz"
    np.savez(path, x=rng.uniform(-1, 1, (40, 16)).astype(np.float32), y=rng.integers(0, 4, 40))
    return path


def _board(model: Path, arena: int, tmp_path: Path, faults: Faults = Faults(), name: str = "port") -> VirtualBoard:
    return VirtualBoard(model, labels=["a", "b", "c", "d"], link=tmp_path / name, faults=faults, arena_bytes=arena)


@pytest.mark.timeout(120)
def test_validation_is_exact_without_faults_and_writes_the_report(dense: Path, dense_arena: int, dense_data: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    seen: list[tuple[int, int]] = []
    with _board(dense, dense_arena, tmp_path) as board:
        report = validate_device(board.port, dense, dense_data, report_dir=report_dir, min_agreement=0.9, progress=lambda d, t: seen.append((d, t)), link_options=FAST_LINK)
    assert report.samples == 40 and report.passed
    assert report.device_vs_tflm.exact_match == 1.0 and report.device_vs_tflm.max_abs_lsb == 0
    assert report.device_vs_tflm.cosine == pytest.approx(1.0)
    assert 0.0 <= report.device_vs_reference.exact_match <= 1.0
    assert set(report.accuracy) == {"host_float", "host_int8", "tflm", "board_library", "device"}
    assert report.accuracy["device"] == report.accuracy["tflm"]
    assert sum(map(sum, report.confusion)) == 40
    assert report.latency_us.p50 > 0 and report.latency_us.max >= report.latency_us.p95 >= report.latency_us.p50
    assert report.class_names == ["a", "b", "c", "d"]
    assert seen[-1] == (40, 40)
    data = json.loads((report_dir / "report.json").read_text())
    assert data["passed"] is True and data["samples"] == 40 and data["model_hash"] == read_model(dense).short_hash
    page = (report_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # confusion matrix, latency, per-output error
    lines = (report_dir / SAMPLES_FILE).read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "header" and len(lines) == 41


VALIDATE_FAULTS = {
    "noise+drops": Faults(noise=0.002, drop=0.002, seed=3),
    "rx64": Faults(rx_buffer=64),
    "reset": Faults(reset_every=6),
    "slow": Faults(slow_ms=30),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", VALIDATE_FAULTS)
def test_validation_is_complete_and_correct_under_faults(name: str, dense: Path, dense_arena: int, dense_data: Path, tmp_path: Path) -> None:
    with _board(dense, dense_arena, tmp_path, VALIDATE_FAULTS[name]) as board:
        report = validate_device(board.port, dense, dense_data, limit=20, report_dir=tmp_path / "r", link_options=FAST_LINK)
    assert report.samples == 20
    assert report.device_vs_tflm.exact_match == 1.0
    records = (tmp_path / "r" / SAMPLES_FILE).read_text().splitlines()[1:]
    assert sorted(json.loads(line)["index"] for line in records) == list(range(20))
    if name == "reset":
        assert board.stats.resets >= 3 and report.link["reconnects"] >= 3


class _Crash(Exception):
    pass


@pytest.mark.timeout(120)
def test_resume_after_a_crash_loses_nothing_and_repeats_nothing(dense: Path, dense_arena: int, dense_data: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"

    def crash_at_ten(done: int, total: int) -> None:
        if done == 10:
            raise _Crash

    with _board(dense, dense_arena, tmp_path) as board:
        with pytest.raises(_Crash):
            validate_device(board.port, dense, dense_data, limit=25, report_dir=report_dir, progress=crash_at_ten, link_options=FAST_LINK)
        with pytest.raises(InputError, match="--resume"):
            validate_device(board.port, dense, dense_data, limit=25, report_dir=report_dir, link_options=FAST_LINK)
        before = board.stats.inferences
        report = validate_device(board.port, dense, dense_data, limit=25, report_dir=report_dir, resume=True, link_options=FAST_LINK)
        assert board.stats.inferences - before == 15
    assert report.resumed_samples == 10 and report.samples == 25
    indices = [json.loads(line)["index"] for line in (report_dir / SAMPLES_FILE).read_text().splitlines()[1:]]
    assert sorted(indices) == list(range(25))


@pytest.mark.timeout(120)
def test_pulled_cable_then_resume_on_a_board_that_comes_back(dense: Path, dense_arena: int, dense_data: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    board = _board(dense, dense_arena, tmp_path)
    board.start()

    def pull_cable(done: int, total: int) -> None:
        if done == 8:
            board.stop()

    try:
        with pytest.raises(DeviceError):
            validate_device(board.port, dense, dense_data, limit=20, report_dir=report_dir, progress=pull_cable, link_options={**FAST_LINK, "reconnect_timeout": 1.0})
    finally:
        board.stop()
    with _board(dense, dense_arena, tmp_path) as again:
        report = validate_device(again.port, dense, dense_data, limit=20, report_dir=report_dir, resume=True, link_options=FAST_LINK)
    assert report.resumed_samples == 8 and report.samples == 20
    assert report.device_vs_tflm.exact_match == 1.0


@pytest.mark.timeout(60)
def test_a_board_running_another_model_is_refused_naming_both_hashes(int8_models: dict[str, Path], dense: Path, dense_data: Path, tmp_path: Path) -> None:
    other = int8_models["conv1d"]
    with VirtualBoard(other, link=tmp_path / "port") as board:
        with pytest.raises(DeviceError) as refused:
            validate_device(board.port, dense, dense_data, report_dir=tmp_path / "report")
        assert board.stats.inferences == 0
    message = str(refused.value)
    assert read_model(other).short_hash in message and read_model(dense).short_hash in message
    assert not (tmp_path / "report").exists()


@pytest.mark.timeout(120)
def test_cli_exit_code_gates_on_thresholds(dense: Path, dense_arena: int, dense_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report_dir = tmp_path / "report"
    args = ["validate", "--model", str(dense), "--data", str(dense_data), "--limit", "12", "--report", str(report_dir)]
    with _board(dense, dense_arena, tmp_path, Faults(skew_every=3)) as board:
        code = tinyml.main([*args, "--port", board.port, "--min-exact", "1.0"])
        assert code == ThresholdFailed.exit_code == 6
        assert "FAILED" in capsys.readouterr().out
        assert json.loads((report_dir / "report.json").read_text())["passed"] is False
        assert tinyml.main([*args, "--port", board.port]) == 2  # the earlier run is not overwritten
        assert tinyml.main([*args, "--port", board.port, "--force", "--min-agreement", "0.5"]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    assert report["device_vs_tflm"]["max_abs_lsb"] == 1 and report["device_vs_tflm"]["exact_match"] < 1.0
    assert "differ from the reference</h2><p>4 of 12 samples" in (report_dir / "report.html").read_text()  # every 3rd is skewed


def _network_bridge(port_path: str, scheme: str) -> tuple[str, threading.Event]:
    """A one-connection TCP server in front of the pty, as ser2net puts a rig's board on the network.

    `socket` passes raw bytes. `rfc2217` serves the port as pyserial's rfc2217_server example (and
    ser2net's telnet mode) does: telnet negotiation and serial settings go through the protocol's
    PortManager, and data is escaped both ways.
    """
    import serial
    import serial.rfc2217

    class PtyWithModemLines(serial.Serial):
        """A USB CDC board reports its modem lines low and ignores DTR/RTS; a pty has none to ask."""

        cts = dsr = ri = cd = False

        def _update_dtr_state(self) -> None:
            pass

        def _update_rts_state(self) -> None:
            pass

    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = server.accept()
        connection.settimeout(0.02)
        serial_port = PtyWithModemLines(port_path, baudrate=115200, timeout=0.02)
        to_port, to_network = (lambda data: data), (lambda data: data)
        if scheme == "rfc2217":
            # PortManager writes its telnet replies with .write(), as pyserial's example server wraps the socket.
            manager = serial.rfc2217.PortManager(serial_port, SimpleNamespace(write=connection.sendall))
            to_port, to_network = (lambda data: b"".join(manager.filter(data))), (lambda data: b"".join(manager.escape(data)))
        try:
            while not stop.is_set():
                try:
                    data = connection.recv(4096)
                    if not data:
                        break
                    serial_port.write(to_port(data))
                except TimeoutError:
                    pass
                waiting = serial_port.read(serial_port.in_waiting or 1)
                if waiting:
                    connection.sendall(to_network(waiting))
        finally:
            serial_port.close()
            connection.close()
            server.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"{scheme}://127.0.0.1:{server.getsockname()[1]}", stop


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scheme", ["socket", "rfc2217"])
def test_validation_over_a_network_url(scheme: str, dense: Path, dense_arena: int, dense_data: Path, tmp_path: Path) -> None:
    with _board(dense, dense_arena, tmp_path) as board:
        url, stop = _network_bridge(board.port, scheme)
        try:
            report = validate_device(url, dense, dense_data, limit=10, link_options=FAST_LINK)
        finally:
            stop.set()
    assert report.samples == 10 and report.device_vs_tflm.exact_match == 1.0 and report.port.startswith(f"{scheme}://")


def test_prepare_inputs_quantizes_float_and_keeps_int8(dense: Path) -> None:
    spec = read_model(dense).inputs[0]
    x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(2, 16)
    q = prepare_inputs(x, spec)
    assert q.dtype == np.int8 and q.shape == (2, 16)
    assert np.allclose(spec.scale * (q.astype(np.float64) - spec.zero_point), x, atol=spec.scale)
    raw = np.arange(-16, 16, dtype=np.int8).reshape(2, 16)
    assert prepare_inputs(raw, spec) is raw or np.array_equal(prepare_inputs(raw, spec), raw)
    with pytest.raises(InputError, match="16"):
        prepare_inputs(np.zeros((2, 15), np.float32), spec)


def test_bad_thresholds_and_empty_data_are_input_errors(dense: Path) -> None:
    with pytest.raises(InputError):
        validate_device("loop://", dense, Dataset(np.zeros((2, 16), np.float32)), min_exact=99)
    with pytest.raises(InputError):
        validate_device("loop://", dense, Dataset(np.zeros((0, 16), np.float32)))
    with pytest.raises(InputError):
        validate_device("loop://", dense, Dataset(np.zeros((2, 16), np.float32)), resume=True)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_pipeline_quantize_render_virtual_board_validate(tmp_path: Path) -> None:
    """The whole chain: the rendered firmware carries this protocol, the board answers exactly."""
    from modelzoo import build_keras_model, sample_inputs

    from tinyml.firmware import protocol
    from tinyml.firmware.boards import quantize_options
    from tinyml.model.quantize import quantize_model
    from tinyml.firmware.render import render_project
    from tinyml.core.resources import templates_dir

    x = sample_inputs("dense", 48, seed=4)
    y = np.arange(48) % 4
    model_path = tmp_path / "model.tflite"
    keras_model = build_keras_model("dense")
    keras_model.save(tmp_path / "float.keras")
    quantize_model(keras_model, Dataset(x), out=model_path, **quantize_options("nano33ble"))  # what the board's library computes
    labels = ["w", "x", "y", "z"]
    render_project("nano33ble", model_path, tmp_path / "firmware", labels=labels)
    src = tmp_path / "firmware" / "src"
    assert (src / "tinyml_protocol.h").read_text() == protocol.render_c_header()
    for source in (templates_dir() / "common").iterdir():
        assert (src / source.name).read_bytes() == source.read_bytes(), source.name
    short_hash = read_model(model_path).short_hash
    assert f'"{short_hash}"' in (src / "model_data.h").read_text()
    with VirtualBoard(model_path, labels=labels, board="nano33ble", link=tmp_path / "port") as board:
        report = validate_device(
            board.port, model_path, Dataset(x, y), report_dir=tmp_path / "report", min_agreement=0.9, float_model=tmp_path / "float.keras", link_options=FAST_LINK
        )
    assert report.samples == 48 and report.device["board_id"] == "nano33ble" and report.class_names == labels
    assert report.device_vs_tflm.exact_match == 1.0
    assert all(0.0 <= report.accuracy[key] <= 1.0 for key in ("host_float", "host_int8", "tflm", "device"))


@pytest.mark.timeout(600)
def test_validation_against_the_boards_library_says_so_everywhere(
    per_channel_dense_model: Path, dense_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture, pinned_host_library
) -> None:
    """The virtual board runs the TFLM runtime; this model's Dense layers are per-channel,
    which the pinned library computes otherwise: the verdict against it is not exact."""
    report_dir = tmp_path / "report"
    model = per_channel_dense_model
    args = ["validate", "--model", str(model), "--data", str(dense_data), "--limit", "12", "--report", str(report_dir)]
    with _board(model, measure_arena(model.read_bytes()), tmp_path) as board:
        code = tinyml.main([*args, "--port", board.port, "--library", str(pinned_host_library.library_dir), "--min-exact", "1.0"])
    out = capsys.readouterr().out
    name = "Arduino_TensorFlowLite 2.4.0-ALPHA (the board's library, built for the host)"
    assert code == 6 and f"reference: {name}" in out and "device:board library (verdict)" in out
    report = json.loads((report_dir / "report.json").read_text())
    assert report["reference"]["kind"] == "board_library" and report["reference"]["name"] == name
    assert report["verdict"] == report["device_vs_board_library"] and report["verdict"]["exact_match"] < 1.0
    assert report["device_vs_tflm"]["exact_match"] == 1.0  # the virtual board is the TFLM runtime
    assert name in report["failures"][0]
    assert set(report["tolerances"]) == {"device_vs_board_library", "device_vs_tflm", "device_vs_reference", "tflm_vs_reference"}
    page = (report_dir / "report.html").read_text()
    assert html.escape(name) in page and html.escape("device vs the board's library (host build) (verdict)") in page


@pytest.mark.timeout(120)
def test_without_a_library_the_verdict_is_the_tflm_runtime_and_says_it_is_not_the_boards(dense: Path, dense_arena: int, dense_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report_dir = tmp_path / "report"
    with _board(dense, dense_arena, tmp_path) as board:
        code = tinyml.main(["validate", "--model", str(dense), "--data", str(dense_data), "--limit", "5", "--report", str(report_dir), "--port", board.port, "--min-exact", "1.0"])
    out = capsys.readouterr().out
    assert code == 0 and "reference: TFLM Python runtime (tflite-micro " in out and "not the board's library" in out
    report = json.loads((report_dir / "report.json").read_text())
    assert report["reference"]["kind"] == "tflm_runtime" and report["device_vs_board_library"] is None
    assert report["verdict"] == report["device_vs_tflm"]
    assert "--library DIR" in report["reference"]["note"]


@pytest.mark.timeout(600)
def test_a_virtual_board_on_the_boards_library_validates_exactly_against_it(
    per_channel_dense_model: Path, dense_data: Path, tmp_path: Path, pinned_host_library
) -> None:
    """With --library the virtual board computes what the board computes, per-channel Dense included."""
    library = pinned_host_library.library_dir
    model = per_channel_dense_model
    arena = measure_arena(model.read_bytes())
    with VirtualBoard(model, labels=["a", "b", "c", "d"], link=tmp_path / "port", arena_bytes=arena, library=library) as board:
        assert board.description == "virtual board, Arduino_TensorFlowLite 2.4.0-ALPHA host build"
        report = validate_device(board.port, model, dense_data, limit=12, library=library, min_exact=1.0, link_options=FAST_LINK)
    assert report.passed and report.verdict is report.device_vs_board_library
    assert report.device_vs_board_library.exact_match == 1.0 and report.device_vs_tflm.exact_match < 1.0
    with _board(model, arena, tmp_path, name="default") as board:
        assert board.description.startswith("virtual board, TFLM Python runtime (tflite-micro ")


def test_a_library_folder_that_is_not_one_is_an_input_error_before_the_port_is_opened(dense: Path, dense_data: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an Arduino library"):
        validate_device(str(tmp_path / "no-such-port"), dense, dense_data, library=tmp_path)
