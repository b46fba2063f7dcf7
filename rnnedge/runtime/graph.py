"""A loaded rnnedge graph: its first input, its logits, and its recurrent state (if any)."""

from __future__ import annotations

import numpy as np

from rnnedge.contract import LOGITS
from rnnedge.errors import InputError
from rnnedge.runtime.session import LoadedSession

State = dict[str, np.ndarray]
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
