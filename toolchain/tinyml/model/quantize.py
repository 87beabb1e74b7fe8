"""Full-integer int8 quantization of a Keras model, verified on the flatbuffer it produces.

`quantize_model` takes a Keras 3 model, a tf_keras (Keras 2) model (what TFMOT's pruning,
clustering and QAT give), or a path to a `.keras`, `.h5` or SavedModel folder, and converts it
with `TFLITE_BUILTINS_INT8` only, int8 input and output. Before anything is written it reads the
result back (tinyml.model.modelfile) and refuses a model that is not int8 end to end: the converter
silently wraps ops without an int8 kernel in DEQUANTIZE/QUANTIZE and leaves them in float, and
TFLM cannot run such hybrid models.

The model is exported with a fixed batch of 1 (a signature of shape [1, ...]): with Keras 3's
dynamic batch the converter emits SHAPE/STRIDED_SLICE/PACK ops to rebuild the batch dimension
at run time, which cost flash and arena on a microcontroller for nothing.

With evaluation data the float model and the int8 model (the bit-exact TFLite reference, no
XNNPACK) run on the same samples, so the accuracy the quantization costs is visible.

The converter quantizes Dense (FULLY_CONNECTED) weights per output channel by default. TFLM
computes that only since 2024-09-27 (tflite-micro PR 2673): older libraries silently use the first
channel's scale for all. `per_channel_dense=False` asks the converter for one scale per Dense
weight tensor (convolutions stay per channel), checks that it got it, and, with evaluation data,
also evaluates the per-channel model, so the accuracy per-tensor weights cost is measured, not
guessed. Which setting a board needs is a fact of its library (tinyml.firmware.boards.quantize_options).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.model import ops
from tinyml.core.data import Dataset, check_class_labels, check_finite, class_count
from tinyml.core.errors import InputError, ModelError, first_line
from tinyml.core.files import atomic_write_bytes, check_can_write
from tinyml.model.inspect import per_channel_fully_connected
from tinyml.model.keras import KERAS_SUFFIXES, load_keras_file
from tinyml.model.converter_process import SAVED_MODEL_DIR, ConverterChild
from tinyml.model.modelfile import ModelFacts, TensorFacts, read_model
from tinyml.model.tensorflow_import import import_tensorflow
from tinyml.model.quantization import dequantize, predicted_classes, quantize_input

log = logging.getLogger("tinyml.quantize")

# Fewer samples than this cannot give the converter trustworthy activation ranges.
MIN_CALIBRATION_SAMPLES = 10
# TFLite's guidance is 100 to 500 representative samples; more only costs time.
RECOMMENDED_CALIBRATION_SAMPLES = 100
MAX_CALIBRATION_SAMPLES = 500
PREDICT_BATCH = 256

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class QuantizeResult:
    tflite_bytes: bytes
    facts: ModelFacts
    float_size_bytes: int  # the same model converted to float32 TFLite
    calibration_samples: int
    out: Path | None = None
    eval_samples: int = 0
    float_accuracy: float | None = None  # Keras float model, on the eval samples with labels
    int8_accuracy: float | None = None  # TFLite reference (no XNNPACK), same samples
    top1_agreement: float | None = None  # fraction of eval samples where float and int8 pick the same class
    output_mean_abs_error: float | None = None  # float output vs dequantized int8 output
    per_channel_dense: bool = True  # Dense weights quantized per output channel (else per tensor)
    # With per-tensor Dense weights and evaluation data: the per-channel model on the same samples.
    per_channel_int8_accuracy: float | None = None
    per_channel_top1_agreement: float | None = None

    @property
    def int8_size_bytes(self) -> int:
        return len(self.tflite_bytes)

    @property
    def size_ratio(self) -> float:
        """How many times smaller the int8 model is than the float one."""
        return self.float_size_bytes / self.int8_size_bytes

    @property
    def ops(self) -> dict[str, int]:
        return dict(self.facts.op_counts)

    @property
    def input(self) -> TensorFacts:
        return self.facts.inputs[0]

    @property
    def output(self) -> TensorFacts:
        return self.facts.outputs[0]

    def to_dict(self) -> dict[str, Any]:
        def tensor(t: TensorFacts) -> dict[str, Any]:
            return {"shape": list(t.shape), "dtype": t.dtype, "scale": t.scale, "zero_point": t.zero_point}

        return {
            "out": str(self.out) if self.out is not None else None,
            "model_id": self.facts.short_hash,
            "float_size_bytes": self.float_size_bytes,
            "int8_size_bytes": self.int8_size_bytes,
            "size_ratio": round(self.size_ratio, 3),
            "ops": self.ops,
            "input": tensor(self.input),
            "output": tensor(self.output),
            "calibration_samples": self.calibration_samples,
            "eval_samples": self.eval_samples,
            "float_accuracy": self.float_accuracy,
            "int8_accuracy": self.int8_accuracy,
            "top1_agreement": self.top1_agreement,
            "output_mean_abs_error": self.output_mean_abs_error,
            "dense_weights": "per-channel" if self.per_channel_dense else "per-tensor",
            "per_channel_int8_accuracy": self.per_channel_int8_accuracy,
            "per_channel_top1_agreement": self.per_channel_top1_agreement,
        }


# ---------------------------------------------------------------- the float model, whatever its kind


class _FloatModel:
    """A Keras 3, tf_keras or SavedModel model behind one interface: input spec, predict, export."""

    def __init__(self, kind: str, obj: Any, name: str, input_shape: tuple[int | None, ...], input_dtype: str) -> None:
        self.kind = kind  # "keras", "tf_keras" or "saved_model"
        self.obj = obj
        self.name = name
        self.input_shape = input_shape  # without the batch axis; None where dynamic
        self.input_dtype = input_dtype

    def output_units(self) -> int | None:
        """Elements of the output's last axis, None where the model does not say."""
        if self.kind == "saved_model":
            outputs = self.obj[0].structured_outputs
            specs = list(outputs.values()) if isinstance(outputs, dict) else [outputs]
        else:
            specs = list(getattr(self.obj, "outputs", None) or [])
        shape = _dims(specs[0].shape) if len(specs) == 1 and hasattr(specs[0], "shape") else ()
        return shape[-1] if shape else None

    def predict(self, x: np.ndarray) -> np.ndarray:
        tf = import_tensorflow()

        parts = []
        for start in range(0, len(x), PREDICT_BATCH):
            batch = tf.constant(x[start : start + PREDICT_BATCH], dtype=tf.float32)
            parts.append(np.asarray(self._call(batch)))
        return np.concatenate(parts, axis=0)

    def _call(self, t):
        if self.kind == "saved_model":
            signature, input_name, _ = self.obj
            return _single_output(signature(**{input_name: t}))
        return _single_output(self.obj(t, training=False))

    def export(self, directory: str, batch_shape: tuple[int, ...]) -> None:
        """Write a SavedModel whose one signature takes exactly `batch_shape` (batch 1)."""
        tf = import_tensorflow()

        spec = tf.TensorSpec(batch_shape, tf.float32, name="input")
        if self.kind == "keras":
            import keras

            archive = keras.export.ExportArchive()
            archive.track(self.obj)
            archive.add_endpoint("serving_default", lambda t: self._call(t), input_signature=[spec])
            archive.write_out(directory, verbose=False)
            return
        module = tf.Module()
        module.model = self.obj if self.kind == "tf_keras" else self.obj[2]
        module.serve = tf.function(lambda t: self._call(t), input_signature=[spec])
        tf.saved_model.save(module, directory, signatures={"serving_default": module.serve.get_concrete_function()})


