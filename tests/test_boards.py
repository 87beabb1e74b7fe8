"""Board profiles: the shipped boards, validation that names file and field, the user folder, the CLI."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tinyml.firmware.boards import get_board, list_boards, load_board_file, quantize_options
from tinyml.firmware.libraries import get_library, list_libraries, load_library_file
from tinyml.core.errors import InputError, ModelError
from tinyml.core.tools import run

TINYML = str(Path(sys.executable).parent / "tinyml")
REQUIRED = {"nano33ble_sense", "nano33ble_sense_rev2", "nano_rp2040_connect"}


def test_shipped_boards_load_and_hold_the_facts_others_use() -> None:
    boards = {board.id: board for board in list_boards()}
    assert REQUIRED <= set(boards)
    for board in boards.values():
        assert board.source is not None and board.source.stem == board.id
        assert board.runtime_flash_bytes < board.flash_bytes and board.runtime_ram_bytes < board.ram_bytes
        assert board.cpp_standard == "gnu++14"
        assert board.rx_buffer_bytes >= 64 and board.serial_baud > 0
        assert board.usb_ids.sketch and all(re.fullmatch(r"[0-9A-F]{4}:[0-9A-F]{4}", i) for i in board.usb_ids.sketch)
        assert "@" in board.platformio.platform and board.platformio.platform_version
        assert board.library.lib_deps.endswith("#" + board.library.commit)
        assert board.firmware_problem is None  # every listed board can get firmware
        assert board.firmware_link is not None and board.firmware_link.links and board.firmware_link.text_bytes < board.flash_bytes
        assert board.verified_on_hardware is False  # nothing has run on real hardware yet: the profiles must say so
        assert board.quirks
        for sensor in board.sensors.values():
            assert sensor.library is None or re.search(r"@\d+\.\d+\.\d+$", sensor.library)
    assert boards["nano33ble_sense"].sensors["imu"].part == "LSM9DS1"
    assert boards["nano33ble_sense_rev2"].sensors["imu"].part == "BMI270_BMM150"
    assert boards["nano_rp2040_connect"].sensors["imu"].part == "LSM6DSOX"
    assert boards["nano33ble_sense"].sensors["imu"].define == "-DTINYML_IMU_LSM9DS1"
    assert boards["nano33ble_sense"].usb_ids.bootloader == ("2341:005A",)
    assert boards["nano_rp2040_connect"].platformio.upload_protocol == "picotool"


def test_nano33ble_profiles_pin_the_platform_that_boots_and_cite_why() -> None:
    for board in list_boards():
        if board.platformio.platform_name != "nordicnrf52":
            continue
        # 9.6.0 and later build firmware that crashes the Nano 33 BLE at boot (platform-nordicnrf52 issue 175).
        assert board.platformio.platform == "platformio/nordicnrf52@9.5.0", board.id
        assert "platform-nordicnrf52/issues/175" in board.source.read_text()
        assert "9.5.0" in (board.port_missing_after_upload or "") and "175" in board.port_missing_after_upload


def test_each_board_names_its_library_and_the_rp2040_one_builds_there() -> None:
    pinned = get_library("arduino_tensorflowlite_06841a8")
    boards = {board.id: board for board in list_boards()}
    for board_id in ("nano33ble", "nano33ble_sense", "nano33ble_sense_rev2"):
        assert boards[board_id].library == pinned
        assert boards[board_id].arduino_board_define == "ARDUINO_ARDUINO_NANO33BLE"
    rp2040 = boards["nano_rp2040_connect"]
    # The pinned library stops with #error "unsupported board" on anything but the Nano 33 BLE.
    assert not pinned.builds_for(rp2040.arduino_board_define)
    assert rp2040.library.id == "chirale_tensorflowlite_2_0_0" and rp2040.library.builds_for(rp2040.arduino_board_define)
    assert rp2040.firmware_link is not None and rp2040.firmware_link.links


def test_library_facts_hold_what_the_checks_need() -> None:
    libraries = {library.id: library for library in list_libraries()}
    assert set(libraries) >= {"arduino_tensorflowlite_06841a8", "chirale_tensorflowlite_2_0_0"}
    for library in libraries.values():
        # Both TFLM snapshots predate per-channel FULLY_CONNECTED (tflite-micro PR 2673, 2024-09-27).
        assert library.per_channel_fully_connected is False
        assert {"CONV_2D", "FULLY_CONNECTED", "MEAN", "SOFTMAX"} <= library.ops
        assert not {"BATCH_MATMUL", "REDUCE_MIN", "REVERSE_V2", "EMBEDDING_LOOKUP"} & library.ops
        assert [d.op for d in library.differences] == ["MEAN"]
        assert library.header.endswith(".h") and library.label.startswith(library.name)
    assert libraries["arduino_tensorflowlite_06841a8"].board_defines == ("ARDUINO_ARDUINO_NANO33BLE",)
    assert libraries["chirale_tensorflowlite_2_0_0"].header == "Chirale_TensorFlowLite.h"
    assert quantize_options("nano33ble_sense") == {"per_channel_dense": False}
    assert quantize_options(None) == {}


THIRD_PARTY = Path("/work/shared/third_party")
RESOLVER_HEADER = "src/tensorflow/lite/micro/micro_mutable_op_resolver.h"


@pytest.mark.parametrize(("library_id", "folder"), [("arduino_tensorflowlite_06841a8", "Arduino_TensorFlowLite"), ("chirale_tensorflowlite_2_0_0", "Chirale_TensorFlowLite")])
def test_library_ops_are_those_its_resolver_registers(library_id: str, folder: str) -> None:
    """The ops list against the library's own resolver header, where a copy of the library is at hand."""
    header = THIRD_PARTY / folder / RESOLVER_HEADER
    if not header.is_file():
        pytest.skip(f"no copy of {folder} at {THIRD_PARTY}")
    registered = set(re.findall(r"AddBuiltin\(\s*BuiltinOperator_(\w+)", header.read_text()))
    assert get_library(library_id).ops == registered


