"""TensorFlow's TFLite converter in a child process, so that its crashes cannot take the CLI down.

The converter is C++ (MLIR). On some models it does not raise but dies: a recurrent layer that
is not unrolled ends it with a segmentation fault (exit 139, no message), and the `tinyml`
command with it, leaving its temporary folder behind. Run here, a crash ends the child only:
the parent turns it into a ModelError, cleans up, and the converter's own C++ lines
("fully_quantize: 0 ...") go to the debug log instead of the user's terminal.

The child starts first (`ConverterChild()`) and loads TensorFlow while the parent loads and
exports the model, so the second TensorFlow import costs little wall time. The parent then
hands over a work folder holding the SavedModel (`saved_model/`), the calibration samples
(a .npy file) and request.json (how Dense weights are quantized) by writing the folder's path on
the child's stdin; the child writes float.tflite, int8.tflite and, when asked, the per-channel
variant int8_per_channel.tflite there, or error.json with the ModelError's problem and fix. The child never
outlives the parent: closing the ConverterChild (also on Ctrl-C or any error) ends it, and on
Linux the kernel ends it if the parent dies.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tinyml.core.errors import ModelError, TinyMLError

log = logging.getLogger("tinyml.quantize")

SAVED_MODEL_DIR = "saved_model"
CALIBRATION_FILE = "calibration.npy"
FLOAT_FILE = "float.tflite"
INT8_FILE = "int8.tflite"
PER_CHANNEL_FILE = "int8_per_channel.tflite"
REQUEST_FILE = "request.json"
ERROR_FILE = "error.json"
# Converting a microcontroller-sized model takes seconds; this is for a converter that hangs.
TIMEOUT_S = 1800.0


class ConverterChild:
    """A child process that has loaded TensorFlow and waits for one folder to convert."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding tinyml/, for a checkout
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        self._output = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            bufsize=0,  # unbuffered: a write to a child that died fails once, not again at close
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def __enter__(self) -> ConverterChild:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._output.close()

    def convert(self, work_dir: Path, calibration: np.ndarray, per_channel_dense: bool, also_per_channel: bool) -> tuple[bytes, bytes, bytes | None]:
        """(float32, full-int8, per-channel full-int8 or None) TFLite bytes of work_dir/saved_model.

        `per_channel_dense` chooses Dense weight scales for the int8 model; `also_per_channel`
        asks for the per-channel variant too, to measure what per-tensor weights cost.
        """
        np.save(work_dir / CALIBRATION_FILE, calibration, allow_pickle=False)
        request = {"per_channel_dense": per_channel_dense, "also_per_channel": also_per_channel and not per_channel_dense}
        (work_dir / REQUEST_FILE).write_text(json.dumps(request), encoding="utf-8")
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(str(work_dir).encode("utf-8") + b"\n")
        except BrokenPipeError:
            pass  # the child died before it was told: its exit code below says how
        finally:
            self._process.stdin.close()
        try:
            returncode = self._process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ModelError(f"TensorFlow's TFLite converter did not finish in {TIMEOUT_S:.0f} s", "run with --verbose to see its last lines") from None
        self._output.seek(0)
        for line in self._output.read().decode("utf-8", "replace").splitlines():
            if line.strip():
                log.debug("converter: %s", line)
        error_file = work_dir / ERROR_FILE
        if error_file.is_file():
            error = json.loads(error_file.read_text(encoding="utf-8"))
            raise ModelError(error["problem"], error["fix"])
        if returncode != 0:
            raise ModelError(
                f"TensorFlow's TFLite converter crashed ({_how_it_ended(returncode)}) on this model",
                "run with --verbose to see the converter's last lines; keep to standard Dense/Conv/Pooling layers, "
                "and report the model to TensorFlow if it is one",
            )
        per_channel_file = work_dir / PER_CHANNEL_FILE
        per_channel = per_channel_file.read_bytes() if per_channel_file.is_file() else None
        return (work_dir / FLOAT_FILE).read_bytes(), (work_dir / INT8_FILE).read_bytes(), per_channel


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _child_main() -> int:
    from tinyml.model.quantize import convert_saved_model
    from tinyml.model.tensorflow_import import import_tensorflow

    import_tensorflow().lite.TFLiteConverter  # noqa: B018 - loaded now, while the parent loads the model
    folder = sys.stdin.readline().strip()
    if not folder:
        return 0  # the parent stopped before it had anything to convert
    directory = Path(folder)
    try:
        calibration = np.load(directory / CALIBRATION_FILE, allow_pickle=False)
        request = json.loads((directory / REQUEST_FILE).read_text(encoding="utf-8"))
        saved_model = str(directory / SAVED_MODEL_DIR)
        float_bytes = convert_saved_model(saved_model, None)
        int8_bytes = convert_saved_model(saved_model, calibration, request["per_channel_dense"])
        if request["also_per_channel"]:
            (directory / PER_CHANNEL_FILE).write_bytes(convert_saved_model(saved_model, calibration, True))
    except TinyMLError as exc:
        (directory / ERROR_FILE).write_text(json.dumps({"problem": exc.problem, "fix": exc.fix}), encoding="utf-8")
        return 3
    (directory / FLOAT_FILE).write_bytes(float_bytes)
    (directory / INT8_FILE).write_bytes(int8_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
