"""The firmware app catalogue: each app is its folder and one manifest, `app.toml`.

An app lives in `firmware_templates/apps/<app>/`. Its `app.toml` says everything the toolchain
needs to know about it (the fields are documented in firmware_templates/apps/README.md):
which sensors and parts it reads, its build flags, whether it prints class names (and so
needs labels), which feature specs its templates are rendered with, and which of its files
are plain C++ that compiles on the host. render, deploy, the command line and the labs all
read it through `load_app`; nothing else keeps a list of apps or of what they need.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyml.core.errors import InputError
from tinyml.core.files import contained_path
from tinyml.core.resources import templates_dir
from tinyml.core.toml_files import tomllib
from tinyml.firmware.boards import BoardProfile, SensorProfile, list_boards
from tinyml.firmware.codegen import jinja_environment

DEFAULT_APP = "validation"
# The app that streams raw sensor samples (`tinyml capture` checks that a board runs it).
CAPTURE_APP = "capture"
MANIFEST_FILE = "app.toml"


def _imu_defaults() -> dict[str, Any]:
    from tinyml.features.imu import ImuWindowSpec

    return ImuWindowSpec().template_context()


def _logmel_defaults() -> dict[str, Any]:
    from tinyml.features.logmel import LogMelSpec

    return LogMelSpec().template_context()


def _recognizer_defaults() -> dict[str, Any]:
    from tinyml.features.recognizer import RecognizerSettings

    return RecognizerSettings().template_context()


# The feature specs an app's manifest may name (`features`), each with the default settings
# its templates see as `app_context.<name>` unless the caller passes its own.
FEATURE_DEFAULTS: dict[str, Callable[[], dict[str, Any]]] = {
    "imu": _imu_defaults,
    "logmel": _logmel_defaults,
    "recognizer": _recognizer_defaults,
}


@dataclass(frozen=True)
class AppSpec:
    """One app, as its `app.toml` describes it."""

    name: str
    directory: Path
    requires_sensors: tuple[str, ...] = ()
    # At least one of these sensor kinds; the app reads those of them the board has.
    requires_any_sensor: tuple[str, ...] = ()
    build_flags: tuple[str, ...] = ()
    description: str = ""
    # Optional: sensor kind -> the parts the app's code can read (e.g. {"imu": ("LSM9DS1",)}).
    supported_parts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    needs_labels: bool = False  # the app prints class names on the board
    needs_model: bool = True  # False: firmware without TFLM or a model (e.g. capture)
    features: tuple[str, ...] = ()  # keys of FEATURE_DEFAULTS
    # The app's files that are plain C++ (no Arduino, no TFLM), and the files of
    # firmware_templates/common/ they include: what the tests compile on the host.
    plain_sources: tuple[str, ...] = ()
    common_sources: tuple[str, ...] = ()


def list_apps() -> list[str]:
    """The firmware apps that can be rendered (folders of firmware_templates/apps with an app.toml)."""
    apps_dir = templates_dir() / "apps"
    return sorted(p.parent.name for p in apps_dir.glob(f"*/{MANIFEST_FILE}"))


def load_app(name: str) -> AppSpec:
    """The app `name` from its manifest; InputError naming the field and the file when it is wrong."""
    directory = templates_dir() / "apps" / name
    spec_path = directory / MANIFEST_FILE
    if name not in list_apps():  # also keeps a name like ../x from reaching outside the apps folder
        raise InputError(f"unknown firmware app '{name}'", f"choose one of: {', '.join(list_apps())}")
    try:
        data = tomllib.loads(spec_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{spec_path} is not valid TOML: {exc}", "fix the app's app.toml") from exc
    lists = {key: data.get(key, []) for key in ("requires_sensors", "requires_any_sensor", "build_flags", "features", "plain_sources", "common_sources")}
    for key, value in lists.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{spec_path}: field '{key}' must be a list of strings", "fix the app's app.toml")
    parts = data.get("supported_parts", {})
    if not isinstance(parts, dict) or not all(isinstance(v, list) and all(isinstance(p, str) for p in v) for v in parts.values()):
        raise InputError(f"{spec_path}: field 'supported_parts' must map a sensor kind to a list of part names", "fix the app's app.toml")
    flags = {key: data.get(key, default) for key, default in (("needs_labels", False), ("needs_model", True))}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise InputError(f"{spec_path}: field '{key}' must be true or false", "fix the app's app.toml")
    unknown = [f for f in lists["features"] if f not in FEATURE_DEFAULTS]
    if unknown:
        raise InputError(f"{spec_path}: unknown feature(s) {', '.join(unknown)}", f"name features from: {', '.join(FEATURE_DEFAULTS)}")
    for key, folder in (("plain_sources", directory), ("common_sources", templates_dir() / "common")):
        missing = [f for f in lists[key] if not contained_path(folder, f, str(spec_path)).is_file()]
        if missing:
            raise InputError(f"{spec_path}: field '{key}' names files that are not in {folder}: {', '.join(missing)}", "fix the app's app.toml")
    return AppSpec(
        name=name,
        directory=directory,
        requires_sensors=tuple(lists["requires_sensors"]),
        requires_any_sensor=tuple(lists["requires_any_sensor"]),
        build_flags=tuple(lists["build_flags"]),
        description=str(data.get("description", "")),
        supported_parts={kind: tuple(names) for kind, names in parts.items()},
        needs_labels=flags["needs_labels"],
        needs_model=flags["needs_model"],
        features=tuple(lists["features"]),
        plain_sources=tuple(lists["plain_sources"]),
        common_sources=tuple(lists["common_sources"]),
    )


def app_sensors(board: BoardProfile, app: AppSpec) -> dict[str, SensorProfile]:
    """The board's sensors that `app` needs; InputError naming the missing ones and boards that have them."""
    missing = [kind for kind in app.requires_sensors if kind not in board.sensors]
    if missing:
        able = [b.id for b in list_boards() if all(kind in b.sensors for kind in app.requires_sensors)]
        raise InputError(
            f"the {app.name} app needs the sensor(s) {', '.join(missing)}, which board {board.id} does not have",
            f"render it for a board that has them ({', '.join(able) or 'none known'}), or choose another --app",
        )
    present = [kind for kind in app.requires_any_sensor if kind in board.sensors]
    if app.requires_any_sensor and not present:
        able = [b.id for b in list_boards() if any(kind in b.sensors for kind in app.requires_any_sensor)]
        raise InputError(
            f"the {app.name} app needs one of the sensors {', '.join(app.requires_any_sensor)}, and board {board.id} has none of them",
            f"render it for a board that has one ({', '.join(able) or 'none known'}), or choose another --app",
        )
    needed = [*app.requires_sensors, *(kind for kind in present if kind not in app.requires_sensors)]
    for kind in needed:
        part = board.sensors[kind].part
        readable = app.supported_parts.get(kind)
        if readable is not None and part not in readable:
            raise InputError(
                f"the {app.name} app reads the {kind} parts {', '.join(readable)}, but board {board.id} has a {part}",
                f"choose a board with one of those parts, or add {part} to the app (firmware_templates/apps/{app.name})",
            )
    return {kind: board.sensors[kind] for kind in needed}


