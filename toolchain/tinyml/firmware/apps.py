"""Rendering a lab's plain-C++ feature code (no Arduino, no TFLM) from a feature spec.

The firmware project gets the same files through `tinyml.firmware.render.render_project(...,
app=<lab app>, app_context=...)`; this renders only the parts that compile anywhere, so the
tests can build them with g++ and arm-none-eabi-g++ and compare them with numpy.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from tinyml.core.resources import templates_dir
from tinyml.firmware.codegen import jinja_environment

# The plain-C++ files of each lab app: the feature front end and the parts of the app logic
# that need no hardware. The Arduino glue (app.cpp) is not among them.
# Files of firmware_templates/common/ that the apps' plain C++ includes (render copies all of common/).
COMMON_SOURCES = ("input_quantization.h",)
PLAIN_SOURCES: dict[str, tuple[str, ...]] = {
    "gesture": ("imu_features.h.j2", "imu_window.h", "imu_window.cpp"),
    "kws": ("logmel_features.h.j2", "logmel_tables.cpp.j2", "logmel.h", "logmel.cpp", "recognizer.h", "recognizer.cpp"),
}


def app_dir(app: str) -> Path:
    return templates_dir() / "apps" / app


def render_plain_sources(app: str, app_context: Mapping[str, object], out_dir: Path) -> list[Path]:
    """Render (`*.j2`) or copy the app's plain-C++ files into `out_dir`; returns the written paths."""
    source_dir = app_dir(app)
    env = jinja_environment([source_dir])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PLAIN_SOURCES[app]:
        if name.endswith(".j2"):
            target = out_dir / name[: -len(".j2")]
            target.write_text(env.get_template(name).render(app_context=app_context), encoding="utf-8")
        else:
            target = out_dir / name
            shutil.copyfile(source_dir / name, target)
        written.append(target)
    for name in COMMON_SOURCES:
        target = out_dir / name
        shutil.copyfile(templates_dir() / "common" / name, target)
        written.append(target)
    return written