def _single_output(result: Any) -> Any:
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (list, tuple)):
        if len(result) != 1:
            raise ModelError(f"the model has {len(result)} outputs", "give a model with one output (class scores); the firmware returns one output tensor")
        result = result[0]
    return result


def _dims(shape: Any) -> tuple[int | None, ...]:
    if hasattr(shape, "as_list"):
        shape = shape.as_list()
    return tuple(None if d is None else int(d) for d in shape)


def _dtype_name(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype))


def _from_keras_object(model: Any, kind: str, name: str) -> _FloatModel:
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ModelError(
            f"{name} has no defined input shape (a subclassed model that was never built)",
            "build it with keras.Input(shape=...) or call it once on a sample before quantizing",
        )
    if len(inputs) != 1:
        raise ModelError(f"{name} has {len(inputs)} inputs", "give a model with one input tensor; the firmware feeds one input")
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) > 1:
        raise ModelError(f"{name} has {len(outputs)} outputs", "give a model with one output (class scores); the firmware returns one output tensor")
    shape = _dims(inputs[0].shape)
    return _FloatModel(kind, model, name, shape[1:], _dtype_name(inputs[0].dtype))


def _from_object(model: Any) -> _FloatModel:
    # Look the Keras flavours up in sys.modules: a model object means its library is loaded,
    # and importing tf_keras just to ask costs a second.
    keras3 = sys.modules.get("keras")
    if keras3 is not None and isinstance(model, keras3.Model):
        return _from_keras_object(model, "keras", type(model).__name__ + " model")
    tf_keras = sys.modules.get("tf_keras")
    if tf_keras is not None and isinstance(model, tf_keras.Model):
        return _from_keras_object(model, "tf_keras", type(model).__name__ + " (tf_keras) model")
    raise InputError(f"a {type(model).__name__} is not a Keras model", "give a keras.Model, a tf_keras.Model, or a path to a .keras, .h5 or SavedModel folder")


