"""The shipped models: sizes and recorded quality (golden vectors: test_golden.py)."""

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


LANGID = MODELS / "fortune-langid.onnx"
LANGID_INT8 = MODELS / "fortune-langid-int8.onnx"
SENTENCES = {  # short sentences written for this test, not from the fortune collections
    "en": "The weather was cold, so we stayed at home and read books.",
    "de": "Das Wetter war kalt, also blieben wir zu Hause und lasen Bücher.",
    "es": "Hacía frío, así que nos quedamos en casa leyendo libros.",
    "ru": "Было холодно, поэтому мы остались дома и читали книги.",
    "pl": "Było zimno, więc zostaliśmy w domu i czytaliśmy książki.",
    "zh": "天气很冷，所以我们待在家里看书。",
}


def test_language_identifier_files_and_recorded_figures():
    assert LANGID.stat().st_size <= 5_000_000 and LANGID_INT8.stat().st_size <= 5_000_000
    comparison = json.loads(LANGID.with_suffix(".compare.json").read_text())["snippets"]
    fp32 = {n: comparison[n]["results"]["rnnedge fp32 (1 thread)"] for n in ("20", "60")}
    assert fp32["20"]["accuracy"] >= 0.95 and fp32["60"]["accuracy"] >= 0.99
    quality = load_classifier(LANGID_INT8, device="cpu").manifest.validation["quality"]
    assert abs(quality["accuracy_change_points"]) <= 0.5


@pytest.mark.parametrize("path", [LANGID, LANGID_INT8], ids=["fp32", "int8"])
def test_language_identifier_names_the_language_of_new_sentences(path):
    classifier = load_classifier(path, device="cpu")
    predicted = [p.label for p in classifier.classify(list(SENTENCES.values()))]
    assert predicted == list(SENTENCES)


def test_language_identifier_streams_and_batches_exactly():
    classifier = load_classifier(LANGID, device="cpu")
    assert classifier.streams  # unidirectional, mean pooling carried in the state
    texts = list(SENTENCES.values())
    batched = classifier.classify(texts)
    for text, prediction in zip(texts, batched, strict=True):
        steps = list(classifier.stream(text))
        np.testing.assert_allclose(steps[-1], prediction.probabilities, atol=1e-5)
        alone = classifier.classify([text])[0]
        np.testing.assert_allclose(alone.probabilities, prediction.probabilities, atol=1e-5)
