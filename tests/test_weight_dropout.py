"""Weight dropout (DropConnect on the recurrent weights, as AWD-LSTM): training only.

In training each batch sees a dropped copy of the hidden-to-hidden weights, the gradient
reaches the kept weights only, and in evaluation (and so in every export) the model is the
plain LSTM with its weights as they are.
"""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import train_tiny
from helpers import error_line, invoke
from rnnedge.nets.language_model import LanguageModel, LMConfig


def model(weight_dropout: float) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(
        LMConfig(vocab_size=12, hidden=16, embed_dim=8, weight_dropout=weight_dropout)
    )


def test_evaluation_uses_the_weights_as_they_are():
    tokens = torch.randint(0, 12, (3, 9))  # [B, T]
    dropped, plain = model(0.5).eval(), model(0.0).eval()
    assert torch.equal(dropped(tokens)[0], plain(tokens)[0])


def test_training_drops_recurrent_weights_only_where_the_mask_keeps_them():
    tokens = torch.randint(0, 12, (3, 9))  # [B, T]
    net = model(0.5).train()
    torch.manual_seed(1)
    first, _ = net(tokens)
    torch.manual_seed(2)
    second, _ = net(tokens)
    assert not torch.allclose(first, second)  # a new mask per batch
    first.sum().backward()
    grad = net.rnn.weight_hh_l0.grad
    zero_share = (grad == 0).float().mean().item()
    assert 0.3 < zero_share < 0.7  # about half the recurrent weights were dropped
    assert (net.rnn.weight_ih_l0.grad == 0).float().mean().item() < 0.05


def test_a_run_with_weight_dropout_records_it_and_trains(corpus: Path, tmp_path: Path):
    start = torch.load(
        train_tiny(corpus, tmp_path / "run", steps=4, weight_dropout=0.3), weights_only=True
    )
    assert start["model_config"]["weight_dropout"] == 0.3
    assert torch.isfinite(torch.tensor(start["valid"]["bpc"]))


def test_out_of_range_weight_dropout_is_one_line_exit_1(corpus: Path, tmp_path: Path):
    out = tmp_path / "run"
    result = invoke("train", "lm", "--text", corpus, "--out", out, "--weight-dropout", "1.5")
    assert result.exit_code == 1
    error_line(result, "--weight-dropout must be in [0, 1), got 1.5")
    assert not (out / "last.pt").exists()


def test_fine_tuning_may_add_weight_dropout(corpus: Path, tmp_path: Path):
    start = train_tiny(corpus, tmp_path / "start", steps=2, eval_every=2)
    short = dict(steps=2, eval_every=2, checkpoint_every=2)
    tuned = train_tiny(
        corpus, tmp_path / "tuned", init_from=str(start), weight_dropout=0.25, **short
    )
    assert torch.load(tuned, weights_only=True)["model_config"]["weight_dropout"] == 0.25
