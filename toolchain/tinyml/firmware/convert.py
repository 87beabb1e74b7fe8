"""A `.tflite` model as C++ source: `<name>_data.h` and `<name>_data.cc` for TFLM firmware.

The array is `alignas(16) const unsigned char`, so it stays in flash and TFLM can read it in
place; the header carries the facts the firmware checks at startup and reports over serial
(schema version, model hash, tensor shapes, quantization, labels). Generated text holds no
date or path, so the same model gives the same bytes on every run and every machine.

The text comes from tinyml.firmware.codegen (banner, literals); the limit on dimensions is the
protocol's (`protocol.MAX_DIMS`), the one the firmware's TensorInfo holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinyml.core.errors import InputError, ModelError
from tinyml.core.files import atomic_write_files, check_can_write
from tinyml.firmware.codegen import banner, c_byte_array, c_float_literal, c_string_literal, check_identifier
from tinyml.firmware.protocol import MAX_DIMS
from tinyml.model.modelfile import ModelFacts, TensorFacts, read_model, read_model_bytes

log = logging.getLogger("tinyml.convert")

CONVERT_COMMAND = "tinyml convert"


@dataclass(frozen=True)
class ModelData:
    """The generated C++ text of one model, before it is written anywhere."""

    name: str
    header_name: str
    header_text: str
    source_name: str
    source_text: str
    facts: ModelFacts
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ConvertResult:
    header: Path
    source: Path
    name: str
    model_size_bytes: int
    model_hash: str
    label_count: int

    def to_dict(self) -> dict[str, object]:
        return {
            "header": str(self.header),
            "source": str(self.source),
            "name": self.name,
            "model_size_bytes": self.model_size_bytes,
            "model_hash": self.model_hash,
            "label_count": self.label_count,
        }


def _tensor_block(prefix: str, tensor: TensorFacts) -> list[str]:
    if not 1 <= len(tensor.shape) <= MAX_DIMS:
        raise ModelError(
            f"the model's {prefix.lower()} tensor has {len(tensor.shape)} dimensions; the firmware handles 1 to {MAX_DIMS}",
            "reshape the model's input and output",
        )
    if any(dim < 1 for dim in tensor.shape):
        raise ModelError(
            f"the model's {prefix.lower()} tensor has a dynamic shape {list(tensor.shape)}",
            "convert the model with a fixed batch size of 1",
        )
    shape = ", ".join(str(d) for d in tensor.shape)
    return [
        f"constexpr int k{prefix}Dims = {len(tensor.shape)};",
        f"constexpr int32_t k{prefix}Shape[] = {{{shape}}};",
        f"constexpr size_t k{prefix}Bytes = {tensor.byte_size};",
        f'constexpr char k{prefix}Dtype[] = "{tensor.dtype}";',
        f"constexpr float k{prefix}Scale = {c_float_literal(tensor.scale)};",
        f"constexpr int32_t k{prefix}ZeroPoint = {tensor.zero_point};",
    ]


def generate_model_data(model_bytes: bytes, *, name: str = "model", labels: Sequence[str] | None = None) -> ModelData:
    """The header and source text for `model_bytes`; checks everything before anything is written."""
    check_identifier(name)
    facts = read_model(model_bytes)
    labels = tuple(labels or ())
    _check_servable(facts, labels)
    top = banner(f"a model with SHA-256 {facts.sha256}", command=CONVERT_COMMAND)
    source_text = _source_text(name, model_bytes, labels, top)  # first: a label that is no C string is said first
    return ModelData(
        name=name,
        header_name=f"{name}_data.h",
        header_text=_header_text(name, facts, labels, top),
        source_name=f"{name}_data.cc",
        source_text=source_text,
        facts=facts,
        labels=labels,
    )


def _check_servable(facts: ModelFacts, labels: tuple[str, ...]) -> None:
    """One input, one output, and one label per output value (or none)."""
    if len(facts.inputs) != 1 or len(facts.outputs) != 1:
        raise ModelError(
            f"the model has {len(facts.inputs)} inputs and {len(facts.outputs)} outputs; the firmware serves models with exactly one of each",
            "export a model with a single input tensor and a single output tensor",
        )
    output = facts.outputs[0]
    if labels and len(labels) != output.element_count:
        raise InputError(
            f"there are {len(labels)} labels but the model has {output.element_count} output values",
            "give one label per output class, in the order of the model's outputs",
        )


def _header_text(name: str, facts: ModelFacts, labels: tuple[str, ...], top: str) -> str:
    """`<name>_data.h`: the array's declaration and the facts the firmware checks at startup."""
    guard = f"TINYML_{name.upper()}_DATA_H_"
    lines = [
        top,
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        f"namespace {name} {{",
        "",
        "// The .tflite flatbuffer. const keeps it in flash; TFLM reads it in place and needs 16-byte alignment.",
        "alignas(16) extern const unsigned char kData[];",
        "extern const unsigned int kDataLen;",
        "",
        "// The TFLite schema version the model was written with; the firmware compares it with TFLITE_SCHEMA_VERSION.",
        f"constexpr unsigned int kSchemaVersion = {facts.schema_version};",
        "// First 16 hex digits of the model's SHA-256: the id the firmware reports and the host checks.",
        f'constexpr char kHash[] = "{facts.short_hash}";',
        "",
        *_tensor_block("Input", facts.inputs[0]),
        "",
        *_tensor_block("Output", facts.outputs[0]),
        "",
        "// Class labels as UTF-8 C strings, one per output value (none when no labels were given).",
        f"constexpr uint16_t kLabelCount = {len(labels)};",
        "extern const char* const kLabels[];",
        "",
        f"}}  // namespace {name}",
        "",
        f"#endif  // {guard}",
        "",
    ]
    return "\n".join(lines)


