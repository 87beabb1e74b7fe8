"""What pruning and clustering leave in an int8 model's weights, and where that saves bytes.

A pruned or clustered model is not smaller as a plain `.tflite`: a zero or a repeated int8
value still takes one byte. The saving shows in two places, both measured here:

- gzip: zeros and few distinct values compress well, which is what a transfer (OTA, download)
  pays for;
- TFLM's own weight compression (`tflite_micro.compression`, LUT): each kernel becomes a small
  table of values per output channel plus bit-packed indices, decoded at run time by a DECODE
  operator. That is where clustering pays in flash on a board, provided the firmware's TFLM is
  built with compression support (the DECODE kernel).
"""

from __future__ import annotations

import gzip
import logging
import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from tinyml.model.modelfile import read_model

log = logging.getLogger("tinyml.optimize")

# Operators whose input 1 is a weight kernel (the tensors pruning and clustering act on).
KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")

# The widest LUT index TFLM's DECODE supports (7 bits: at most 128 values per channel).
LUT_MAX_BITWIDTH = 7


@dataclass(frozen=True)
class KernelStats:
    """One int8 weight kernel of a `.tflite` model."""

    tensor: int
    name: str
    op: str
    shape: tuple[int, ...]
    elements: int
    zeros: int
    unique_values: int  # distinct int8 values in the whole kernel
    channel_axis: int
    max_unique_per_channel: int  # what LUT compression pays for: distinct values in one output channel

    @property
    def sparsity(self) -> float:
        return self.zeros / self.elements if self.elements else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "shape": list(self.shape), "sparsity": round(self.sparsity, 4)}


def kernel_stats(model_bytes: bytes) -> list[KernelStats]:
    """Zeros and distinct values of every constant int8 kernel, in operator order."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    facts = read_model(model_bytes)
    graph = model_editor.read(bytes(model_bytes)).subgraphs[0]
    seen: set[int] = set()
    stats: list[KernelStats] = []
    for op in facts.operators:
        if op.op not in KERNEL_OPS or len(op.inputs) < 2 or op.inputs[1] < 0 or op.inputs[1] in seen:
            continue
        index = op.inputs[1]
        tensor = facts.tensors[index]
        if not tensor.is_constant or tensor.dtype != "int8":
            continue
        seen.add(index)
        values = np.asarray(graph.tensors[index].array).reshape(tensor.shape)
        axis = tensor.quantized_dimension if len(tensor.scales) > 1 else 0
        per_channel = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        stats.append(
            KernelStats(
                tensor=index,
                name=tensor.name,
                op=op.op,
                shape=tensor.shape,
                elements=int(values.size),
                zeros=int(np.count_nonzero(values == 0)),
                unique_values=int(np.unique(values).size),
                channel_axis=int(axis),
                max_unique_per_channel=max(int(np.unique(row).size) for row in per_channel),
            )
        )
    return stats


def kernel_bytes(model_bytes: bytes, stats: list[KernelStats] | None = None) -> bytes:
    """The int8 kernels' raw bytes, concatenated: the part of a model pruning and clustering act on."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    stats = kernel_stats(model_bytes) if stats is None else stats
    graph = model_editor.read(bytes(model_bytes)).subgraphs[0]
    return b"".join(np.asarray(graph.tensors[s.tensor].array, dtype=np.int8).tobytes() for s in stats)


def overall_sparsity(stats: list[KernelStats]) -> float:
    """Zeros over all kernel weights: the fraction pruning removed."""
    elements = sum(s.elements for s in stats)
    return sum(s.zeros for s in stats) / elements if elements else 0.0


def gzip_size(data: bytes) -> int:
    """Bytes after gzip at the highest level, with a fixed header (mtime 0) so it is deterministic."""
    return len(gzip.compress(bytes(data), compresslevel=9, mtime=0))


@dataclass(frozen=True)
class LutCompression:
    """The model after TFLM LUT compression of the kernels where it saves bytes."""

    model_bytes: bytes | None  # None when no kernel gets smaller
    compressed_tensors: tuple[str, ...]
    note: str

    @property
    def size_bytes(self) -> int | None:
        return None if self.model_bytes is None else len(self.model_bytes)


def _lut_bitwidth(stat: KernelStats) -> int:
    return max(1, math.ceil(math.log2(stat.max_unique_per_channel))) if stat.max_unique_per_channel > 1 else 1


def _compress(model_bytes: bytes, chosen: list[KernelStats]) -> bytes:
    from tflite_micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import spec

    builder = compression.SpecBuilder()
    for stat in chosen:
        builder.add_tensor(0, stat.tensor).with_lut(_lut_bitwidth(stat), spec.PerChannel(axis=stat.channel_axis))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an expanding tensor is measured and left out below
        return bytes(compression.compress(bytes(model_bytes), builder.build()))


def lut_compress(model_bytes: bytes, stats: list[KernelStats] | None = None) -> LutCompression:
    """Compress each kernel with at most 2**7 values per channel where that makes the model smaller.

    Each candidate is tried alone first: for a small kernel, or one with many distinct values,
    the value tables and the DECODE operator cost more than the packed indices save.
    """
    stats = kernel_stats(model_bytes) if stats is None else stats
    candidates = [s for s in stats if _lut_bitwidth(s) <= LUT_MAX_BITWIDTH]
    if not candidates:
        return LutCompression(None, (), f"no kernel has at most {2**LUT_MAX_BITWIDTH} distinct values per channel")
    chosen = [s for s in candidates if len(_compress(model_bytes, [s])) < len(model_bytes)]
    if not chosen:
        return LutCompression(None, (), "the value tables and DECODE operator would cost more than the packed indices save")
    compressed = _compress(model_bytes, chosen)
    if len(compressed) >= len(model_bytes):
        return LutCompression(None, (), "the value tables and DECODE operator would cost more than the packed indices save")
    names = tuple(s.name for s in chosen)
    log.debug("LUT-compressed %d kernels: %d -> %d bytes", len(chosen), len(model_bytes), len(compressed))
    return LutCompression(compressed, names, f"{len(chosen)} of {len(stats)} kernels as LUT ({', '.join(f'{_lut_bitwidth(s)}-bit' for s in chosen)} indices)")
