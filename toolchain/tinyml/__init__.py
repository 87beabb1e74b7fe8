"""tinyml-toolchain: a trained Keras model to validated TensorFlow Lite Micro firmware.

The notebook API is the same set of functions the `tinyml` command calls. They are imported
lazily, so `import tinyml` stays fast and TensorFlow loads only for the stages that need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it, in the order of the layers (docs/architecture.md)
_API: dict[str, str] = {
    "TinyMLError": "tinyml.core.errors",
    "Dataset": "tinyml.core.data",
    "load_dataset": "tinyml.core.data",
    "load_labels": "tinyml.core.data",
    "read_model": "tinyml.model.modelfile",
    "quantize_model": "tinyml.model.quantize",
    "QuantizeResult": "tinyml.model.quantize",
    "inspect_model": "tinyml.model.inspect",
    "check_fits": "tinyml.model.inspect",
    "InspectReport": "tinyml.model.inspect",
    "FitReport": "tinyml.model.inspect",
    "optimize_model": "tinyml.optimize.tfmot",
    "OptimizeSettings": "tinyml.optimize.tfmot",
    "OptimizeResult": "tinyml.optimize.tfmot",
    "compare_variants": "tinyml.optimize.compare",
    "CompareReport": "tinyml.optimize.compare",
    "BoardProfile": "tinyml.firmware.boards",
    "get_board": "tinyml.firmware.boards",
    "list_boards": "tinyml.firmware.boards",
    "ConvertResult": "tinyml.firmware.convert",
    "convert_model": "tinyml.firmware.convert",
    "RenderResult": "tinyml.firmware.render",
    "render_project": "tinyml.firmware.render",
    "DeviceInfo": "tinyml.firmware.protocol",
    "FlashResult": "tinyml.device.flash",
    "flash_project": "tinyml.device.flash",
    "prepare_board": "tinyml.device.flash",
    "DeviceLink": "tinyml.device.link",
    "Monitor": "tinyml.device.monitor",
    "VirtualBoard": "tinyml.device.virtual_board",
    "Faults": "tinyml.device.virtual_board",
    "validate_device": "tinyml.validation.validate",
    "ValidationReport": "tinyml.validation.report",
    "deploy": "tinyml.deploy",
    "DeployResult": "tinyml.deploy",
    "load_rig": "tinyml.rig.rigfile",
    "discover_boards": "tinyml.rig.discover",
    "write_discovered": "tinyml.rig.discover",
    "run_rig": "tinyml.rig.run",
    "RigRunResult": "tinyml.rig.run",
    "write_dashboard": "tinyml.rig.report",
    "write_junit": "tinyml.rig.report",
    "board_history": "tinyml.rig.report",
    "ensure_labgrid": "tinyml.rig.labgrid",
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
    from tinyml.core.data import Dataset, load_dataset, load_labels
    from tinyml.core.errors import TinyMLError
    from tinyml.deploy import DeployResult, deploy
    from tinyml.device.flash import FlashResult, flash_project, prepare_board
    from tinyml.device.link import DeviceLink
    from tinyml.device.monitor import Monitor
    from tinyml.device.virtual_board import Faults, VirtualBoard
    from tinyml.firmware.boards import BoardProfile, get_board, list_boards
    from tinyml.firmware.convert import ConvertResult, convert_model
    from tinyml.firmware.protocol import DeviceInfo
    from tinyml.firmware.render import RenderResult, render_project
    from tinyml.model.inspect import FitReport, InspectReport, check_fits, inspect_model
    from tinyml.model.modelfile import read_model
    from tinyml.model.quantize import QuantizeResult, quantize_model
    from tinyml.optimize.compare import CompareReport, compare_variants
    from tinyml.optimize.tfmot import OptimizeResult, OptimizeSettings, optimize_model
    from tinyml.rig.discover import discover_boards, write_discovered
    from tinyml.rig.labgrid import ensure_labgrid
    from tinyml.rig.report import board_history, write_dashboard, write_junit
    from tinyml.rig.rigfile import load_rig
    from tinyml.rig.run import RigRunResult, run_rig
    from tinyml.validation.report import ValidationReport
    from tinyml.validation.validate import validate_device
