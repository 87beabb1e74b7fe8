"""tinyml render: PlatformIO projects for every board, checked by real pio and real compilers."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from ccompile import ARM_CORTEX_M0PLUS, ARM_CORTEX_M4, HOST_GXX, compile_and_run, compile_objects
from conftest import require_tool

from tinyml.firmware.boards import get_board, list_boards
from tinyml.core.errors import InputError, ModelError, ToolError
from tinyml.device.platformio import find_pio
from tinyml.firmware.manifest import MANIFEST_NAME
from tinyml.firmware.render import render_project
from tinyml.core.tools import run

TINYML = str(Path(sys.executable).parent / "tinyml")
LABELS = ["up", 'say "hi"', "??/ */", "ünï"]
BOARD_IDS = [board.id for board in list_boards()]
MODEL_KINDS = ["dense", "conv2d", "conv1d", "depthwise"]
# Files that need Arduino or TFLM, built only by PlatformIO; every other source is plain C++.
ARDUINO_OR_TFLM = {"main.cpp", "serial_transport.h", "tflm_model_runner.h"}

# The op sets of the test models (tests/modelzoo.py), as the TFLite converter emits them.
EXPECTED_RESOLVER = {
    "dense": ["AddFullyConnected", "AddSoftmax"],
    "conv2d": ["AddConv2D", "AddFullyConnected", "AddMaxPool2D", "AddPack", "AddReshape", "AddShape", "AddSoftmax", "AddStridedSlice"],
    "conv1d": ["AddConv2D", "AddExpandDims", "AddFullyConnected", "AddMean", "AddReshape", "AddSoftmax"],
    "depthwise": [
        "AddAveragePool2D", "AddConv2D", "AddDepthwiseConv2D", "AddFullyConnected", "AddPack", "AddReshape", "AddShape", "AddSoftmax",
        "AddStridedSlice",
    ],
}


@pytest.fixture(scope="module")
def projects(int8_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every board profile rendered with every test model."""
    root = tmp_path_factory.mktemp("projects")
    rendered = {}
    for board_id in BOARD_IDS:
        for kind in MODEL_KINDS:
            out = root / f"{board_id}-{kind}"
            render_project(board_id, int8_models[kind], out, labels=LABELS)
            rendered[(board_id, kind)] = out
    return rendered


def require_pio() -> str:
    """The pio tinyml itself would run; skips without it (fails in CI, like require_tool)."""
    try:
        return find_pio()
    except ToolError:
        return require_tool("pio")


def _plain_sources(src: Path) -> list[Path]:
    return sorted(p for p in src.iterdir() if p.suffix in (".cpp", ".cc") and p.name not in ARDUINO_OR_TFLM)


@pytest.mark.parametrize("board_id", BOARD_IDS)
def test_pio_accepts_every_rendered_platformio_ini(projects: dict[tuple[str, str], Path], board_id: str) -> None:
    pio = require_pio()
    board = get_board(board_id)
    # platformio.ini depends on the board and the app only: the same for every model.
    inis = {(projects[(board_id, kind)] / "platformio.ini").read_text() for kind in MODEL_KINDS}
    assert len(inis) == 1
    for kind in ("dense",):
        project = projects[(board_id, kind)]
        result = run([pio, "project", "config", "-d", str(project), "--json-output"])
        assert result.returncode == 0, result.stdout
        config = dict(json.loads(result.stdout[result.stdout.index("[") :]))
        env = dict(config[f"env:{board.env_name}"])
        assert env["platform"] == board.platformio.platform
        assert env["board"] == board.platformio.board
        assert env["framework"] == [board.platformio.framework]
        assert env["upload_protocol"] == board.platformio.upload_protocol
        assert env["lib_deps"] == [board.library.lib_deps]


