"""The rig's parts that need no board: the rig file, discovery, the results store and its reports."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from tinyml.core.errors import DeviceError, InputError
from tinyml.device.virtual_board import Faults
from tinyml.rig.discover import discover_boards, write_discovered
from tinyml.rig.report import board_history, dashboard_html, junit_xml, latest_run, write_dashboard, write_junit
from tinyml.rig.rigfile import RigBoard, load_rig, write_rig
from tinyml.rig.store import SCHEMA_VERSION, BoardResult, ResultsStore

TINYML = [sys.executable, "-m", "tinyml"]


def _rig(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rig.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---- the rig file --------------------------------------------------------------------------------
def test_a_rig_file_names_every_kind_of_board(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("a\nb\n")
    rig = load_rig(_rig(tmp_path, """
[rig]
labels = "labels.txt"
coordinator = "127.0.0.1:20408"

[boards.A1B2]
profile = "nano33ble_sense"
port = "/dev/serial/by-id/usb-Arduino_A1B2-if00"
usb_serial = "A1B2"

[boards.net]
profile = "nano33ble"
port = "rfc2217://lab:4001"

[boards.twin]
profile = "nano33ble_sense"
virtual = { skew_every = 7, slow_ms = 2.5 }

[boards.emu]
profile = "nano33ble_sense"
emulator = {}

