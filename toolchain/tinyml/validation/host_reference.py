"""Which host run the device is judged against, and what the other host runs may differ by.

The verdict of `validate` compares the device with what the board's own TFLM library computes:
that library built for the host (tinyml.model.board_library), found through
tinyml.firmware.library_source (`--library DIR`, $TINYML_TFLM_LIBRARY, or the copy PlatformIO
downloaded for the rendered project). When no library source is found, the verdict falls back
to the TFLM Python runtime, and the report says plainly that this is not the board's library:
today's TFLM computes per-channel FULLY_CONNECTED and MEAN differently from the pinned one.

The TFLite reference and the TFLM runtime stay in the report beside it, with the tolerances
measured between them and the board's library (`MEASURED_TOLERANCES`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinyml.core.errors import ToolError
from tinyml.model.board_library import HOST_BUILD

log = logging.getLogger("tinyml.validate")

BOARD_LIBRARY = "board_library"
TFLM_RUNTIME = "tflm_runtime"

# What each host run was measured to differ by, on single-op int8 models and the labs' models
# (100 random inputs each; tests/test_board_library.py keeps the op-level facts).
MEASURED_TOLERANCES = {
    "device_vs_board_library": "exact: the host build was bit-identical to the same library on an emulated Cortex-M4 on every model tried",
    "device_vs_tflm": (
        "the TFLM runtime is today's TFLM, not the pinned library: per-channel FULLY_CONNECTED 48-69% exact (up to 27 LSB, "
        "the pinned library applies one weight scale to every output channel), MEAN 88-93% exact (1 LSB); "
        "CONV_2D, DEPTHWISE_CONV_2D, pools, per-tensor FULLY_CONNECTED, SOFTMAX, ADD exact"
    ),
    "device_vs_reference": "as the TFLM runtime, plus up to 1 LSB on a few inputs in 1,000 (TFLite's requantization rounding, tinyml.model.reference)",
    "tflm_vs_reference": "up to 1 LSB on 0-4 inputs in 1,000 (requantization rounding, tinyml.model.reference)",
}


@dataclass(frozen=True)
class HostReference:
    """The host run whose outputs decide the verdict, named as the report names it."""

    kind: str  # BOARD_LIBRARY or TFLM_RUNTIME
    name: str
    note: str  # where the library came from, or why it is not the board's library
    library_dir: str | None = None

    @property
    def is_board_library(self) -> bool:
        return self.kind == BOARD_LIBRARY

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def runner(self, model_bytes: bytes) -> Any:
        """The board library's runner for the model (builds the library the first time: minutes)."""
        from tinyml.model.board_library import BoardLibraryRunner, build_host_library

        assert self.library_dir is not None, "only a board-library reference has a runner of its own"
        library = build_host_library(self.library_dir)
        log.info("reference: %s (%s)", self.name, "cached host build" if library.cached else "built now")
        return BoardLibraryRunner(model_bytes, library)


def choose_reference(library: str | Path | None = None, project_dir: str | Path | None = None) -> HostReference:
    """The board's library if a source is found (`library`, $TINYML_TFLM_LIBRARY, the project's
    PlatformIO copy), else the TFLM runtime with a plain note. A `library` that is given but is
    not a TFLM library is an InputError, not a fallback."""
    from tinyml.firmware.library_source import find_library

    try:
        source = find_library(library, project_dir)
    except ToolError as missing:
        if library:
            raise
        return tflm_runtime_reference(f"not the board's library: {missing.problem}; to compare with the board's library, {missing.fix}")
    return HostReference(
        kind=BOARD_LIBRARY,
        name=f"{source.name} {source.version} ({HOST_BUILD})",
        note=f"found by {source.found_by} at {source.path}",
        library_dir=str(source.path),
    )


def tflm_runtime_reference(note: str) -> HostReference:
    from tinyml.model.tflm import runtime_version

    return HostReference(kind=TFLM_RUNTIME, name=f"TFLM Python runtime (tflite-micro {runtime_version()})", note=note)