LIBRARY = (Path(__file__).resolve().parent.parent / "boards" / "libraries" / "arduino_tensorflowlite_06841a8.toml").read_text()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: re.sub(r"(?m)^per_channel_fully_connected = .*$", 'per_channel_fully_connected = "no"', t), "per_channel_fully_connected"),
        (lambda t: re.sub(r"(?m)^commit = .*$", 'commit = "06841a8"', t), "commit"),
        (lambda t: t.replace('#06841a81967315d941e7b94bf3876f004861f819"\nheader', '#main"\nheader'), "lib_deps"),
        (lambda t: t.replace('"ABS", ', '"abs", '), "ops"),
        (lambda t: t.replace('op = "MEAN"\n', ""), "differences[0]"),
        (lambda t: "per_channel_conv = true\n" + t, "per_channel_conv"),
    ],
)
def test_malformed_library_names_file_and_field(tmp_path: Path, edit, field: str) -> None:
    path = tmp_path / "my_tflm.toml"
    edited = edit(LIBRARY)
    assert edited != LIBRARY
    path.write_text(edited)
    with pytest.raises(InputError) as info:
        load_library_file(path)
    assert str(path) in info.value.problem and f"field '{field}'" in info.value.problem


def test_a_board_its_library_does_not_build_for_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = (Path(__file__).resolve().parent.parent / "boards" / "nano_rp2040_connect.toml").read_text()
    (tmp_path / "rp2040_pinned.toml").write_text(
        profile.replace('tflm_library = "chirale_tensorflowlite_2_0_0"', 'tflm_library = "arduino_tensorflowlite_06841a8"')
    )
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(tmp_path))
    board = get_board("rp2040_pinned")
    assert "builds only for ARDUINO_ARDUINO_NANO33BLE, not for this board (ARDUINO_NANO_RP2040_CONNECT)" in board.firmware_problem
    with pytest.raises(ModelError, match="board rp2040_pinned cannot run tinyml firmware") as info:
        board.check_firmware()
    assert "tflm_library" in info.value.fix
    listed = run([TINYML, "boards"])  # the child inherits TINYML_BOARDS_DIR
    assert "cannot build" in listed.stdout