@pytest.mark.parametrize("board_id", BOARD_IDS)
def test_plain_cpp_compiles_strictly_for_host_and_arm(projects: dict[tuple[str, str], Path], board_id: str, tmp_path: Path) -> None:
    board = get_board(board_id)
    src = projects[(board_id, "conv2d")] / "src"
    sources = _plain_sources(src)
    assert {p.name for p in sources} >= {"model_data.cc", "protocol_server.cpp", "app.cpp"}
    compile_objects(sources, [src], std=board.cpp_standard, compiler=HOST_GXX, flags=(), out_dir=tmp_path)
    arm_flags = ARM_CORTEX_M0PLUS if "M0" in board.core else ARM_CORTEX_M4
    compile_objects(sources, [src], std=board.cpp_standard, flags=arm_flags, out_dir=tmp_path)


def test_rendered_model_data_reads_back_identical(projects: dict[tuple[str, str], Path], int8_models: dict[str, Path], tmp_path: Path) -> None:
    src = projects[("nano33ble_sense", "depthwise")] / "src"
    reader = tmp_path / "reader.cc"
    reader.write_text(
        '#include <stdio.h>\n#include "model_data.h"\n'
        "int main(int, char** argv) {\n"
        '  FILE* f = fopen(argv[1], "wb");\n'
        "  fwrite(model::kData, 1, model::kDataLen, f);\n  fclose(f);\n"
        '  for (unsigned i = 0; i < model::kLabelCount; ++i) printf("%s\\n", model::kLabels[i]);\n'
        "  return 0;\n}\n"
    )
    out = compile_and_run([reader, src / "model_data.cc"], [src], args=[str(tmp_path / "model.bin")], out_dir=tmp_path)
    assert (tmp_path / "model.bin").read_bytes() == int8_models["depthwise"].read_bytes()
    assert out.splitlines() == LABELS


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_op_resolver_holds_exactly_the_models_ops(projects: dict[tuple[str, str], Path], kind: str) -> None:
    runner = (projects[("nano33ble_sense", kind)] / "src" / "tflm_model_runner.h").read_text()
    registered = re.findall(r"resolver_\.(Add\w+)\(\)", runner)
    assert registered == EXPECTED_RESOLVER[kind]
    assert f"constexpr unsigned int kOpCount = {len(EXPECTED_RESOLVER[kind])};" in runner
    assert "tflite::MicroMutableOpResolver<kOpCount> resolver_;" in runner
    assert "AllOpsResolver" not in runner and "ErrorReporter" not in runner


DEVICE_INFO_CC = r"""
#include <stdio.h>
#include "device_info.h"

static void print_tensor(const tinyml::TensorInfo& t) {
  printf("%u %u", static_cast<unsigned>(t.dtype), static_cast<unsigned>(t.dims));
  for (int i = 0; i < 6; ++i) printf(" %d", static_cast<int>(t.shape[i]));
  printf(" %.9g %d\n", static_cast<double>(t.scale), static_cast<int>(t.zero_point));
}

int main() {
  const tinyml::DeviceInfo& info = tinyml::device_info();
  printf("%s\n%s\n%s\n", info.firmware_version, info.board_id, info.model_hash);
  print_tensor(info.input);
  print_tensor(info.output);
  printf("%u %u\n", static_cast<unsigned>(info.label_count), static_cast<unsigned>(info.rx_buffer_bytes));
  for (unsigned i = 0; i < info.label_count; ++i) printf("%s\n", info.labels[i]);
  return 0;
}
"""


@pytest.mark.parametrize(("board_id", "kind"), [("nano_rp2040_connect", "conv1d"), ("nano33ble_sense", "depthwise")])
def test_device_info_reports_the_model_and_board(projects: dict[tuple[str, str], Path], int8_models: dict[str, Path], tmp_path: Path, board_id: str, kind: str) -> None:
    import numpy as np

    from tinyml import __version__
    from tinyml.firmware import protocol
    from tinyml.model.modelfile import read_model

    src = projects[(board_id, kind)] / "src"
    program = tmp_path / "info.cc"
    program.write_text(DEVICE_INFO_CC)
    lines = compile_and_run([program, src / "model_data.cc"], [src], std=get_board(board_id).cpp_standard, out_dir=tmp_path).splitlines()
    facts = read_model(int8_models[kind])
    # The version alone: the firmware's banner says "tinyml <version> on <board>" (it once said "tinyml tinyml 0.1.0").
    assert lines[:3] == [__version__, board_id, facts.short_hash]
    for line, tensor in zip(lines[3:5], (facts.inputs[0], facts.outputs[0])):
        fields = line.split()
        assert int(fields[0]) == protocol.DTYPE_CODES[tensor.dtype]
        assert int(fields[1]) == len(tensor.shape)
        assert [int(v) for v in fields[2:8]] == list(tensor.shape) + [0] * (6 - len(tensor.shape))
        assert np.float32(float(fields[8])) == np.float32(tensor.scale)
        assert int(fields[9]) == tensor.zero_point
    assert lines[5] == f"{len(LABELS)} {get_board(board_id).rx_buffer_bytes}"
    assert lines[6:] == LABELS


