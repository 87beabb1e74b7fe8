"""A board's TFLM library built for the host, so that the host computes what the board computes.

The board runs the Arduino TFLM library its profile pins. Built for x86-64 with g++, the same
sources give the same integer arithmetic: CMSIS-NN takes its portable C path instead of the
Cortex-M4 DSP instructions, and the kernels registered are the board's (CMSIS-NN where the
library has them). Measured: this host build was bit-identical to the same library on an
emulated Cortex-M4 on every model tried, while the TFLM Python runtime (today's TFLM) differs
from it on per-channel FULLY_CONNECTED and on MEAN (docs in tests/test_board_library.py).

`build_host_library(folder)` compiles every C/C++ file of the library except the few that need
the Arduino core (`HOST_EXCLUSIONS`), plus our C API (native/host_library_api.cpp, shipped as
package data), into one shared library, cached per user by tinyml.core.native_build.
`BoardLibraryRunner` runs a model on it through ctypes; `reference_outputs` is the one-call form.

This module takes a library folder, not a tinyml.firmware.library_source.LibrarySource: finding
the board's library is the firmware layer's business.
"""

from __future__ import annotations

import ctypes
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tinyml.core import native_build
from tinyml.core.errors import InputError, ModelError, ToolError

log = logging.getLogger("tinyml.board_library")

API_SOURCE = Path(__file__).with_name("native") / "host_library_api.cpp"
CACHE_KIND = "host_tflm"
SHARED_LIBRARY = "libtinyml_host_tflm.so"
BUILD_INFO = "build.json"
# How a report names what this module runs, after the library's name and version.
HOST_BUILD = "the board's library, built for the host"

# Files under the library's src/ that are not built for the host: (path or folder, why).
HOST_EXCLUSIONS: tuple[tuple[str, str], ...] = (
    ("tensorflow/lite/micro/system_setup.cpp", "writes DebugLog to the Arduino Serial port (Arduino.h); the API provides DebugLog"),
    ("tensorflow/lite/micro/micro_time.cpp", "takes time from peripherals::MicrosecondsCounter() (Arduino micros()); the API provides the two timing functions"),
    ("peripherals/", "board drivers (I2C, I2S, LED, button, audio codec, timing) need the Arduino mbed core"),
    ("test_over_serial/", "a serial test harness that needs the Arduino core"),
)
SOURCE_SUFFIXES = (".c", ".cc", ".cpp")

# -O1: every level costs the same to compile (the C++ front end dominates); -O0 runs 2.7 times
# slower, -O1 as fast as -O2 without -O2's extra transformations (-fstrict-aliasing among them).
# -O0, -O1, -O2 and -Os gave bit-identical outputs on 31 models.
OPT_LEVEL = "-O1"
HOST_DEFINES = (
    # The library's kernel headers pick the CMSIS-NN registrations only when ARDUINO is defined.
    "-DARDUINO",
    # CMSIS-NN's portable C path: no Arm intrinsics headers, no DSP instructions.
    "-D__GNUC_PYTHON__",
    # cmsis_compiler.h (not included on that path) would define these two.
    "-D__RESTRICT=__restrict",
    # Arm's CLZ gives 32 for 0; __builtin_clz(0) is undefined.
    "-D__CLZ(x)=((uint32_t)(x) == 0u ? 32u : (uint32_t)__builtin_clz((uint32_t)(x)))",
)
# -fvisibility=hidden keeps this copy of TFLM from binding to, or being bound by, another TFLM in
# the same process (the TFLM Python runtime).
COMMON_FLAGS = (OPT_LEVEL, "-fPIC", "-fvisibility=hidden", *HOST_DEFINES)
# As the Arduino mbed core compiles C++: gnu++14, no exceptions, no RTTI. With exceptions the
# library does not compile: its placement-new of classes whose operator delete is private
# (TF_LITE_REMOVE_VIRTUAL_DELETE) needs that operator on the unwinding path.
CXX_FLAGS = ("-std=gnu++14", "-fno-exceptions", "-fno-rtti", "-fvisibility-inlines-hidden")
C_FLAGS = ("-std=gnu11",)
# The library's warnings are not ours to fix; our API is held to -Werror, with the library's
# headers as system headers (-isystem) so that their warnings stay out of it.
LIBRARY_WARNINGS = ("-w",)
API_WARNINGS = ("-Wall", "-Wextra", "-Werror")
LINK_FLAGS = ("-shared", "-Wl,-z,defs")  # -z defs: a missing symbol fails the link, not the load
# Nearly every C++ file of the library includes these; precompiled, they halve the build.
PRECOMPILED_HEADERS = (
    "tensorflow/lite/schema/schema_generated.h",
    "tensorflow/lite/kernels/internal/common.h",
    "tensorflow/lite/micro/kernels/kernel_util.h",
    "tensorflow/lite/micro/micro_interpreter.h",
)