def _load_path(path: Path) -> _FloatModel:
    if not path.exists():
        raise InputError(f"model {path} does not exist", "check the path")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise InputError(f"{path} is a folder but not a SavedModel (no saved_model.pb)", "give a .keras file, a .h5 file or a SavedModel folder")
        return _load_saved_model(path)
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        raise InputError(f"{path} is already a TFLite model", "quantize the Keras model it came from, or run `tinyml inspect` on it")
    if suffix not in KERAS_SUFFIXES:
        raise InputError(f"{path} is not a .keras, .h5 or SavedModel folder", "save the trained model with model.save('model.keras')")
    model, flavour = load_keras_file(path)
    return _from_keras_object(model, flavour, path.name)


def _load_saved_model(path: Path) -> _FloatModel:
    tf = import_tensorflow()

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many types for a broken folder
        raise InputError(f"{path} could not be loaded as a SavedModel ({first_line(exc)})", "re-export the model with model.export(folder) or save it as .keras") from exc
    signatures = dict(loaded.signatures)
    signature = signatures.get("serving_default") or signatures.get("serve") or next(iter(signatures.values()), None)
    if signature is None:
        raise InputError(f"the SavedModel {path} has no serving signature", "export it with model.export(folder), which adds one")
    _, kwargs = signature.structured_input_signature
    if len(kwargs) != 1:
        raise ModelError(f"the SavedModel {path} has {len(kwargs)} inputs", "give a model with one input tensor; the firmware feeds one input")
    input_name, spec = next(iter(kwargs.items()))
    shape = _dims(spec.shape)
    # `loaded` stays referenced: the signature's variables belong to it and die with it.
    return _FloatModel("saved_model", (signature, input_name, loaded), path.name, shape[1:], spec.dtype.name)


def load_float_model(model: Any) -> _FloatModel:
    if isinstance(model, (str, Path)):
        return _load_path(Path(model))
    return _from_object(model)


# Recurrent layers that run a loop over time (a While op): TFLM has no int8 kernel for that
# loop, and TensorFlow's converter crashes (SIGSEGV) on it with full-integer quantization.
RECURRENT_LAYERS = frozenset({"LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"})


def check_layers(model: _FloatModel) -> None:
    """ModelError for a layer TFLM int8 cannot take, naming it and what to use instead.

    A SavedModel has no layers to look at; the converter's child process still contains a crash.
    """
    if model.kind == "saved_model":
        return
    for layer in _all_layers(model.obj):
        kind = type(layer).__name__
        if kind in RECURRENT_LAYERS and not getattr(layer, "unroll", False):
            unroll = f"build it with {kind}(..., unroll=True) for fixed-length windows (the loop becomes FULLY_CONNECTED, ADD, MUL, LOGISTIC and TANH, all int8 in TFLM)"
            if kind.startswith("ConvLSTM") or kind == "RNN":
                unroll = "unroll it over the fixed-length window"
            raise ModelError(
                f"{model.name} has the recurrent layer '{layer.name}' ({kind}): its loop over time has no int8 kernel in TFLM, and TensorFlow's converter crashes on it",
                f"{unroll}, or replace it with Conv1D layers over the time axis and GlobalAveragePooling1D",
            )


