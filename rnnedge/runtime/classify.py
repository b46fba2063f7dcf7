"""Classification with onnxruntime: batches of inputs → labels with probabilities, and
step-by-step predictions as data arrives (streaming graphs).

Inputs are texts (tokenized as the manifest says), vectors per step (e.g. image rows), or
for the binary-addition model a string ``"a+b"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnedge.contract import LENGTHS, LOGITS
from rnnedge.errors import InputError
from rnnedge.runtime.graph import StatefulGraph
from rnnedge.runtime.session import LoadedSession
from rnnedge.tokenizer import tokenizer_from_dict

# Inputs per graph call: per-step matrices of a few dozen rows stay in L1/L2 cache; larger
# batches measured slower per input on the shipped classifiers (benchmarks/REPORT.md).
DEFAULT_BATCH = 64


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass
class Prediction:
    """One input's answer: the best label, its probability, the top-k, all probabilities."""

    label: str
    probability: float
    top: list[tuple[str, float]]
    probabilities: np.ndarray  # [C], or [T, C] for per-step models
    extra: dict[str, Any] | None = None  # task-specific (e.g. the decoded sum)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "probability": self.probability,
            "top": [{"label": k, "probability": p} for k, p in self.top],
            **(self.extra or {}),
        }


class Classifier(StatefulGraph):
    """A loaded classifier (streaming step graph or whole-sequence lengths graph)."""

    task = "classification"
    batch_size = DEFAULT_BATCH

    def __init__(self, loaded: LoadedSession) -> None:
        super().__init__(loaded)
        self.labels = list(loaded.manifest.labels)
        self.preprocessing = dict(loaded.manifest.preprocessing)
        tokenizer = loaded.manifest.tokenizer
        self.tokenizer = tokenizer_from_dict(tokenizer) if tokenizer.get("vocab") else None
        self.streams = bool(self._state_specs)
        self.per_step = loaded.manifest.architecture.get("pooling") == "per-step"

    def run_lengths(self, inputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Whole-sequence graph: inputs [B, T(, D)], lengths [B] → logits [B, C] / [B, T, C]."""
        return self._session.run([LOGITS], {self.input_name: inputs, LENGTHS: lengths})[0]

    def encode(self, item: Any) -> np.ndarray:
        """One input as the graph's per-example array: ids [T] or features [T, D]."""
        return self.encode_all([item])[0]

    def encode_all(self, items: Sequence[Any]) -> list[np.ndarray]:
        """Each input as the graph's per-example array; texts are tokenized together."""
        if self.tokenizer is None or self.preprocessing.get("kind") == "binary-addition":
            return [self.encode_values(item) for item in items]
        if not all(isinstance(item, str) for item in items):
            raise InputError("this model classifies text; pass strings")
        limit = self.preprocessing.get("max_len") or None
        encoded = [ids[:limit] for ids in self.tokenizer.encode_batch(list(items))]
        for item, ids in zip(items, encoded, strict=True):
            if ids.size == 0:
                raise InputError(f"input {item[:40]!r} has no token this model knows")
        return encoded

    def encode_values(self, item: Any) -> np.ndarray:
        """A non-text input: an addition 'a+b' as bits, or feature vectors [T, D]."""
        if self.preprocessing.get("kind") == "binary-addition":
            return encode_addition(item, self.preprocessing["bits"])
        expected = self.manifest.inputs[0].shape[-1]
        try:
            features = np.asarray(item, dtype=np.float32)
        except (ValueError, TypeError):
            raise InputError(
                f"this model reads [steps, {expected}] feature vectors (e.g. --images), not text"
            ) from None
        if features.ndim != 2 or features.shape[1] != expected:
            raise InputError(
                f"each input must be [steps, {expected}] features; got shape {list(features.shape)}"
            )
        return features

    def logits(self, items: Sequence[Any]) -> list[np.ndarray]:
        """Per input: logits [C] (pooled) or [T, C] (per-step), in input order.

        Inputs are sorted by length and run in chunks of ``batch_size``: similar lengths
        waste little compute on padding, and small chunks keep each recurrent step's
        matrices in cache (measured in benchmarks/REPORT.md). Each answer is independent
        of its chunk: step graphs see no step after a row's end, lengths graphs stop each
        row's backward direction at its real end (checked at export).
        """
        encoded = self.encode_all(items)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        answers: list[np.ndarray] = [np.empty(0)] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            chunk_logits = self.padded_logits([encoded[i] for i in chunk])
            for index, logits in zip(chunk, chunk_logits, strict=True):
                answers[index] = logits
        return answers

    def padded_logits(self, encoded: list[np.ndarray]) -> list[np.ndarray]:
        """One graph call over right-padded inputs; per input its logits [C] or [T, C]."""
        lengths = np.array([len(x) for x in encoded], dtype=np.int64)
        batch = np.zeros(
            (len(encoded), int(lengths.max()), *encoded[0].shape[1:]), dtype=encoded[0].dtype
        )  # [B, T] ids or [B, T, D] features
        for row, x in enumerate(encoded):
            batch[row, : len(x)] = x
        if self.streams:
            # A unidirectional step graph: step t only sees steps ≤ t, so padding after a
            # row's end cannot change its answer at its last real step.
            all_steps, _ = self.run(batch, self.initial_state(len(encoded)))  # [B, T, C]
        else:
            all_steps = self.run_lengths(batch, lengths)  # [B, C] or [B, T, C]
        return [
            all_steps[row, :n]
            if self.per_step
            else (all_steps[row, n - 1] if self.streams else all_steps[row])
            for row, n in enumerate(lengths.tolist())
        ]

    def classify(self, items: Sequence[Any], top: int = 1) -> list[Prediction]:
        """Label and probability for each input (batched, see `logits`)."""
        if not items:
            raise InputError("nothing to classify: give at least one input")
        if self.per_step:
            return [self.sequence_prediction(softmax(logits)) for logits in self.logits(items)]
        probs = softmax(np.stack(self.logits(items)))  # [N, C], one softmax for all inputs
        order = np.argsort(-probs, axis=-1, kind="stable")[:, : max(1, top)]  # [N, top]
        ranked = np.take_along_axis(probs, order, axis=-1).tolist()
        predictions = []
        for row, (classes, chances) in enumerate(zip(order.tolist(), ranked, strict=True)):
            pairs = [(self.labels[c], p) for c, p in zip(classes, chances, strict=True)]
            predictions.append(Prediction(pairs[0][0], pairs[0][1], pairs, probs[row]))
        return predictions

    def sequence_prediction(self, probs: np.ndarray) -> Prediction:
        """A per-step model's answer from its probabilities [T, C]."""
        bits = probs.argmax(-1)
        extra: dict[str, Any] = {"steps": [self.labels[b] for b in bits]}
        label = " ".join(extra["steps"])
        if self.preprocessing.get("kind") == "binary-addition":
            extra["sum"] = int((bits.astype(np.int64) << np.arange(bits.size)).sum())
            label = str(extra["sum"])
        # A per-step answer is as sure as its least sure step.
        return Prediction(label, float(probs.max(-1).min()), [], probs, extra)

    def step_pieces(self, item: Any) -> list[str] | None:
        """What each step reads, as text (a character or a word); None for non-text inputs."""
        if self.tokenizer is None or self.preprocessing.get("kind") == "binary-addition":
            return None
        return [self.tokenizer.decode([token]) for token in self.encode(item).tolist()]

    def stream(self, item: Any) -> Iterator[np.ndarray]:
        """Probabilities [C] after each step, one graph call per step (streaming graphs)."""
        if not self.streams:
            raise InputError(
                "this model is bidirectional (or pools over the whole input) and "
                "cannot classify step by step; use classify()"
            )
        encoded = self.encode(item)
        state = self.initial_state(1)
        for step in range(len(encoded)):
            logits, state = self.run(encoded[None, step : step + 1], state)
            yield softmax(logits[0, 0])


def encode_addition(item: Any, bits: int) -> np.ndarray:
    """'a+b' → features [bits + 1, 2] of their bits, LSB first."""
    try:
        a, b = (int(part) for part in str(item).replace(" ", "").split("+"))
    except ValueError:
        raise InputError(f"{item!r} is not of the form a+b (two non-negative integers)") from None
    if not (0 <= a < 2**bits and 0 <= b < 2**bits):
        raise InputError(
            f"{item!r}: both numbers must be in 0..{2**bits - 1} for this {bits}-bit model"
        )
    steps = np.arange(bits + 1)
    return np.stack([(a >> steps) & 1, (b >> steps) & 1], axis=-1).astype(np.float32)


def evaluate_classifier(
    classifier: Classifier, items: Sequence[Any], targets: Sequence[np.ndarray]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall, confusion (and exact sequences for
    per-step models) over `items` (batched by `Classifier.logits`)."""
    from rnnedge.metrics import classification_metrics

    predicted = [logits.argmax(-1) for logits in classifier.logits(items)]
    flat_predicted = np.concatenate([np.atleast_1d(p) for p in predicted])
    flat_expected = np.concatenate([np.atleast_1d(t) for t in targets])
    metrics = classification_metrics(flat_predicted, flat_expected, len(classifier.labels))
    metrics["examples"] = len(items)
    if classifier.per_step:
        metrics["exact"] = float(
            np.mean([np.array_equal(p, t) for p, t in zip(predicted, targets, strict=True)])
        )
    return metrics
