"""Turning user data into classifier examples (no torch: training and `eval` share it).

The tokenizer is built from the training examples only, so validation and test text is
never seen before it is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.datasets import (
    TextExamples,
    addition_examples,
    load_aclimdb,
    load_folders,
    load_idx_images,
    load_table,
)
from rnnedge.errors import InputError
from rnnedge.runtime.adapt import check_rate
from rnnedge.tokenizer import PAD_CHAR, CharTokenizer, WordTokenizer

UNK_CHAR = "\ufffd"


@dataclass
class LabelledSet:
    """Per-example model inputs and targets, with what the manifest needs to describe them."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    labels: list[str]
    tokenizer: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.inputs)


def read_texts(
    source: dict[str, Any], split: str, label_names: list[str] | None = None
) -> TextExamples:
    """source = {"kind": "folders"|"aclimdb"|"table", "path": ..., columns…}."""
    kind, path = source["kind"], source["path"]
    if kind == "folders":
        return load_folders(path, label_names)
    if kind == "aclimdb":
        return load_aclimdb(path, split, label_names)
    if kind == "table":
        return load_table(path, source["text_column"], source["label_column"], label_names)
    raise InputError(f"unknown text source {kind!r}")


def char_tokenizer(texts: list[str]) -> CharTokenizer:
    chars = sorted(set("".join(texts)) - {PAD_CHAR, UNK_CHAR})
    return CharTokenizer([PAD_CHAR, UNK_CHAR, *chars], unknown="replace", unk_token=UNK_CHAR)


def build_tokenizer(kind: str, texts: list[str], max_vocab: int) -> CharTokenizer | WordTokenizer:
    if kind == "word":
        return WordTokenizer.from_texts(texts, max_vocab)
    if kind == "char":
        return char_tokenizer(texts)
    raise InputError(f"--tokenizer must be word or char, got {kind!r}")


