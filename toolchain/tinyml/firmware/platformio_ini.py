"""A project's `platformio.ini`: one environment named after the board, for one app.

The board profile gives the platform, board, TFLM library and flags; the app's sensors add
their pinned libraries and a define naming the part (e.g. `-DTINYML_IMU_LSM9DS1`); the app's
manifest adds its own build flags. render writes it into the project, and `tinyml boards
prepare` into a scratch project per app, to fetch everything once while online.
"""

from __future__ import annotations

from tinyml import __version__
from tinyml.core.resources import templates_dir
from tinyml.firmware.apps import AppSpec, app_sensors
from tinyml.firmware.boards import BoardProfile
from tinyml.firmware.codegen import jinja_environment

# PlatformIO keeps each app's libraries in one folder shared by every project of that app and
# board, so `tinyml boards prepare` can fetch them once and later builds need no network.
LIBDEPS_DIR = "${platformio.core_dir}/tinyml/libdeps/"


def platformio_ini(board: BoardProfile, app: AppSpec) -> str:
    """The project's platformio.ini: one environment named after the board."""
    sensors = app_sensors(board, app)
    # An app without a model builds without TFLM: faster, and nothing unused in flash.
    tflm = [board.library.lib_deps] if app.needs_model else []
    lib_deps = [*tflm, *sorted({s.library for s in sensors.values() if s.library})]
    build_flags = [s.define for s in sensors.values()] + list(app.build_flags)
    template = jinja_environment([templates_dir() / "project"]).get_template("platformio.ini.j2")
    return template.render(
        board=board,
        pio=board.platformio,
        env_name=board.env_name,
        app=app,
        lib_deps=lib_deps,
        build_flags=build_flags,
        libdeps_dir=LIBDEPS_DIR + app.name,
        version=__version__,
    )
