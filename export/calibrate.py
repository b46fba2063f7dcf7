"""Temperature calibration of a language model's output layer, fitted on validation text.

A model fine-tuned on part of a corpus grows over-confident on text unlike it (the KJV
model, fine-tuned on the Gospels and Acts, reads the epistles). Dividing the logits by a
temperature T > 1 softens every prediction; T is fitted on the run's own validation split
(text the fine-tuning never trained on), never on the held-out text a model is judged by.
Folding 1/T into the output layer's weights and bias gives the same model with the same
ONNX graph, so every runtime reads the calibrated predictions with no change.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from rnnedge.nets.language_model import LanguageModel, LMConfig
from rnnedge.textio import heldout_tail, read_text
from rnnedge.tokenizer import CharTokenizer
from rnnedge.train.checkpoint import load_checkpoint, save_checkpoint
from rnnedge.train.lm import evaluate_bpc

GOLDEN = (math.sqrt(5) - 1) / 2


def validation_ids(checkpoint: dict[str, Any], text: Path) -> torch.Tensor:
    """The run's validation split of `text` (its training file), as token ids."""
    tokenizer = CharTokenizer.from_dict(checkpoint["tokenizer"])
    whole = read_text(text, "training text")
    ids = tokenizer.with_policy("skip").encode(whole)
    return torch.from_numpy(heldout_tail(ids, checkpoint["data"]["valid_fraction"]).copy())


def fit_temperature(
    model: LanguageModel, ids: torch.Tensor, low: float = 0.7, high: float = 2.0
) -> tuple[float, dict[float, float]]:
    """The T in [low, high] with the least bits/char on `ids` (golden-section search: the
    loss is convex in 1/T), and every T tried with its bits/char."""
    tried: dict[float, float] = {}

    def bpc(temperature: float) -> float:
        key = round(temperature, 4)
        if key not in tried:
            result = evaluate_bpc(model, ids, torch.device("cpu"), temperature=temperature)
            tried[key] = result["bpc"]
        return tried[key]

    bpc(1.0)  # uncalibrated, for the record
    for _ in range(14):  # the bracket shrinks to 0.618^14 of its width: ~0.001 here
        inner_low = high - GOLDEN * (high - low)
        inner_high = low + GOLDEN * (high - low)
        if bpc(inner_low) <= bpc(inner_high):
            high = inner_high
        else:
            low = inner_low
    best = round((low + high) / 2, 3)
    bpc(best)
    return best, tried


def calibrate(checkpoint_path: Path, text: Path, output: Path) -> dict[str, Any]:
    """Write `output`: the checkpoint with its output layer divided by the fitted T."""
    checkpoint = load_checkpoint(checkpoint_path)
    model = LanguageModel(LMConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])
    model.eval()
    ids = validation_ids(checkpoint, text)
    temperature, tried = fit_temperature(model, ids)
    weights = dict(checkpoint["model"])
    for name in ("head.weight", "head.bias"):
        weights[name] = weights[name] / temperature
    record = {
        "temperature": temperature,
        "fitted_on": f"the validation split of {text.name} ({len(ids):,} characters)",
        "bpc_before": tried[1.0],
        "bpc_after": tried[round(temperature, 4)],
        "tried": [[t, bpc] for t, bpc in sorted(tried.items())],  # [T, bits/char]
    }
    save_checkpoint(output, {**checkpoint, "model": weights, "calibration": record})
    return record