def test_main_serves_the_protocol_and_runs_the_app(projects: dict[tuple[str, str], Path]) -> None:
    main = (projects[("nano_rp2040_connect", "conv1d")] / "src" / "main.cpp").read_text()
    assert "tinyml::ProtocolServer server(transport, runner, tinyml::device_info());" in main
    assert "server.poll();" in main and "app_loop(server, runner);" in main and "runner.begin()" in main
    # Each board's library header, from its library facts, before any TFLM header.
    assert main.index("#include <Chirale_TensorFlowLite.h>") < main.index('#include "tflm_model_runner.h"')
    nano = (projects[("nano33ble_sense", "conv1d")] / "src" / "main.cpp").read_text()
    assert "#include <TensorFlowLite.h>" in nano and "Chirale" not in nano
    ini = (projects[("nano_rp2040_connect", "conv1d")] / "platformio.ini").read_text()
    assert "; TFLM library: Chirale_TensorFlowLite 2.0.0 at 46da2f9 (TFLM of 2023-01-14) (boards/libraries/chirale_tensorflowlite_2_0_0.toml)." in ini


def test_banner_of_the_protocol_server_names_tinyml_once(projects: dict[tuple[str, str], Path]) -> None:
    """The banner is "tinyml %s on %s" with the firmware version: the version must not say "tinyml" again."""
    from tinyml import __version__

    src = projects[("nano33ble_sense", "dense")] / "src"
    assert '"tinyml %s on %s, model %s: type help", info_.firmware_version' in (src / "protocol_server.cpp").read_text()
    assert f'constexpr char kFirmwareVersion[] = "{__version__}";' in (src / "device_info.h").read_text()


def test_rerender_regenerates_only_what_the_tool_owns(int8_models: dict[str, Path], tmp_path: Path) -> None:
    project = tmp_path / "p"
    first = render_project("nano33ble", int8_models["dense"], project)
    assert "src/main.cpp" in first.written and (project / MANIFEST_NAME).is_file()
    assert render_project("nano33ble", int8_models["dense"], project).written == ()

    (project / "src" / "my_sensor.cpp").write_text("// mine\n")
    (project / "user_flags.ini").write_text("[env:nano33ble]\n")
    second = render_project("nano33ble", int8_models["conv2d"], project)
    assert set(second.written) == {"src/model_data.cc", "src/model_data.h", "src/tflm_model_runner.h", "src/main.cpp", "src/device_info.h"}
    assert (project / "src" / "my_sensor.cpp").read_text() == "// mine\n"
    assert (project / "user_flags.ini").is_file()

    main = project / "src" / "main.cpp"
    main.write_text(main.read_text() + "// my change\n")
    model_data = (project / "src" / "model_data.cc").read_bytes()
    with pytest.raises(InputError, match="src/main.cpp"):
        render_project("nano33ble", int8_models["dense"], project)
    assert main.read_text().endswith("// my change\n")
    assert (project / "src" / "model_data.cc").read_bytes() == model_data  # nothing half-done

    forced = render_project("nano33ble", int8_models["dense"], project, force=True)
    assert "src/main.cpp" in forced.written and not main.read_text().endswith("// my change\n")
    assert (project / "src" / "my_sensor.cpp").is_file()


def test_existing_user_file_is_not_overwritten(int8_models: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "platformio.ini").write_text("[env:mine]\n")
    with pytest.raises(InputError, match="platformio.ini"):
        render_project("nano33ble", int8_models["dense"], tmp_path)
    assert (tmp_path / "platformio.ini").read_text() == "[env:mine]\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["platformio.ini"]


