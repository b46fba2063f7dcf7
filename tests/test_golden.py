"""Every shipped model has golden vectors, and the Python runtime reproduces them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnnedge.runtime import load
from rnnedge.runtime.sampling import SamplingConfig

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(MODELS.glob("*.onnx"))
GOLDEN = sorted(MODELS.glob("*.golden.json"))


def read_golden(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_shipped_model_has_a_golden_file():
    assert SHIPPED, "no shipped models found"
    missing = [m.name for m in SHIPPED if not m.with_suffix(".golden.json").exists()]
    assert not missing, f"no golden vectors for {missing}: run export/golden.py"


def state_close(actual: np.ndarray, expected: dict, atol: float) -> None:
    assert list(actual.shape) == expected["shape"]
    np.testing.assert_allclose(actual.ravel(), expected["values"], rtol=0, atol=atol)


def check_continuation(lm, prompt: str, expected: dict) -> None:
    sampling = SamplingConfig(**expected["sampling"])
    pieces = lm.generate(prompt, expected["max_new_tokens"], sampling, seed=expected["seed"])
    text = "".join(pieces)
    assert text == expected["text"]
    assert lm.tokenizer.encode(text).tolist() == expected["ids"]


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_python_runtime_reproduces_the_golden_vectors(path: Path):
    # A rebuilt model fails here until `python export/golden.py MODEL` rewrites its vectors.
    golden = read_golden(path)
    model = load(MODELS / golden["model"], device="cpu", threads=1)
    assert model.manifest.task == golden["task"]
    tolerance = golden["tolerance"]
    if golden["task"] == "language-model":
        check_language_model(model, golden, tolerance)
    else:
        check_classifier(model, golden, tolerance)


def check_language_model(lm, golden: dict, tolerance: dict) -> None:
    ids = lm.tokenizer.encode(golden["prompt"])
    assert ids.tolist() == golden["prompt_ids"]
    logits, state = lm.run(ids[None, :], lm.initial_state(1))
    np.testing.assert_allclose(logits[0, -1], golden["logits"], rtol=0, atol=tolerance["logits"])
    outputs = {spec.input: spec.output for spec in lm.manifest.states}
    assert sorted(outputs[name] for name in state) == sorted(golden["state"])
    for name, value in state.items():
        state_close(value, golden["state"][outputs[name]], tolerance["state"])
    assert len(golden["greedy"]["text"]) >= 200 and len(golden["sampled"]["text"]) >= 200
    check_continuation(lm, golden["prompt"], golden["greedy"])
    check_continuation(lm, golden["prompt"], golden["sampled"])


def check_classifier(classifier, golden: dict, tolerance: dict) -> None:
    assert classifier.labels == golden["labels"]
    entries = golden["inputs"]
    items = [
        entry["input"]
        if entry["input"] is not None
        else np.array(entry["features"]["values"], dtype=np.float32).reshape(
            entry["features"]["shape"]
        )
        for entry in entries
    ]
    for item, entry in zip(items, entries, strict=True):
        prediction = classifier.classify([item])[0]  # alone, as the golden file was written
        if "ids" in entry:
            assert classifier.encode(item).tolist() == entry["ids"]
        assert prediction.label == entry["label"]
        np.testing.assert_allclose(
            prediction.probabilities,
            entry["probabilities"],
            rtol=0,
            atol=tolerance["probabilities"],
        )
        if "steps" in entry:
            steps = np.stack(list(classifier.stream(item)))
            np.testing.assert_allclose(
                steps, entry["steps"], rtol=0, atol=tolerance["probabilities"]
            )
