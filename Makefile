# The README's two commands: `make demo` (generate from the shipped model) and `make test`.
# Each creates .venv and installs what it needs. Runtime-only installs never get torch.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROMPT ?= And God said
ARGS ?= --max-new-tokens 400 --seed 7

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime: numpy, typer, rich and the CPU onnxruntime (extra `cpu`).
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[cpu]'
	touch $@

# Tests also train, export and plot: torch 2.13.0 is pinned first so pip takes the CPU wheel on
# disk instead of a multi-GB CUDA build. `triton` (tritonclient[grpc], a few MB) checks the
# Triton repository's config against Triton's own protobuf.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet 'torch==2.13.0'
	$(BIN)/pip install --quiet -e '.[cpu,train,dev,plot,triton]'
	touch $(VENV)/.runtime $@

demo: $(VENV)/.runtime
	$(BIN)/rnnedge infer generate --prompt "$(PROMPT)" $(ARGS)

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check rnnedge tests export benchmarks
	$(BIN)/ruff format --check rnnedge tests export benchmarks

bench: $(VENV)/.dev
	$(BIN)/pip install --quiet -e '.[cpu,train,dev,plot,bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
