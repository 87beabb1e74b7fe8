# The two commands of README.md:
#   make demo   sets up .venv and runs the gesture lab end to end on the virtual board
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

demo: setup
	$(BIN)/python -m tinyml.labs.gesture --out runs/gesture

# The venv's bin goes first on PATH so that tests find `tinyml` and `pio` as a user's shell would.
test: setup system-deps
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

# Every script runs and prints its table; a script that finds an expectation unmet fails the target at the end.
bench: setup
	status=0; for script in bench/*.py; do $(BIN)/python $$script || { echo "$$script: an expectation failed (see above)"; status=1; }; done; exit $$status

clean:
	rm -rf $(VENV) runs build *.egg-info toolchain/*.egg-info