# Every model gets an arena larger than any board's: the arena's size does not change the
# arithmetic, and on this TFLM an arena only a little too small crashes instead of failing
# (host_library_api.cpp). calloc maps it lazily: it costs only the pages TFLM touches.
ARENA_BYTES = 64 * 1024 * 1024
# TfLiteType codes (tensorflow/lite/c/c_api_types.h) of the tensor types the runner handles.
NUMPY_TYPES = {1: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16, 9: np.int8}
MAX_RANK = 8


def _build_settings() -> dict:
    """Every setting of a host build; all of it goes into the cache key."""
    return {
        "c": ["gcc", *COMMON_FLAGS, *C_FLAGS],
        "cxx": ["g++", *COMMON_FLAGS, *CXX_FLAGS],
        "link": ["g++", *LINK_FLAGS],
        "library_warnings": list(LIBRARY_WARNINGS),
        "api_warnings": list(API_WARNINGS),
        "precompiled_headers": list(PRECOMPILED_HEADERS),
        "excluded": [path for path, _ in HOST_EXCLUSIONS],
        "compilers": [native_build.compiler_identity("gcc"), native_build.compiler_identity("g++")],
    }


def _library_sources(src: Path) -> list[Path]:
    excluded = tuple(path for path, _ in HOST_EXCLUSIONS)
    return [p for p in native_build.files_under(src, SOURCE_SUFFIXES) if not p.relative_to(src).as_posix().startswith(excluded)]


@dataclass(frozen=True)
class HostLibrary:
    """A board library's host build: the library folder it came from and the shared object."""

    library_dir: Path
    shared_object: Path
    cached: bool  # found in the cache rather than built now

    @property
    def label(self) -> str:
        """The library's name and version as its library.properties gives them (else the folder name)."""
        return library_label(self.library_dir)

    def describe(self) -> str:
        return f"{self.label} ({HOST_BUILD})"

    def build_info(self) -> dict:
        """What build.json recorded: sources, flags, compilers, seconds."""
        return json.loads((self.shared_object.parent / BUILD_INFO).read_text(encoding="utf-8"))

    def builtin_ops(self) -> list[str]:
        """The builtin operators this library has kernels for (its AllOpsResolver), by name."""
        lib = _load(self.shared_object)
        names, code = [], 0
        while (name := lib.tinyml_library_builtin_op(code)) is not None:
            if name:
                names.append(name.decode())
            code += 1
        return names


def library_label(library_dir: Path) -> str:
    """`name version` from the folder's library.properties, else the folder's name."""
    properties = Path(library_dir) / "library.properties"
    values: dict[str, str] = {}
    if properties.is_file():
        for line in properties.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return " ".join(v for v in (values.get("name") or Path(library_dir).name, values.get("version")) if v)


