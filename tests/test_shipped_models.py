"""The shipped models: sizes, recorded quality, and golden vectors reproduced by the runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnnedge.runtime import load_classifier, load_generator
from rnnedge.runtime.sampling import SamplingConfig

MODELS = Path(__file__).resolve().parents[1] / "models"
KJV = MODELS / "kjv-char-lstm.onnx"
FASHION = MODELS / "fashion-mnist-rows.onnx"


def test_default_model_is_small_and_meets_its_heldout_target():
    manifest = load_generator(KJV, device="cpu").manifest
    assert KJV.stat().st_size <= 8_000_000
    assert manifest.training["best_valid_bpc"] <= 1.70
    quality = manifest.validation["quality"]
    assert quality["bpc_change_relative"] <= 0.02  # int8 costs at most 2 % bits/char
    assert all(check["passed"] for check in manifest.validation["int8"].values())


def test_default_model_reproduces_its_golden_vectors():
    golden = json.loads(KJV.with_suffix(".golden.json").read_text())
    lm = load_generator(KJV, device="cpu")
    ids = lm.tokenizer.encode(golden["prompt"])
    assert ids.tolist() == golden["prompt_ids"]
    logits, _ = lm.run(ids[None, :], lm.initial_state(1))
    top = np.argsort(logits[0, -1])[::-1][:5]
    assert top.tolist() == golden["last_logits_top5"]["ids"]
    np.testing.assert_allclose(logits[0, -1][top], golden["last_logits_top5"]["values"], atol=1e-4)
    greedy = "".join(lm.generate(golden["prompt"], 64, SamplingConfig(temperature=0.0)))
    assert greedy == golden["greedy_64"]


@pytest.mark.parametrize("prompt", ["And God said", "In the beginning"])
def test_default_model_writes_kjv_style_words(prompt):
    lm = load_generator(KJV, device="cpu")
    text = "".join(lm.generate(prompt, 300, SamplingConfig(temperature=0.5), seed=1))
    words = text.split()
    common = {"the", "and", "of", "unto", "shall", "he", "that", "his", "lord", "god", "them"}
    # Readable KJV-style text: mostly real words, and the Bible's commonest ones among them.
    assert len(words) > 30
    assert sum(w.strip(",.;:").lower() in common for w in words) / len(words) > 0.2


def test_fashion_model_is_small_streams_and_recorded_its_test_accuracy():
    classifier = load_classifier(FASHION, device="cpu")
    assert FASHION.stat().st_size <= 2_000_000
    assert json.loads(FASHION.with_suffix(".eval.json").read_text())["accuracy"] >= 0.90
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    steps = list(classifier.stream(image))
    assert len(steps) == 28
    np.testing.assert_allclose(steps[-1], classifier.classify([image])[0].probabilities, atol=1e-5)
