"""The project manifest, `.tinyml-render.json`, and writing a project without overwriting the user's work.

The manifest records what rendered a project (board, app, model) and the SHA-256 of every
file the tool generated. Rendering again rewrites only files that are still as the tool left
them; files the user added, and generated files the user edited, are conflicts that need
`force`. A file the tool generated before but generates no longer is removed, unless edited.

While files are being written, the manifest accepts each file's old and new content, so a
render interrupted half way leaves a project that is still the tool's own to render again.

flash reads the board a project was rendered for through `rendered_board`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tinyml import __version__
from tinyml.core.errors import InputError
from tinyml.core.files import atomic_write_bytes, check_output_folder, contained_path, write_error

log = logging.getLogger("tinyml.render")

MANIFEST_NAME = ".tinyml-render.json"


@dataclass(frozen=True)
class ProjectRecord:
    """What rendered the project: the manifest's facts besides the file digests."""

    board: str
    app: str
    model_hash: str


@dataclass(frozen=True)
class WriteOutcome:
    """Paths relative to the project folder."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class _Plan:
    to_write: list[str]
    unchanged: list[str]
    stale: list[str]  # generated before, generated no longer, not edited: removed
    conflicts: list[str]  # the user's files, or generated ones the user edited


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rendered_board(project_dir: Path) -> str | None:
    """The board id the project was rendered for, or None for a project tinyml did not render."""
    try:
        return str(json.loads((Path(project_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))["board"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_owned(project_dir: Path) -> dict[str, set[str]]:
    """Generated file -> the digests it may have and still be ours (two while a render is under way).

    The manifest sits in a folder others can write to: a name in it that leads out of the
    project (absolute, `..`, through a symlink) is refused, so no render reads, rewrites or
    removes a file outside the project.
    """
    path = project_dir / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a mapping")
        owned = {str(k): {str(v)} if isinstance(v, str) else {str(d) for d in v} for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is damaged ({exc})", "delete it and render again with --force") from exc
    for rel in owned:
        contained_path(project_dir, rel, str(path))
    return owned


def _write_manifest(project_dir: Path, record: ProjectRecord, files: Mapping[str, str | list[str]]) -> None:
    manifest = {
        "generator": f"tinyml {__version__}",
        "board": record.board,
        "app": record.app,
        "model_hash": record.model_hash,
        "files": dict(sorted(files.items())),
    }
    atomic_write_bytes(project_dir / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))


def _check_nothing_in_the_way(project_dir: Path, files: Mapping[str, bytes]) -> None:
    """InputError when a generated file would leave the project through a symlink, or the user's
    file stands where a folder must go (or a folder where a file must go): not even --force
    replaces those, and finding them before any write leaves no half-rendered project."""
    blocked: list[str] = []
    for rel in sorted(files):
        path = contained_path(project_dir, rel, "the project")
        for parent in reversed(path.relative_to(project_dir).parents[:-1]):
            if (project_dir / parent).exists() and not (project_dir / parent).is_dir():
                blocked.append(f"{parent.as_posix()} is a file where a folder must go")
                break
        else:
            if path.exists() and not path.is_file():
                blocked.append(f"{rel} is a folder where a file must go")
    if blocked:
        raise InputError(f"cannot render into {project_dir}: {'; '.join(sorted(set(blocked)))}", "move it out of the way, or render into an empty folder")


def _plan(project_dir: Path, files: Mapping[str, bytes], owned: Mapping[str, set[str]]) -> _Plan:
    plan = _Plan([], [], [], [])
    for rel, data in files.items():
        path = project_dir / rel
        if not path.exists():
            plan.to_write.append(rel)
            continue
        current = _sha256(path.read_bytes()) if path.is_file() else None
        if current == _sha256(data):
            plan.unchanged.append(rel)
        elif current is not None and current in owned.get(rel, set()):
            plan.to_write.append(rel)  # ours, as we left it: regenerate
        else:
            plan.conflicts.append(rel)  # the user's file, or ours edited by the user
    for rel, digests in owned.items():
        if rel in files:
            continue
        path = project_dir / rel
        if path.is_file() and _sha256(path.read_bytes()) not in digests:
            plan.conflicts.append(rel)  # ours once, since edited: the user decides
        elif path.is_file():
            plan.stale.append(rel)
    return plan


def write_project_files(
    project_dir: Path,
    files: Mapping[str, bytes],
    record: ProjectRecord,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> WriteOutcome:
    """Write `files` (relative path -> bytes) into the project as the manifest allows, and record them."""
    check_output_folder(project_dir)
    owned = read_owned(project_dir)
    _check_nothing_in_the_way(project_dir, files)
    plan = _plan(project_dir, files, owned)
    if plan.conflicts and not force:
        shown = ", ".join(sorted(plan.conflicts)[:4]) + (", ..." if len(plan.conflicts) > 4 else "")
        raise InputError(
            f"{project_dir} has files that tinyml did not generate or that were edited since: {shown}",
            "move your changes out of the way, render into an empty folder, or pass --force to overwrite them",
        )
    to_write = list(plan.to_write)
    if force:
        to_write += [rel for rel in plan.conflicts if rel in files]
        for rel in plan.conflicts:
            if rel not in files:  # edited by the user and no longer generated: theirs now, left in place
                log.warning("%s is no longer generated but was edited: left as it is", project_dir / rel)

    new_digests = {rel: _sha256(data) for rel, data in files.items()}
    during = {rel: sorted(owned.get(rel, set()) | {digest}) for rel, digest in new_digests.items()}
    during.update({rel: sorted(owned[rel]) for rel in plan.stale})
    _write_manifest(project_dir, record, during)
    total = len(to_write)
    for done, rel in enumerate(sorted(to_write), start=1):
        atomic_write_bytes(project_dir / rel, files[rel])
        if progress is not None:
            progress(done, total)
    for rel in plan.stale:
        try:
            (project_dir / rel).unlink()
        except OSError as exc:
            raise write_error(exc, project_dir / rel) from exc
    _write_manifest(project_dir, record, new_digests)
    return WriteOutcome(written=tuple(sorted(to_write)), unchanged=tuple(sorted(plan.unchanged)), removed=tuple(sorted(plan.stale)))
