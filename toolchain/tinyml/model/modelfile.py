"""Reading facts out of a `.tflite` flatbuffer, without TensorFlow.

Every stage that needs to know what a model is (its ops, tensors, shapes, quantization, hash)
asks this module, so that the answer is computed one way. It uses the schema that ships with
the `tflite-micro` package, which costs about 0.3 s to import instead of TensorFlow's 4 s.
"""

from __future__ import annotations

import hashlib
import math
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
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        _check_structure(model, data)
        return _facts(model, data)
    except CorruptModel as exc:
        raise InputError(f"the .tflite file is corrupt: {exc}", CORRUPT_FIX) from exc
    except (IndexError, ValueError, TypeError, KeyError, OverflowError, AttributeError, UnicodeDecodeError, struct.error) as exc:  # offsets out of the file
        raise InputError(f"the .tflite file is corrupt: its flatbuffer does not parse ({type(exc).__name__})", CORRUPT_FIX) from exc


# The custom op of TFLM's model compression (tflite_micro.compression), which decodes LUT-compressed weights.
DECODE_OP = b"TFLM_DECODE"

CORRUPT_FIX = "the file was damaged or cut short: re-create it with `tinyml quantize` (or copy it again)"


class CorruptModel(Exception):
    """A flatbuffer that parses but names what is not there: the reason, for the message."""


def _check_structure(model, data: bytes) -> None:
    """Raise CorruptModel where the model refers to what it does not have.

    The TFLM runtime trusts the flatbuffer: an operator naming a tensor that does not exist,
    or a weight tensor whose buffer holds fewer bytes than its shape needs, makes it read out
    of bounds (a crash, or garbage). The whole object tree was already unpacked by the caller
    (ModelT.InitFromObj), which raises on offsets that leave the file; this checks the indices
    and sizes the runtime would follow.
    """
    opcodes = model.operatorCodes or []
    buffers = model.buffers or []
    type_names = _enum_names("TensorType")
    if not model.subgraphs:
        raise CorruptModel("it has no subgraph")
    decode = {i for i, code in enumerate(opcodes) if code.customCode in (DECODE_OP, DECODE_OP.decode())}
    for g, graph in enumerate(model.subgraphs):
        tensors = graph.tensors or []
        where = f"subgraph {g}"
        # The inputs of TFLM's DECODE op hold compressed data: their shape is the packed one,
        # their quantization the decoded tensor's.
        encoded = {i for op in graph.operators or [] if op.opcodeIndex in decode for i in _ints(op.inputs)}
        for i, t in enumerate(tensors):
            _check_tensor(t, i, where, buffers, type_names, data, encoded=i in encoded)
        for kind, indices in (("input", graph.inputs), ("output", graph.outputs)):
            for index in _ints(indices):
                if not 0 <= index < len(tensors):
                    raise CorruptModel(f"{where} names tensor {index} as an {kind}, of {len(tensors)} tensors")
        for k, op in enumerate(graph.operators or []):
            if not 0 <= op.opcodeIndex < len(opcodes):
                raise CorruptModel(f"operator {k} names operator code {op.opcodeIndex}, of {len(opcodes)}")
            for kind, indices, least in (("input", op.inputs, -1), ("output", op.outputs, 0)):  # -1: an optional input left out
                for index in _ints(indices):
                    if not least <= index < len(tensors):
                        raise CorruptModel(f"operator {k} names tensor {index} as an {kind}, of {len(tensors)} tensors")


def _ints(values) -> list[int]:
    return [] if values is None else [int(v) for v in values]


