"""Each kind of classifier input, defined once.

A manifest's ``preprocessing.kind`` names how the model reads its inputs: ``text``
(tokenized), ``image-rows`` (an image fed row by row, pixels scaled as the manifest says),
``binary-addition`` (``"a+b"`` fed as bit pairs, LSB first, answered bit by bit) or
``features`` (any [steps, dim] vectors). The runtime's Classifier, the benchmark, ``eval``
and the exporter's held-out check all look the kind up here instead of testing its name;
adding an input kind is one new class in ``INPUT_KINDS``. (Language models are the other
manifest task: `rnnedge.runtime.generate.Generator`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.errors import InputError
from rnnedge.tokenizer import CharTokenizer, WordTokenizer

ADDITION_HELDOUT = 2000  # fresh random pairs scored for the binary-addition model


class InputKind:
    """How one kind of input becomes the graph's per-example array, and back."""

    kind = "features"
    reads_text = False  # whether a stream can be fed text as it arrives (stdin lines)

    def __init__(
        self,
        preprocessing: dict[str, Any],
        tokenizer: CharTokenizer | WordTokenizer | None,
        dim: int | None,
    ) -> None:
        self.preprocessing, self.tokenizer, self.dim = preprocessing, tokenizer, dim

    def encode_all(self, items: list[Any]) -> list[np.ndarray]:
        """Each whole input as the graph reads it: ids [T] or features [T, D]."""
        return [self.encode_chunk(item) for item in items]

    def encode_chunk(self, item: Any) -> np.ndarray:
        """Part of an input pushed into a stream (no length limit applies)."""
        try:
            features = np.asarray(item, dtype=np.float32)
        except (ValueError, TypeError):
            raise InputError(
                f"this model reads [steps, {self.dim}] feature vectors (e.g. --images), not text"
            ) from None
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise InputError(
                f"each input must be [steps, {self.dim}] features; got shape {list(features.shape)}"
            )
        return features

    def pieces(self, item: Any) -> list[str] | None:
        """What each step reads, as text; None for inputs that are not text."""
        return None

    def decode_steps(self, best: np.ndarray, labels: list[str]) -> tuple[str, dict[str, Any]]:
        """A per-step model's answer from its best class per step [T]: (label, extras)."""
        steps = [labels[b] for b in best]
        return " ".join(steps), {"steps": steps}

    def random_inputs(self, count: int, steps: int, rng: np.random.Generator) -> list[Any]:
        """`count` benchmark inputs of about `steps` steps in this kind."""
        rows = int(self.preprocessing.get("rows", steps))
        return [rng.random((rows, self.dim), dtype=np.float32) for _ in range(count)]

    def heldout_items(
        self, labels: list[str], path: Path | None, data: dict[str, Any], precision: str
    ) -> tuple[list[Any], list[np.ndarray]]:
        """Labelled held-out inputs for an int8/fp16 export's accuracy change."""
        raise InputError(
            f"{precision} export of this classifier needs labelled held-out data, and rnnedge "
            "cannot read it for a features model; export without --quantize/--fp16"
        )


class ImageRows(InputKind):
    """An image read row by row: [rows, cols] pixels; integers are scaled as the manifest says."""

    kind = "image-rows"

    def encode_chunk(self, item: Any) -> np.ndarray:
        array = np.asarray(item)
        if np.issubdtype(array.dtype, np.integer):  # raw pixels: the model's own scale
            array = array.astype(np.float32) * np.float32(self.preprocessing.get("scale", 1.0))
        return super().encode_chunk(array)

    def heldout_items(
        self, labels: list[str], path: Path | None, data: dict[str, Any], precision: str
    ) -> tuple[list[Any], list[np.ndarray]]:
        from rnnedge.sources import evaluation_items, idx_labels_beside

        path = require_heldout(path, precision)
        return evaluation_items(
            labels, self.preprocessing, images=path, labels=idx_labels_beside(path)
        )


