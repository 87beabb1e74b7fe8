"""The cached parallel build that both library builds (emulator, host reference) stand on."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_tool
from tinyml.core import native_build
from tinyml.core.errors import ToolError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(native_build.CACHE_ENV, str(tmp_path / "cache"))


def test_a_build_is_published_once_and_then_found(tmp_path):
    calls = []

    def build(folder: Path) -> None:
        calls.append(folder)
        (folder / "result.txt").write_text("built")

    first, cached_first = native_build.cached_build("demo", "lib", "abc", build)
    second, cached_second = native_build.cached_build("demo", "lib", "abc", build)
    assert (cached_first, cached_second) == (False, True)
    assert first == second and (first / "result.txt").read_text() == "built"
    assert len(calls) == 1 and not calls[0].exists()  # the temporary folder became the result


def test_a_failed_build_leaves_nothing_that_looks_finished(tmp_path):
    def build(folder: Path) -> None:
        (folder / "half.o").write_text("x")
        raise ToolError("compiler died", "retry")

    with pytest.raises(ToolError):
        native_build.cached_build("demo", "lib", "abc", build)
    kind_dir = native_build.cache_root() / "demo"
    assert [p.name for p in kind_dir.iterdir() if not p.name.endswith(".lock")] == []


def test_the_key_changes_with_any_file_byte_or_setting(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    (root / "a.c").write_text("int a;")
    files = [(root, p) for p in native_build.files_under(root)]
    key = native_build.content_key(files, ["-O1"])
    assert native_build.content_key(files, ["-O2"]) != key
    (root / "a.c").write_text("int b;")
    assert native_build.content_key(files, ["-O1"]) != key


def test_the_key_does_not_change_with_where_the_repository_is(tmp_path):
    """One library, and the same support code in two checkouts whose paths sort before and after
    the library's: one cache entry, not a rebuild of minutes per checkout."""
    library = tmp_path / "lib" / "src"
    library.mkdir(parents=True)
    (library / "kernel.cc").write_text("int kernel;")

    def key_with_support_in(checkout: Path) -> str:
        support = checkout / "include"
        support.mkdir(parents=True)
        (support / "Arduino.h").write_text("#define ARDUINO 1")
        files = [(library, p) for p in native_build.files_under(library)] + [(support, p) for p in native_build.files_under(support)]
        return native_build.content_key(files, ["-Os"])

    assert key_with_support_in(tmp_path / "a") == key_with_support_in(tmp_path / "z")  # "a" < "lib" < "z"


def test_the_first_compile_error_is_raised_with_the_file(tmp_path):
    gcc = require_tool("gcc")
    good, bad = tmp_path / "good.c", tmp_path / "bad.c"
    good.write_text("int good(void) { return 1; }\n")
    bad.write_text("int bad(void) { return nope; }\n")
    jobs = [native_build.CompileJob(s, s.with_suffix(".o"), (gcc, "-c", str(s), "-o", str(s.with_suffix(".o")))) for s in (good, bad)]
    with pytest.raises(ToolError, match="bad.c.*nope"):
        native_build.compile_all(jobs, 2, lambda job, out: ToolError(f"{job.source.name}: {native_build.first_error(out)}"))
    assert (tmp_path / "good.o").is_file()