def encode_texts(
    examples: TextExamples, tokenizer: CharTokenizer | WordTokenizer, max_len: int
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Token ids truncated to `max_len`; texts with no token at all are dropped and counted."""
    inputs, targets, dropped = [], [], 0
    for text, label in zip(examples.texts, examples.labels, strict=True):
        ids = tokenizer.encode(text)[:max_len]
        if ids.size == 0:
            dropped += 1
            continue
        inputs.append(ids)
        targets.append(np.int64(label))
    return inputs, targets, dropped


def text_sets(
    source: dict[str, Any],
    tokenizer_kind: str,
    max_vocab: int,
    max_len: int,
    test: dict[str, Any] | None,
    valid_fraction: float,
    seed: int,
) -> tuple[LabelledSet, LabelledSet]:
    """Training and validation sets; validation is `test` when given, else a seeded split."""
    train_texts = read_texts(source, "train")
    if test is not None:
        valid_texts = read_texts(test, "test", train_texts.label_names)
    else:
        train_texts, valid_texts = split_texts(train_texts, valid_fraction, seed)
    tokenizer = build_tokenizer(tokenizer_kind, train_texts.texts, max_vocab)
    preprocessing = {"kind": "text", "max_len": max_len}

    def encoded(examples: TextExamples) -> LabelledSet:
        inputs, targets, dropped = encode_texts(examples, tokenizer, max_len)
        return LabelledSet(
            inputs,
            targets,
            examples.label_names,
            tokenizer.to_dict(),
            preprocessing,
            len(examples.skipped) + dropped,
        )

    return encoded(train_texts), encoded(valid_texts)


def split_texts(
    examples: TextExamples, valid_fraction: float, seed: int
) -> tuple[TextExamples, TextExamples]:
    if not 0.0 < valid_fraction < 1.0:
        raise InputError(f"--valid-fraction must be between 0 and 1, got {valid_fraction}")
    order = np.random.default_rng(seed).permutation(len(examples.texts))
    cut = max(1, int(len(order) * valid_fraction))

    def pick(rows: np.ndarray) -> TextExamples:
        return TextExamples(
            [examples.texts[r] for r in rows],
            examples.labels[rows],
            examples.label_names,
            examples.skipped,
        )

    return pick(order[cut:]), pick(order[:cut])


def split_set(
    examples: LabelledSet, valid_fraction: float, seed: int
) -> tuple[LabelledSet, LabelledSet]:
    """A seeded random split of independent examples into training and validation."""
    if not 0.0 < valid_fraction < 1.0:
        raise InputError(f"--valid-fraction must be between 0 and 1, got {valid_fraction}")
    order = np.random.default_rng(seed).permutation(len(examples))
    cut = max(1, int(len(order) * valid_fraction))

    def pick(rows: np.ndarray) -> LabelledSet:
        return LabelledSet(
            [examples.inputs[r] for r in rows],
            [examples.targets[r] for r in rows],
            examples.labels,
            examples.tokenizer,
            examples.preprocessing,
        )

    return pick(order[cut:]), pick(order[:cut])


def idx_set(images: str | Path, labels: str | Path, label_names: list[str] | None) -> LabelledSet:
    data = load_idx_images(images, labels, label_names)
    return LabelledSet(
        list(data.features),
        [np.int64(t) for t in data.labels],
        data.label_names,
        preprocessing=data.preprocessing,
    )


def addition_set(count: int, bits: int, seed: int) -> LabelledSet:
    if not 1 <= bits <= 62:
        raise InputError(f"--bits must be between 1 and 62, got {bits}")
    features, sums, _, _ = addition_examples(count, bits, np.random.default_rng(seed))
    return LabelledSet(
        list(features),
        list(sums),
        ["0", "1"],
        preprocessing={
            "kind": "binary-addition",
            "bits": bits,
            "description": "input 'a+b'; step t reads bit t of a "
            "and b (LSB first), outputs bit t of a+b",
        },
    )


def evaluation_items(
    model_labels: list[str],
    preprocessing: dict[str, Any],
    *,
    folders: Path | None = None,
    aclimdb: Path | None = None,
    table: Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    images: Path | None = None,
    labels: Path | None = None,
    add: int = 0,
    seed: int = 12345,
) -> tuple[list[Any], list[np.ndarray]]:
    """Raw inputs (as the runtime's Classifier takes them) and targets, from one source."""
    given = [
        name
        for name, value in (
            ("--folders", folders),
            ("--aclimdb", aclimdb),
            ("--table", table),
            ("--images", images),
            ("--add", add),
        )
        if value
    ]
    if len(given) != 1:
        raise InputError(
            "give exactly one evaluation source: --folders, --aclimdb, --table, "
            "--images with --labels, or --add N"
        )
    if add:
        if preprocessing.get("kind") != "binary-addition":
            raise InputError("--add scores the binary-addition model; this model is not one")
        _, sums, a, b = addition_examples(add, preprocessing["bits"], np.random.default_rng(seed))
        return [f"{x}+{y}" for x, y in zip(a, b, strict=True)], list(sums)
    if images is not None:
        if labels is None:
            raise InputError("--images needs --labels (the IDX labels file)")
        data = load_idx_images(
            images, labels, model_labels, scale=preprocessing.get("scale", 1.0 / 255.0)
        )
        return list(data.features), [np.int64(t) for t in data.labels]
    kind, path = next(
        (k, v) for k, v in (("folders", folders), ("aclimdb", aclimdb), ("table", table)) if v
    )
    examples = read_texts(
        {"kind": kind, "path": str(path), "text_column": text_column, "label_column": label_column},
        "test",
        model_labels,
    )
    return examples.texts, [np.int64(t) for t in examples.labels]


@dataclass(frozen=True)
class TextReading:
    """How `rnnedge eval` reads a language model's text (see Generator.evaluate)."""

    warmup: int = 0  # unscored characters read before each slice
    adapt: float = 0.0  # SGD rate of the adaptive output layer; 0 = static
    streams: int = 32  # slices read side by side

    def check(self) -> None:
        """One InputError line for an impossible setting."""
        if self.warmup < 0:
            raise InputError(f"--warmup must be 0 or more characters, got {self.warmup}")
        if self.adapt != 0.0:
            check_rate(self.adapt)
        if self.streams < 1:
            raise InputError(f"--streams must be 1 or more, got {self.streams}")


def evaluate_model(
    runtime: Any,
    *,
    text: Path | None = None,
    tail: float = 1.0,
    reading: TextReading = TextReading(),
    **sources: Any,
) -> dict[str, Any]:
    """`rnnedge eval`: bits/char of a language model on `text` (its last `tail` fraction,
    read as `reading` says), or a classifier's metrics on one labelled source (see
    `evaluation_items`)."""
    if runtime.task == "language-model":
        return evaluate_text(runtime, text, tail, reading)
    if reading != TextReading(warmup=reading.warmup):
        raise InputError("--adapt and --streams are for language models; drop them")
    from rnnedge.runtime.classify import evaluate_classifier

    items, targets = evaluation_items(runtime.labels, runtime.preprocessing, **sources)
    return evaluate_classifier(runtime, items, targets)


def evaluate_text(
    generator: Any, text: Path | None, tail: float, reading: TextReading = TextReading()
) -> dict[str, Any]:
    """Bits/char of the last `tail` fraction of the file `text`; the text before the tail is
    the context the slices' warm-up reads."""
    from rnnedge.textio import read_text, tail_start

    if text is None:
        raise InputError("--text FILE is required: the text to score")
    if not 0.0 < tail <= 1.0:
        raise InputError(f"--tail must be in (0, 1], got {tail}")
    reading.check()
    whole = read_text(text)
    start = tail_start(len(whole), tail)
    # Without a warm-up the tail is read alone, exactly as training's evaluation reads it.
    context = whole[:start] if reading.warmup else ""
    metrics = generator.evaluate(
        whole[start:],
        streams=reading.streams,
        context=context,
        warmup=reading.warmup,
        adapt=reading.adapt,
    )
    return {"text": str(text), "tail": tail, **metrics}


def idx_labels_beside(images: Path) -> Path:
    """t10k-images-idx3-ubyte[.gz] → t10k-labels-idx1-ubyte[.gz] in the same folder."""
    if "images-idx3" not in images.name:
        raise InputError(
            f"{images} is not an IDX images file: this model reads images, so --heldout "
            "must be one (e.g. t10k-images-idx3-ubyte.gz) with its labels file beside it"
        )
    labels = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
    if not labels.is_file():
        raise InputError(
            f"no IDX labels file beside {images} (expected {labels.name}); "
            "keep the labels file next to the images"
        )
    return labels


def text_sources(
    folders: Path | None,
    aclimdb: Path | None,
    table: Path | None,
    valid_table: Path | None,
    text_column: str,
    label_column: str,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(training source, test source or None) from `train classify`'s data options: exactly
    one of folders / aclImdb / table; aclImdb brings its own test split, a table may have a
    validation table."""
    given = [(k, v) for k, v in (("folders", folders), ("aclimdb", aclimdb), ("table", table)) if v]
    if len(given) != 1:
        raise InputError("give exactly one data source: --folders, --aclimdb or --table")
    kind, path = given[0]
    source = {
        "kind": kind,
        "path": str(path),
        "text_column": text_column,
        "label_column": label_column,
    }
    test = {**source} if kind == "aclimdb" else None
    if valid_table is not None:
        if kind != "table":
            raise InputError("--valid-table goes with --table")
        test = {**source, "path": str(valid_table)}
    return source, test