[boards.shared]
profile = "nano33ble_sense"
place = "bench-5"
busy = "wait"
wait_s = 30
"""))
    kinds = {name: board.kind for name, board in rig.boards.items()}
    assert kinds == {"A1B2": "serial", "net": "network", "twin": "virtual", "emu": "emulator", "shared": "place"}
    assert rig.boards["twin"].faults == Faults(skew_every=7, slow_ms=2.5)
    assert rig.boards["shared"].busy == "wait" and rig.boards["shared"].wait_s == 30.0
    assert [b.name for b in rig.boards.values() if b.flashable] == ["A1B2"]
    assert rig.store_path == tmp_path.resolve() / "rig.results.sqlite"
    assert rig.labels_path == tmp_path.resolve() / "labels.txt"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[boards.k1]\nprofile = "uno"\nport = "/dev/ttyACM0"\n', "board 'k1': unknown profile 'uno'"),
        ('[boards.k1]\nprofile = "nano33ble"\nport = "/dev/ttyACM0"\n[boards.k2]\nprofile = "nano33ble"\nport = "/dev/ttyACM0"\n', "board 'k2': uses the same port as board 'k1'"),
        ('[boards.k1]\nprofile = "nano33ble"\nport = "socket://Lab:4001"\n[boards.k2]\nprofile = "nano33ble"\nport = "socket://lab:4001/"\n', "board 'k2': uses the same port as board 'k1'"),
        ('[boards.k1]\nprofile = "nano33ble"\nplace = "p"\n', "board 'k1': place 'p' needs a labgrid coordinator"),
        ('[boards.k1]\nprofile = "nano33ble"\n', "board 'k1': says neither where it is"),
        ('[boards.k1]\nprofile = "nano33ble"\nport = "ttyACM0"\n', "board 'k1': port 'ttyACM0' is neither a device path"),
        ('[boards.k1]\nprofile = "nano33ble"\nvirtual = { skew = 3 }\n', "board 'k1': virtual fault 'skew' is unknown"),
        ('[rig]\nstore = "../elsewhere.sqlite"\n[boards.k1]\nprofile = "nano33ble"\nvirtual = {}\n', "[rig] store: '../elsewhere.sqlite' leaves the rig's folder"),
        ('[rig]\nlabels = "/etc/passwd"\n[boards.k1]\nprofile = "nano33ble"\nvirtual = {}\n', "[rig] labels: '/etc/passwd' leaves the rig's folder"),
        ('[boards]\n', "[boards]: no boards"),
    ],
)
def test_a_bad_rig_file_is_one_line_naming_the_board_and_the_fix(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        load_rig(_rig(tmp_path, text))
    assert says in caught.value.problem
    assert caught.value.fix and "\n" not in str(caught.value)


def test_a_by_id_link_and_its_device_are_one_port(tmp_path: Path) -> None:
    device = tmp_path / "ttyACM0"
    device.touch()
    link = tmp_path / "usb-Arduino_X-if00"
    link.symlink_to(device)
    with pytest.raises(InputError, match="uses the same port"):
        load_rig(_rig(tmp_path, f'[boards.a]\nprofile = "nano33ble"\nport = "{link}"\n[boards.b]\nprofile = "nano33ble"\nport = "{device}"\n'))


def test_a_symlink_out_of_the_folder_is_caught(tmp_path: Path) -> None:
    (tmp_path / "out").symlink_to("/tmp")
    with pytest.raises(InputError, match="leaves the rig's folder"):
        load_rig(_rig(tmp_path, '[rig]\nreports = "out/reports"\n[boards.k1]\nprofile = "nano33ble"\nvirtual = {}\n'))


def test_the_cli_gives_one_line_and_exit_2_for_a_bad_rig_file(tmp_path: Path) -> None:
    rig = _rig(tmp_path, '[boards.k1]\nprofile = "uno"\nport = "/dev/ttyACM0"\n')
    result = subprocess.run([*TINYML, "rig", "run", str(rig), "--model", "m.tflite", "--data", "d.npz"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "board 'k1': unknown profile 'uno'" in lines[0] and "Fix:" in lines[0]


def test_write_rig_reads_back(tmp_path: Path) -> None:
    boards = [
        RigBoard("A1", "nano33ble_sense", "serial", port="/dev/serial/by-id/x", usb_serial="A1"),
        RigBoard("t", "nano33ble", "virtual", faults=Faults(noise=0.01, reset_every=5)),
        RigBoard("e", "nano33ble", "emulator"),
    ]
    path = write_rig(tmp_path / "rig.toml", boards, comments={"A1": "USB 2341:805A"}, header="hello")
    rig = load_rig(path)
    assert [(b.name, b.kind, b.port, b.usb_serial, b.faults) for b in rig.boards.values()] == [(b.name, b.kind, b.port, b.usb_serial, b.faults) for b in boards]
    assert "# USB 2341:805A" in path.read_text()


# ---- discovery -----------------------------------------------------------------------------------
def _port(device: str, vid: int | None, pid: int | None, serial: str | None) -> SimpleNamespace:
    return SimpleNamespace(device=device, vid=vid, pid=pid, serial_number=serial, description="")


def test_discover_finds_boards_by_usb_id_and_names_them_by_serial_number(tmp_path: Path) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    ttys = {name: tmp_path / name for name in ("ttyACM0", "ttyACM1", "ttyACM2", "ttyUSB0")}
    for tty in ttys.values():
        tty.touch()
    (by_id / "usb-Arduino_Nano_33_BLE_Sense_ABC123-if00").symlink_to(ttys["ttyACM1"])
    ports = [
        _port(str(ttys["ttyACM1"]), 0x2341, 0x805A, "ABC123"),  # a Nano 33 BLE (Sense) sketch
        _port(str(ttys["ttyACM0"]), 0x2341, 0x005A, "DEF456"),  # one in its bootloader
        _port(str(ttys["ttyACM2"]), 0x2E8A, 0x000A, None),  # an unrelated board
        _port(str(ttys["ttyUSB0"]), None, None, None),  # not USB
    ]
    found = discover_boards(profile="nano33ble_sense", comports=lambda: ports, by_id_dir=by_id)
    assert [(f.board.name, f.board.port, f.board.profile, f.in_bootloader) for f in found] == [
        ("ABC123", str(by_id / "usb-Arduino_Nano_33_BLE_Sense_ABC123-if00"), "nano33ble_sense", False),
        ("DEF456", str(ttys["ttyACM0"]), "nano33ble_sense", True),
    ]
    path = write_discovered(tmp_path / "rig.toml", found)
    assert set(load_rig(path).boards) == {"ABC123", "DEF456"}
    with pytest.raises(InputError, match="already exists"):
        write_discovered(path, found)


def test_discover_says_when_profiles_share_a_usb_id(tmp_path: Path) -> None:
    found = discover_boards(comports=lambda: [_port("/dev/ttyACM7", 0x2341, 0x805A, "X9")], by_id_dir=tmp_path)
    assert found[0].candidates == ("nano33ble", "nano33ble_sense", "nano33ble_sense_rev2")
    text = write_discovered(tmp_path / "rig.toml", found).read_text()
    assert "also fits nano33ble_sense, nano33ble_sense_rev2" in text


def test_discover_with_no_board_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="no board found on USB"):
        write_discovered(tmp_path / "rig.toml", discover_boards(comports=lambda: [], by_id_dir=tmp_path))


# ---- the store -----------------------------------------------------------------------------------
def _result(board: str, verdict: str = "pass", **extra) -> BoardResult:
    values = {"exact": 1.0, "accuracy": 0.9, "latency_p50_us": 100.0, "samples": 10, "firmware_hash": "fw1", "library_hash": "lib1"}
    values.update(extra)
    reason = values.pop("reason", verdict)
    return BoardResult(board=board, profile="nano33ble_sense", kind="virtual", verdict=verdict, reason=reason, model_hash="m1", **values)


def _start(store: ResultsStore, key: str = "k"):
    return store.start_run(rig_file="rig.toml", model_path="m.tflite", model_hash="m1", data_hash="d1", settings={"min_exact": 1.0}, run_key=key)


def test_a_run_with_unfinished_boards_is_resumed_and_a_finished_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with ResultsStore(path, lock=True) as store:
        run, earlier = _start(store)
        assert earlier == {}
        store.record(run.id, _result("a"))
        store.record(run.id, _result("b", "error"))
        store.finish_run(run.id)
    with ResultsStore(path, lock=True) as store:
        again, earlier = _start(store)
        assert again.id == run.id and set(earlier) == {"a", "b"} and not earlier["b"].finished
        store.record(run.id, _result("b", "fail", exact=0.5))
        store.finish_run(run.id)
    with ResultsStore(path, lock=True) as store:
        third, earlier = _start(store)
        assert third.id != run.id and earlier == {}
        other, _ = _start(store, key="another model")
        assert other.id not in (run.id, third.id)


def test_a_second_run_on_a_locked_store_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with ResultsStore(path, lock=True):
        with pytest.raises(InputError, match="in use by another rig run") as caught:
            ResultsStore(path, lock=True)
        assert f"pid {os.getpid()}" in caught.value.problem
        with ResultsStore(path, create=False) as reader:  # reading needs no lock
            assert reader.runs() == []


def test_a_store_from_a_newer_tool_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match="written by a newer tinyml") as caught:
        ResultsStore(path, lock=True)
    assert "upgrade tinyml" in caught.value.fix


def test_a_full_disk_loses_nothing_already_recorded(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with ResultsStore(path, lock=True) as store:
        run, _ = _start(store)
        store.record(run.id, _result("a"))
        # SQLite's own "disk full" (SQLITE_FULL): the file may not grow past its current pages.
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(InputError, match="the disk is full") as caught:
            store.record(run.id, _result("b", reason="x" * 200_000))
        assert "the rest resume" in caught.value.fix
    with ResultsStore(path, create=False) as store:
        assert set(store.results(run.id)) == {"a"}
        assert store.results(run.id)["a"].verdict == "pass"


# ---- reports -------------------------------------------------------------------------------------
def _store_with_history(tmp_path: Path) -> Path:
    path = tmp_path / "s.sqlite"
    with ResultsStore(path, lock=True) as store:
        for index, (verdict, exact, firmware) in enumerate([("pass", 1.0, "fw1"), ("fail", 0.95, "fw1"), ("pass", 1.0, "fw2"), ("pass", 0.5, "fw2")]):
            # The last run has other settings (another key): its other numbers are no surprise.
            run, _ = _start(store, key="other settings" if index == 3 else "same model, data, settings")
            store.record(run.id, _result("k1", verdict, exact=exact, firmware_hash=firmware, latency_p50_us=100 + index))
            store.record(run.id, _result("k2", "error" if index == 2 else "pass"))
            store.finish_run(run.id)
    return path


def test_history_flags_a_result_that_changed_while_the_firmware_did_not(tmp_path: Path) -> None:
    entries = board_history(_store_with_history(tmp_path), "k1")
    assert [e.changed for e in entries] == [None, "verdict pass -> fail; exact 100.00% -> 95.00%", None, None]
    assert [e.changed for e in board_history(tmp_path / "s.sqlite", "k2")] == [None, None, None, None]  # an error is not a changed result
    with pytest.raises(InputError, match="no results for board 'k3'"):
        board_history(tmp_path / "s.sqlite", "k3")


def test_junit_has_one_testcase_per_board_matching_the_store(tmp_path: Path) -> None:
    path = _store_with_history(tmp_path)
    out = write_junit(path, tmp_path / "junit.xml", run_id=3)
    suite = ET.parse(out).getroot()
    with ResultsStore(path, create=False) as store:
        run, results = latest_run(store, 3)
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == set(results) and suite.get("tests") == str(len(results))
    assert cases["k2"].find("error") is not None and cases["k1"].find("failure") is None
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    assert junit_xml(run, results) == out.read_text()


def test_the_dashboard_is_self_contained_and_matches_the_store(tmp_path: Path) -> None:
    path = _store_with_history(tmp_path)
    out = write_dashboard(path, tmp_path / "dash.html")
    text = out.read_text()
    assert text.count("<svg") == 5 and "<script" not in text
    import re

    for svg in re.findall(r"<svg.*?</svg>", text, re.S):
        ET.fromstring(svg)  # each plot is well-formed SVG a browser can draw
    assert text.count("<polyline") == 4  # each board's accuracy and latency across the runs
    assert "http" not in text.replace("http://www.w3.org/2000/svg", "")
    with ResultsStore(path, create=False) as store:
        run, results = latest_run(store)
        runs = store.runs()
        series = {b: store.board_results(b) for b in results}
    assert text == dashboard_html(run, results, runs, series)
    assert text.count("<tr>") == 1 + len(results)
    for label in ("run 1", "run 2", "run 3"):
        assert label in text


def test_the_cli_reads_the_store_and_says_what_is_missing_in_one_line(tmp_path: Path) -> None:
    rig = _rig(tmp_path, '[boards.k1]\nprofile = "nano33ble"\nvirtual = {}\n')
    missing = subprocess.run([*TINYML, "rig", "report", str(rig)], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "there is no results store" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    _store_with_history(tmp_path)
    (tmp_path / "s.sqlite").rename(tmp_path / "rig.results.sqlite")
    junit = subprocess.run([*TINYML, "rig", "report", str(rig), "--junit", str(tmp_path / "j.xml")], capture_output=True, text=True, timeout=120)
    assert junit.returncode == 0 and ET.parse(tmp_path / "j.xml").getroot().get("tests") == "2"
    assert ET.parse(tmp_path / "j.xml").getroot().find("properties/property[@name='run']").get("value") == "4"  # the latest
    html = subprocess.run([*TINYML, "rig", "report", str(rig)], capture_output=True, text=True, timeout=120)
    assert html.returncode == 0 and (tmp_path / "rig-dashboard.html").is_file()
    history = subprocess.run([*TINYML, "rig", "history", "k1", "--rig", str(rig)], capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert history.returncode == 0 and "verdict pass -> fail" in history.stdout and "1 result(s) changed" in history.stdout


def test_discover_with_nothing_plugged_in_is_one_line_and_exit_5(tmp_path: Path) -> None:
    result = subprocess.run([*TINYML, "rig", "discover", "--out", str(tmp_path / "rig.toml")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 5 and "no board found on USB" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "rig.toml").exists()


def test_rig_run_on_a_locked_or_newer_store_is_one_line_and_exit_2(tmp_path: Path, int8_models: dict[str, Path]) -> None:
    import numpy as np

    rig = _rig(tmp_path, '[boards.k1]\nprofile = "nano33ble"\nvirtual = {}\n')
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((2, 16), np.float32))
    command = [*TINYML, "rig", "run", str(rig), "--model", str(int8_models["dense"]), "--data", str(data)]
    store = tmp_path / "rig.results.sqlite"
    with ResultsStore(store, lock=True):
        locked = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert locked.returncode == 2 and "in use by another rig run" in locked.stderr and len(locked.stderr.strip().splitlines()) == 1
    with sqlite3.connect(store) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert newer.returncode == 2 and "written by a newer tinyml" in newer.stderr and len(newer.stderr.strip().splitlines()) == 1
