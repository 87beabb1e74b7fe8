"""Writing outputs safely, and reading paths from files safely.

Every command that writes goes through here, so that:
- an output that cannot be written (a path under a regular file, a read-only or full disk, a
  folder where a file must go) is one line with the fix, found before the work where possible
  (`check_can_write`, `check_output_folder`), and as `InputError` when the disk fills later;
- an output never replaces an input, not even with --force (`check_not_input`);
- a file is never half-written (`atomic_write_bytes`), and a set of files that belong together
  is written all or nothing as far as the filesystem allows (`atomic_write_files`);
- a path named inside a file the tool did not just write (a manifest, a profile) stays inside
  its folder (`contained_path`).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath

from tinyml.core.errors import InputError

_WHERE_FIX = "choose an --out on a disk and in a folder you can write to"


def write_error(exc: OSError, path: Path | str) -> InputError:
    """The one-line InputError for an OSError met while writing `path`."""
    path = Path(path)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return InputError(f"the disk is full: {path} could not be written", "free some space, or write to another disk with --out")
    if code == errno.EROFS:
        return InputError(f"{path} is on a read-only filesystem", _WHERE_FIX)
    if code in (errno.EACCES, errno.EPERM):
        return InputError(f"no permission to write {path}", _WHERE_FIX + ", or fix the folder's permissions")
    if code in (errno.ENOTDIR, errno.EEXIST):
        blocker = _file_in_the_way(path)
        if blocker is not None:
            return InputError(f"cannot write {path}: {blocker} is a file, not a folder", "choose another --out, or move that file away")
    if code == errno.EISDIR:
        return InputError(f"{path} is a folder, where a file must be written", "give a file name, or move the folder away")
    if code == errno.ENAMETOOLONG:
        return InputError(f"the name {path} is too long for the filesystem", "choose a shorter --out")
    return InputError(f"cannot write {path}: {exc.strerror or exc}", _WHERE_FIX)


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest ancestor of `path` (or path itself) that exists and is not a folder, if any."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_output_folder(folder: Path | str) -> None:
    """InputError unless `folder` is, or can be created as, a folder in which files can be written.

    Tries a real temporary file in the nearest existing folder: permission bits do not tell
    (root, ACLs, read-only mounts), an actual create does.
    """
    folder = Path(folder)
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        problem = f"{folder} is a file, not a folder" if existing == folder else f"cannot write into {folder}: {existing} is a file, not a folder"
        raise InputError(problem, "choose another --out, or move that file away")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise write_error(exc, folder) from exc


def same_file(a: Path | str, b: Path | str) -> bool:
    """Whether `a` and `b` name the same file: the same resolved path, or the same inode (a hard link)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(output: Path | str, inputs: Iterable[Path | str | None]) -> None:
    """InputError when `output` is one of the command's inputs (or inside an input folder): never replaced, not even with --force."""
    output = Path(output)
    for source in inputs:
        if source is None:
            continue
        source = Path(source)
        inside = source.is_dir() and output.resolve().is_relative_to(source.resolve())
        if same_file(output, source) or inside:
            raise InputError(
                f"the output {output} is the input {source}" if not inside else f"the output {output} is inside the input folder {source}",
                "write the output elsewhere (--out); tinyml never replaces its input, not even with --force",
            )


def check_can_write(path: Path | str, force: bool, inputs: Iterable[Path | str | None] = ()) -> None:
    """Before the work: `path` is not an input, not a folder, not there already (unless `force`), and can be written."""
    path = Path(path)
    check_not_input(path, inputs)
    if path.is_dir():
        raise InputError(f"{path} is a folder, where the output file must go", f"give a file name, e.g. {path / 'model_int8.tflite'}")
    if (path.exists() or path.is_symlink()) and not force:
        raise InputError(f"{path} already exists", "choose another --out, or pass --force to overwrite it")
    check_output_folder(path.parent)


def _write_data(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _temporary_copy(path: Path, data: bytes) -> Path:
    """`data` in a new hidden file beside `path`, with the mode any new file gets; removed again on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); an output should get the mode any new file gets.
        os.fchmod(fd, 0o666 & ~_current_umask())
        _write_data(fd, data)
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write through a temporary file in the same folder and rename, so a crash leaves no half file."""
    atomic_write_files({Path(path): data})


def atomic_write_files(files: Mapping[Path, bytes]) -> None:
    """Write every file, or none: all are written to temporary files first, then renamed into place.

    A full disk or a missing permission shows while the temporary files are written, before
    any output is replaced; the renames that follow need no space. Errors are InputError.
    """
    staged: list[tuple[Path, Path]] = []
    current: Path | None = None
    try:
        for current, data in files.items():
            current = Path(current)
            if current.is_dir():
                raise InputError(f"{current} is a folder, where a file must be written", "move the folder away, or choose another --out")
            staged.append((_temporary_copy(current, data), current))
        for tmp, current in staged:
            os.replace(tmp, current)
    except OSError as exc:
        raise write_error(exc, current if current is not None else Path(".")) from exc
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def contained_path(folder: Path | str, name: str, what: str) -> Path:
    """`folder / name`, for a relative `name` read from a file; InputError when it would leave `folder`.

    Refused: a name that is not a string or is empty, absolute (POSIX or Windows, with a drive),
    has `..` parts, or reaches out of the folder through a symlink. `what` names the file the
    name came from, for the message.
    """
    folder = Path(folder)
    if not isinstance(name, str) or not name or "\0" in name:
        raise InputError(f"{what} names a file {name!r}, which is not a relative path", f"{what} was edited or is not tinyml's: delete it and run again")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root or ".." in posix.parts or ".." in windows.parts:
        raise InputError(f"{what} names {name}, outside its folder {folder}", f"{what} was edited or is not tinyml's: delete it and run again")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise InputError(f"{what} names {name}, which a symlink leads out of {folder}", f"remove the symlink, or delete {what} and run again")
    return path
