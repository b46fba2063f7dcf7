# The README's two commands: `make demo` (generate from the shipped model) and `make test`.
# Each creates .venv and installs what it needs. Runtime-only installs never get torch.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROMPT ?= And God said
ARGS ?= --max-new-tokens 400 --seed 7

.PHONY: demo test test-ray lint bench clean

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

# Ray (extra `serve`, ~570 MB) only for the Ray tests: `make test` skips them. They run in a
# network namespace with nothing but loopback, so Ray cannot reach another address by mistake
# (root: unshare -n; otherwise a user namespace, unshare -rn).
UNSHARE := $(if $(filter 0,$(shell id -u)),unshare -n,unshare -rn)
$(VENV)/.serve: $(VENV)/.dev
	$(BIN)/pip install --quiet -e '.[cpu,train,dev,plot,triton,serve]'
	touch $@

test-ray: $(VENV)/.serve
	$(UNSHARE) sh -c 'ip link set lo up && RAY_USAGE_STATS_ENABLED=0 $(BIN)/python -m pytest -q -m ray'

lint: $(VENV)/.dev
	$(BIN)/ruff check rnnedge tests export benchmarks
	$(BIN)/ruff format --check rnnedge tests export benchmarks

bench: $(VENV)/.dev
	$(BIN)/pip install --quiet -e '.[cpu,train,dev,plot,bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
