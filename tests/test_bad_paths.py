"""Files and paths a user gets wrong, generated: every writing command against every kind of
output that cannot be written, every spelling of "the output is the input", hostile render
manifests, half-written output and overwrites.

Each case runs the real CLI in-process (`tinyml.cli.main`): a traceback would escape as an
exception and fail the test, so passing means one line on stderr and the exit code.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyml.cli import main
from tinyml.core import files
from tinyml.core.errors import DeviceError, InputError, ModelError, ToolError
from tinyml.firmware.manifest import MANIFEST_NAME, ProjectRecord, write_project_files

BOARD = "nano33ble_sense"
# A folder even root cannot create files in (sysfs refuses them): the read-only location.
UNWRITABLE_ROOT = Path("/sys/tinyml-cannot-write-here")


@pytest.fixture(scope="module")
def dense(int8_models: dict[str, Path]) -> Path:
    return int8_models["dense"]


@pytest.fixture
def inputs(dense: Path, tmp_path: Path) -> dict[str, Path]:
    """Everything a command reads, in a folder of their own: a model, data, labels, a stand-in Keras file."""
    folder = tmp_path / "in"
    folder.mkdir()
    model = folder / "model.tflite"
    model.write_bytes(dense.read_bytes())
    data = folder / "data.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.uniform(-1, 1, (8, 16)).astype(np.float32), y=np.arange(8) % 4)
    labels = folder / "labels.txt"
    labels.write_text("a\nb\nc\nd\n", encoding="utf-8")
    keras = folder / "model.keras"
    keras.write_bytes(b"not loaded: every check below comes before the model is read")
    return {"model": model, "data": data, "labels": labels, "keras": keras}


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    return code, err[err.find("error: ") :] if "error: " in err else err  # after the INFO log lines


def assert_one_line(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("error: ") == 1 and "Fix: " in err, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err


# ---- every writing command, every kind of output that cannot be written -----------------------

# command -> argv for an output at OUT (a folder for all but quantize, whose --out is a file)
WRITERS: dict[str, Callable[[dict[str, Path], Path], list[object]]] = {
    "convert": lambda i, out: ["convert", i["model"], "--out", out],
    "render": lambda i, out: ["render", "--board", BOARD, "--model", i["model"], "--out", out],
    "quantize": lambda i, out: ["quantize", i["keras"], "--calibration", i["data"], "--out", out],
    "validate": lambda i, out: ["validate", "--port", "loop://", "--model", i["model"], "--data", i["data"], "--report", out],
    "deploy": lambda i, out: ["deploy", i["model"], "--board", BOARD, "--eval", i["data"], "--out", out],
    "virtual_board": lambda i, out: ["virtual-board", "--model", i["model"], "--link", out],
    "optimize": lambda i, out: ["optimize", i["keras"], "--train", i["data"], "--prune", "0.5", "--out", out],
    "compare": lambda i, out: ["compare", i["keras"], "--train", i["data"], "--eval", i["data"], "--out", out],
}

UNWRITABLE = {
    # kind -> (make the bad output path in tmp_path, what the message says)
    "under a regular file": (lambda tmp: _file(tmp / "f") / "sub", "is a file, not a folder"),
    "deeper under a regular file": (lambda tmp: _file(tmp / "f") / "a" / "b", "is a file, not a folder"),
    "read-only location": (lambda tmp: UNWRITABLE_ROOT / "out", "no permission to write"),
}


def _file(path: Path) -> Path:
    path.write_text("a user's file\n")
    return path


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The heavy steps must not start before the output is checked: make them fail loudly if they do."""
    import tinyml.model.quantize as quantize
    import tinyml.optimize.tfmot as tfmot

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(quantize, "load_float_model", started)
    monkeypatch.setattr(tfmot, "load_keras_model", started)


