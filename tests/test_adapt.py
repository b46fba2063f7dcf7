"""Adaptive reading (`rnnedge eval --adapt`): the output layer learns as the text is scored.

Checked against a brute-force reference: each prediction from the whole prefix read in one
call from a zero state, the correction's update from torch autograd. And checked to learn:
on a text the model never saw, adaptation must beat the static model by a wide margin.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import make_text
from helpers import error_line, invoke
from rnnedge.runtime import load

RATE = 0.5  # large, so a wrong update would move the total far


def reference_nats(generator, window_ids: np.ndarray, rate: float) -> float:
    """Nats of window_ids[1:] read one slice alone, each prediction from the whole prefix in
    one call, the output correction trained by torch autograd after every score."""
    hidden = generator.initial_state(1)["state_in.h"][0].size  # layers × hidden
    delta_w = torch.zeros(generator.classes, hidden, dtype=torch.float64, requires_grad=True)
    delta_b = torch.zeros(generator.classes, dtype=torch.float64, requires_grad=True)
    total = 0.0
    for t in range(1, len(window_ids)):
        logits, state = generator.run(window_ids[None, :t], generator.initial_state(1))
        features = torch.from_numpy(state["state_in.h"][0].ravel().astype(np.float64))  # [L·H]
        corrected = torch.from_numpy(logits[0, -1].astype(np.float64)) + delta_w @ features
        loss = F.cross_entropy((corrected + delta_b)[None], torch.tensor([window_ids[t]]))
        total += loss.item()
        delta_w.grad = delta_b.grad = None
        loss.backward()
        with torch.no_grad():
            delta_w -= rate * delta_w.grad
            delta_b -= rate * delta_b.grad
    return total


@pytest.mark.parametrize("streams", [1, 2])
def test_adaptive_eval_equals_the_brute_force_reference(tiny_model, corpus, streams):
    generator = load(tiny_model)
    text = corpus.read_text()[:121]
    got = generator.evaluate(text, streams=streams, adapt=RATE)
    ids = generator.tokenizer.encode(text)
    length = (len(ids) - 1) // streams
    expected = sum(
        reference_nats(generator, ids[i * length : (i + 1) * length + 1], RATE)
        for i in range(streams)
    )
    assert got["chars"] == streams * length
    assert got["loss"] == pytest.approx(expected / got["chars"], rel=1e-5)
    static = generator.evaluate(text, streams=streams)
    assert abs(got["loss"] - static["loss"]) > 0.01  # the update moved the figure


def test_adaptation_learns_a_text_the_model_never_saw(tiny_model):
    """A repeated phrase the corpus never holds: the static model stays unsure of it, the
    adapting one learns it as it reads."""
    generator = load(tiny_model)
    text = "zebra quartz jumps. " * 150
    static = generator.evaluate(text, streams=1)
    adapted = generator.evaluate(text, streams=1, adapt=0.02)
    assert adapted["bpc"] < static["bpc"] - 0.5, (static["bpc"], adapted["bpc"])
    assert adapted["adapt"] == 0.02 and adapted["streams"] == 1


def test_cli_eval_adapt_reports_the_rate(tiny_model, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(make_text(3000, seed=3))
    result = invoke(
        "eval", str(tiny_model), "--text", str(text), "--adapt", "0.01", "--streams", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    assert '"adapt": 0.01' in result.stdout and '"streams": 1' in result.stdout


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (["--adapt", "-1"], "--adapt must be a learning rate"),
        (["--adapt", "nan"], "--adapt must be a learning rate"),
        (["--streams", "0"], "--streams must be 1 or more"),
    ],
)
def test_cli_eval_bad_reading_options_are_one_line(tiny_model, corpus, options, needle):
    result = invoke("eval", str(tiny_model), "--text", str(corpus), *options)
    assert result.exit_code == 1
    error_line(result, needle)


def test_cli_eval_adapt_on_a_classifier_is_one_line(tmp_path):
    result = invoke("eval", "langid", "--folders", str(tmp_path), "--adapt", "0.01")
    assert result.exit_code == 1
    error_line(result, "--adapt and --streams are for language models")
