"""A loaded rnnedge graph: its first input, its logits, and its recurrent state (if any)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnedge.contract import LOGITS
from rnnedge.errors import InputError
from rnnedge.runtime.session import LoadedSession, import_onnxruntime

State = dict[str, np.ndarray]
FLOAT32_EXACT_COUNT = 2**24  # the largest count float32 still increments by one
COMMANDS = {"language-model": "rnnedge infer generate", "classification": "rnnedge infer classify"}


class StatefulGraph:
    """Runs ``inputs (+ state) → logits (+ state)``; subclasses add tokenization and tasks."""

    task = ""

    def __init__(self, loaded: LoadedSession) -> None:
        if loaded.manifest.task != self.task:
            raise InputError(
                f"{loaded.path!r} is a {loaded.manifest.task} model, not a {self.task} model; "
                f"use `{COMMANDS.get(loaded.manifest.task, 'rnnedge inspect')}`"
            )
        self.loaded = loaded
        self.manifest = loaded.manifest
        self.provider = loaded.provider
        self.input_name = loaded.manifest.inputs[0].name
        self._session = loaded.session
        self._state_specs = loaded.manifest.states
        self._output_names = [LOGITS] + [s.output for s in self._state_specs]

    @property
    def precision(self) -> str:
        """'fp32', 'int8' or 'fp16', as exported. Files exported before the manifest named
        it (the shipped int8 ones) say it as the first word of their quantization."""
        export = self.manifest.export
        return str(export.get("precision") or (export.get("quantization") or "fp32").split()[0])

    def precision_mismatch(self) -> str | None:
        """Why this file is a poor fit for the provider running it, or None: an fp16 graph
        on CPU (ORT casts every op to fp32 and back: 0.26-0.32x fp32's step in
        benchmarks/REPORT.md) or an int8 one on CUDA (its int8 LSTM and MatMulInteger
        kernels are CPU kernels)."""
        on_cuda = self.provider.startswith("CUDA")
        if self.precision == "fp16" and not on_cuda:
            return "fp16 is for CUDA: on CPU this file runs ~3× slower than the fp32 one"
        if self.precision == "int8" and on_cuda:
            return "int8 is for CPU: its kernels stay on the CPU under CUDA; use fp32 or fp16"
        return None

    @property
    def classes(self) -> int:
        """Size of the logits' last axis: the vocabulary or the number of labels."""
        logits = next(t for t in self.manifest.outputs if t.name == LOGITS)
        return int(logits.shape[-1])

    @property
    def streams(self) -> bool:
        """Whether the graph carries state, so inputs can be pushed step by step."""
        return bool(self._state_specs)

    @property
    def max_stream_steps(self) -> int | None:
        """Steps one stream may take, or None for no bound: a mean-pooled classifier counts
        its steps in a float32 state, exact only up to 2**24 (the manifest states it)."""
        bound = self.manifest.architecture.get("max_steps")
        if bound is None and self.manifest.architecture.get("pooling") == "mean":
            return FLOAT32_EXACT_COUNT  # files exported before the manifest said so
        return None if bound is None else int(bound)

    def initial_state(self, batch: int = 1) -> State:
        """Each state input at its initial value, shape ``[batch, layers*dirs, hidden]``."""
        return {
            s.input: np.full([batch, *s.shape[1:]], s.initial_value, dtype=np.float32)
            for s in self._state_specs
        }

    def run(self, inputs: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """inputs [B, T(, D)] + state → logits [B, T, C] and the next state."""
        logits, *states = self._session.run(self._output_names, {self.input_name: inputs, **state})
        return logits, {
            spec.input: value for spec, value in zip(self._state_specs, states, strict=True)
        }


class BoundSteps:
    """One stream stepped token by token through IO binding: nothing is allocated per step.

    The state lives in two sets of buffers on the model's device, used in turn: one call
    writes its new state where the next call reads it. Only the token (one int64 on the
    host) and the logits [C] cross to Python each step.
    """

    def __init__(self, graph: StatefulGraph, state: State, classes: int) -> None:
        ort = import_onnxruntime()
        device = "cuda" if graph.provider.startswith("CUDA") else "cpu"
        self._session = graph._session
        self.token = np.zeros((1, 1), dtype=np.int64)  # [1, 1], bound by reference
        self._host_state = {k: np.ascontiguousarray(v) for k, v in state.items()}  # kept alive
        first = {
            name: ort.OrtValue.ortvalue_from_numpy(value, device, 0)
            for name, value in self._host_state.items()
        }
        second = {
            name: ort.OrtValue.ortvalue_from_shape_and_type(
                list(value.shape), np.float32, device, 0
            )
            for name, value in self._host_state.items()
        }
        # Logits land on the host whatever the device: Python samples from them next.
        self.logits = ort.OrtValue.ortvalue_from_shape_and_type([1, 1, classes], np.float32)
        self._sets = (first, second)
        self._bindings = [
            self._bind(graph, reads, writes) for reads, writes in ((first, second), (second, first))
        ]
        self._turn = 0  # the set the next call reads: it holds the current state

    def _bind(self, graph: StatefulGraph, reads: dict, writes: dict) -> Any:
        binding = self._session.io_binding()
        binding.bind_cpu_input(graph.input_name, self.token)
        for spec in graph._state_specs:
            binding.bind_ortvalue_input(spec.input, reads[spec.input])
            binding.bind_ortvalue_output(spec.output, writes[spec.input])
        binding.bind_ortvalue_output(LOGITS, self.logits)
        return binding

    def step(self, token: int) -> np.ndarray:
        """Feed `token`; the logits [C] for the step after it."""
        self.token[0, 0] = token
        self._session.run_with_iobinding(self._bindings[self._turn])
        self._turn ^= 1
        return self.logits.numpy()[0, -1]

    def state(self) -> State:
        """The current state, copied to host arrays [1, layers, hidden]."""
        return {name: value.numpy().copy() for name, value in self._sets[self._turn].items()}
