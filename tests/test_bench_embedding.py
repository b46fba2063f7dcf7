"""benchmarks/embedding.py's arithmetic and rendering on made-up rounds (the measurement
itself needs node, npm packages and Chromium, and minutes: `python benchmarks/embedding.py`).
Ratios must be taken within each round, texts compared character by character, and
benchmarks/report.py must render the section exactly when embedding.json is beside it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def harness():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import embedding
        import report

        yield embedding, report
    finally:
        sys.path.remove(str(BENCHMARKS))


def runtime(rate: float, chars: float, cold: float, text: str) -> dict:
    return {
        "tokens_per_s": {"kjv int8": rate, "kjv-arch fp32": 2 * rate},
        "chars_per_s": chars,
        "cold": {"seconds": cold, "peak_rss_mb": 90.0},
        "text": {"kjv int8": text, "kjv-arch fp32": text},
        "last": [0.25, 0.75],
    }


def fake_rounds(embedding) -> list[dict]:
    """Two rounds in which the machine's speed doubles: Node.js is half Python's speed in
    the first and twice it in the second (per-round ratios 0.5 and 2)."""
    rounds = []
    for python, node, text in ((100.0, 50.0, "And God said"), (200.0, 400.0, "And God sat")):
        runtimes = {
            embedding.PYTHON: runtime(python, 10 * python, 1.0, "And God said"),
            embedding.NODE: runtime(node, 10 * node, 0.5, text),
        }
        for name in embedding.BROWSER.values():
            runtimes[name] = runtime(python / 4, python, 2.0, "And God said")
        runtimes["example page ready (s)"] = 1.5
        rounds.append({"runtimes": runtimes, "load_average": 2.0})
    return rounds


def test_ratios_are_taken_within_rounds(harness) -> None:
    embedding, _ = harness
    summary = embedding.summarise(fake_rounds(embedding))
    node = summary[embedding.NODE]
    assert node["tokens_vs_python"]["kjv int8"] == {"median": 1.25, "min": 0.5, "max": 2.0}
    # not the ratio of medians (225 / 150 = 1.5), which mixes a slow round with a fast one
    assert node["tokens_per_s"]["kjv int8"]["median"] == 225.0
    assert node["cold_vs_python"]["median"] == 2.0  # > 1: starts faster than Python
    browser = summary[embedding.BROWSER[1]]
    assert browser["chars_vs_python"]["median"] == pytest.approx(0.1)


def test_agreement_finds_the_first_differing_character(harness) -> None:
    embedding, _ = harness
    found = embedding.agreement(fake_rounds(embedding))
    assert found[embedding.NODE]["first_difference"]["kjv int8"] == [None, 10]
    assert found[embedding.BROWSER[2]]["first_difference"]["kjv int8"] == [None]
    assert embedding.first_difference("abc", "ab") == 2


def test_report_renders_the_section_only_beside_its_data(harness, tmp_path: Path) -> None:
    embedding, report = harness
    rounds = fake_rounds(embedding)
    data = {
        "machine": {
            "cpu": "test CPU",
            "cores": 2,
            "date": "today",
            "python": "3.x",
            "onnxruntime": "1.x",
            "node": "20",
            "onnxruntime-node": "1.30.0",
            "chromium": "156",
            "onnxruntime-web": "1.30.0",
        },
        "settings": {
            "rounds": 2,
            "repeats": 3,
            "tokens": 500,
            "prompt": "And God said",
            "temperature": 0.8,
            "seed": 1,
            "stream_chars": 234,
            "wasm_bytes": 14_000_000,
            "models": {
                "kjv int8": {"label": "KJV int8"},
                "kjv-arch fp32": {"label": "KJV fp32"},
                "langid": {"label": "langid fp32"},
            },
            "models_notes": ["a note"],
        },
        "rounds": rounds,
        "summary": embedding.summarise(rounds),
        "agreement": embedding.agreement(rounds),
    }
    without = tmp_path / "REPORT.md"
    assert report.embedding_section(tmp_path / "embedding.json") == []
    (tmp_path / "embedding.json").write_text(json.dumps(data))
    section = "\n".join(report.embedding_section(tmp_path / "embedding.json"))
    assert section.startswith("## Outside Python")
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # no header
    assert len(rows) == 4  # Python, Node.js, wasm 1 and 2 threads
    node_row = next(row for row in rows if row.startswith(f"| {embedding.NODE}"))
    assert "225 (50–400)" in node_row and "1.25× (0.50–2.00)" in node_row
    assert "first differs from Python's at character none, 10" in section
    # the made-up fp32 rates are twice the int8 ones in every round, for every runtime
    precision = next(line for line in section.splitlines() if line.startswith("Generation with"))
    assert precision.count("0.50× (0.50–0.50)") == 4
    assert not without.exists()
