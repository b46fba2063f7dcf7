"""export/compress_compare.py: the conditional bits/char arithmetic and the held-out cut, on a
small text the test makes, checked against Python's own zlib (gzip) and bz2 of the same bytes."""

from __future__ import annotations

import bz2
import gzip
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import EXPORT, export_script

WORDS = ["and", "the", "LORD", "said", "unto", "him", "thou", "shalt", "péché", "über", "æon"]


@pytest.fixture(scope="module")
def script():
    with export_script("compress_compare") as module:
        yield module


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    rng = random.Random(7)
    lines = (" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))) for _ in range(600))
    path = tmp_path / "text.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def expected_bpc(compress, train: str, heldout: str) -> float:
    whole = len(compress((train + heldout).encode("utf-8")))
    return 8 * (whole - len(compress(train.encode("utf-8")))) / len(heldout)


@pytest.mark.skipif(
    not (shutil.which("gzip") and shutil.which("bzip2")), reason="needs gzip and bzip2 programs"
)
def test_bits_per_char_is_what_the_heldout_adds_per_character(script, text_file):
    results = script.compare(text_file, None, ["gzip", "bz2"])
    text = text_file.read_text(encoding="utf-8")
    cut = round(len(text) * 0.9)  # where training and `rnnedge eval --tail 0.1` cut
    train, heldout = text[:cut], text[cut:]
    assert results["heldout_chars"] == len(heldout) < len(heldout.encode("utf-8"))  # chars
    bz2_bpc = expected_bpc(lambda b: bz2.compress(b, 9), train, heldout)
    gzip_bpc = expected_bpc(lambda b: gzip.compress(b, 9, mtime=0), train, heldout)
    assert results["compressors"]["bz2"]["bits_per_char"] == pytest.approx(bz2_bpc, abs=1e-12)
    # GNU gzip and zlib are two deflate implementations; on this text, at -9, they agree.
    assert results["compressors"]["gzip"]["bits_per_char"] == pytest.approx(gzip_bpc, abs=1e-12)
    assert "model" not in results


def test_the_split_is_the_training_cut(script):
    train, heldout = script.split("abcdefghij" * 7)  # 70 characters: the last 7 held out
    assert (len(train), heldout) == (63, "defghij")


def test_markdown_lists_the_systems_best_first(script):
    results = {
        "compressors": {
            "gzip": {"command": "gzip -9", "bits_per_char": 2.5},
            "zpaq": {"command": "zpaq -m5", "bits_per_char": 1.4},
        },
        "model": {"command": "rnnedge eval m.onnx", "bits_per_char": 1.6, "chars": 99},
    }
    rows = script.markdown({**results, "heldout_chars": 100})[2:]
    assert [r.split(" | ")[0] for r in rows] == [
        "| zpaq -m5",
        "| this model (`rnnedge eval m.onnx`)",
        "| gzip -9",
    ]


def test_an_unknown_compressor_is_one_line_and_a_nonzero_exit(tmp_path, text_file):
    command = [sys.executable, str(EXPORT / "compress_compare.py"), "--text", str(text_file)]
    command += ["--only", "gzip,lzma", "--json", str(tmp_path / "out.json")]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: unknown compressor 'lzma'; choose from gzip, xz, bz2, PPMd, zpaq"
    ]
    assert not (tmp_path / "out.json").exists()


def test_the_adapt_rate_is_chosen_on_training_text_alone(script, tiny_model, tmp_path, monkeypatch):
    """Two texts that share their training part but not their held-out tail: the rate
    tuning is the same for both (the held-out plays no part), and is its own argmin."""
    from conftest import make_text

    monkeypatch.setattr(script, "ADAPT_TUNING_CHARS", 3000)
    train = make_text(18_000, seed=1)[:18_000]
    reports = []
    for seed in (2, 3):
        path = tmp_path / f"text{seed}.txt"
        path.write_text(train + make_text(2_000, seed=seed)[:2_000])
        reports.append(script.compare(path, tiny_model, ["bz2"])["model_adaptive"])
    first, second = reports
    assert first["rate_tuning"] == second["rate_tuning"]
    assert first["bits_per_char"] != second["bits_per_char"]
    scores = first["rate_tuning"]["bits_per_char_by_rate"]
    assert first["rate_tuning"]["rate"] == float(min(scores, key=scores.get))
    assert f"--adapt {first['rate_tuning']['rate']} --streams 1" in first["command"]
    rows = script.markdown({"compressors": {}, "heldout_chars": 2000, "model_adaptive": first})
    assert "this model, adaptive reading" in rows[2]
