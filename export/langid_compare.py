"""Our language identifier vs langid.py on the same held-out fortune snippets.

    python export/langid_compare.py data/langid MODEL [INT8_MODEL]

langid.py is restricted to the same languages. Accuracy on each fortune's first 20 and
first 60 characters; throughput in snippets/s (ours: classify() on batches of 256, which
runs them in length-sorted chunks of 64, at 1 and 2 onnxruntime threads; langid.py: one
call per snippet, as its API has no batch).
The systems take turns, pass after pass (ROUNDS rounds after a warm-up pass each), so a
slow spell of a shared machine hits all of them; medians are reported.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.runtime import load_classifier

BATCH = 256


def read_snippets(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["text"] for r in rows], [r["lang"] for r in rows]


ROUNDS = 7


def ours(model: Path, texts: list[str], threads: int) -> Callable[[], list[str]]:
    classifier = load_classifier(model, device="cpu", threads=threads)

    def run() -> list[str]:
        return [
            p.label
            for start in range(0, len(texts), BATCH)
            for p in classifier.classify(texts[start : start + BATCH])
        ]

    return run


def langid_py(languages: list[str], texts: list[str]) -> Callable[[], list[str]]:
    from langid.langid import LanguageIdentifier, model

    identifier = LanguageIdentifier.from_modelstring(model, norm_probs=False)
    identifier.set_languages(languages)
    return lambda: [identifier.classify(t)[0] for t in texts]


def take_turns(
    runners: dict[str, Callable[[], list[str]]],
) -> dict[str, tuple[list[str], float]]:
    """Each runner's predictions and median seconds over ROUNDS interleaved passes."""
    predictions = {name: run() for name, run in runners.items()}  # warm-up pass
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(ROUNDS):
        for name, run in runners.items():
            began = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - began)
    return {name: (predictions[name], float(np.median(seconds[name]))) for name in runners}


def compare(models: dict[str, Path], folder: Path) -> dict[str, Any]:
    """Accuracy and snippets/s of each model variant (e.g. fp32, int8) and langid.py."""
    languages = load_classifier(next(iter(models.values())), device="cpu").labels
    results: dict[str, Any] = {"languages": languages, "snippets": {}}
    for length in (20, 60):
        texts, truth = read_snippets(folder / f"test{length}.jsonl")
        runners = {
            f"rnnedge {kind} ({threads} thread{'s' * (threads > 1)})": ours(path, texts, threads)
            for kind, path in models.items()
            for threads in (1, 2)
        }
        runners["langid.py"] = langid_py(languages, texts)
        rows = {}
        for name, (predicted, seconds) in take_turns(runners).items():
            accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
            rows[name] = {"accuracy": accuracy, "snippets_per_s": len(texts) / seconds}
        results["snippets"][length] = {"count": len(texts), "results": rows}
    return results


def markdown(results: dict[str, Any]) -> list[str]:
    lines = [
        "| snippet | system | accuracy | snippets/s | × langid.py |",
        "|---|---|---|---|---|",
    ]
    for length, block in results["snippets"].items():
        baseline = block["results"]["langid.py"]["snippets_per_s"]
        for name, row in block["results"].items():
            lines.append(
                f"| first {length} chars ({block['count']:,}) | {name} | "
                f"{row['accuracy']:.4f} | {row['snippets_per_s']:,.0f} | "
                f"{row['snippets_per_s'] / baseline:.2f}× |"
            )
    return lines


if __name__ == "__main__":
    kinds = ("fp32", "int8")
    outcome = compare(dict(zip(kinds, map(Path, sys.argv[2:]), strict=False)), Path(sys.argv[1]))
    print(json.dumps(outcome, indent=2))
    print("\n".join(markdown(outcome)), file=sys.stderr)
