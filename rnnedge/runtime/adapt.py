"""Adaptive reading: the output layer learns from the text as it is scored.

A compressor adapts to the text it reads; a trained language model, read statically, does
not. Dynamic evaluation (Krause et al., 2018, "Dynamic Evaluation of Neural Sequence
Models") lets the model adapt too: after each character is scored, one SGD step on its
loss. Here only an additive correction of the output layer learns, so no gradient has to
pass through the recurrent graph and the ONNX file runs unchanged:

    logits' = logits + ΔW · h + Δb        (ΔW, Δb start at zero, one pair per stream)

where ``h`` is every layer's hidden state after the step (``state_out.h``, flattened to
``[S, L·H]``): the top layer's is what the model's own output layer reads, the lower
layers' add what they track (on the KJV held-out books, in a simulation, both layers gave
0.02 bits/char more than the top alone). Every character is scored before its update, so
the figure stays an honest prediction of unseen text, as a compressor's is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnedge.errors import InputError

HIDDEN_STATE = "state_in.h"  # the hidden states the correction reads


@dataclass
class OutputAdapter:
    """Per-stream corrections of the output layer, trained online by SGD at `rate`."""

    rate: float
    delta_w: np.ndarray  # [S, V, H]
    delta_b: np.ndarray  # [S, V]

    @classmethod
    def zeros(cls, rate: float, streams: int, classes: int, hidden: int) -> OutputAdapter:
        """No correction yet: the first scores are the static model's."""
        check_rate(rate)
        return cls(
            rate,
            np.zeros((streams, classes, hidden), dtype=np.float32),
            np.zeros((streams, classes), dtype=np.float32),
        )

    def score(self, logits: np.ndarray, hidden: np.ndarray, targets: np.ndarray) -> float:
        """Nats of `targets` [S] under the corrected `logits` [S, V] given the hidden
        states `hidden` [S, H]; then one SGD step of each stream's correction on its loss."""
        corrected = logits + np.einsum("svh,sh->sv", self.delta_w, hidden) + self.delta_b
        shifted = corrected.astype(np.float64) - corrected.max(axis=-1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=-1, keepdims=True)  # [S, V]
        rows = np.arange(len(targets))
        nats = float(-np.log(probs[rows, targets]).sum())
        probs[rows, targets] -= 1.0  # d loss / d logits' = softmax - one-hot
        grad = probs.astype(np.float32)  # [S, V]
        self.delta_w -= self.rate * grad[:, :, None] * hidden[:, None, :]
        self.delta_b -= self.rate * grad
        return nats


def check_rate(rate: float) -> None:
    """One InputError line unless `rate` is a finite SGD rate above 0."""
    if not (rate > 0.0 and math.isfinite(rate)):
        raise InputError(f"--adapt must be a learning rate above 0 (0 = off), got {rate}")


def hidden_features(state: dict[str, np.ndarray]) -> np.ndarray:
    """Every layer's hidden state [S, L·H] from a step graph's state ([S, L, H])."""
    if HIDDEN_STATE not in state:
        raise InputError(
            "--adapt needs a language model whose step graph carries the hidden state "
            f"{HIDDEN_STATE!r}; this file has {sorted(state)}"
        )
    hidden = state[HIDDEN_STATE]
    return hidden.reshape(hidden.shape[0], -1)
