"""tinyml-toolchain: a trained Keras model to validated TensorFlow Lite Micro firmware.

The notebook API is the same set of functions the `tinyml` command calls. They are imported
lazily, so `import tinyml` stays fast and TensorFlow loads only for the stages that need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    "TinyMLError": "tinyml.errors",
    "Dataset": "tinyml.data",
    "load_dataset": "tinyml.data",
    "load_labels": "tinyml.data",
    "read_model": "tinyml.modelfile",
    "optimize_model": "tinyml.optimize",
    "OptimizeSettings": "tinyml.optimize",
    "OptimizeResult": "tinyml.optimize",
    "compare_variants": "tinyml.compare",
    "CompareReport": "tinyml.compare",
    "quantize_model": "tinyml.quantize",
    "QuantizeResult": "tinyml.quantize",
    "inspect_model": "tinyml.inspect",
    "check_fits": "tinyml.inspect",
    "InspectReport": "tinyml.inspect",
    "FitReport": "tinyml.inspect",
    "BoardProfile": "tinyml.boards",
    "get_board": "tinyml.boards",
    "list_boards": "tinyml.boards",
    "ConvertResult": "tinyml.convert",
    "convert_model": "tinyml.convert",
    "RenderResult": "tinyml.render",
    "render_project": "tinyml.render",
    "FlashResult": "tinyml.flash",
    "flash_project": "tinyml.flash",
    "prepare_board": "tinyml.flash",
    "deploy": "tinyml.deploy",
    "DeployResult": "tinyml.deploy",
    "DeviceLink": "tinyml.link",
    "DeviceInfo": "tinyml.protocol",
    "VirtualBoard": "tinyml.virtual_board",
    "Faults": "tinyml.virtual_board",
    "validate_device": "tinyml.validate",
    "ValidationReport": "tinyml.validate",
    "Monitor": "tinyml.monitor",
}


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'tinyml' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


def main(argv: list[str] | None = None) -> int:
    """Run the `tinyml` command line with `argv` and return its exit code."""
    from tinyml.cli import main as cli_main

    return cli_main(argv)


if TYPE_CHECKING:
    from tinyml.boards import BoardProfile, get_board, list_boards
    from tinyml.convert import ConvertResult, convert_model
    from tinyml.flash import FlashResult, flash_project, prepare_board
    from tinyml.render import RenderResult, render_project
    from tinyml.data import Dataset, load_dataset, load_labels
    from tinyml.errors import TinyMLError
    from tinyml.inspect import FitReport, InspectReport, check_fits, inspect_model
    from tinyml.modelfile import read_model
    from tinyml.compare import CompareReport, compare_variants
    from tinyml.optimize import OptimizeResult, OptimizeSettings, optimize_model
    from tinyml.quantize import QuantizeResult, quantize_model
    from tinyml.deploy import DeployResult, deploy
    from tinyml.link import DeviceLink
    from tinyml.monitor import Monitor
    from tinyml.protocol import DeviceInfo
    from tinyml.validate import ValidationReport, validate_device
    from tinyml.virtual_board import Faults, VirtualBoard