def build_host_library(library_dir: str | Path, *, workers: int | None = None) -> HostLibrary:
    """The host build of the Arduino TFLM library in `library_dir`, built now unless cached.

    The first build takes minutes (about 2 on two idle cores); later calls find it in the user's
    cache in a fraction of a second. A ToolError (exit 4) when g++ is missing or a file does not
    compile; an InputError when the folder has no src/.
    """
    library_dir = Path(library_dir).expanduser().resolve()
    src = library_dir / "src"
    if not src.is_dir():
        raise InputError(f"{library_dir} has no src/ folder: not an Arduino library", "name the folder of the board's TFLM library, e.g. Arduino_TensorFlowLite")
    settings = _build_settings()
    files = [(src, p) for p in native_build.files_under(src)] + [(API_SOURCE.parent, API_SOURCE)]
    key = native_build.content_key(files, settings)
    started = time.monotonic()

    def build(work: Path) -> None:
        log.info("building %s for the host (once; a few minutes)", library_label(library_dir))
        _compile_and_link(src, settings, work, workers)
        sources = _library_sources(src)
        info = {"library_dir": str(library_dir), "sources": len(sources), "settings": settings, "build_seconds": round(time.monotonic() - started, 1)}
        (work / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    folder, cached = native_build.cached_build(CACHE_KIND, library_dir.name, key, build)
    return HostLibrary(library_dir, folder / SHARED_LIBRARY, cached)


def _compile_and_link(src: Path, settings: dict, work: Path, workers: int | None) -> None:
    objects_dir = work / "objects"
    objects_dir.mkdir()
    cxx = settings["cxx"]
    include = f"-I{src}"
    force_include = native_build.precompiled_header([*cxx, *LIBRARY_WARNINGS, include], PRECOMPILED_HEADERS, objects_dir)
    jobs = []
    for source in _library_sources(src):
        output = objects_dir / native_build.object_name(source, src)
        if source.suffix == ".c":
            command = (*settings["c"], *LIBRARY_WARNINGS, include)
        else:
            command = (*cxx, *LIBRARY_WARNINGS, include, *force_include)
        jobs.append(native_build.CompileJob(source, output, (*command, "-c", str(source), "-o", str(output))))
    api_object = objects_dir / "host_library_api.cpp.o"
    jobs.append(native_build.CompileJob(API_SOURCE, api_object, (*cxx, *API_WARNINGS, "-isystem", str(src), "-c", str(API_SOURCE), "-o", str(api_object))))

    def failure(job: native_build.CompileJob, output: str) -> ToolError:
        return ToolError(f"the host build of {src.parent.name} failed at {job.source.name}: {native_build.first_error(output)}", "check that the folder is an unmodified Arduino TFLM library and that g++ works")

    native_build.compile_all(jobs, workers, failure)
    linker, *link_flags = settings["link"]
    link = native_build.CompileJob(api_object, work / SHARED_LIBRARY, (linker, *link_flags, "-o", str(work / SHARED_LIBRARY), *(str(job.output) for job in jobs)))
    native_build.compile_all([link], 1, failure)
    # The objects and the precompiled header (over 200 MB) are not kept: the .so is the result.
    for leftover in objects_dir.iterdir():
        leftover.unlink()
    objects_dir.rmdir()


@cache
def _load(shared_object: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(shared_object))
    handle, size_t, c_int = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    signatures = {
        "tinyml_last_error": (ctypes.c_char_p, []),
        "tinyml_model_create": (handle, [ctypes.c_char_p, size_t, size_t]),
        "tinyml_model_destroy": (None, [handle]),
        "tinyml_model_tensor_count": (c_int, [handle, c_int]),
        "tinyml_model_tensor_info": (c_int, [handle, c_int, c_int, ctypes.POINTER(c_int), ctypes.POINTER(c_int), c_int, ctypes.POINTER(size_t)]),
        "tinyml_model_set_input": (c_int, [handle, c_int, ctypes.c_void_p, size_t]),
        "tinyml_model_invoke": (c_int, [handle]),
        "tinyml_model_get_output": (c_int, [handle, c_int, ctypes.c_void_p, size_t]),
        "tinyml_model_reset": (c_int, [handle]),
        "tinyml_model_arena_used_bytes": (size_t, [handle]),
        "tinyml_library_builtin_op": (ctypes.c_char_p, [c_int]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: type
    byte_size: int


class BoardLibraryRunner:
    """One model on a board library's host build. `invoke` takes and returns raw tensors (input and output 0).

    `arena_used` is TFLM's arena_used_bytes() on this 64-bit host: pointers are 8 bytes here and
    4 on the board, so it is larger than the board's figure for the same model (5,840 B against
    4,900 B for the gesture lab), and it leaves out Prepare's temporary tensors, so it is not the
    smallest arena that works either. `tinyml inspect` measures the board's arena.
    """

    def __init__(self, model_bytes: bytes, library: HostLibrary | str | Path) -> None:
        self.library = library if isinstance(library, HostLibrary) else build_host_library(library)
        self._lib = _load(self.library.shared_object)
        self.model_bytes = bytes(model_bytes)
        self._handle = self._lib.tinyml_model_create(self.model_bytes, len(self.model_bytes), ARENA_BYTES)
        if not self._handle:
            raise ModelError(
                f"the board's library {self.library.label} refuses the model: {self._error()}",
                "run `tinyml inspect --board ID` to see the ops, and replace those the board's library lacks",
            )
        self.inputs = [self._spec(0, i) for i in range(self._lib.tinyml_model_tensor_count(self._handle, 0))]
        self.outputs = [self._spec(1, i) for i in range(self._lib.tinyml_model_tensor_count(self._handle, 1))]

    def _error(self) -> str:
        return self._lib.tinyml_last_error().decode("utf-8", "replace")

    def _spec(self, is_output: int, index: int) -> TensorSpec:
        type_code, dims, size = ctypes.c_int(), (ctypes.c_int * MAX_RANK)(), ctypes.c_size_t()
        rank = self._lib.tinyml_model_tensor_info(self._handle, is_output, index, ctypes.byref(type_code), dims, MAX_RANK, ctypes.byref(size))
        kind = "output" if is_output else "input"
        if rank < 0 or rank > MAX_RANK:
            raise ModelError(f"{kind} tensor {index}: {self._error() or f'rank {rank} is more than {MAX_RANK}'}", "give a model made by `tinyml quantize`")
        if type_code.value not in NUMPY_TYPES:
            raise ModelError(f"{kind} tensor {index} has TfLiteType {type_code.value}, which the runner does not carry", "quantize the model to int8 with `tinyml quantize`")
        return TensorSpec(tuple(dims[:rank]), NUMPY_TYPES[type_code.value], size.value)

    @property
    def arena_used(self) -> int:
        """Bytes of the arena TFLM keeps after allocation, with 64-bit pointers (see the class doc)."""
        return int(self._lib.tinyml_model_arena_used_bytes(self._handle))

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """One inference; `x` is input 0 in any shape with the right element count; returns output 0."""
        spec, out_spec = self.inputs[0], self.outputs[0]
        x = np.ascontiguousarray(np.asarray(x).astype(spec.dtype, copy=False))
        if x.nbytes != spec.byte_size:
            raise ModelError(f"input has {x.size} elements, the model expects {int(np.prod(spec.shape))} {spec.shape}", "reshape the sample to the model's input shape")
        y = np.empty(out_spec.shape, dtype=out_spec.dtype)
        if (
            self._lib.tinyml_model_set_input(self._handle, 0, x.ctypes.data, x.nbytes) != 0
            or self._lib.tinyml_model_invoke(self._handle) != 0
            or self._lib.tinyml_model_get_output(self._handle, 0, y.ctypes.data, y.nbytes) != 0
        ):
            raise ModelError(f"the board's library {self.library.label} failed to run the model: {self._error()}", "run `tinyml inspect --board ID` on the model")
        return y

    def reset(self) -> None:
        """Clears variable tensors, as on a freshly loaded model."""
        if self._lib.tinyml_model_reset(self._handle) != 0:
            raise ModelError(f"resetting the model failed: {self._error()}", "load the model again")

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            self._lib.tinyml_model_destroy(self._handle)
            self._handle = None


def reference_outputs(model_bytes: bytes, inputs: Iterable[np.ndarray] | np.ndarray, library: HostLibrary | str | Path) -> np.ndarray:
    """What the board's library computes for each input (one row per input, raw output 0)."""
    runner = BoardLibraryRunner(model_bytes, library)
    return np.stack([runner.invoke(x).reshape(-1) for x in inputs])
