"""Training: the held-out split, both batch schemes, reproducibility, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import train_tiny
from rnnedge.errors import InputError
from rnnedge.train.data import RandomWindows, SequentialStreams, split_tail
from rnnedge.train.lm import KILL_AT_STEP_ENV


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, weights_only=True)["model"]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_heldout_is_the_tail_and_never_in_training_batches():
    ids = np.arange(1000)
    split = split_tail(ids, 0.1)
    assert split.train.tolist() == list(range(900)) and split.valid.tolist() == list(
        range(900, 1000)
    )
    batcher = RandomWindows(
        split.train, batch=16, seq_len=20, generator=torch.Generator().manual_seed(0)
    )
    for _ in range(50):
        _, targets, reset = batcher.next_batch()
        assert reset and int(targets.max()) < 900


def test_sequential_streams_continue_where_the_last_batch_ended():
    ids = torch.arange(1001)
    batcher = SequentialStreams(ids, batch=4, seq_len=10)
    first, _, reset_first = batcher.next_batch()
    second, targets, reset_second = batcher.next_batch()
    assert reset_first and not reset_second
    assert torch.equal(second[:, 0], first[:, -1] + 1)  # each stream is contiguous
    assert torch.equal(targets, second + 1)


def test_text_shorter_than_a_window_is_refused(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("in the beginning")
    with pytest.raises(InputError, match="characters but at least"):
        train_tiny(short, tmp_path / "run", seq_len=100)


@pytest.mark.parametrize("batching", ["random", "sequential"])
def test_same_seed_same_weights(corpus, tmp_path, batching):
    a = train_tiny(corpus, tmp_path / "a", batching=batching, steps=6, dropout=0.2)
    b = train_tiny(corpus, tmp_path / "b", batching=batching, steps=6, dropout=0.2)
    c = train_tiny(corpus, tmp_path / "c", batching=batching, steps=6, dropout=0.2, seed=1)
    assert same_weights(a, b) and not same_weights(a, c)


@pytest.mark.parametrize(
    ("cell", "optimizer", "embed_dim"),
    [("rnn", "sgd", 0), ("gru", "adam", 8), ("lstm", "adamw", 0)],
)
def test_cells_and_optimizers_learn(corpus, tmp_path, cell, optimizer, embed_dim):
    lr = 1.0 if optimizer == "sgd" else 3e-2
    train_tiny(
        corpus,
        tmp_path,
        cell=cell,
        optimizer=optimizer,
        embed_dim=embed_dim,
        lr=lr,
        steps=40,
        eval_every=20,
        schedule="cosine",
        warmup_steps=5,
    )
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [20, 40]
    vocab = torch.load(tmp_path / "last.pt", weights_only=True)["model_config"]["vocab_size"]
    # Guessing uniformly costs log2(vocab) bits; a model that learned anything is well below.
    assert records[-1]["valid_bpc"] < np.log2(vocab) - 0.5
    assert records[-1]["valid_bpc"] == pytest.approx(records[-1]["valid_loss"] / np.log(2))


def test_checkpoint_is_self_contained_and_weights_only(tiny_checkpoint):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    assert payload["format"] == "rnnedge-checkpoint"
    assert payload["model_config"]["cell"] == "lstm"
    assert len(payload["tokenizer"]["vocab"]) == payload["model_config"]["vocab_size"]
    assert (tiny_checkpoint.parent / "best.pt").exists()


TRAIN_SCRIPT = """
import sys
from conftest import train_tiny
train_tiny(sys.argv[1], sys.argv[2], steps=24, eval_every=8, checkpoint_every=8,
           batching=sys.argv[3], dropout=0.2, resume=True)
"""


def run_training(corpus: Path, out: Path, batching: str, kill_at: int | None = None) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    if kill_at:
        env[KILL_AT_STEP_ENV] = str(kill_at)
    return subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(corpus), str(out), batching],
        env=env,
        capture_output=True,
    ).returncode


@pytest.mark.parametrize("batching", ["random", "sequential"])
def test_resume_after_kill_loses_nothing(corpus, tmp_path, batching):
    """SIGKILL at step 13 (last checkpoint: 8), resume → the weights of an unbroken run."""
    assert run_training(corpus, tmp_path / "killed", batching, kill_at=13) == -signal.SIGKILL
    assert torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["step"] == 8
    assert not list((tmp_path / "killed").glob(".*.tmp"))  # no half-written checkpoint
    assert run_training(corpus, tmp_path / "killed", batching) == 0
    assert run_training(corpus, tmp_path / "unbroken", batching) == 0
    assert same_weights(tmp_path / "killed" / "last.pt", tmp_path / "unbroken" / "last.pt")
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [8, 16, 24]  # no duplicated records after the resume
