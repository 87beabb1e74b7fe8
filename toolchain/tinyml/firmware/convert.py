"""A `.tflite` model as C++ source: `<name>_data.h` and `<name>_data.cc` for TFLM firmware.

The array is `alignas(16) const unsigned char`, so it stays in flash and TFLM can read it in
place; the header carries the facts the firmware checks at startup and reports over serial
(schema version, model hash, tensor shapes, quantization, labels). Generated text holds no
date or path, so the same model gives the same bytes on every run and every machine.

Labels may hold any text: each becomes a C string literal in which everything but plain
printable ASCII is an octal escape, and `?` is escaped so that no trigraph (`??/`) can form.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinyml import __version__
from tinyml.core.errors import InputError, ModelError
from tinyml.core.files import atomic_write_text, check_can_write
from tinyml.model.modelfile import ModelFacts, TensorFacts, read_model, read_model_bytes

log = logging.getLogger("tinyml.convert")

# The protocol's TensorInfo holds at most this many dimensions.
MAX_TENSOR_DIMS = 6
_BYTES_PER_LINE = 16

# C and C++ keywords (C++20 and C11), and names the standard library reserves as macros.
_CPP_KEYWORDS = frozenset(
    """alignas alignof and and_eq asm atomic_cancel atomic_commit atomic_noexcept auto bitand bitor bool
    break case catch char char8_t char16_t char32_t class compl concept const consteval constexpr
    constinit const_cast continue co_await co_return co_yield decltype default delete do double
    dynamic_cast else enum explicit export extern false float for friend goto if inline int long
    mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public
    reflexpr register reinterpret_cast requires return short signed sizeof static static_assert
    static_cast struct switch synchronized template this thread_local throw true try typedef typeid
    typename union unsigned using virtual void volatile wchar_t while xor xor_eq restrict _Alignas
    _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local
    NULL EOF assert errno offsetof""".split()
)
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def check_identifier(name: str) -> str:
    """`name` if it can be a C++ namespace and a file-name prefix; InputError otherwise."""
    if not _IDENTIFIER_RE.match(name):
        raise InputError(f"'{name}' is not a valid C identifier", "use letters, digits and underscores, not starting with a digit (e.g. --name model)")
    if name in _CPP_KEYWORDS or name.startswith("__") or re.match(r"^_[A-Z]", name):
        raise InputError(f"'{name}' is a C/C++ keyword or reserved name", "choose another --name, e.g. model")
    return name


def c_string_literal(text: str) -> str:
    """`text` as a C/C++ string literal that reads back as its exact UTF-8 bytes.

    Printable ASCII stays readable; `"`, `\\` and `?` (trigraphs) are escaped; every other byte
    becomes a three-digit octal escape, which (unlike `\\x`) cannot swallow a following digit.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: not text any encoding can hold
        raise InputError(f"label {text!r} is not valid Unicode text", "save the labels as UTF-8 text") from exc
    if b"\0" in data:
        raise InputError(f"label {text!r} contains a NUL character", "remove it: labels are C strings")
    out = []
    for byte in data:
        char = chr(byte)
        if char in '"\\?':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_float_literal(value: float) -> str:
    """A float32 value as a C++ `float` literal that parses back to the same float."""
    if not math.isfinite(value):
        raise ModelError(f"the model has a non-finite quantization parameter ({value})", "re-quantize the model with `tinyml quantize`")
    text = f"{value:.9g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def c_byte_array(data: bytes, indent: str = "    ") -> str:
    """The bytes as comma-separated hex literals, 16 to a line.

    bytes.hex() does the per-byte work in C: a 1 MiB model takes milliseconds, not seconds.
    """
    if not data:
        return ""
    items = "0x" + data.hex(",").replace(",", ", 0x") + ","
    width = len("0x00, ") * _BYTES_PER_LINE  # every item has the same width
    lines = [items[i : i + width].rstrip() for i in range(0, len(items), width)]
    return indent + ("\n" + indent).join(lines)


def _tensor_block(prefix: str, tensor: TensorFacts) -> list[str]:
    if not 1 <= len(tensor.shape) <= MAX_TENSOR_DIMS:
        raise ModelError(
            f"the model's {prefix.lower()} tensor has {len(tensor.shape)} dimensions; the firmware handles 1 to {MAX_TENSOR_DIMS}",
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
    if len(facts.inputs) != 1 or len(facts.outputs) != 1:
        raise ModelError(
            f"the model has {len(facts.inputs)} inputs and {len(facts.outputs)} outputs; the firmware serves models with exactly one of each",
            "export a model with a single input tensor and a single output tensor",
        )
    labels = tuple(labels or ())
    output = facts.outputs[0]
    if labels and len(labels) != output.element_count:
        raise InputError(
            f"there are {len(labels)} labels but the model has {output.element_count} output values",
            "give one label per output class, in the order of the model's outputs",
        )
    label_literals = [c_string_literal(label) for label in labels]

    guard = f"TINYML_{name.upper()}_DATA_H_"
    banner = (
        f"// Generated by tinyml {__version__} (`tinyml convert`) from a model with SHA-256 {facts.sha256}.\n"
        "// Do not edit: convert the model again instead.\n"
    )
    header_lines = [
        banner.rstrip("\n"),
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
        *_tensor_block("Output", output),
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
    # A zero-length array is not C++: without labels the array holds one null pointer.
    labels_body = "\n".join(f"    {literal}," for literal in label_literals) if labels else "    nullptr,"
    source_text = (
        banner
        + f'#include "{name}_data.h"\n\n'
        + f"namespace {name} {{\n\n"
        + f"alignas(16) const unsigned char kData[] = {{\n{c_byte_array(model_bytes)}\n}};\n"
        + f"const unsigned int kDataLen = {len(model_bytes)};\n\n"
        + f"const char* const kLabels[] = {{\n{labels_body}\n}};\n\n"
        + f"}}  // namespace {name}\n"
    )
    return ModelData(
        name=name,
        header_name=f"{name}_data.h",
        header_text="\n".join(header_lines),
        source_name=f"{name}_data.cc",
        source_text=source_text,
        facts=facts,
        labels=labels,
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
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file", "give a folder for --out")
    header = out_dir / data.header_name
    source = out_dir / data.source_name
    for path in (header, source):
        check_can_write(path, force)
    atomic_write_text(header, data.header_text)
    atomic_write_text(source, data.source_text)
    log.info("wrote %s and %s (%d model bytes, %d labels)", header, source, len(model_bytes), len(data.labels))
    return ConvertResult(
        header=header,
        source=source,
        name=name,
        model_size_bytes=len(model_bytes),
        model_hash=data.facts.short_hash,
        label_count=len(data.labels),
    )
