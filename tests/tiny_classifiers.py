"""Tiny token classifiers for tests: a random word set and a 3-step training run, exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnedge.exporter import export_checkpoint
from rnnedge.sources import LabelledSet
from rnnedge.tokenizer import WordTokenizer
from rnnedge.train.classify import ClassifierTrainConfig, fit_labelled

WORDS = [f"w{i}" for i in range(18)]


def token_set(per_step: bool, seed: int) -> LabelledSet:
    """Random word sequences (lengths 1..11); one label per sequence or per step."""
    tokenizer = WordTokenizer(["<pad>", "<unk>", *WORDS])
    rng = np.random.default_rng(seed)
    inputs = [rng.integers(1, len(tokenizer), int(n)) for n in rng.integers(1, 12, 24)]
    if per_step:
        targets = [(x % 2).astype(np.int64) for x in inputs]
        labels = ["even", "odd"]
    else:
        targets = [np.int64(x[0] % 3) for x in inputs]
        labels = ["a", "b", "c"]
    return LabelledSet(inputs, targets, labels, tokenizer.to_dict(), {"kind": "text"})


def fit_tiny_classifier(out: Path, **options) -> tuple[Path, Path]:
    """Train 3 steps on token_set (hidden 8, embedding 8 unless given) and export with the
    validation gate: (checkpoint, model.onnx)."""
    config = ClassifierTrainConfig(
        out=str(out),
        **{"hidden": 8, "embed_dim": 8, **options},
        steps=3,
        eval_every=3,
        checkpoint_every=3,
        batch_size=8,
        lr=0.05,
        threads=1,
        device="cpu",
    )
    per_step = config.pooling == "per-step"
    fit_labelled(config, token_set(per_step, 0), token_set(per_step, 1), {"source": "test"})
    export_checkpoint(out / "last.pt", out / "model.onnx")
    return out / "last.pt", out / "model.onnx"
