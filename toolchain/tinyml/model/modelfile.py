"""Reading facts out of a `.tflite` flatbuffer, without TensorFlow.

Every stage that needs to know what a model is (its ops, tensors, shapes, quantization, hash)
asks this module, so that the answer is computed one way. It uses the schema that ships with
the `tflite-micro` package, which costs about 0.3 s to import instead of TensorFlow's 4 s.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tinyml.core.errors import InputError

# The TFLite schema version this toolchain reads and the firmware checks (model->version()).
SUPPORTED_SCHEMA_VERSION = 3


# Bytes per element of each TFLite tensor type (numpy-style names): the one table, which the
# serial protocol and the firmware's tinyml_protocol.h use too.
DTYPE_BYTES = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "bool": 1, "int16": 2, "int8": 1, "float64": 8, "uint32": 4, "uint16": 2, "int4": 1}


def element_count(shape: tuple[int, ...]) -> int:
    """Elements of a tensor of `shape` (a dynamic dimension, -1, counts as 1)."""
    count = 1
    for dim in shape:
        count *= max(dim, 1)
    return count


def byte_size(shape: tuple[int, ...], dtype: str) -> int:
    """Bytes of a tensor of `shape` and `dtype` (an unknown dtype counts one byte per element)."""
    return element_count(shape) * DTYPE_BYTES.get(dtype, 1)


@dataclass(frozen=True)
class TensorFacts:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy-style name: "int8", "float32", ...
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    is_constant: bool = False

    @property
    def element_count(self) -> int:
        return element_count(self.shape)

    @property
    def byte_size(self) -> int:
        return byte_size(self.shape, self.dtype)

    @property
    def scale(self) -> float:
        """The per-tensor scale (0.0 when the tensor is not quantized)."""
        return self.scales[0] if self.scales else 0.0

    @property
    def zero_point(self) -> int:
        return self.zero_points[0] if self.zero_points else 0


@dataclass(frozen=True)
class OperatorFacts:
    op: str  # builtin operator name, e.g. "CONV_2D", or "CUSTOM:<name>"
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class ModelFacts:
    size_bytes: int
    sha256: str
    schema_version: int
    description: str
    tensors: tuple[TensorFacts, ...]
    operators: tuple[OperatorFacts, ...]
    inputs: tuple[TensorFacts, ...]
    outputs: tuple[TensorFacts, ...]
    subgraph_count: int
    op_counts: dict[str, int] = field(default_factory=dict)

    @property
    def op_names(self) -> list[str]:
        """Distinct operators, in a stable (sorted) order."""
        return sorted(self.op_counts)

    @property
    def parameter_count(self) -> int:
        return sum(t.element_count for t in self.tensors if t.is_constant)

    @property
    def is_full_int8(self) -> bool:
        """True when inputs, outputs and every non-constant tensor are integer (int8 activations)."""
        if any(t.dtype != "int8" for t in self.inputs + self.outputs):
            return False
        return all(t.dtype in ("int8", "int32") for t in self.tensors if not t.is_constant) and not any(
            t.dtype in ("float32", "float16") for t in self.tensors
        )

    @property
    def short_hash(self) -> str:
        """The model id the firmware reports and `validate` compares: first 16 hex digits of SHA-256."""
        return self.sha256[:16]




@cache
def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


@cache
def _enum_names(enum_name: str) -> dict[int, str]:
    enum_class = getattr(_schema(), enum_name)
    return {value: name for name, value in vars(enum_class).items() if not name.startswith("_") and isinstance(value, int)}


def model_hash(model_bytes: bytes) -> str:
    return hashlib.sha256(model_bytes).hexdigest()


def read_model_bytes(path: str | Path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist", "check the path, or run `tinyml quantize` first")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputError(f"{path} is not a TensorFlow Lite flatbuffer", "give the .tflite file that `tinyml quantize` wrote")
    return data


def read_model(source: str | Path | bytes) -> ModelFacts:
    """Parse a .tflite file (path) or its bytes into ModelFacts."""
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else read_model_bytes(source)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputError("the data is not a TensorFlow Lite flatbuffer", "give the .tflite file that `tinyml quantize` wrote")
    schema = _schema()
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        return _facts(schema, model, data)
    except (IndexError, ValueError, TypeError, KeyError, OverflowError, struct.error) as exc:  # corrupt offsets
        raise InputError("the .tflite flatbuffer is corrupt", "re-create it with `tinyml quantize`") from exc


def _facts(schema, model, data: bytes) -> ModelFacts:
    op_names = _enum_names("BuiltinOperator")
    type_names = _enum_names("TensorType")
    opcodes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = op_names.get(builtin, f"UNKNOWN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.CustomCode() or b'').decode('utf-8', 'replace')}"
        opcodes.append(name)

    if model.SubgraphsLength() < 1:
        raise InputError("the .tflite model has no subgraph", "re-create it with `tinyml quantize`")
    graph = model.Subgraphs(0)
    tensors = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        q = t.Quantization()
        scales: tuple[float, ...] = ()
        zero_points: tuple[int, ...] = ()
        qdim = 0
        if q is not None and q.ScaleLength() > 0:
            scales = tuple(float(q.Scale(j)) for j in range(q.ScaleLength()))
            zero_points = tuple(int(q.ZeroPoint(j)) for j in range(q.ZeroPointLength()))
            qdim = int(q.QuantizedDimension())
        buffer_index = t.Buffer()
        is_constant = False
        if 0 < buffer_index < model.BuffersLength():
            buf = model.Buffers(buffer_index)
            is_constant = buf.DataLength() > 0 or buf.Offset() > 1
        tensors.append(
            TensorFacts(
                index=i,
                name=(t.Name() or b"").decode("utf-8", "replace"),
                shape=tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else (),
                dtype=type_names.get(t.Type(), f"type{t.Type()}").lower(),
                scales=scales,
                zero_points=zero_points,
                quantized_dimension=qdim,
                is_constant=is_constant,
            )
        )
    operators = []
    counts: dict[str, int] = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name = opcodes[op.OpcodeIndex()]
        counts[name] = counts.get(name, 0) + 1
        operators.append(
            OperatorFacts(
                op=name,
                inputs=tuple(int(x) for x in op.InputsAsNumpy()) if op.InputsLength() else (),
                outputs=tuple(int(x) for x in op.OutputsAsNumpy()) if op.OutputsLength() else (),
            )
        )
    inputs = tuple(tensors[int(i)] for i in graph.InputsAsNumpy()) if graph.InputsLength() else ()
    outputs = tuple(tensors[int(i)] for i in graph.OutputsAsNumpy()) if graph.OutputsLength() else ()
    return ModelFacts(
        size_bytes=len(data),
        sha256=model_hash(data),
        schema_version=int(model.Version()),
        description=(model.Description() or b"").decode("utf-8", "replace"),
        tensors=tuple(tensors),
        operators=tuple(operators),
        inputs=inputs,
        outputs=outputs,
        subgraph_count=int(model.SubgraphsLength()),
        op_counts=dict(sorted(counts.items())),
    )
