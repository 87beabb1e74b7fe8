"""The one table of TFLite builtin ops this toolchain knows, and what each costs on a Cortex-M.

For every builtin op that TFLM has a kernel for, the table holds:

- `resolver_method`: the `tflite::MicroMutableOpResolver<N>` method that registers it
  (`AddConv2D`, ...). The firmware's resolver is generated from this table.
- `int8_kernel`: whether TFLM's kernel accepts int8 activations (read from the kernels'
  type checks in tensorflow/tflite-micro `tensorflow/lite/micro/kernels/`). Ops without one
  (FLOOR, EXP, SIN, ...) only appear in float models, which TFLM on a classroom board cannot
  afford and `tinyml quantize` refuses.
- `code_bytes`: an ESTIMATE of the kernel's code size on a Cortex-M4F built with -Os and
  CMSIS-NN (Arduino Nano 33 BLE class). They come from map files of small TFLM builds and are
  rounded up; they are for a flash budget, not a promise. Ops with several CMSIS-NN variants
  (convolutions) are the large ones.
- `scratch`: an ESTIMATE of the scratch buffer the CMSIS-NN kernel asks for on a Cortex-M with
  the DSP extension (`arm_convolve_s8_get_buffer_size` and friends). The TFLM Python runtime
  runs the reference kernels, which ask for none of these, so `tinyml inspect` adds them to the
  arena it measures.

Method names follow the current upstream header
`tensorflow/lite/micro/micro_mutable_op_resolver.h` and the kernels compiled into the
installed `tflite-micro` runtime; the classic ones (the conv, pool, dense, softmax, reshape and
quantize family) are the same in the Arduino_TensorFlowLite library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from tinyml.core.errors import ModelError
from tinyml.model.modelfile import OperatorFacts, TensorFacts

INT16_BYTES = 2
INT32_BYTES = 4

# Code-size estimate for a kernel whose row below does not state one.
DEFAULT_CODE_BYTES = 3 * 1024

ScratchEstimate = Callable[[OperatorFacts, Sequence[TensorFacts]], int]


def _tensor(tensors: Sequence[TensorFacts], op: OperatorFacts, position: int) -> TensorFacts | None:
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    return tensors[op.inputs[position]]


def _conv_scratch(op: OperatorFacts, tensors: Sequence[TensorFacts]) -> int:
    # arm_convolve_s8_get_buffer_size (DSP): 2 * input_channels * kernel_h * kernel_w int16 values
    # for the im2col buffer. The 1x1 fast path needs none; the estimate keeps the general case.
    weights = _tensor(tensors, op, 1)
    if weights is None or len(weights.shape) != 4:
        return 0
    _, kernel_h, kernel_w, in_channels = weights.shape
    return 2 * in_channels * kernel_h * kernel_w * INT16_BYTES


def _depthwise_scratch(op: OperatorFacts, tensors: Sequence[TensorFacts]) -> int:
    # arm_depthwise_conv_s8_opt_get_buffer_size: input_channels * kernel_h * kernel_w int16 values.
    data = _tensor(tensors, op, 0)
    weights = _tensor(tensors, op, 1)
    if data is None or weights is None or len(weights.shape) != 4 or not data.shape:
        return 0
    _, kernel_h, kernel_w, _ = weights.shape
    return data.shape[-1] * kernel_h * kernel_w * INT16_BYTES


def _average_pool_scratch(op: OperatorFacts, tensors: Sequence[TensorFacts]) -> int:
    # arm_avgpool_s8_get_buffer_size (DSP): one int32 accumulator per channel.
    data = _tensor(tensors, op, 0)
    if data is None or not data.shape:
        return 0
    return data.shape[-1] * INT32_BYTES


@dataclass(frozen=True)
class OpInfo:
    op: str  # builtin operator name as in the flatbuffer schema, e.g. "CONV_2D"
    resolver_method: str  # MicroMutableOpResolver method, e.g. "AddConv2D"
    int8_kernel: bool
    code_bytes: int = DEFAULT_CODE_BYTES  # estimate, Cortex-M4F, -Os, CMSIS-NN
    scratch: ScratchEstimate | None = None

    def scratch_bytes(self, op: OperatorFacts, tensors: Sequence[TensorFacts]) -> int:
        """Estimated CMSIS-NN scratch buffer of one use of this op (0 when it needs none)."""
        return self.scratch(op, tensors) if self.scratch is not None else 0


def _rows() -> list[OpInfo]:
    k = 1024
    return [
        # The classic layers of small classifiers: CMSIS-NN kernels on Cortex-M.
        OpInfo("CONV_2D", "AddConv2D", True, 8 * k, _conv_scratch),
        OpInfo("DEPTHWISE_CONV_2D", "AddDepthwiseConv2D", True, 8 * k, _depthwise_scratch),
        OpInfo("FULLY_CONNECTED", "AddFullyConnected", True, 3 * k),
        OpInfo("AVERAGE_POOL_2D", "AddAveragePool2D", True, 3 * k, _average_pool_scratch),
        OpInfo("MAX_POOL_2D", "AddMaxPool2D", True, 3 * k),
        OpInfo("SOFTMAX", "AddSoftmax", True, 3 * k),
        OpInfo("ADD", "AddAdd", True, 3 * k),
        OpInfo("MUL", "AddMul", True, 3 * k),
        OpInfo("SVDF", "AddSvdf", True, 5 * k),
        OpInfo("TRANSPOSE_CONV", "AddTransposeConv", True, 6 * k),
        OpInfo("UNIDIRECTIONAL_SEQUENCE_LSTM", "AddUnidirectionalSequenceLSTM", True, 14 * k),
        OpInfo("BATCH_MATMUL", "AddBatchMatMul", True, 5 * k),
        # Shape and data movement: small.
        OpInfo("RESHAPE", "AddReshape", True, 1 * k),
        OpInfo("SQUEEZE", "AddSqueeze", True, 1 * k),
        OpInfo("EXPAND_DIMS", "AddExpandDims", True, 1 * k),
        OpInfo("SHAPE", "AddShape", True, 1 * k),
        OpInfo("PACK", "AddPack", True, 2 * k),
        OpInfo("UNPACK", "AddUnpack", True, 2 * k),
        OpInfo("CONCATENATION", "AddConcatenation", True, 2 * k),
        OpInfo("SPLIT", "AddSplit", True, 2 * k),
        OpInfo("SPLIT_V", "AddSplitV", True, 2 * k),
        OpInfo("SLICE", "AddSlice", True, 2 * k),
        OpInfo("STRIDED_SLICE", "AddStridedSlice", True, 3 * k),
        OpInfo("TRANSPOSE", "AddTranspose", True, 2 * k),
        OpInfo("PAD", "AddPad", True, 2 * k),
        OpInfo("PADV2", "AddPadV2", True, 2 * k),
        OpInfo("MIRROR_PAD", "AddMirrorPad", True, 2 * k),
        OpInfo("GATHER", "AddGather", True, 2 * k),
        OpInfo("GATHER_ND", "AddGatherNd", True, 2 * k),
        OpInfo("BATCH_TO_SPACE_ND", "AddBatchToSpaceNd", True, 2 * k),
        OpInfo("SPACE_TO_BATCH_ND", "AddSpaceToBatchNd", True, 2 * k),
        OpInfo("DEPTH_TO_SPACE", "AddDepthToSpace", True, 2 * k),
        OpInfo("SPACE_TO_DEPTH", "AddSpaceToDepth", True, 2 * k),
        OpInfo("BROADCAST_TO", "AddBroadcastTo", True, 2 * k),
        OpInfo("BROADCAST_ARGS", "AddBroadcastArgs", True, 1 * k),
        OpInfo("REVERSE_V2", "AddReverseV2", True, 2 * k),
        OpInfo("FILL", "AddFill", True, 1 * k),
        OpInfo("ZEROS_LIKE", "AddZerosLike", False, 1 * k),
        OpInfo("RESIZE_BILINEAR", "AddResizeBilinear", True, 3 * k),
        OpInfo("RESIZE_NEAREST_NEIGHBOR", "AddResizeNearestNeighbor", True, 2 * k),
        # Quantization boundaries.
        OpInfo("QUANTIZE", "AddQuantize", True, 3 * k),
        OpInfo("DEQUANTIZE", "AddDequantize", True, 2 * k),
        OpInfo("CAST", "AddCast", True, 2 * k),
        # Activations and element-wise arithmetic.
        OpInfo("RELU", "AddRelu", True, 1 * k),
        OpInfo("RELU6", "AddRelu6", True, 1 * k),
        OpInfo("LEAKY_RELU", "AddLeakyRelu", True, 2 * k),
        OpInfo("PRELU", "AddPrelu", True, 2 * k),
        OpInfo("ELU", "AddElu", True, 2 * k),
        OpInfo("HARD_SWISH", "AddHardSwish", True, 3 * k),
        OpInfo("LOGISTIC", "AddLogistic", True, 3 * k),
        OpInfo("TANH", "AddTanh", True, 3 * k),
        OpInfo("LOG_SOFTMAX", "AddLogSoftmax", True, 3 * k),
        OpInfo("SUB", "AddSub", True, 3 * k),
        OpInfo("DIV", "AddDiv", True, 2 * k),
        OpInfo("ADD_N", "AddAddN", True, 2 * k),
        OpInfo("SQUARED_DIFFERENCE", "AddSquaredDifference", True, 2 * k),
        OpInfo("MAXIMUM", "AddMaximum", True, 2 * k),
        OpInfo("MINIMUM", "AddMinimum", True, 2 * k),
        OpInfo("ABS", "AddAbs", True, 1 * k),
        OpInfo("RSQRT", "AddRsqrt", True, 2 * k),
        OpInfo("L2_NORMALIZATION", "AddL2Normalization", True, 2 * k),
        OpInfo("SELECT_V2", "AddSelectV2", True, 2 * k),
        # Reductions and comparisons.
        OpInfo("MEAN", "AddMean", True, 5 * k),
        OpInfo("SUM", "AddSum", True, 5 * k),
        OpInfo("REDUCE_MAX", "AddReduceMax", True, 4 * k),
        OpInfo("REDUCE_MIN", "AddReduceMin", True, 4 * k),
        OpInfo("ARG_MAX", "AddArgMax", True, 1 * k),
        OpInfo("ARG_MIN", "AddArgMin", True, 1 * k),
        OpInfo("CUMSUM", "AddCumSum", True, 2 * k),
        OpInfo("EQUAL", "AddEqual", True, 2 * k),
        OpInfo("NOT_EQUAL", "AddNotEqual", True, 2 * k),
        OpInfo("GREATER", "AddGreater", True, 2 * k),
        OpInfo("GREATER_EQUAL", "AddGreaterEqual", True, 2 * k),
        OpInfo("LESS", "AddLess", True, 2 * k),
        OpInfo("LESS_EQUAL", "AddLessEqual", True, 2 * k),
        OpInfo("LOGICAL_AND", "AddLogicalAnd", False, 1 * k),
        OpInfo("LOGICAL_OR", "AddLogicalOr", False, 1 * k),
        OpInfo("LOGICAL_NOT", "AddLogicalNot", False, 1 * k),
        # Float-only kernels in TFLM.
        OpInfo("EXP", "AddExp", False, 2 * k),
        OpInfo("LOG", "AddLog", False, 2 * k),
        OpInfo("SIN", "AddSin", False, 2 * k),
        OpInfo("COS", "AddCos", False, 2 * k),
        OpInfo("SQRT", "AddSqrt", False, 2 * k),
        OpInfo("SQUARE", "AddSquare", False, 1 * k),
        OpInfo("NEG", "AddNeg", False, 1 * k),
        OpInfo("FLOOR", "AddFloor", False, 1 * k),
        OpInfo("CEIL", "AddCeil", False, 1 * k),
        OpInfo("ROUND", "AddRound", False, 1 * k),
        OpInfo("FLOOR_DIV", "AddFloorDiv", False, 1 * k),
        OpInfo("FLOOR_MOD", "AddFloorMod", False, 1 * k),
        OpInfo("L2_POOL_2D", "AddL2Pool2D", False, 2 * k),
        # Control flow and variables: they work, but a classroom model should not need them.
        OpInfo("IF", "AddIf", True, 2 * k),
        OpInfo("WHILE", "AddWhile", True, 2 * k),
        OpInfo("CALL_ONCE", "AddCallOnce", True, 1 * k),
        OpInfo("VAR_HANDLE", "AddVarHandle", True, 1 * k),
        OpInfo("READ_VARIABLE", "AddReadVariable", True, 1 * k),
        OpInfo("ASSIGN_VARIABLE", "AddAssignVariable", True, 1 * k),
        OpInfo("EMBEDDING_LOOKUP", "AddEmbeddingLookup", True, 2 * k),
    ]


OPS: Mapping[str, OpInfo] = MappingProxyType({row.op: row for row in _rows()})

# What to change in a Keras model that produced an op TFLM has no kernel for.
_FIXES: Mapping[str, str] = MappingProxyType(
    {
        "GELU": "use activation='relu' instead of 'gelu'",
        # TFLM has an int8 ELU kernel, but the TFLite converter keeps ELU in float.
        "ELU": "use activation='relu' or 'leaky_relu' instead of 'elu' (the converter does not quantize ELU)",
        "TILE": "replace the tiling (keras.ops.tile / RepeatVector) with a Reshape or broadcasting arithmetic",
        "TOPK_V2": "take the arg-max on the host, or use ARG_MAX",
        "LSTM": "use a Keras LSTM with unroll=False so the converter emits UNIDIRECTIONAL_SEQUENCE_LSTM, or a Conv1D model",
        "BIDIRECTIONAL_SEQUENCE_LSTM": "use a one-directional LSTM or a Conv1D model",
        "BIDIRECTIONAL_SEQUENCE_RNN": "use a one-directional recurrent layer or a Conv1D model",
        "UNIDIRECTIONAL_SEQUENCE_RNN": "use a Conv1D model or an LSTM",
        "RNN": "use a Conv1D model or an LSTM",
        "CONV_3D": "use Conv2D layers (fold the extra axis into channels)",
        "POW": "replace x**y with multiplication by itself (x*x) or a lookup",
        "RANGE": "compute the sequence at training time and store it as a constant",
        "ONE_HOT": "one-hot encode on the host, outside the model",
        "LOCAL_RESPONSE_NORMALIZATION": "use BatchNormalization (folded into the convolution) instead",
    }
)


def op_info(op: str) -> OpInfo:
    """The table row of `op`; ModelError naming the op and what to change if TFLM lacks it."""
    info = OPS.get(op)
    if info is None:
        raise ModelError(f"the model uses the op {op}, which TensorFlow Lite Micro has no kernel for", fix_for(op))
    return info


def resolver_method(op: str) -> str:
    """The MicroMutableOpResolver method that registers `op` (e.g. "CONV_2D" -> "AddConv2D")."""
    return op_info(op).resolver_method


def resolver_methods(ops: Iterable[str]) -> list[str]:
    """The resolver methods for a set of ops, deduplicated, in a stable order (for generated code)."""
    return sorted({resolver_method(op) for op in ops})


def fix_for(op: str) -> str:
    """What to change in the model so that `op` is no longer needed (or becomes int8)."""
    if op in _FIXES:
        return _FIXES[op]
    if op.startswith("CUSTOM:Flex"):
        return "the converter fell back to TensorFlow ops (SELECT_TF_OPS); keep to layers with TFLite builtins and convert with TFLITE_BUILTINS_INT8 only"
    if op.startswith("CUSTOM:"):
        return "custom ops need their own kernel in the firmware; rebuild the model from standard Keras layers"
    info = OPS.get(op)
    if info is not None and not info.int8_kernel:
        return f"TFLM runs {op} only in float; remove the layer that produces it, or move that computation to the host, then quantize again"
    return "replace the layer that produces it with standard Dense/Conv/Pooling/activation layers and quantize again"


def unsupported_reason(op: str) -> str | None:
    """Why a full-int8 TFLM firmware cannot run `op`, or None if it can."""
    info = OPS.get(op)
    if info is None:
        return f"TensorFlow Lite Micro has no kernel for {op}"
    if not info.int8_kernel:
        return f"TensorFlow Lite Micro has no int8 kernel for {op}"
    return None


def kernel_code_bytes(ops: Iterable[str]) -> int:
    """Estimated flash of the kernels for these ops (each distinct op counted once)."""
    return sum(OPS[op].code_bytes if op in OPS else DEFAULT_CODE_BYTES for op in set(ops))


def scratch_bytes(op: OperatorFacts, tensors: Sequence[TensorFacts]) -> int:
    """Estimated CMSIS-NN scratch buffer of one operator instance (0 for ops TFLM lacks)."""
    info = OPS.get(op.op)
    return info.scratch_bytes(op, tensors) if info is not None else 0
