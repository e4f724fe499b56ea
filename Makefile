# refusal-atlas: `make demo` runs the whole study on the default model and demo data;
# `make test` runs the test suite. Both set up .venv on first use (CPU build of torch).
PYTHON ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup demo test bench bench-demo clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/refusal-atlas run

test: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/bench_activations.py
	$(BIN)/python benchmarks/bench_steering.py

# The demo pipeline timed per stage (wall, forward-pass share, tokens, tokens/s).
bench-demo: setup
	$(BIN)/python benchmarks/bench_demo.py

clean-venv:
	rm -rf $(VENV)