class TextInputs(InputKind):
    """Text tokenized by the manifest's tokenizer, cut to ``max_len`` tokens after it."""

    kind = "text"
    reads_text = True

    def encode_all(self, items: list[Any]) -> list[np.ndarray]:
        if not all(isinstance(item, str) for item in items):
            raise InputError("this model classifies text; pass strings")
        limit = self.preprocessing.get("max_len") or None
        encoded = [ids[:limit] for ids in self.tokenizer.encode_batch(list(items))]
        for item, ids in zip(items, encoded, strict=True):
            if ids.size == 0:
                raise InputError(f"input {item[:40]!r} has no token this model knows")
        return encoded

    def encode_chunk(self, item: Any) -> np.ndarray:
        if not isinstance(item, str):
            raise InputError("this model classifies text; pass strings")
        return self.tokenizer.encode(item)

    def pieces(self, item: Any) -> list[str] | None:
        return [self.tokenizer.decode([token]) for token in self.encode_all([item])[0].tolist()]

    def random_inputs(self, count: int, steps: int, rng: np.random.Generator) -> list[Any]:
        vocab = [t for t in self.tokenizer.vocab if not (t.startswith("<") and t.endswith(">"))]
        separator = " " if isinstance(self.tokenizer, WordTokenizer) else ""
        return [separator.join(rng.choice(vocab, steps)) for _ in range(count)]

    def heldout_items(
        self, labels: list[str], path: Path | None, data: dict[str, Any], precision: str
    ) -> tuple[list[Any], list[np.ndarray]]:
        from rnnedge.sources import evaluation_items

        path = require_heldout(path, precision)
        if path.is_dir():
            kind = (
                "aclimdb" if (path / "train").is_dir() and (path / "test").is_dir() else "folders"
            )
            return evaluation_items(labels, self.preprocessing, **{kind: path})
        source = data.get("source", {})
        columns = {k: source[k] for k in ("text_column", "label_column") if k in source}
        return evaluation_items(labels, self.preprocessing, table=path, **columns)


class BinaryAddition(InputKind):
    """'a+b' → [bits + 1, 2] bit pairs, LSB first; the answer is the sum, one bit per step."""

    kind = "binary-addition"

    def encode_chunk(self, item: Any) -> np.ndarray:
        return encode_addition(item, int(self.preprocessing["bits"]))

    def decode_steps(self, best: np.ndarray, labels: list[str]) -> tuple[str, dict[str, Any]]:
        total = int((best.astype(np.int64) << np.arange(best.size)).sum())
        return str(total), {"steps": [labels[b] for b in best], "sum": total}

    def random_inputs(self, count: int, steps: int, rng: np.random.Generator) -> list[Any]:
        top = 2 ** (int(self.preprocessing["bits"]) - 1)
        return [f"{a}+{b}" for a, b in rng.integers(0, top, (count, 2)).tolist()]

    def heldout_items(
        self, labels: list[str], path: Path | None, data: dict[str, Any], precision: str
    ) -> tuple[list[Any], list[np.ndarray]]:
        from rnnedge.sources import evaluation_items

        return evaluation_items(labels, self.preprocessing, add=ADDITION_HELDOUT)


INPUT_KINDS: dict[str, type[InputKind]] = {
    kind.kind: kind for kind in (InputKind, ImageRows, TextInputs, BinaryAddition)
}


def input_kind(
    preprocessing: dict[str, Any],
    tokenizer: CharTokenizer | WordTokenizer | None = None,
    dim: int | None = None,
) -> InputKind:
    """The input kind a manifest's preprocessing names (text when it has a tokenizer)."""
    name = preprocessing.get("kind") or ("text" if tokenizer is not None else "features")
    if name not in INPUT_KINDS:
        raise InputError(
            f"this model's input kind {name!r} is not known to this rnnedge; upgrade rnnedge"
        )
    return INPUT_KINDS[name](preprocessing, tokenizer, dim)


def require_heldout(path: str | Path | None, precision: str) -> Path:
    if path is None:
        raise InputError(
            f"{precision} export of a classifier measures the accuracy change on labelled held-out "
            "data: pass --heldout (a CSV/JSONL table, a folder per label, aclImdb, or IDX images)"
        )
    return Path(path)


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
    # Python integers, not numpy shifts: a model may be fed numbers wider than 63 bits.
    pairs = [((a >> step) & 1, (b >> step) & 1) for step in range(bits + 1)]
    return np.array(pairs, dtype=np.float32).reshape(bits + 1, 2)
