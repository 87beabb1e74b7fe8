"""Board profiles: the shipped boards, validation that names file and field, the user folder, the CLI."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tinyml.firmware.boards import get_board, list_boards, load_board_file
from tinyml.core.errors import InputError
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
        assert "#" in board.tflm_library or "@" in board.tflm_library
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
        (lambda t: t.replace('platform = "platformio/nordicnrf52@10.6.0"', 'platform = "nordicnrf52"'), "platformio.platform"),
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
    as_json = run([TINYML, "boards", "show", "nano_rp2040_connect", "--json"])
    assert json.loads(as_json.stdout)["platformio"]["board"] == "nanorp2040connect"
    unknown = run([TINYML, "boards", "show", "nano99"])
    assert unknown.returncode == 2 and len(unknown.stdout.strip().splitlines()) == 1


def test_boards_command_does_not_import_tensorflow() -> None:
    result = run([sys.executable, "-X", "importtime", "-c", "import tinyml.cli as c; c.main(['boards', 'show', 'nano33ble'])"])
    assert result.returncode == 0, result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stdout.splitlines() if line.startswith("import time:")}
    assert "tinyml" in imported
    assert not imported & {"tensorflow", "keras", "tf_keras", "numpy"}