def test_model_too_big_for_board_is_refused_before_writing(int8_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    boards = tmp_path / "boards"
    boards.mkdir()
    profile = (get_board("nano33ble").source or Path()).read_text()
    # A board with 1 KB of RAM left beside the core: no arena fits.
    profile = re.sub(r"(?m)^ram_bytes = .*$", "ram_bytes = 65_000", profile)
    (boards / "tiny_board.toml").write_text(profile)
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(boards))
    with pytest.raises(ModelError, match="RAM"):
        render_project("tiny_board", int8_models["conv2d"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_per_channel_dense_model_is_refused_before_writing(per_channel_dense_model: Path, tmp_path: Path) -> None:
    """The boards' TFLM libraries apply channel 0's scale to every channel of such a layer, silently."""
    with pytest.raises(ModelError, match="per-channel weights, which board nano33ble's TFLM library Arduino_TensorFlowLite") as info:
        render_project("nano33ble", per_channel_dense_model, tmp_path / "out")
    assert "tinyml quantize MODEL --calibration DATA --board nano33ble" in info.value.fix
    assert not (tmp_path / "out").exists()
    result = run([TINYML, "render", "--board", "nano_rp2040_connect", "--model", str(per_channel_dense_model), "--out", str(tmp_path / "cli")])
    assert result.returncode == 3 and result.stdout.count("error:") == 1 and result.stdout.strip().splitlines()[-1].startswith("error:")
    assert "re-quantize with `tinyml quantize MODEL --calibration DATA --board nano_rp2040_connect`" in result.stdout
    assert not (tmp_path / "cli").exists()


def test_board_whose_library_cannot_build_is_refused_before_writing(int8_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    boards = tmp_path / "boards"
    boards.mkdir()
    profile = (get_board("nano_rp2040_connect").source or Path()).read_text()
    # The pinned Arduino_TensorFlowLite on the RP2040: `#error "unsupported board"`.
    (boards / "rp2040_pinned.toml").write_text(profile.replace('"chirale_tensorflowlite_2_0_0"', '"arduino_tensorflowlite_06841a8"'))
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(boards))
    with pytest.raises(ModelError, match="board rp2040_pinned cannot run tinyml firmware: its TFLM library Arduino_TensorFlowLite"):
        render_project("rp2040_pinned", int8_models["dense"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = run([TINYML, "render", "--board", "rp2040_pinned", "--model", str(int8_models["dense"]), "--out", str(tmp_path / "cli")])
    assert result.returncode == 3 and result.stdout.count("error:") == 1 and "tflm_library" in result.stdout
    assert not (tmp_path / "cli").exists()


def test_float_model_is_refused_before_writing(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    with pytest.raises(ModelError, match="int8"):
        render_project("nano33ble", tflite, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_app_needing_a_sensor_the_board_lacks_is_refused(int8_models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs the sensor.*imu.*nano33ble does not have.*nano33ble_sense"):
        render_project("nano33ble", int8_models["dense"], tmp_path / "out", app="gesture")
    with pytest.raises(InputError, match="unknown firmware app 'nope'.*validation"):
        render_project("nano33ble", int8_models["dense"], tmp_path / "out", app="nope")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("app", "feature"), [("gesture", "IMU values"), ("kws", "log-mel values")])
def test_lab_app_refuses_a_model_whose_input_its_features_do_not_fill(int8_models: dict[str, Path], tmp_path: Path, app: str, feature: str) -> None:
    # The app writes its feature window into the input tensor: a size mismatch would overflow it on the board.
    from tinyml.firmware.apps import default_app_context

    with pytest.raises(InputError, match=f"the {app} app fills the model input with \\d+ {feature}.*takes 16 \\[1, 16\\]"):
        render_project("nano33ble_sense", int8_models["dense"], tmp_path / "out", labels=list("abcd"), app=app, app_context=default_app_context(app))
    assert not (tmp_path / "out").exists()


def test_cli_renders_a_lab_app_with_its_feature_settings(tmp_path: Path) -> None:
    from tinyml.features.imu import ImuWindowSpec
    from modelzoo import convert_int8

    import keras
    import numpy as np

    spec = ImuWindowSpec()
    model = keras.Sequential([keras.Input((spec.window_samples, 1, spec.channels)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    calibration = np.random.default_rng(0).uniform(-1, 1, (16, spec.window_samples, 1, spec.channels)).astype(np.float32)
    model_path = tmp_path / "gesture.tflite"
    model_path.write_bytes(convert_int8(model, calibration))
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    out = tmp_path / "project"
    ok = run([TINYML, "render", "--board", "nano33ble_sense_rev2", "--model", str(model_path), "--labels", str(labels), "--app", "gesture", "--out", str(out)])
    assert ok.returncode == 0, ok.stdout
    assert f"constexpr size_t kWindowSamples = {spec.window_samples};" in (out / "src" / "imu_features.h").read_text()


def test_cli_render(int8_models: dict[str, Path], tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\n")
    out = tmp_path / "project"
    ok = run([TINYML, "render", "--board", "nano33ble_sense_rev2", "--model", str(int8_models["dense"]), "--labels", str(labels), "--out", str(out)])
    assert ok.returncode == 0, ok.stdout
    assert "tinyml flash" in ok.stdout and (out / "src" / "main.cpp").is_file()
    bad = run([TINYML, "render", "--board", "nano99", "--model", str(int8_models["dense"]), "--out", str(tmp_path / "x")])
    assert bad.returncode == 2 and "unknown board 'nano99'" in bad.stdout
    assert len(bad.stdout.strip().splitlines()) == 1
    shutil.rmtree(out)


def test_files_no_longer_generated_are_removed_unless_edited(int8_models: dict[str, Path], tmp_path: Path) -> None:
    import hashlib

    project = tmp_path / "p"
    render_project("nano33ble", int8_models["dense"], project)
    # As if an earlier render (another app) had generated two more files; the user edited one of them since.
    manifest_path = project / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    for name, text in (("src/old_app.cpp", "// old\n"), ("src/old_edited.cpp", "// old\n")):
        (project / name).write_text(text)
        manifest["files"][name] = hashlib.sha256(text.encode()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    (project / "src" / "old_edited.cpp").write_text("// old, with my fix\n")

    with pytest.raises(InputError, match="src/old_edited.cpp"):
        render_project("nano33ble", int8_models["dense"], project)
    assert (project / "src" / "old_app.cpp").exists()
    result = render_project("nano33ble", int8_models["dense"], project, force=True)
    assert result.removed == ("src/old_app.cpp",)
    assert not (project / "src" / "old_app.cpp").exists()
    assert (project / "src" / "old_edited.cpp").read_text() == "// old, with my fix\n"
    assert "src/old_edited.cpp" not in json.loads(manifest_path.read_text())["files"]


def test_app_that_cannot_read_the_boards_sensor_part_is_refused() -> None:
    from tinyml.firmware.apps import AppSpec, app_sensors

    app = AppSpec(name="tilt", directory=Path("."), requires_sensors=("imu",), supported_parts={"imu": ("LSM9DS1", "BMI270_BMM150")})
    assert app_sensors(get_board("nano33ble_sense_rev2"), app)["imu"].part == "BMI270_BMM150"
    with pytest.raises(InputError, match="reads the imu parts LSM9DS1, BMI270_BMM150, but board nano_rp2040_connect has a LSM6DSOX"):
        app_sensors(get_board("nano_rp2040_connect"), app)


def test_interrupted_render_can_be_rendered_again(int8_models: dict[str, Path], tmp_path: Path) -> None:
    project = tmp_path / "p"
    render_project("nano33ble", int8_models["dense"], project)

    def interrupt(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_project("nano33ble", int8_models["conv2d"], project, progress=interrupt)
    # Half the files are new, half old: still all the tool's own, so no --force is needed.
    result = render_project("nano33ble", int8_models["conv2d"], project)
    assert result.written and "src/model_data.cc" in result.written + result.unchanged
    assert render_project("nano33ble", int8_models["conv2d"], project).written == ()