def _check_tensor(t, i: int, where: str, buffers: list, type_names: dict[int, str], data: bytes, *, encoded: bool) -> None:
    name = f"tensor {i} of {where}"
    if t.type not in type_names:
        raise CorruptModel(f"{name} has the unknown type {t.type}")
    shape = _ints(t.shape)
    if any(d < 0 for d in shape):
        raise CorruptModel(f"{name} has the shape {shape}")
    if not 0 <= t.buffer < max(len(buffers), 1):
        raise CorruptModel(f"{name} names buffer {t.buffer}, of {len(buffers)}")
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale) > 0:
        scales, zero_points = len(q.scale), _ints(q.zeroPoint)
        if len(zero_points) != scales:
            raise CorruptModel(f"{name} has {scales} quantization scales and {len(zero_points)} zero points")
        if not all(math.isfinite(s) and s >= 0 for s in q.scale):
            raise CorruptModel(f"{name} has a quantization scale that is negative or not a number")
        if scales > 1 and not encoded and not (0 <= q.quantizedDimension < len(shape) and shape[q.quantizedDimension] == scales):
            raise CorruptModel(f"{name} has {scales} per-channel scales for its shape {shape} (dimension {q.quantizedDimension})")
        if scales > 1 and any(zero_points):  # TFLite's quantization spec: per-channel tensors are symmetric
            raise CorruptModel(f"{name} is quantized per channel with zero points other than 0")
    if not buffers or t.buffer == 0 or encoded:
        return
    buf = buffers[t.buffer]
    stored = len(buf.data) if buf.data is not None else 0
    if buf.offset > 1:
        if buf.offset + buf.size > len(data):
            raise CorruptModel(f"{name}'s data lies past the end of the file")
        stored = buf.size
    dtype = type_names[t.type].lower()
    if stored and dtype in DTYPE_BYTES and dtype != "int4" and stored != byte_size(tuple(shape), dtype):
        raise CorruptModel(f"{name} is {dtype}{shape} ({byte_size(tuple(shape), dtype)} bytes) but its buffer holds {stored} bytes")


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _facts(model, data: bytes) -> ModelFacts:
    """ModelFacts from the unpacked object tree (schema.ModelT) that _check_structure accepted."""
    op_names = _enum_names("BuiltinOperator")
    type_names = _enum_names("TensorType")
    opcodes = []
    for code in model.operatorCodes or []:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = op_names.get(builtin, f"UNKNOWN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{_text(code.customCode)}"
        opcodes.append(name)

    buffers = model.buffers or []
    graph = model.subgraphs[0]
    tensors = []
    for i, t in enumerate(graph.tensors or []):
        q = t.quantization
        scales: tuple[float, ...] = ()
        zero_points: tuple[int, ...] = ()
        qdim = 0
        if q is not None and q.scale is not None and len(q.scale) > 0:
            scales = tuple(float(v) for v in q.scale)
            zero_points = tuple(_ints(q.zeroPoint))
            qdim = int(q.quantizedDimension)
        is_constant = False
        if 0 < t.buffer < len(buffers):
            buf = buffers[t.buffer]
            is_constant = (buf.data is not None and len(buf.data) > 0) or buf.offset > 1
        tensors.append(
            TensorFacts(
                index=i,
                name=_text(t.name),
                shape=tuple(_ints(t.shape)),
                dtype=type_names.get(t.type, f"type{t.type}").lower(),
                scales=scales,
                zero_points=zero_points,
                quantized_dimension=qdim,
                is_constant=is_constant,
            )
        )
    operators = []
    counts: dict[str, int] = {}
    for op in graph.operators or []:
        name = opcodes[op.opcodeIndex]
        counts[name] = counts.get(name, 0) + 1
        operators.append(OperatorFacts(op=name, inputs=tuple(_ints(op.inputs)), outputs=tuple(_ints(op.outputs))))
    return ModelFacts(
        size_bytes=len(data),
        sha256=model_hash(data),
        schema_version=int(model.version),
        description=_text(model.description),
        tensors=tuple(tensors),
        operators=tuple(operators),
        inputs=tuple(tensors[i] for i in _ints(graph.inputs)),
        outputs=tuple(tensors[i] for i in _ints(graph.outputs)),
        subgraph_count=len(model.subgraphs),
        op_counts=dict(sorted(counts.items())),
    )
