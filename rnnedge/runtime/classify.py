"""Classification with onnxruntime: batches of inputs → labels with probabilities, and
step-by-step predictions as data arrives (streaming graphs).

How an input becomes the graph's array is its input kind's job (`rnnedge.tasks`): texts,
vectors per step (e.g. image rows), or for the binary-addition model a string ``"a+b"``.
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
from rnnedge.runtime.stream import ModelStream
from rnnedge.tasks import input_kind
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
        dim = loaded.manifest.inputs[0].shape[-1] if self.tokenizer is None else None
        self.inputs = input_kind(self.preprocessing, self.tokenizer, dim)
        self.per_step = loaded.manifest.architecture.get("pooling") == "per-step"

    def run_lengths(self, inputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Whole-sequence graph: inputs [B, T(, D)], lengths [B] → logits [B, C] / [B, T, C]."""
        return self._session.run([LOGITS], {self.input_name: inputs, LENGTHS: lengths})[0]

    def encode(self, item: Any) -> np.ndarray:
        """One input as the graph's per-example array: ids [T] or features [T, D]."""
        return self.inputs.encode_all([item])[0]

    def logits(self, items: Sequence[Any]) -> list[np.ndarray]:
        """Per input: logits [C] (pooled) or [T, C] (per-step), in input order.

        Inputs are sorted by length and run in chunks of ``batch_size``: similar lengths
        waste little compute on padding, and small chunks keep each recurrent step's
        matrices in cache (measured in benchmarks/REPORT.md). Each answer is independent
        of its chunk: step graphs see no step after a row's end, lengths graphs stop each
        row's backward direction at its real end (checked at export).
        """
        encoded = self.inputs.encode_all(list(items))
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
        return [ranked_prediction(row, self.labels, top) for row in probs]

    def sequence_prediction(self, probs: np.ndarray) -> Prediction:
        """A per-step model's answer from its probabilities [T, C]."""
        label, extra = self.inputs.decode_steps(probs.argmax(-1), self.labels)
        # A per-step answer is as sure as its least sure step.
        return Prediction(label, float(probs.max(-1).min()), [], probs, extra)

    def step_pieces(self, item: Any) -> list[str] | None:
        """What each step reads, as text (a character or a word); None for non-text inputs."""
        return self.inputs.pieces(item)

    def open_stream(self) -> ClassifierStream:
        """A new stream: push text or feature rows as they arrive, read the prediction."""
        return ClassifierStream(self)

    def stream_probabilities(self, item: Any) -> np.ndarray:
        """Probabilities [T, C] after each step of one input (one graph call)."""
        live = self.open_stream()
        return softmax(live.push_encoded(self.encode(item)))

    def stream(self, item: Any) -> Iterator[np.ndarray]:
        """Probabilities [C] after each step, pushed one step at a time as data would arrive."""
        live = self.open_stream()
        for step in self.encode(item):
            yield softmax(live.push_encoded(step[None])[-1])


class ClassifierStream(ModelStream):
    """A classifier's stream: push parts of an input as they arrive; read the prediction."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__(classifier)
        self.classifier = classifier

    def push(self, item: Any) -> np.ndarray:
        """Feed the next part of the input (text, or feature rows [T, D]); probabilities
        [T, C] after each of its steps."""
        return softmax(self.push_encoded(self.classifier.inputs.encode_chunk(item)))

    @property
    def probabilities(self) -> np.ndarray:
        """Probabilities [C] after the last step pushed."""
        if self.logits is None:
            raise InputError("nothing pushed yet: push some input first")
        return softmax(self.logits)

    def prediction(self, top: int = 1) -> Prediction:
        """The current best label (and the `top` most likely) after the last step."""
        return ranked_prediction(self.probabilities, self.classifier.labels, top)


def ranked_prediction(probs: np.ndarray, labels: list[str], top: int) -> Prediction:
    """Prediction from probabilities [C]: the `top` labels, most likely first (stable)."""
    order = np.argsort(-probs, kind="stable")[: max(1, top)]
    pairs = [(labels[c], float(probs[c])) for c in order.tolist()]
    return Prediction(pairs[0][0], pairs[0][1], pairs, probs)


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
