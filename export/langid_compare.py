"""Our language identifier vs langid.py on the same held-out fortune snippets.

    python export/langid_compare.py MODEL data/langid

langid.py is restricted to the same languages. Accuracy on each fortune's first 20 and
first 60 characters; throughput in snippets/s (ours: batches of 256 in one onnxruntime
call each, at 1 and 2 threads; langid.py: one call per snippet, as its API has no batch),
median of 3 timed passes after a warm-up pass.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.runtime import load_classifier

BATCH = 256


def read_snippets(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["text"] for r in rows], [r["lang"] for r in rows]


def timed_passes(run: Any, passes: int = 3) -> tuple[list[str], float]:
    """Predictions and the median seconds of `passes` timed passes (after one warm-up)."""
    predictions = run()
    seconds = []
    for _ in range(passes):
        began = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - began)
    return predictions, float(np.median(seconds))


def ours(model: Path, texts: list[str], threads: int) -> tuple[list[str], float]:
    classifier = load_classifier(model, device="cpu", threads=threads)

    def run() -> list[str]:
        return [
            p.label
            for start in range(0, len(texts), BATCH)
            for p in classifier.classify(texts[start : start + BATCH])
        ]

    return timed_passes(run)


def langid_py(languages: list[str], texts: list[str]) -> tuple[list[str], float]:
    from langid.langid import LanguageIdentifier, model

    identifier = LanguageIdentifier.from_modelstring(model, norm_probs=False)
    identifier.set_languages(languages)
    return timed_passes(lambda: [identifier.classify(t)[0] for t in texts])


def compare(model: Path, folder: Path) -> dict[str, Any]:
    languages = load_classifier(model, device="cpu").labels
    results: dict[str, Any] = {"languages": languages, "snippets": {}}
    for length in (20, 60):
        texts, truth = read_snippets(folder / f"test{length}.jsonl")
        rows = {}
        for name, (predicted, seconds) in {
            "rnnedge (1 thread)": ours(model, texts, 1),
            "rnnedge (2 threads)": ours(model, texts, 2),
            "langid.py": langid_py(languages, texts),
        }.items():
            accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
            rows[name] = {"accuracy": accuracy, "snippets_per_s": len(texts) / seconds}
        results["snippets"][length] = {"count": len(texts), "results": rows}
    return results


def markdown(results: dict[str, Any]) -> list[str]:
    lines = ["| snippet | system | accuracy | snippets/s |", "|---|---|---|---|"]
    for length, block in results["snippets"].items():
        for name, row in block["results"].items():
            lines.append(
                f"| first {length} chars ({block['count']:,}) | {name} | "
                f"{row['accuracy']:.4f} | {row['snippets_per_s']:,.0f} |"
            )
    return lines


if __name__ == "__main__":
    outcome = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps(outcome, indent=2))
    print("\n".join(markdown(outcome)), file=sys.stderr)