def check_labels(app: AppSpec, labels: Any) -> None:
    """InputError when the app prints class names and no labels were given."""
    if app.needs_labels and not labels:
        raise InputError(f"the {app.name} app prints class names", "pass --labels FILE (one class name per line, in the model's output order)")


def default_app_context(app: AppSpec | str) -> dict[str, Any]:
    """What the app's templates need beyond the model and labels: the default of each feature it names ({} for none)."""
    spec = load_app(app) if isinstance(app, str) else app
    return {name: FEATURE_DEFAULTS[name]() for name in spec.features}


def render_plain_sources(app: AppSpec | str, app_context: Mapping[str, object], out_dir: Path) -> list[Path]:
    """Render (`*.j2`) or copy the app's plain-C++ files (and the common files they include) into `out_dir`.

    The firmware project gets the same files through render_project(..., app=...); these are
    the parts that compile anywhere, so the tests build them with g++ and arm-none-eabi-g++
    and compare them with numpy. Returns the written paths.
    """
    spec = load_app(app) if isinstance(app, str) else app
    env = jinja_environment([spec.directory])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in spec.plain_sources:
        if name.endswith(".j2"):
            target = out_dir / name[: -len(".j2")]
            target.write_text(env.get_template(name).render(app_context=app_context), encoding="utf-8")
        else:
            target = out_dir / name
            shutil.copyfile(spec.directory / name, target)
        written.append(target)
    for name in spec.common_sources:
        target = out_dir / name
        shutil.copyfile(templates_dir() / "common" / name, target)
        written.append(target)
    return written