VALID = (Path(__file__).resolve().parent.parent / "boards" / "nano33ble_sense.toml").read_text()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: re.sub(r'(?m)^name = .*\n', "", t), "name"),
        (lambda t: re.sub(r"(?m)^flash_bytes = .*$", 'flash_bytes = "lots"', t), "flash_bytes"),
        (lambda t: re.sub(r"(?m)^verified_on_hardware = .*$", 'verified_on_hardware = "no"', t), "verified_on_hardware"),
        (lambda t: re.sub(r"(?m)^runtime_ram_bytes = .*$", "runtime_ram_bytes = 999_999", t), "runtime_ram_bytes"),
        (lambda t: re.sub(r"(?m)^cpp_standard = .*$", 'cpp_standard = "c++98"', t), "cpp_standard"),
        (lambda t: re.sub(r"(?m)^tflm_library = .*$", 'tflm_library = "Arduino_TensorFlowLite"', t), "tflm_library"),
        (lambda t: re.sub(r"(?m)^arduino_board_define = .*$", 'arduino_board_define = "NANO 33"', t), "arduino_board_define"),
        (lambda t: t.replace("links = true\n", "links = false\n"), "firmware_link.why_not"),
        (lambda t: t.replace('platform = "platformio/nordicnrf52@9.5.0"', 'platform = "nordicnrf52"'), "platformio.platform"),
        (lambda t: t.replace('sketch = ["2341:805A"]', 'sketch = ["2341-805A"]'), "usb_ids.sketch"),
        (lambda t: t.replace('part = "LSM9DS1"\n', ""), "sensors.imu.part"),
        (lambda t: t.replace("Arduino_LSM9DS1@1.1.1", "Arduino_LSM9DS1"), "sensors.imu.library"),
        (lambda t: "flsh_bytes = 3\n" + t, "flsh_bytes"),
        (lambda t: t + "\nsample_rate = 3\n", "sensors.pressure.sample_rate"),
    ],
)
def test_malformed_profile_names_file_and_field(tmp_path: Path, edit, field: str) -> None:
    path = tmp_path / "my_board.toml"
    path.write_text(edit(VALID))
    with pytest.raises(InputError) as info:
        load_board_file(path)
    assert str(path) in info.value.problem
    assert f"field '{field}'" in info.value.problem


def test_bad_toml_and_bad_file_name(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(InputError, match=r"broken\.toml is not valid TOML"):
        load_board_file(broken)
    odd = tmp_path / "My-Board.toml"
    odd.write_text(VALID)
    with pytest.raises(InputError, match="not a valid board id"):
        load_board_file(odd)


def test_user_folder_takes_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nano33ble_sense.toml").write_text(VALID.replace('name = "Arduino Nano 33 BLE Sense"', 'name = "Our lab kit"'))
    (tmp_path / "lab_board.toml").write_text(VALID)
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(tmp_path))
    assert get_board("nano33ble_sense").name == "Our lab kit"
    ids = [b.id for b in list_boards()]
    assert "lab_board" in ids and ids.count("nano33ble_sense") == 1
    with pytest.raises(InputError, match="unknown board 'nano99'.*lab_board"):
        get_board("nano99")


def test_cli_lists_and_shows_boards() -> None:
    listed = run([TINYML, "boards"])
    assert listed.returncode == 0
    for board_id in REQUIRED:
        assert board_id[:12] in listed.stdout
    shown = run([TINYML, "boards", "show", "nano33ble_sense_rev2"])
    assert shown.returncode == 0
    assert "BMI270_BMM150" in shown.stdout and "not verified on real hardware" in shown.stdout and "gnu++14" in shown.stdout
    text = " ".join(shown.stdout.split())
    assert "TFLM library: Arduino_TensorFlowLite 2.4.0-ALPHA at 06841a8 (TFLM of 2022-12-14)" in text
    assert "no per-channel FULLY_CONNECTED (quantize with --board nano33ble_sense_rev2" in text and "MEAN:" in text
    as_json = run([TINYML, "boards", "show", "nano_rp2040_connect", "--json"])
    shown_json = json.loads(as_json.stdout)
    assert shown_json["platformio"]["board"] == "nanorp2040connect"
    assert shown_json["library"]["header"] == "Chirale_TensorFlowLite.h" and shown_json["library"]["per_channel_fully_connected"] is False
    unknown = run([TINYML, "boards", "show", "nano99"])
    assert unknown.returncode == 2 and len(unknown.stdout.strip().splitlines()) == 1


def test_boards_command_does_not_import_tensorflow() -> None:
    result = run([sys.executable, "-X", "importtime", "-c", "import tinyml.cli as c; c.main(['boards', 'show', 'nano33ble'])"])
    assert result.returncode == 0, result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stdout.splitlines() if line.startswith("import time:")}
    assert "tinyml" in imported
    assert not imported & {"tensorflow", "keras", "tf_keras", "numpy"}


def test_a_board_whose_firmware_does_not_link_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = VALID.replace("links = true\n", 'links = false\nwhy_not = "undefined reference to DebugLog"\n')
    profile = re.sub(r"(?m)^(text|data|bss)_bytes = .*\n", "", profile)
    (tmp_path / "unlinked.toml").write_text(profile)
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(tmp_path))
    board = get_board("unlinked")
    assert board.firmware_problem == "its firmware does not link (undefined reference to DebugLog)"
    with pytest.raises(ModelError, match="board unlinked cannot run tinyml firmware: its firmware does not link"):
        board.check_firmware()
    shown = run([TINYML, "boards", "show", "unlinked"])
    assert "firmware: cannot be built: its firmware does not link" in " ".join(shown.stdout.split())
