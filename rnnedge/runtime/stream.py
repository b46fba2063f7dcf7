"""One sequence's recurrent state over a loaded step graph, apart from the session.

Like sherpa-onnx's stream objects, the state lives in the stream, not in the session: one
loaded model serves any number of streams, each pushed as its data arrives, saved to JSON,
restored elsewhere, or reset. The generator and the classifier are built on it.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from rnnedge.errors import InputError
from rnnedge.runtime.graph import BoundSteps, State, StatefulGraph

STATE_FORMAT = "rnnedge.stream-state"
STATE_FORMAT_VERSION = 1


class ModelStream:
    """Push inputs step by step; read the logits after the last step; get, set, reset state."""

    def __init__(self, graph: StatefulGraph) -> None:
        if not graph.streams:
            raise InputError(
                "this model is bidirectional (or pools over the whole input) and cannot "
                "classify step by step; classify whole inputs instead"
            )
        self.graph = graph
        self.reset()

    def reset(self) -> None:
        """Back to the initial state, as if nothing had been pushed."""
        self._state: State = self.graph.initial_state(1)
        self._bound: BoundSteps | None = None
        self.steps = 0
        self.logits: np.ndarray | None = None  # [C] after the last step

    @property
    def state(self) -> State:
        """The current state: one [1, layers * directions, hidden] array per state tensor."""
        return self._bound.state() if self._bound is not None else self._state

    def push_encoded(self, inputs: np.ndarray) -> np.ndarray:
        """Feed ids [T] or feature rows [T, D]; the logits [T, C] after each of those steps."""
        count = int(inputs.shape[0])
        if count == 0:
            return np.zeros((0, self.graph.classes), dtype=np.float32)
        bound = self.graph.max_stream_steps
        if bound is not None and self.steps + count > bound:
            raise InputError(
                f"this stream would pass {bound:,} steps, the most this model counts exactly "
                "(its step count is float32); reset the stream"
            )
        if count == 1 and inputs.dtype == np.int64:
            logits = self._bound_step(int(inputs[0]))[None]  # [1, C]
        else:
            self._state, self._bound = self.state, None
            out, self._state = self.graph.run(inputs[None], self._state)  # [1, T, C]
            logits = out[0]
        self.steps += count
        self.logits = logits[-1]
        return logits

    def _bound_step(self, token: int) -> np.ndarray:
        """One token through IO binding (the fast path of generation): logits [C]."""
        if self._bound is None:
            self._bound = BoundSteps(self.graph, self._state, self.graph.classes)
        return self._bound.step(token)

    def get_state(self) -> dict[str, Any]:
        """The stream as JSON-ready data: steps, state and last logits (float32, base64)."""
        arrays = dict(self.state)
        if self.logits is not None:
            arrays["logits"] = self.logits
        return {
            "format": STATE_FORMAT,
            "version": STATE_FORMAT_VERSION,
            "model": self.graph.manifest.identity.get("name"),
            "steps": self.steps,
            "arrays": {name: encode_array(value) for name, value in arrays.items()},
        }

    def set_state(self, saved: dict[str, Any]) -> None:
        """Continue from `get_state()`'s data (this model's, from any process or language)."""
        check_saved_state(saved, self.graph)
        arrays = {name: decode_array(value) for name, value in saved["arrays"].items()}
        expected = self.graph.initial_state(1)
        for name, initial in expected.items():
            if name not in arrays or arrays[name].shape != initial.shape:
                raise InputError(
                    f"saved stream state lacks {name} of shape {list(initial.shape)}; "
                    "it was saved from another model"
                )
        self._state = {name: arrays[name] for name in expected}
        self._bound = None
        self.steps = int(saved["steps"])
        self.logits = arrays.get("logits")


def check_saved_state(saved: Any, graph: StatefulGraph) -> None:
    """One clear line when `saved` is not a stream state this model can continue."""
    if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        raise InputError("not a saved rnnedge stream state (no 'format': rnnedge.stream-state)")
    if int(saved.get("version", 0)) > STATE_FORMAT_VERSION:
        raise InputError(
            f"saved stream state version {saved.get('version')} is newer than this rnnedge "
            f"reads ({STATE_FORMAT_VERSION}); upgrade rnnedge"
        )
    name = graph.manifest.identity.get("name")
    if saved.get("model") != name:
        raise InputError(
            f"saved stream state belongs to model {saved.get('model')!r}, not {name!r}"
        )


def encode_array(value: np.ndarray) -> dict[str, Any]:
    """float32 array → {"shape", "dtype", "data": base64 of its little-endian bytes}."""
    data = np.ascontiguousarray(value, dtype="<f4")
    return {
        "shape": list(data.shape),
        "dtype": "float32",
        "data": base64.b64encode(data.tobytes()).decode(),
    }


def decode_array(value: dict[str, Any]) -> np.ndarray:
    """The inverse of `encode_array`."""
    try:
        flat = np.frombuffer(base64.b64decode(value["data"]), dtype="<f4")
        return flat.reshape(value["shape"]).astype(np.float32)
    except (KeyError, TypeError, ValueError):
        raise InputError("saved stream state has a malformed array; save it again") from None
