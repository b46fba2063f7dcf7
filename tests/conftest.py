"""Shared fixtures: a small text the tests write, and one tiny trained + exported model.

The tiny model (LSTM 2 × 32 on ~20 kB of generated verse-like text, 30 steps) trains and
exports in a few seconds and is reused by every test that needs a real model file.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

WORDS = [
    "and",
    "the",
    "lord",
    "said",
    "unto",
    "moses",
    "behold",
    "i",
    "will",
    "send",
    "thee",
    "into",
    "the",
    "land",
    "of",
    "israel",
    "that",
    "they",
    "may",
    "know",
    "my",
    "name",
    "for",
    "ever",
    "and",
    "ever",
]


def make_text(chars: int, seed: int = 0) -> str:
    """Deterministic verse-like lines of lowercase words (vocabulary: a-z, space, '.', newline)."""
    rng = random.Random(seed)
    lines, size = [], 0
    while size < chars:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))) + "."
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(make_text(20_000))
    return path


def train_tiny(text: Path, out: Path, **overrides) -> Path:
    """Train a tiny LM quietly and return its last checkpoint."""
    from rnnedge.train.lm import LMTrainConfig, fit

    options = dict(
        text=str(text),
        out=str(out),
        hidden=32,
        layers=2,
        embed_dim=16,
        batch_size=8,
        seq_len=32,
        steps=30,
        eval_every=15,
        checkpoint_every=15,
        threads=1,
        seed=0,
    )
    options.update(overrides)
    fit(LMTrainConfig(**options))
    return Path(out) / "last.pt"


@pytest.fixture(scope="session")
def tiny_checkpoint(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(corpus, tmp_path_factory.mktemp("run"))


def export_tiny(
    checkpoint: Path, corpus: Path, factory: pytest.TempPathFactory, quantize: str | None
) -> Path:
    """The tiny checkpoint exported at one precision (None: fp32), with its quality change."""
    from rnnedge.exporter import export_checkpoint

    path = factory.mktemp("model") / f"tiny-{quantize or 'fp32'}.onnx"
    export_checkpoint(checkpoint, path, quantize=quantize, heldout=corpus)
    return path


@pytest.fixture(scope="session")
def tiny_model(
    tiny_checkpoint: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return export_tiny(tiny_checkpoint, corpus, tmp_path_factory, None)


@pytest.fixture(scope="session")
def tiny_model_int8(
    tiny_checkpoint: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return export_tiny(tiny_checkpoint, corpus, tmp_path_factory, "int8")


@pytest.fixture(scope="session")
def tiny_model_fp16(
    tiny_checkpoint: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return export_tiny(tiny_checkpoint, corpus, tmp_path_factory, "fp16")
