"""export/calibrate.py: a temperature fitted on the run's validation split, folded into the
output layer (the KJV recipe's fine-tuned model is over-confident on unlike text).

The fit must find the loss's minimum (not merely improve on T = 1), recover a known
over-confidence, and the written checkpoint must predict exactly logits / T.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import export_script
from rnnedge.nets.language_model import LanguageModel, LMConfig
from rnnedge.train.lm import evaluate_bpc


@pytest.fixture(scope="module")
def calibrate():
    with export_script("calibrate") as module:
        yield module


def tiny(checkpoint: Path, sharpen: float = 1.0) -> LanguageModel:
    """The tiny trained model, its logits multiplied by `sharpen` (over-confidence)."""
    payload = torch.load(checkpoint, weights_only=True)
    model = LanguageModel(LMConfig(**payload["model_config"]))
    model.load_state_dict(payload["model"])
    with torch.no_grad():
        model.head.weight.mul_(sharpen)
        model.head.bias.mul_(sharpen)
    return model.eval()


def bpc(model: LanguageModel, ids: torch.Tensor, temperature: float) -> float:
    return evaluate_bpc(model, ids, torch.device("cpu"), temperature=temperature)["bpc"]


def test_the_fitted_temperature_is_the_minimum(calibrate, tiny_checkpoint, corpus):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    ids = calibrate.validation_ids(payload, corpus)
    model = tiny(tiny_checkpoint)
    temperature, tried = calibrate.fit_temperature(model, ids)
    best = bpc(model, ids, temperature)
    assert best <= tried[1.0]
    assert best <= bpc(model, ids, temperature * 1.05) and best <= bpc(
        model, ids, temperature / 1.05
    )


def test_a_known_over_confidence_is_undone(calibrate, tiny_checkpoint, corpus):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    ids = calibrate.validation_ids(payload, corpus)
    plain, _ = calibrate.fit_temperature(tiny(tiny_checkpoint), ids)
    sharpened, _ = calibrate.fit_temperature(tiny(tiny_checkpoint, sharpen=1.6), ids)
    assert sharpened == pytest.approx(1.6 * plain, rel=0.03)


def test_the_calibrated_checkpoint_predicts_logits_over_t(
    calibrate, tiny_checkpoint, corpus, tmp_path
):
    record = calibrate.calibrate(tiny_checkpoint, corpus, tmp_path / "calibrated.pt")
    written = torch.load(tmp_path / "calibrated.pt", weights_only=True)
    assert written["calibration"]["temperature"] == record["temperature"]
    model, tokens = tiny(tiny_checkpoint), torch.randint(0, 10, (2, 12))  # [B, T]
    calibrated = LanguageModel(LMConfig(**written["model_config"])).eval()
    calibrated.load_state_dict(written["model"])
    with torch.no_grad():
        expected = model(tokens)[0] / record["temperature"]
        torch.testing.assert_close(calibrated(tokens)[0], expected, rtol=1e-5, atol=1e-5)
