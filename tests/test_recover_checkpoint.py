"""export/recover_checkpoint.py: a shipped LSTM language model's ONNX file back to a
checkpoint that `--init-from` fine-tunes (the shipped KJV model's run folder is gone).

The weights must come back in PyTorch's layout and gate order: exactly from an fp32 file,
within half a quantisation step from an int8 one, and the rebuilt model must predict what
the file predicts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import export_script
from rnnedge.nets.language_model import LanguageModel, LMConfig
from rnnedge.runtime.session import open_session


@pytest.fixture(scope="module")
def script():
    with export_script("recover_checkpoint") as module:
        yield module


def recovered(script, model: Path, tmp_path: Path) -> dict:
    path = tmp_path / "start.pt"
    script.recover(str(model), str(path))
    return torch.load(path, weights_only=True)


def test_an_fp32_file_gives_back_the_trained_weights(script, tiny_model, tiny_checkpoint, tmp_path):
    trained = torch.load(tiny_checkpoint, weights_only=True)
    start = recovered(script, tiny_model, tmp_path)
    assert start["task"] == "language-model"
    assert start["tokenizer"]["vocab"] == trained["tokenizer"]["vocab"]
    assert set(start["model"]) == set(trained["model"])
    for name, weights in trained["model"].items():
        assert torch.allclose(start["model"][name], weights, atol=1e-6), name


def test_an_int8_file_gives_weights_within_half_a_quantisation_step(
    script, tiny_model_int8, tiny_checkpoint, tmp_path
):
    trained = torch.load(tiny_checkpoint, weights_only=True)["model"]
    start = recovered(script, tiny_model_int8, tmp_path)["model"]
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l1", "head.weight", "embedding.weight"):
        weights = trained[name]
        # the exporter's 7-bit weights (reduce_range) span [-max|w|, max|w|] in 127 steps;
        # the embedding (uint8, asymmetric) spans [min, max] in 255, a finer grid
        step = 2 * weights.abs().max() / 127
        assert (start[name] - weights).abs().max() <= step / 2 + 1e-6, name


def test_the_rebuilt_model_predicts_what_the_file_predicts(script, tiny_model, tmp_path):
    start = recovered(script, tiny_model, tmp_path)
    net = LanguageModel(LMConfig(**start["model_config"])).eval()
    net.load_state_dict(start["model"])
    session = open_session(tiny_model, device="cpu", threads=1).session
    tokens = np.array([[1, 4, 2, 7, 3, 3, 5]], dtype=np.int64)  # [B=1, T=7]
    zeros = np.zeros((1, 2, 32), dtype=np.float32)  # [B, layers, hidden]
    feeds = {"tokens": tokens, "state_in.h": zeros, "state_in.c": zeros}
    expected = session.run(["logits"], feeds)[0]  # [B, T, V]
    with torch.no_grad():
        logits, _ = net(torch.from_numpy(tokens))
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-4)
