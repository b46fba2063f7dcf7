"""Our language identifier vs langid.py, in and out of the training domain.

    python export/langid_compare.py data/langid MODEL [INT8_MODEL]

langid.py is restricted to the same languages. Accuracy on each held-out item's first 20 and
first 60 characters: in domain (test20/test60.jsonl: held-out fortunes and gettext messages,
the sources trained on, per source) and out of domain (ood20/ood60.jsonl: the Debian reference
manual, never trained on). Throughput in snippets/s on one core (ours: classify() on batches
of 256, which runs them in length-sorted chunks of 64, one onnxruntime thread; langid.py: one
call per snippet, as its API has no batch), timed by CPU time (see take_turns).
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


def read_snippets(path: Path) -> tuple[list[str], list[str], list[str]]:
    """Texts, true languages and sources of a JSONL snippet file."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["text"] for r in rows], [r["lang"] for r in rows], [r["source"] for r in rows]


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
) -> dict[str, tuple[list[str], float, float]]:
    """Each runner's predictions, median CPU seconds and median wall seconds over ROUNDS
    interleaved passes. Every system runs on one thread in this process, so its CPU time is
    the work one core does; unlike wall time it does not count the time other processes of
    a shared machine take that core away."""
    predictions = {name: run() for name, run in runners.items()}  # warm-up pass
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    wall: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(ROUNDS):
        for name, run in runners.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            run()
            cpu[name].append(time.process_time() - began_cpu)
            wall[name].append(time.perf_counter() - began)
    return {
        name: (predictions[name], float(np.median(cpu[name])), float(np.median(wall[name])))
        for name in runners
    }


SETS = {"in-domain": "test{n}.jsonl", "out-of-domain": "ood{n}.jsonl"}


def accuracy(predicted: list[str], truth: list[str], sources: list[str]) -> dict[str, Any]:
    """Overall accuracy and accuracy per source."""
    right = np.array([p == t for p, t in zip(predicted, truth, strict=True)])
    names = np.array(sources)
    by_source = {s: float(right[names == s].mean()) for s in sorted(set(sources))}
    return {"accuracy": float(right.mean()), "by_source": by_source}


def compare_set(models: dict[str, Path], languages: list[str], path: Path) -> dict[str, Any]:
    """Every system on one snippet file: accuracy (per source) and snippets/s on one core."""
    texts, truth, sources = read_snippets(path)
    runners = {f"rnnedge {kind}": ours(model, texts, 1) for kind, model in models.items()}
    runners["langid.py"] = langid_py(languages, texts)
    counts = {s: sources.count(s) for s in sorted(set(sources))}
    rows = {
        name: {
            **accuracy(predicted, truth, sources),
            "snippets_per_s": len(texts) / cpu,  # per second of one core's CPU time
            "snippets_per_wall_s": len(texts) / wall,
        }
        for name, (predicted, cpu, wall) in take_turns(runners).items()
    }
    return {"file": path.name, "count": len(texts), "by_source": counts, "results": rows}


def compare(models: dict[str, Path], folder: Path) -> dict[str, Any]:
    """Each model variant (e.g. fp32, int8) and langid.py, in and out of domain, 20 and 60
    characters."""
    languages = load_classifier(next(iter(models.values())), device="cpu").labels
    results: dict[str, Any] = {"languages": languages, "snippets": {}}
    for length in (20, 60):
        results["snippets"][length] = {
            kind: compare_set(models, languages, folder / pattern.format(n=length))
            for kind, pattern in SETS.items()
            if (folder / pattern.format(n=length)).exists()
        }
    return results


def in_domain(sets: dict[str, Any]) -> list[str]:
    """The sources of a snippet length's in-domain test set."""
    return list(sets.get("in-domain", {}).get("by_source", {}))


def about_test_sets(results: dict[str, Any]) -> list[str]:
    """What the test sets are, for the card (only when there is an out-of-domain set)."""
    if not any("out-of-domain" in sets for sets in results["snippets"].values()):
        return []
    trained_on = sorted({s for sets in results["snippets"].values() for s in in_domain(sets)})
    return [
        "In domain: the first 20 / 60 characters of held-out items (split by item, never "
        f"trained on) of the sources the model was trained on ({', '.join(trained_on)}; "
        "a message's or paragraph's leading option synopsis, such as '-d, --domain=NAME', "
        "is cut before the split: it is the same in every language). "
        "Out of domain: the first 20 / 60 characters of paragraphs of the Debian reference "
        "manual (`debian-reference-{de,en,es,it,pt,pt-br,zh-cn}`: technical prose, a source the "
        "model never saw in any form; it has no bg, cs, eo, ga, pl or ru translation, so those "
        "six languages are tested in domain only, while both systems still choose among all "
        f"{len(results['languages'])}). Throughput: one onnxruntime thread (ours, batches of "
        "256) vs langid.py's one call per snippet, taking turns, medians of "
        f"{ROUNDS} passes, timed by the process's CPU time (wall-clock figures, disturbed by "
        "the other work of this shared machine, are in the JSON).",
    ]


def markdown(results: dict[str, Any]) -> list[str]:
    """Accuracy (per test set and source) and throughput tables."""
    blocks = [(n, kind, b) for n, sets in results["snippets"].items() for kind, b in sets.items()]
    systems = list(blocks[0][2]["results"])
    lines = [
        f"| snippet | test set | snippets | {' | '.join(systems)} |",
        "|---|---|---|" + "---|" * len(systems),
    ]
    for length, kind, block in blocks:
        for source, count in block["by_source"].items():
            cells = [f"{r['by_source'][source]:.4f}" for r in block["results"].values()]
            lines.append(f"| {length} chars | {kind}: {source} | {count:,} | {' | '.join(cells)} |")
        if len(block["by_source"]) > 1:
            cells = [f"**{r['accuracy']:.4f}**" for r in block["results"].values()]
            lines.append(
                f"| {length} chars | {kind}: all | {block['count']:,} | {' | '.join(cells)} |"
            )
    lines += [
        "",
        "Snippets per second of one core's CPU time (× langid.py):",
        "",
        f"| snippet | test set | {' | '.join(systems)} |",
        "|---|---|" + "---|" * len(systems),
    ]
    for length, kind, block in blocks:
        base = block["results"]["langid.py"]["snippets_per_s"]
        cells = [
            f"{r['snippets_per_s']:,.0f} ({r['snippets_per_s'] / base:.2f}×)"
            for r in block["results"].values()
        ]
        lines.append(f"| {length} chars | {kind} | {' | '.join(cells)} |")
    return lines


if __name__ == "__main__":
    kinds = ("fp32", "int8")
    outcome = compare(dict(zip(kinds, map(Path, sys.argv[2:]), strict=False)), Path(sys.argv[1]))
    print(json.dumps(outcome, indent=2))
    print("\n".join(markdown(outcome)), file=sys.stderr)