def _source_text(name: str, model_bytes: bytes, labels: tuple[str, ...], top: str) -> str:
    """`<name>_data.cc`: the model's bytes and the labels."""
    # A zero-length array is not C++: without labels the array holds one null pointer.
    labels_body = "\n".join(f"    {c_string_literal(label)}," for label in labels) if labels else "    nullptr,"
    return (
        top
        + "\n"
        + f'#include "{name}_data.h"\n\n'
        + f"namespace {name} {{\n\n"
        + f"alignas(16) const unsigned char kData[] = {{\n{c_byte_array(model_bytes)}\n}};\n"
        + f"const unsigned int kDataLen = {len(model_bytes)};\n\n"
        + f"const char* const kLabels[] = {{\n{labels_body}\n}};\n\n"
        + f"}}  // namespace {name}\n"
    )


def convert_model(
    model: str | Path | bytes,
    out_dir: str | Path,
    *,
    name: str = "model",
    labels: Sequence[str] | None = None,
    force: bool = False,
) -> ConvertResult:
    """Write `<name>_data.h` and `<name>_data.cc` for `model` (a .tflite path or its bytes) into out_dir."""
    model_bytes = bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else read_model_bytes(model)
    data = generate_model_data(model_bytes, name=name, labels=labels)
    out_dir = Path(out_dir)
    header = out_dir / data.header_name
    source = out_dir / data.source_name
    inputs = [] if isinstance(model, (bytes, bytearray, memoryview)) else [model]
    for path in (header, source):
        check_can_write(path, force, inputs)
    # Both or neither: a half pair would make the next run refuse the tool's own file.
    atomic_write_files({header: data.header_text.encode("utf-8"), source: data.source_text.encode("utf-8")})
    log.info("wrote %s and %s (%d model bytes, %d labels)", header, source, len(model_bytes), len(data.labels))
    return ConvertResult(
        header=header,
        source=source,
        name=name,
        model_size_bytes=len(model_bytes),
        model_hash=data.facts.short_hash,
        label_count=len(data.labels),
    )
