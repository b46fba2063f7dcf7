"""Fine-tuning with ``init_from``: a new run starts from another run's checkpoint.

It takes the checkpoint's architecture, vocabulary and weights (dropout may be given), and
refuses text the vocabulary does not cover, in one line, before training.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_text, train_tiny
from helpers import error_line, invoke
from rnnedge.errors import InputError

SHORT = dict(steps=2, eval_every=2, checkpoint_every=2)


@pytest.fixture(scope="module")
def start(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step tiny run (hidden 32) to start from."""
    return train_tiny(corpus, tmp_path_factory.mktemp("start") / "run", steps=4, eval_every=2)


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_fine_tuning_starts_from_the_checkpoint_weights(corpus, start, tmp_path):
    """With a tiny learning rate the run ends next to the start: a fresh initialisation
    (what the options alone would build: hidden 64) could not."""
    options = {**SHORT, "hidden": 64, "lr": 1e-7, "dropout": 0.2, "batching": "random"}
    last = load(train_tiny(corpus, tmp_path / "tuned", init_from=str(start), **options))
    begun = load(start)
    assert last["model_config"] == {**begun["model_config"], "dropout": 0.2}
    assert last["tokenizer"] == begun["tokenizer"]
    for name, weights in begun["model"].items():
        assert torch.allclose(last["model"][name], weights, atol=1e-4), name


def test_dropout_not_given_is_the_starting_models(corpus, start, tmp_path):
    last = load(train_tiny(corpus, tmp_path / "tuned", init_from=str(start), **SHORT))
    assert last["model_config"]["dropout"] == load(start)["model_config"]["dropout"]


def test_text_the_vocabulary_lacks_is_refused_in_one_line(start, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(make_text(20_000, seed=7) + "Zion\n")
    with pytest.raises(InputError) as caught:
        train_tiny(other, tmp_path / "tuned", init_from=str(start), **SHORT)
    message = str(caught.value)
    assert "'Z' (U+005A)" in message and "--init-from" in message and "\n" not in message
    assert not (tmp_path / "tuned" / "last.pt").exists()


def test_cli_init_from_a_missing_checkpoint_is_one_line_exit_1(corpus, tmp_path):
    missing = tmp_path / "nowhere.pt"
    out = tmp_path / "run"
    result = invoke(
        "train",
        "lm",
        "--text",
        str(corpus),
        "--out",
        str(out),
        "--init-from",
        str(missing),
        "--steps",
        "2",
    )
    assert result.exit_code == 1
    error_line(result, "nowhere.pt", "does not exist")
    assert not out.exists()
