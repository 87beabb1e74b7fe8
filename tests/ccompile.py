"""Compile generated and fixed firmware C++ on the host, strictly, through tinyml.core.tools.run.

Shared by the tests of every area that emits C/C++ (convert, render, protocol, features):

    exe_output = compile_and_run([main_cc, "model_data.cc"], [src_dir], std="gnu++14")
    compile_objects(sources, [src_dir], std="gnu++14", compiler=ARM_GXX, flags=ARM_CORTEX_M4)

Every compile uses -Wall -Wextra -Werror: generated code must be warning-free. A failed
compile or a program that exits non-zero fails the test with the tool's full output.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from conftest import require_tool

from tinyml.core.tools import run

HOST_GXX = "g++"
ARM_GXX = "arm-none-eabi-g++"
WARNINGS = ("-Wall", "-Wextra", "-Werror")
ARM_CORTEX_M4 = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
ARM_CORTEX_M0PLUS = ("-mcpu=cortex-m0plus", "-mthumb")


def _flags(include_dirs: Sequence[str | Path], std: str, flags: Sequence[str]) -> list[str]:
    return [f"-std={std}", *WARNINGS, *flags, *(f"-I{d}" for d in include_dirs)]


def compile_objects(
    sources: Sequence[str | Path],
    include_dirs: Sequence[str | Path] = (),
    *,
    std: str = "gnu++14",
    compiler: str = ARM_GXX,
    flags: Sequence[str] = ARM_CORTEX_M4,
    out_dir: str | Path | None = None,
) -> list[Path]:
    """Compile each source to an object file (-c): the check for cross compilers without a board."""
    require_tool(compiler)
    out = Path(out_dir or tempfile.mkdtemp(prefix="ccompile-"))
    objects = []
    for index, source in enumerate(sources):
        obj = out / f"{index}_{Path(source).stem}.o"
        result = run([compiler, *_flags(include_dirs, std, flags), "-c", str(source), "-o", str(obj)])
        if result.returncode != 0:
            raise AssertionError(f"{compiler} failed on {source}:\n{result.stdout}")
        objects.append(obj)
    return objects


def compile_program(
    sources: Sequence[str | Path],
    include_dirs: Sequence[str | Path] = (),
    *,
    std: str = "gnu++14",
    compiler: str = HOST_GXX,
    flags: Sequence[str] = (),
    out_dir: str | Path | None = None,
) -> Path:
    """Compile and link a host program; returns the executable."""
    require_tool(compiler)
    out = Path(out_dir or tempfile.mkdtemp(prefix="ccompile-"))
    exe = out / "program"
    result = run([compiler, *_flags(include_dirs, std, flags), *map(str, sources), "-o", str(exe)])
    if result.returncode != 0:
        raise AssertionError(f"{compiler} failed:\n{result.stdout}")
    return exe


def compile_and_run(
    sources: Sequence[str | Path],
    include_dirs: Sequence[str | Path] = (),
    *,
    std: str = "gnu++14",
    compiler: str = HOST_GXX,
    flags: Sequence[str] = (),
    args: Sequence[str] = (),
    out_dir: str | Path | None = None,
) -> str:
    """Compile a host program, run it with `args`, and return its output (stdout and stderr)."""
    exe = compile_program(sources, include_dirs, std=std, compiler=compiler, flags=flags, out_dir=out_dir)
    result = run([str(exe), *args])
    if result.returncode != 0:
        raise AssertionError(f"{exe} exited with {result.returncode}:\n{result.stdout}")
    return result.stdout
