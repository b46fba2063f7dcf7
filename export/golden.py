"""Golden vectors: what the Python runtime computes for a model, for any binding to check.

    python export/golden.py [MODEL.onnx ...] [--prompt TEXT] [--images IDX]

writes ``<model>.golden.json`` beside each model (default: every ``models/*.onnx``).

- language models: the prompt and its ids, the logits after the prompt (the full last row),
  the state after the prompt (every ``state_out.*`` tensor, full), a greedy continuation
  and a seeded sampled one (PortableRng + the specified sampling procedure), as ids and
  text;
- classifiers: a few inputs with their encoded ids (or feature rows), the probabilities,
  the label, and for streaming graphs the probabilities after every step.

Floats are float32 values written as the shortest decimal that reads back to the same
float32. ``tolerance`` says how close another runtime must come: onnxruntime on another
CPU or binding may differ in the last bits; texts and ids must be equal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROMPT = "And God said"
CONTINUATION_TOKENS = 240
SAMPLED = {"temperature": 0.8, "top_k": 20, "top_p": 0.95}
SAMPLED_SEED = 1
TOLERANCE = {"logits": 1e-4, "state": 1e-4, "probabilities": 1e-5}
# Short sentences written for the golden files (not from any training set), in the
# languages of the shipped language identifier; other text models get the ones they can read.
SENTENCES = [
    "The weather was cold, so we stayed at home and read books.",
    "Das Wetter war kalt, also blieben wir zu Hause und lasen Bücher.",
    "Hacía frío, así que nos quedamos en casa leyendo libros.",
    "Было холодно, поэтому мы остались дома и читали книги.",
    "天气很冷，所以我们待在家里看书。",
]
ADDITIONS = ["23+19", "200+55", "0+0"]
FEATURE_INPUTS = 3


def floats(array: np.ndarray) -> list[float]:
    """Flat list of float32 values (Python floats repr as the shortest round-trip decimal)."""
    return np.asarray(array, dtype=np.float32).ravel().tolist()


def continuation(lm: Any, prompt: str, sampling: dict[str, float], seed: int | None) -> dict:
    """One generated continuation with its settings, ids and text."""
    from rnnedge.runtime.sampling import SamplingConfig

    text = "".join(lm.generate(prompt, CONTINUATION_TOKENS, SamplingConfig(**sampling), seed=seed))
    return {
        "sampling": sampling,
        "seed": seed,
        "max_new_tokens": CONTINUATION_TOKENS,
        "ids": lm.tokenizer.encode(text).tolist(),
        "text": text,
    }


def lm_golden(lm: Any, prompt: str) -> dict:
    """A language model's prefill vectors and two continuations of `prompt`."""
    ids = lm.tokenizer.encode(prompt)
    logits, state = lm.run(ids[None, :], lm.initial_state(1))  # [1, T, V]
    outputs = {spec.input: spec.output for spec in lm.manifest.states}
    return {
        "prompt": prompt,
        "prompt_ids": ids.tolist(),
        "logits": floats(logits[0, -1]),
        "state": {
            outputs[name]: {"shape": list(value.shape), "values": floats(value)}
            for name, value in state.items()
        },
        "greedy": continuation(lm, prompt, {"temperature": 0.0, "top_k": 0, "top_p": 1.0}, None),
        "sampled": continuation(lm, prompt, dict(SAMPLED), SAMPLED_SEED),
    }


def default_inputs(classifier: Any, images: Path | None) -> list[Any]:
    """Inputs a classifier can read: sentences, additions, or feature rows."""
    preprocessing = classifier.preprocessing
    if preprocessing.get("kind") == "binary-addition":
        return list(ADDITIONS)
    if classifier.tokenizer is not None:
        return [text for text in SENTENCES if readable(classifier, text)]
    if images is not None and images.exists():
        from rnnedge.datasets import read_idx

        pixels = read_idx(images)[:FEATURE_INPUTS].astype(np.float32)
        return list(pixels * np.float32(preprocessing.get("scale", 1.0)))
    return list(portable_features(classifier, FEATURE_INPUTS))


def readable(classifier: Any, text: str) -> bool:
    """Whether `text` encodes to at least one token under the model's policy."""
    from rnnedge.errors import InputError

    try:
        return classifier.encode(text).size > 0
    except InputError:
        return False


def portable_features(classifier: Any, count: int) -> np.ndarray:
    """[count, steps, dim] features in [0, 1) from PortableRng(0), when no data is given."""
    from rnnedge.runtime.prng import PortableRng

    dim = int(classifier.manifest.inputs[0].shape[-1])
    steps = int(classifier.preprocessing.get("rows", 8))
    rng = PortableRng(0)
    values = [rng.random() for _ in range(count * steps * dim)]
    return np.array(values, dtype=np.float32).reshape(count, steps, dim)


def classifier_golden(classifier: Any, inputs: list[Any]) -> dict:
    """Each input's encoding, probabilities and label (and per-step ones when streaming).

    Each input is classified alone: dynamic int8 graphs quantize activations per call, so
    an answer in a batch depends on the batch's other inputs (by ~1e-5).
    """
    entries = []
    for item in inputs:
        prediction = classifier.classify([item], top=1)[0]
        encoded = classifier.encode(item)
        entry: dict[str, Any] = {"input": item if isinstance(item, str) else None}
        if encoded.dtype == np.int64:
            entry["ids"] = encoded.tolist()
        else:
            entry["features"] = {"shape": list(encoded.shape), "values": floats(encoded)}
        entry["label"] = prediction.label
        # [C], or [T, C] for per-step models
        entry["probabilities"] = prediction.probabilities.astype(np.float32).tolist()
        if classifier.streams:
            entry["steps"] = [floats(step) for step in classifier.stream(item)]
        entries.append(entry)
    return {"labels": classifier.labels, "inputs": entries}


def golden_for(model_path: Path, prompt: str = DEFAULT_PROMPT, images: Path | None = None) -> dict:
    """The golden vectors of one model file."""
    from rnnedge.runtime import load

    model = load(model_path, device="cpu", threads=1)
    header = {
        "model": model_path.name,
        "task": model.manifest.task,
        "written_by": "export/golden.py (rnnedge Python runtime, onnxruntime CPU, 1 thread)",
        "tolerance": TOLERANCE,
    }
    if model.manifest.task == "language-model":
        return {**header, **lm_golden(model, prompt)}
    return {**header, **classifier_golden(model, default_inputs(model, images))}


def write_golden(
    model_path: Path, prompt: str = DEFAULT_PROMPT, images: Path | None = None
) -> Path:
    """Write `<model>.golden.json` beside the model; returns its path."""
    golden = golden_for(model_path, prompt, images)
    path = model_path.with_suffix(".golden.json")
    path.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="default: models/*.onnx")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="language models' prompt")
    parser.add_argument("--images", type=Path, help="IDX images for image-row classifiers")
    args = parser.parse_args()
    models = args.models or sorted((ROOT / "models").glob("*.onnx"))
    if not models:
        sys.exit("error: no .onnx model given or found in models/")
    from rnnedge.errors import RnnedgeError

    for model_path in models:
        try:
            written = write_golden(model_path, args.prompt, args.images)
        except RnnedgeError as exc:
            sys.exit(f"error: {model_path}: {exc}")
        print(f"wrote {written}", file=sys.stderr)


if __name__ == "__main__":
    main()
