"""`pip install .` (not editable) gives a working `tinyml` with its templates and board profiles,
and the commands that need no TensorFlow never import it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

# What a source distribution of the project holds; the rest of the checkout is not needed.
SOURCE_ITEMS = ("pyproject.toml", "setup.py", "README.md", "toolchain", "firmware_templates", "boards")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    """A fresh venv with the project installed from a copy of its sources; returns its bin dir.

    No downloads: the dependencies (and pip, setuptools) come from the development venv,
    made visible through a .pth file, and the build runs without isolation.
    """
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    source.mkdir()
    for item in SOURCE_ITEMS:
        path = repo_root / item
        if path.is_dir():
            shutil.copytree(path, source / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        elif path.is_file():
            shutil.copy2(path, source / item)
    target = base / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site_packages = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site_packages / "dev_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: never touch the development venv's own (editable) install.
    proc = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--ignore-installed", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=base,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.rmtree(source)  # the installed package must not lean on its sources
    return target / "bin"


def run(command: list[object], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_installed_tinyml_help_lists_every_stage(installed: Path, tmp_path: Path) -> None:
    import argparse

    from tinyml.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"quantize", "inspect"} <= set(commands)
    proc = run([installed / "tinyml", "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in commands:
        assert f"    {name}" in proc.stdout, name


def test_installed_package_ships_templates_and_boards(installed: Path, tmp_path: Path, repo_root: Path) -> None:
    code = (
        "import tinyml, tinyml.core.resources as r\n"
        "from tinyml.firmware.boards import list_boards\n"
        "print(tinyml.__file__)\n"
        "print(r.templates_dir())\n"
        "print(r.boards_dir())\n"
        "print(len(list_boards()))\n"
    )
    proc = run([installed / "python", "-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    package_file, templates, boards, board_count = proc.stdout.split("\n")[:4]
    site_packages = installed.parent / "lib"
    for path in (package_file, templates, boards):
        assert Path(path).is_relative_to(site_packages), path
        assert "site-packages" in path
    assert _files(Path(templates)) == _files(repo_root / "firmware_templates") != set()
    assert {p.name for p in Path(boards).glob("*.toml")} == {p.name for p in (repo_root / "boards").glob("*.toml")} != set()
    assert int(board_count) == len(list((repo_root / "boards").glob("*.toml")))
    # Every profile names a TFLM library file (list_boards above loads them): they ship too.
    assert {p.name for p in Path(boards).glob("libraries/*.toml")} == {p.name for p in (repo_root / "boards" / "libraries").glob("*.toml")} != set()


def test_installed_package_ships_the_host_library_api(installed: Path, tmp_path: Path) -> None:
    """The board library's host build compiles this C++ file from the installed package."""
    code = "from tinyml.model.board_library import API_SOURCE\nprint(API_SOURCE)\nprint(API_SOURCE.is_file())\n"
    proc = run([installed / "python", "-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    path, exists = proc.stdout.split("\n")[:2]
    assert "site-packages" in path and exists == "True", proc.stdout


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"}


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "--help"], ["quantize", "--help"]], ids=" ".join)
def test_help_does_not_import_tensorflow(argv: list[str], tmp_path: Path) -> None:
    code = (
        "import sys, tinyml\n"
        "try:\n"
        f"    tinyml.main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'tflite_micro') if m in sys.modules)\n"
        "print('heavy modules:', ','.join(heavy))\n"
    )
    proc = run([sys.executable, "-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    heavy = proc.stdout.rstrip("\n").split("\n")[-1]
    assert heavy.startswith("heavy modules:")
    assert heavy == "heavy modules: ", f"`tinyml {' '.join(argv)}` imported {heavy}"
