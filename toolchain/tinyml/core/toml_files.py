"""The TOML files users write (board profiles, TFLM library facts, rig files): reading one with
one clear error, finding them by id across folders, and typed access to their fields.

Each failure names the file, and the field when there is one, so that a teacher who edits a
profile by hand is told which line to fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tinyml.core.errors import InputError

try:  # Python 3.11+; tomli is the same parser for 3.10
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - only on Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def read_toml(path: Path, what: str) -> dict:
    """The tables of `path`; `what` names the kind of file in the error ("board profile")."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc}", "check the file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what} {path} is not valid TOML: {exc}", "fix the syntax at that line") from exc


def files_by_id(directories: Iterable[Path]) -> dict[str, Path]:
    """File stem -> .toml file; a file in an earlier folder hides one of the same id in a later one."""
    found: dict[str, Path] = {}
    for directory in directories:
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


class TomlFields:
    """Typed access to one file's fields, each failure naming the file and the dotted field."""

    def __init__(self, path: Path, what: str, example: str) -> None:
        self.path = path
        self.what = what  # the kind of file, e.g. "board profile"
        self.example = example  # a shipped file of the same kind

    def fail(self, key: str, problem: str) -> InputError:
        return InputError(f"{self.what} {self.path}: field '{key}' {problem}", f"fix that field (see {self.example} for an example)")

    def get(self, table: dict, key: str, kind: type | tuple[type, ...], prefix: str = "", default: Any = ...) -> Any:
        name = f"{prefix}{key}"
        if key not in table:
            if default is ...:
                raise self.fail(name, "is missing")
            return default
        value = table[key]
        # bool is an int in Python: keep numbers and flags apart.
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(name, f"must be {expected}, not {type(value).__name__} {value!r}")
        return value
