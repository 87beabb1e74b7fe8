"""The one thing pyproject.toml cannot say: found packages plus two data folders from elsewhere.

The sources are a src layout, `toolchain/tinyml/`, whose subpackages setuptools finds by itself.
The firmware templates and the board profiles stay at the top of the repository and ship inside
the package as `tinyml.firmware_templates` and `tinyml.boards_data` (tinyml.core.resources
finds them in both places). Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

DATA_PACKAGES = {"tinyml.firmware_templates": "firmware_templates", "tinyml.boards_data": "boards"}

setup(
    packages=find_packages("toolchain") + list(DATA_PACKAGES),
    package_dir={"": "toolchain", **DATA_PACKAGES},
)
