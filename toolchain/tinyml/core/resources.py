"""Where the data files that ship with the toolchain live.

In a wheel, `firmware_templates/` and `boards/` are installed as the packages
`tinyml.firmware_templates` and `tinyml.boards_data` (see setup.py). In an editable install
or a plain checkout the same folders sit at the top of the repository, two levels above the
package (`toolchain/tinyml/`).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # tinyml/, this file being tinyml/core/resources.py
_REPO_DIR = _PACKAGE_DIR.parent.parent


def _locate(installed_name: str, repo_name: str) -> Path:
    installed = _PACKAGE_DIR / installed_name
    if installed.is_dir():
        return installed
    return _REPO_DIR / repo_name


def templates_dir() -> Path:
    """The folder of Jinja templates and fixed C++ sources for the firmware."""
    return _locate("firmware_templates", "firmware_templates")


def boards_dir() -> Path:
    """The folder of built-in board profiles (TOML)."""
    return _locate("boards_data", "boards")
