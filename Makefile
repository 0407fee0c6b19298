# Two entry points: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/biodecode demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Benchmarks need the real recordings: BIODECODE_DATA_DIR, else ../shared/data beside the checkout.
bench: $(STAMP)
	BIODECODE_DATA_DIR="$${BIODECODE_DATA_DIR:-$(abspath ../shared/data)}" $(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) runs .pytest_cache