def _all_layers(layer: Any) -> list[Any]:
    """`layer` and every layer inside it: nested models, and the layers wrappers such as Bidirectional hold."""
    found, todo, seen = [], [layer], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        todo.extend(getattr(current, "layers", None) or [])
        todo.extend(inner for inner in (getattr(current, name, None) for name in ("layer", "forward_layer", "backward_layer")) if inner is not None)
    return found[1:]


# ---------------------------------------------------------------- data checks


def _as_dataset(data: Dataset | np.ndarray, what: str) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, np.ndarray):
        return Dataset(data)
    raise InputError(f"{what} is a {type(data).__name__}", "give a tinyml.core.data.Dataset or a numpy array of samples")


def _resolve_input_shape(model: _FloatModel, calibration: np.ndarray) -> tuple[int, ...]:
    """The model's input shape with dynamic axes (other than the batch) taken from the data."""
    if calibration.ndim != len(model.input_shape) + 1:
        raise InputError(
            f"calibration samples have shape {tuple(calibration.shape[1:])}, the model expects {_shape_text(model.input_shape)}",
            "give samples shaped like the model input (the first axis is the sample axis)",
        )
    shape = []
    for expected, actual in zip(model.input_shape, calibration.shape[1:]):
        if expected is not None and expected != actual:
            raise InputError(
                f"calibration samples have shape {tuple(calibration.shape[1:])}, the model expects {_shape_text(model.input_shape)}",
                "give samples shaped like the model input (the first axis is the sample axis)",
            )
        shape.append(int(actual))
    return tuple(shape)


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("any" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_samples(x: np.ndarray, what: str, shape: tuple[int, ...] | None, minimum: int) -> np.ndarray:
    if x.dtype.kind not in "fiu":
        raise InputError(f"{what} has dtype {x.dtype}, not numbers", "store the samples as float32 arrays")
    if shape is not None and tuple(x.shape[1:]) != shape:
        raise InputError(f"{what} samples have shape {tuple(x.shape[1:])}, the model expects {shape}", "give samples shaped like the model input")
    if len(x) < minimum:
        raise InputError(
            f"{what} has {len(x)} samples, at least {minimum} are needed to calibrate the int8 ranges",
            f"give {RECOMMENDED_CALIBRATION_SAMPLES} to {MAX_CALIBRATION_SAMPLES} representative training samples",
        )
    x = x.astype(np.float32, copy=False)
    check_finite(x, what)
    return x


def _calibration_subset(x: np.ndarray) -> np.ndarray:
    # Evenly spaced rather than the first N: class-sorted data sets are common, and the first
    # 500 samples of one class would calibrate the ranges of that class only.
    if len(x) <= MAX_CALIBRATION_SAMPLES:
        return x
    return x[np.linspace(0, len(x) - 1, MAX_CALIBRATION_SAMPLES).round().astype(int)]


# ---------------------------------------------------------------- conversion and verification


def convert_saved_model(saved_model_dir: str, calibration: np.ndarray | None, per_channel_dense: bool = True) -> bytes:
    """TFLite bytes: float32 when `calibration` is None, else full-integer int8.

    Runs in the converter's child process (tinyml.model.converter_process), where a crash of
    TensorFlow's converter cannot end the command.
    """
    tf = import_tensorflow()

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    # A private switch (TF 2.21 lite.py), honoured by both the calibration and the converter;
    # quantize_model checks the result, so a TensorFlow that drops it fails loudly.
    converter._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel_dense
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - ConverterError, RuntimeError, ValueError, ...
        raise _converter_error(exc) from exc
    finally:
        if captured.getvalue().strip():
            log.debug("converter output: %s", captured.getvalue().strip())


def _converter_error(exc: BaseException) -> ModelError:
    text = str(exc)
    names = sorted(set(re.findall(r"'(?:tf|tfl)\.(\w+)'", text)))
    if names:
        return ModelError(
            f"the TFLite converter cannot make a full-int8 model: no int8 builtin for {', '.join(names)}",
            "replace the layers that use those ops with standard Dense/Conv/Pooling/activation layers",
        )
    return ModelError(f"the TFLite converter failed: {first_line(exc)}", "run with --verbose for the converter's full message")


def verify_full_int8(facts: ModelFacts) -> None:
    """Raise ModelError unless the flatbuffer is int8 end to end and TFLM has int8 kernels for every op."""
    if len(facts.inputs) != 1 or len(facts.outputs) != 1:
        raise ModelError(f"the converted model has {len(facts.inputs)} inputs and {len(facts.outputs)} outputs", "give a model with one input and one output")
    float_ops = []
    for op in facts.operators:
        if any(facts.tensors[i].dtype in ("float32", "float16") for i in op.outputs if i >= 0) and op.op != "DEQUANTIZE":
            float_ops.append(op.op)
    if float_ops:
        names = sorted(set(float_ops))
        raise ModelError(
            f"the converter left {', '.join(names)} in float (a hybrid model), which TFLM on the board cannot run",
            ops.fix_for(names[0]),
        )
    for op in facts.op_names:
        reason = ops.unsupported_reason(op)
        if reason is not None:
            raise ModelError(f"the converted model uses {op}: {reason}", ops.fix_for(op))
    for kind, tensor in (("input", facts.inputs[0]), ("output", facts.outputs[0])):
        if tensor.dtype != "int8":
            raise ModelError(f"the converted model's {kind} is {tensor.dtype}, not int8", "report this: the converter ignored inference_input_type/inference_output_type")
    if not facts.is_full_int8:
        remaining = sorted({t.dtype for t in facts.tensors if t.dtype in ("float32", "float16")})
        raise ModelError(f"the converted model still has {', '.join(remaining)} tensors", "remove the layers that stay in float and quantize again")


# ---------------------------------------------------------------- evaluation


def _int8_outputs(tflite_bytes: bytes, facts: ModelFacts, x: np.ndarray, progress: Callable[[int], None] | None) -> np.ndarray:
    """The int8 model's dequantized outputs for every sample (TFLite reference)."""
    from tinyml.model.reference import ReferenceInterpreter

    interpreter = ReferenceInterpreter(tflite_bytes)
    out = np.empty((len(x), facts.outputs[0].element_count), dtype=np.float32)
    for i in range(len(x)):
        q = interpreter.invoke(quantize_input(x[i], facts.inputs[0]))
        out[i] = dequantize(q, facts.outputs[0]).reshape(-1)
        if progress is not None:
            progress(i + 1)
    return out


def _evaluate(
    model: _FloatModel,
    tflite_bytes: bytes,
    facts: ModelFacts,
    data: Dataset,
    progress: Progress | None,
    per_channel: tuple[bytes, ModelFacts] | None = None,
) -> dict[str, Any]:
    """Float vs int8 on `data`; with `per_channel` (the per-channel Dense variant) that one too."""
    x = data.x
    runs = 2 if per_channel is not None else 1

    def step(run: int) -> Callable[[int], None] | None:
        return None if progress is None else lambda done: progress(run * len(x) + done, runs * len(x))

    float_out = model.predict(x).reshape(len(x), -1)
    int8_out = _int8_outputs(tflite_bytes, facts, x, step(0))
    float_classes = predicted_classes(float_out)
    int8_classes = predicted_classes(int8_out)
    result: dict[str, Any] = {
        "eval_samples": len(x),
        "top1_agreement": float(np.mean(float_classes == int8_classes)),
        "output_mean_abs_error": float(np.mean(np.abs(float_out - int8_out))),
    }
    if data.y is not None:
        result["float_accuracy"] = float(np.mean(float_classes == data.y))
        result["int8_accuracy"] = float(np.mean(int8_classes == data.y))
    if per_channel is not None:
        per_channel_classes = predicted_classes(_int8_outputs(*per_channel, x, step(1)))
        result["per_channel_top1_agreement"] = float(np.mean(float_classes == per_channel_classes))
        if data.y is not None:
            result["per_channel_int8_accuracy"] = float(np.mean(per_channel_classes == data.y))
    return result


# ---------------------------------------------------------------- the stage


def quantize_model(
    model: Any,
    calibration: Dataset | np.ndarray,
    *,
    eval_data: Dataset | np.ndarray | None = None,
    out: str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    per_channel_dense: bool = True,
) -> QuantizeResult:
    """Convert `model` to a verified full-integer int8 `.tflite`; write it to `out` if given.

    `per_channel_dense=False` gives Dense layers one weight scale each (see the module doc).
    `progress(done, total)` follows the evaluation, the one long loop. The conversion runs in
    a child process (tinyml.model.converter_process), started here so that it loads
    TensorFlow while this process loads the model.
    """
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        check_can_write(out_path, force, inputs=[model] if isinstance(model, (str, Path)) else [])
    with ConverterChild() as converter:
        return _quantize_model(converter, model, calibration, eval_data, out_path, progress, per_channel_dense)


def _quantize_model(
    converter: ConverterChild,
    model: Any,
    calibration: Dataset | np.ndarray,
    eval_data: Dataset | np.ndarray | None,
    out_path: Path | None,
    progress: Progress | None,
    per_channel_dense: bool,
) -> QuantizeResult:
    float_model = load_float_model(model)
    if not float_model.input_dtype.startswith("float"):
        raise ModelError(f"{float_model.name} takes {float_model.input_dtype} input", "tinyml quantizes models with float inputs; scale the data inside the model instead")
    check_layers(float_model)

    calibration_set = _as_dataset(calibration, "the calibration data")
    shape = _resolve_input_shape(float_model, calibration_set.x)
    x_cal = _calibration_subset(_check_samples(calibration_set.x, "the calibration data", shape, MIN_CALIBRATION_SAMPLES))
    if len(x_cal) < RECOMMENDED_CALIBRATION_SAMPLES:
        log.warning("only %d calibration samples; %d or more give steadier int8 ranges", len(x_cal), RECOMMENDED_CALIBRATION_SAMPLES)
    eval_set = None
    units = None
    if eval_data is not None:
        eval_set = _as_dataset(eval_data, "the evaluation data")
        eval_set = Dataset(_check_samples(eval_set.x, "the evaluation data", shape, 1), eval_set.y, eval_set.one_hot_width)
        units = float_model.output_units()
        if units is not None:
            check_class_labels(eval_set, class_count(units), "evaluation")

    log.info("converting %s to full-integer int8 with %d calibration samples (input %s, batch 1)", float_model.name, len(x_cal), shape)
    per_channel: tuple[bytes, ModelFacts] | None = None
    with tempfile.TemporaryDirectory(prefix="tinyml-quantize-") as directory:
        float_model.export(str(Path(directory) / SAVED_MODEL_DIR), (1, *shape))
        if not per_channel_dense and eval_set is not None:
            log.info("converting the per-channel variant too, to measure what per-tensor Dense weights cost")
        float_bytes, tflite_bytes, per_channel_bytes = converter.convert(Path(directory), x_cal, per_channel_dense, also_per_channel=eval_set is not None)
        if per_channel_bytes is not None:
            per_channel = (per_channel_bytes, read_model(per_channel_bytes))
    facts = read_model(tflite_bytes)
    verify_full_int8(facts)
    if not per_channel_dense and per_channel_fully_connected(facts):
        raise ModelError(
            "the TFLite converter ignored the request for per-tensor Dense weights (its private switch "
            "_experimental_disable_per_channel_quantization_for_dense_layers)",
            "use the TensorFlow version tinyml pins (2.21), or quantize for a board whose TFLM library has per-channel FULLY_CONNECTED",
        )
    log.info("int8 model: %d bytes (float %d bytes), ops %s", len(tflite_bytes), len(float_bytes), ", ".join(facts.op_names))

    scores: dict[str, Any] = {}
    if eval_set is not None:
        if units is None:  # a model that did not say its output width: the converted one does
            check_class_labels(eval_set, class_count(facts.outputs[0].element_count), "evaluation")
        log.info("evaluating the float and int8 models on %d samples", len(eval_set))
        scores = _evaluate(float_model, tflite_bytes, facts, eval_set, progress, per_channel)
    if out_path is not None:
        atomic_write_bytes(out_path, tflite_bytes)
        log.info("wrote %s", out_path)
    return QuantizeResult(
        tflite_bytes=tflite_bytes,
        facts=facts,
        float_size_bytes=len(float_bytes),
        calibration_samples=len(x_cal),
        out=out_path,
        per_channel_dense=per_channel_dense,
        **scores,
    )
