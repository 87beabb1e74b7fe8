"""Compiling C and C++ in parallel into a result that is cached per user, keyed by its inputs.

Two stages build a board's TFLM library from source: the emulated board (for the Cortex-M4,
with arm-none-eabi-g++) and the host reference (for x86-64, with g++). A build takes minutes,
so each result lives in the user's cache folder under a key that hashes everything that decides
it: the sources and headers, our own files, the flags and the compilers' versions.

A build runs in a private temporary folder beside its final place and is published with one
rename, under a lock: a second process waits for the first and then finds the result, and an
interrupted build leaves nothing that looks finished.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import TinyMLError, ToolError

log = logging.getLogger("tinyml.build")

CACHE_ENV = "TINYML_CACHE_DIR"


def cache_root() -> Path:
    """$TINYML_CACHE_DIR, else tinyml/ in $XDG_CACHE_HOME, else ~/.cache/tinyml."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyml"


@cache  # one process sees one compiler of a name
def compiler_identity(program: str) -> str:
    """The first line of `program --version`, which names the compiler and its version."""
    try:
        result = subprocess.run([program, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ToolError(f"the compiler {program} cannot be run ({exc})", f"install {program}") from exc
    return result.stdout.splitlines()[0] if result.stdout else program


def content_key(files: Iterable[tuple[Path, Path]], settings: object) -> str:
    """A hash of files (each given as (root, path), hashed by its path below root and its bytes)
    and of any JSON-serialisable settings: flags, compiler versions, exclusions.

    The roots keep the order they are given in, never that of their absolute paths: the key
    must not change with where the repository or the library is checked out."""
    files = list(files)
    root_order = {root: i for i, root in reversed(list(enumerate(root for root, _ in files)))}
    digest = hashlib.sha256()
    for root, path in sorted(files, key=lambda pair: (root_order[pair[0]], pair[1].relative_to(pair[0]).as_posix())):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:20]


def files_under(root: Path, suffixes: Sequence[str] | None = None) -> list[Path]:
    """Every file below `root` (with one of `suffixes`, if given), sorted."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and (suffixes is None or p.suffix in suffixes))


def object_name(source: Path, root: Path) -> str:
    """A unique object file name: TFLM has files of the same name in two folders."""
    return source.relative_to(root).as_posix().replace("/", "__") + ".o"


@dataclass(frozen=True)
class CompileJob:
    """One compiler run: `command` compiles `source` into `output`."""

    source: Path
    output: Path
    command: tuple[str, ...]


def first_error(output: str) -> str:
    """The compiler's first error line, else the start of its output."""
    for line in output.splitlines():
        if "error:" in line:
            return line.strip()[:300]
    return output.strip()[:300] or "no output"


def compile_all(
    jobs: Sequence[CompileJob],
    workers: int | None,
    failure: Callable[[CompileJob, str], TinyMLError],
) -> None:
    """Runs the jobs `workers` at a time. The first failure cancels the jobs not yet started
    and is raised as `failure(job, compiler output)`."""
    workers = workers or os.cpu_count() or 2

    def run(job: CompileJob) -> tuple[CompileJob, subprocess.CompletedProcess[str]]:
        log.debug("%s", " ".join(job.command))
        return job, subprocess.run(job.command, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run, job) for job in jobs]
        try:
            for future in as_completed(futures):
                job, result = future.result()
                if result.returncode != 0:
                    raise failure(job, result.stdout + result.stderr)
        except BaseException:
            # A failure, Ctrl-C or SIGTERM: start nothing more; the compilers running now finish.
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def precompiled_header(compile_command: Sequence[str], headers: Sequence[str], work: Path) -> tuple[str, ...]:
    """Precompiles `headers` (as #include names) with `compile_command` (compiler and flags,
    exactly those of the C++ units that will use it) into `work`, and returns the flags that
    force-include it. Parsing TFLM's common headers is most of each file's compile time; the
    precompiled header halves a library build and changes no object's code. If gcc cannot use
    the .gch it reads the header text: slower, same result."""
    header = work / "precompiled.h"
    header.write_text("".join(f'#include "{name}"\n' for name in headers))
    command = [*compile_command, "-x", "c++-header", str(header), "-o", f"{header}.gch"]
    result = subprocess.run(command, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ToolError(f"the precompiled header of {', '.join(headers)} does not compile: {first_error(result.stderr)}", "check the library folder and the compiler")
    return ("-include", str(header))


def cached_build(kind: str, name: str, key: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """The folder cache_root()/kind/name-key, made by `build(folder)` if it is not cached yet.
    Returns the folder and whether it was cached. `build` writes into a temporary folder that
    becomes the result with one rename once it returns."""
    parent = cache_root() / kind
    final = parent / f"{name}-{key}"
    if final.is_dir():
        return final, True
    parent.mkdir(parents=True, exist_ok=True)
    with open(parent / f".{name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if we are killed
        if final.is_dir():
            return final, True
        work = Path(tempfile.mkdtemp(prefix=f".{name}-{key}.", dir=parent))
        try:
            build(work)
            os.rename(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final, False