@pytest.mark.parametrize("kind", sorted(UNWRITABLE))
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(
    command: str, kind: str, inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if command in ("optimize", "compare"):
        pytest.importorskip("tf_keras")
    make, message = UNWRITABLE[kind]
    out = make(tmp_path)
    if command == "quantize":
        out = out / "m.tflite"
    _no_work(monkeypatch)
    code, err = run(capsys, *WRITERS[command](inputs, out))
    assert_one_line(code, err, message)
    assert (tmp_path / "f").read_text() == "a user's file\n" if (tmp_path / "f").exists() else True


def test_quantize_out_pointing_at_a_folder_says_to_name_a_file(inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _no_work(monkeypatch)
    for force in ([], ["--force"]):  # --force cannot help, so it is not what the message suggests
        code, err = run(capsys, "quantize", inputs["keras"], "--calibration", inputs["data"], "--out", tmp_path, *force)
        assert_one_line(code, err, "is a folder", "give a file name")
        assert "--force" not in err


@pytest.mark.parametrize("target", ["platformio.ini", ".gitignore", "src/main.cpp", MANIFEST_NAME])
def test_render_refuses_a_folder_where_a_file_goes_before_writing(target: str, inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "fw"
    (project / target).mkdir(parents=True)
    before = sorted(project.rglob("*"))
    code, err = run(capsys, "render", "--board", BOARD, "--model", inputs["model"], "--out", project, "--force")
    assert_one_line(code, err, "folder")
    assert sorted(project.rglob("*")) == before  # nothing written


@pytest.mark.parametrize("target", ["report.json", "report.html", "samples.jsonl"])
def test_validate_refuses_a_folder_where_its_report_goes(target: str, inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "report" / target).mkdir(parents=True)
    code, err = run(capsys, "validate", "--port", "loop://", "--model", inputs["model"], "--data", inputs["data"], "--report", tmp_path / "report", "--force")
    assert_one_line(code, err, "is a folder")


# ---- a full disk ------------------------------------------------------------------------------


def _disk_fills_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> None:
    """The disk is full after `writes` successful file writes."""
    real = files._write_data
    left = [writes]

    def write(fd: int, data: bytes) -> None:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        left[0] -= 1
        real(fd, data)

    monkeypatch.setattr(files, "_write_data", write)


@pytest.mark.parametrize("writes", [0, 1])
def test_convert_on_a_full_disk_writes_neither_file_and_the_rerun_works(writes: int, inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _disk_fills_after(patch, writes)
        code, err = run(capsys, "convert", inputs["model"], "--out", out)
    assert_one_line(code, err, "the disk is full")
    assert sorted(p.name for p in out.iterdir()) == []  # no half pair, no temporary file
    code, _ = run(capsys, "convert", inputs["model"], "--out", out)
    assert code == 0 and sorted(p.name for p in out.iterdir()) == ["model_data.cc", "model_data.h"]


@pytest.mark.parametrize("writes", [0, 3])
def test_render_and_deploy_on_a_full_disk_are_one_line(writes: int, inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _disk_fills_after(monkeypatch, writes)
    code, err = run(capsys, "render", "--board", BOARD, "--model", inputs["model"], "--out", tmp_path / "fw")
    assert_one_line(code, err, "the disk is full")
    code, err = run(capsys, "deploy", inputs["model"], "--board", BOARD, "--out", tmp_path / "deploy", "--skip", "flash", "--skip", "validate")
    assert_one_line(code, err, "the disk is full")


@given(
    old=st.dictionaries(st.sampled_from(["a.h", "a.cc", "sub/b.txt"]), st.binary(max_size=64)),
    new=st.dictionaries(st.sampled_from(["a.h", "a.cc", "sub/b.txt", "c"]), st.binary(max_size=64), min_size=1),
    fail_after=st.integers(min_value=0, max_value=4),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_atomic_write_files_writes_all_or_nothing(old: dict[str, bytes], new: dict[str, bytes], fail_after: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("atomic")
    for name, data in old.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    with pytest.MonkeyPatch.context() as patch:
        _disk_fills_after(patch, fail_after)
        try:
            files.atomic_write_files({folder / name: data for name, data in new.items()})
            expected = {**old, **new}
        except InputError as exc:
            assert "the disk is full" in exc.problem
            expected = old
    found = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert found == expected


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EDQUOT, "the disk is full"),
        (errno.EROFS, "read-only filesystem"),
        (errno.EACCES, "no permission"),
        (errno.EPERM, "no permission"),
        (errno.EISDIR, "is a folder"),
        (errno.ENAMETOOLONG, "too long"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_every_write_failure_becomes_one_line_naming_the_path(code: int, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The errors the test machine cannot produce for real (root ignores permissions, no mounts) go the same way."""

    def fail(fd: int, data: bytes) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files, "_write_data", fail)
    with pytest.raises(InputError) as info:
        files.atomic_write_text(tmp_path / "out.txt", "x")
    assert says in info.value.problem and str(tmp_path / "out.txt") in info.value.problem and info.value.fix
    assert list(tmp_path.iterdir()) == []  # no temporary file left


# ---- the output is the input, however it is spelled -----------------------------------------

SPELLINGS: dict[str, Callable[[Path, Path], None]] = {
    # how `alias` comes to name the same file as `original`
    "the same path": lambda original, alias: None,
    "a symlink": lambda original, alias: alias.symlink_to(original),
    "a hard link": lambda original, alias: os.link(original, alias),
}


def _spell(how: str, original: Path, alias: Path) -> Path:
    if how == "the same path":
        return original
    alias.parent.mkdir(parents=True, exist_ok=True)
    SPELLINGS[how](original, alias)
    return alias


# command -> (input key, output file name inside OUT, argv with the input at IN and the output folder/file at OUT)
SAME_FILE_CASES: dict[str, tuple[str, str, Callable[[dict[str, Path], Path], list[object]]]] = {
    "quantize": ("keras", "", lambda i, out: ["quantize", i["keras"], "--calibration", i["data"], "--out", out, "--force"]),
    "convert": ("model", "model_data.h", lambda i, out: ["convert", i["model"], "--out", out, "--force"]),
    "render": ("model", "src/model_data.cc", lambda i, out: ["render", "--board", BOARD, "--model", i["model"], "--out", out, "--force"]),
    "validate": ("model", "report.json", lambda i, out: ["validate", "--port", "loop://", "--model", i["model"], "--data", i["data"], "--report", out, "--force"]),
    "deploy": ("labels", "deploy_state.json", lambda i, out: ["deploy", i["model"], "--board", BOARD, "--labels", i["labels"], "--out", out, "--force", "--skip", "flash", "--skip", "validate"]),
    "optimize": ("keras", "model_prune50_int8.tflite", lambda i, out: ["optimize", i["keras"], "--train", i["data"], "--prune", "0.5", "--out", out, "--force"]),
    "compare": ("keras", "compare.json", lambda i, out: ["compare", i["keras"], "--train", i["data"], "--eval", i["data"], "--out", out, "--force"]),
}


# optimize names its outputs after the model, so no input can lie at an output's path: the
# links and other spellings cover it.
SAME_FILE_PAIRS = [(command, how) for command in sorted(SAME_FILE_CASES) for how in sorted(SPELLINGS) if (command, how) != ("optimize", "the same path")]


@pytest.mark.parametrize(("command", "how"), SAME_FILE_PAIRS)
def test_no_command_replaces_its_input_not_even_with_force(
    command: str, how: str, inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if command in ("optimize", "compare"):
        pytest.importorskip("tf_keras")
    key, output_name, argv = SAME_FILE_CASES[command]
    original = inputs[key]
    before = original.read_bytes()
    out = tmp_path / "out"
    if command == "quantize":
        target = _spell(how, original, out / "m.tflite")
        out = target
    elif how == "the same path":
        # The input itself lies where the command writes its output.
        target = out / output_name
        target.parent.mkdir(parents=True, exist_ok=True)
        original.rename(target)
        inputs[key] = original = target
    else:
        _spell(how, original, out / output_name)
    _no_work(monkeypatch)
    code, err = run(capsys, *argv(inputs, out))
    assert_one_line(code, err, "is the input", "never replaces its input")
    assert original.read_bytes() == before


# ---- hostile render manifests -----------------------------------------------------------------

HOSTILE_NAME = st.one_of(
    st.builds(lambda depth, name: "../" * depth + name, st.integers(1, 4), st.sampled_from(["victim.txt", "x/victim.txt"])),
    st.builds(lambda inner: f"src/{inner}/../../../victim.txt", st.sampled_from(["a", "a/b"])),
    st.sampled_from(["/etc/passwd", "/tmp/victim.txt", "//server/share/victim.txt", "C:\\victim.txt", "C:victim.txt", "..\\victim.txt", "src/..\\..\\victim.txt", "", "\0"]),
)

GENERATED = {"platformio.ini": b"[env:x]\n", "src/main.cpp": b"int main() {}\n"}
RECORD = ProjectRecord(board="b", app="validation", model_hash="0" * 16)


def _project_with_manifest(root: Path, names: list[str]) -> tuple[Path, Path]:
    project = root / "project"
    write_project_files(project, GENERATED, RECORD)
    victim = root / "victim.txt"
    victim.write_text("the user's file\n")
    manifest = json.loads((project / MANIFEST_NAME).read_text())
    # Each hostile entry carries the victim's real digest, so a trusting render would count it as its own.
    digest = files_digest(victim)
    manifest["files"].update({name: digest for name in names})
    (project / MANIFEST_NAME).write_text(json.dumps(manifest))
    return project, victim


def files_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@given(names=st.lists(HOSTILE_NAME, min_size=1, max_size=3))
@settings(max_examples=80, deadline=None)
def test_a_hostile_manifest_never_reaches_outside_the_project(names: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("hostile")
    project, victim = _project_with_manifest(root, names)
    with pytest.raises(InputError, match="outside its folder|not a relative path"):
        write_project_files(project, {"platformio.ini": b"[env:y]\n"}, RECORD)
    assert victim.read_text() == "the user's file\n"
    assert (project / "platformio.ini").read_bytes() == GENERATED["platformio.ini"]  # nothing written


@pytest.mark.parametrize("link", ["evil", "src/evil", "src"])
def test_symlinks_out_of_the_project_are_refused(link: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_project_files(project, GENERATED, RECORD)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("the user's file\n")
    if link == "src":  # the folder the firmware goes in leads out of the project
        for child in (project / "src").iterdir():
            child.unlink()
        (project / "src").rmdir()
        (project / "src").symlink_to(outside)
        (outside / "main.cpp").write_text("the user's main.cpp\n")
    else:  # a file the manifest names is a link to a file outside
        (project / link).symlink_to(victim)
        manifest = json.loads((project / MANIFEST_NAME).read_text())
        manifest["files"][link] = files_digest(victim)
        (project / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="symlink"):
        write_project_files(project, GENERATED, RECORD, force=True)
    assert victim.read_text() == "the user's file\n"
    if link == "src":
        assert (outside / "main.cpp").read_text() == "the user's main.cpp\n"


def test_the_cli_render_with_a_hostile_manifest_deletes_nothing(inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "fw"
    assert run(capsys, "render", "--board", BOARD, "--model", inputs["model"], "--out", project)[0] == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    manifest = json.loads((project / MANIFEST_NAME).read_text())
    manifest["files"]["../victim.txt"] = files_digest(victim)
    manifest["files"][str(victim)] = files_digest(victim)
    (project / MANIFEST_NAME).write_text(json.dumps(manifest))
    code, err = run(capsys, "render", "--board", BOARD, "--model", inputs["model"], "--out", project)
    assert_one_line(code, err, "outside its folder")
    assert victim.read_text() == "the user's file\n"


# ---- half-written output and overwrites ---------------------------------------------------------


def test_a_user_file_named_src_is_refused_before_anything_is_written(inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "fw"
    project.mkdir()
    (project / "src").write_text("the user's notes\n")
    for force in ([], ["--force"]):
        code, err = run(capsys, "render", "--board", BOARD, "--model", inputs["model"], "--out", project, *force)
        assert_one_line(code, err, "src is a file where a folder must go")
        assert sorted(p.name for p in project.iterdir()) == ["src"]
        assert (project / "src").read_text() == "the user's notes\n"


@pytest.mark.parametrize("existing", [["report.html"], ["report.json"], ["report.html", "report.json"]])
def test_validate_keeps_the_users_report_without_force(existing: list[str], inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report"
    report.mkdir()
    for name in existing:
        (report / name).write_text("the user's report\n")
    code, err = run(capsys, "validate", "--port", "loop://", "--model", inputs["model"], "--data", inputs["data"], "--report", report)
    assert_one_line(code, err, "already holds", "--force")
    assert all((report / name).read_text() == "the user's report\n" for name in existing)


@pytest.mark.parametrize("existing", ["symlink to a file", "dangling symlink", "regular file", "symlink to a live pty"])
def test_virtual_board_never_replaces_or_removes_an_existing_link(existing: str, inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "port"
    target = tmp_path / "target"
    target.write_text("x")
    if existing == "symlink to a file":
        link.symlink_to(target)
    elif existing == "dangling symlink":
        link.symlink_to(tmp_path / "gone")
    elif existing == "regular file":
        link.write_text("the user's file\n")
    else:
        master, slave = os.openpty()
        link.symlink_to(os.ttyname(slave))
    before = os.readlink(link) if link.is_symlink() else link.read_text()
    code, err = run(capsys, "virtual-board", "--model", inputs["model"], "--link", link)
    assert_one_line(code, err, str(link))
    assert (os.readlink(link) if link.is_symlink() else link.read_text()) == before
    if existing == "symlink to a live pty":
        os.close(master)
        os.close(slave)


def test_virtual_board_takes_over_only_a_stale_link_of_a_stopped_board(inputs: dict[str, Path], tmp_path: Path) -> None:
    from tinyml.device.virtual_board import VirtualBoard

    link = tmp_path / "port"
    link.symlink_to("/dev/pts/999999")  # what a killed board leaves behind
    with VirtualBoard(inputs["model"], link=link) as board:
        assert os.readlink(link) == board.pty_path
    assert not link.is_symlink()


# ---- messages that say the fix ------------------------------------------------------------------


@pytest.mark.parametrize("port", ["/dev/null", "regular file", "folder"])
def test_flash_on_something_that_is_no_serial_port_says_so(port: str, tmp_path: Path) -> None:
    from tinyml.device.flash import check_port

    path = {"/dev/null": Path("/dev/null"), "regular file": _file(tmp_path / "ttyFAKE"), "folder": tmp_path}[port]
    with pytest.raises(InputError, match="is not a serial device") as info:
        check_port(str(path))
    assert "busy" not in str(info.value)


@pytest.mark.parametrize("setting", ["missing", "a file"])
def test_a_boards_dir_that_is_no_folder_is_said(setting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "boards"
    if setting == "a file":
        _file(path)
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(path))
    code, err = run(capsys, "boards")
    assert_one_line(code, err, "TINYML_BOARDS_DIR", str(path), setting if setting == "missing" else "a file")


@pytest.mark.parametrize(
    ("error", "status"),
    [(InputError("bad labels"), "failed-input"), (ModelError("op missing"), "failed-input"), (DeviceError("no board"), "failed"), (ToolError("pio failed"), "failed"), (KeyboardInterrupt(), "failed")],
)
def test_deploy_says_resume_only_when_a_rerun_can_get_further(error: BaseException, status: str, inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tinyml.deploy as deploy_module

    def stage(run: object) -> dict:
        raise error

    monkeypatch.setitem(deploy_module._STAGE_FUNCTIONS, "render", stage)
    seen: list[tuple[str, str]] = []
    with pytest.raises(type(error)):
        deploy_module.deploy(inputs["model"], board=BOARD, out=tmp_path / "out", skip=["flash", "validate"], on_stage=lambda s, st: seen.append((s, st)))
    assert seen[-1] == ("render", status)


def test_a_tflm_error_is_printed_without_markup_tags(inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tinyml.model import tflm

    def refuse(model_bytes: bytes) -> int:
        raise ModelError("the TFLM runtime cannot run this model: tensor [x] is odd")

    monkeypatch.setattr(tflm, "measure_arena", refuse)
    assert main(["inspect", str(inputs["model"])]) == 3
    out = " ".join(capsys.readouterr().out.split())
    assert "TFLM runtime: cannot run the model: tensor [x] is odd" in out
    assert "[red]" not in out and "[/red]" not in out


def test_rich_markup_in_paths_and_errors_is_printed_as_text(inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "[red]x"
    folder.mkdir()
    model = folder / "m.tflite"
    model.write_bytes(inputs["model"].read_bytes())
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "[red]x" in out  # the path as it is, not eaten as markup
    code, err = run(capsys, "convert", model, "--out", _file(tmp_path / "[bold]f") / "sub")
    assert_one_line(code, err, "[bold]f")
