# The two commands of README.md:
#   make demo   sets up .venv (and the cross compiler and QEMU, where it may) and runs the gesture
#               lab end to end on the emulated board: the real firmware on an emulated Cortex-M4
#   make test   sets up .venv (and the system compilers, where it may) and runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup system-deps demo test bench clean

# tf-keras and tensorflow-model-optimization are installed without their dependencies:
# their metadata would pull the 572 MB `tensorflow` wheel beside tensorflow-cpu.
$(BIN)/tinyml: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/pip install --quiet --no-deps "tf-keras==2.21.0" "tensorflow-model-optimization==0.8.1"
	touch $(BIN)/tinyml

setup: $(BIN)/tinyml

system-deps:
	bash .ci/system-deps

# The board's TFLM library, which the emulated board compiles: $$TINYML_TFLM_LIBRARY, else the
# unmodified copy beside the repository where there is one (never a copy inside it).
TFLM_LIBRARY ?= $(or $(TINYML_TFLM_LIBRARY),$(wildcard $(abspath ../shared/third_party/Arduino_TensorFlowLite)))

# Without the cross compiler, QEMU or the library, the demo says what is missing and runs on the
# virtual board (the model in the TFLM Python runtime, not the firmware), named as such.
demo: setup
	@bash .ci/system-deps || echo "demo: could not install the system packages (see above)"
	@missing=""; \
	command -v arm-none-eabi-g++ >/dev/null || missing="$$missing arm-none-eabi-g++ (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib);"; \
	command -v qemu-system-arm >/dev/null || missing="$$missing qemu-system-arm (apt-get install qemu-system-arm);"; \
	[ -n "$(TFLM_LIBRARY)" ] || missing="$$missing the board's TFLM library (set TINYML_TFLM_LIBRARY to a copy of Arduino_TensorFlowLite);"; \
	if [ -z "$$missing" ]; then \
	  echo "demo: the gesture lab on the emulated board (the real firmware on QEMU, library $(TFLM_LIBRARY))"; \
	  TINYML_TFLM_LIBRARY="$(TFLM_LIBRARY)" $(BIN)/python -m tinyml.labs.gesture --out runs/gesture --port emulator; \
	else \
	  echo "demo: no emulated board here, missing:$$missing"; \
	  echo "demo: running on the VIRTUAL board instead: the model in the TFLM Python runtime, not the firmware"; \
	  $(BIN)/python -m tinyml.labs.gesture --out runs/gesture --port virtual; \
	fi

# The venv's bin goes first on PATH so that tests find `tinyml` and `pio` as a user's shell would.
test: setup system-deps
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

# Every script runs and prints its table; a script that finds an expectation unmet fails the target at the end.
bench: setup
	status=0; for script in bench/*.py; do $(BIN)/python $$script || { echo "$$script: an expectation failed (see above)"; status=1; }; done; exit $$status

clean:
	rm -rf $(VENV) runs build *.egg-info toolchain/*.egg-info
