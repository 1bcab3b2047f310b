# mon2hls developer entry points. `make demo` and `make test` work on a fresh
# machine with Python 3.10+, a C++ compiler, make and perl.

PYTHON ?= python3
VENV ?= .venv
# A CPU build of PyTorch; an unpinned torch may resolve to a multi-GB CUDA build.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
DEMO_OUT ?= out/mnist-6bit

.PHONY: install demo test sim lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install "$(TORCH)"
	$(BIN)/pip install -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/mon2hls build examples/mnist_mon.pt --bits 6 --target pynq -o $(DEMO_OUT) --force
	$(BIN)/mon2hls sim $(DEMO_OUT) --csim

test: install
	$(BIN)/pytest

sim: install
	$(BIN)/pytest -m rtl hw_tests

clean:
	rm -rf out build dist *.egg-info .pytest_cache
