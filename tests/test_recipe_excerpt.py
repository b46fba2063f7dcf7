"""export/build.py's excerpt: a fine-tuning stage's text (the KJV recipe's Gospels and Acts)
must start at its first line and stop exactly where the held-out tail begins, so that none
of the text the model is judged on is trained on."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import export_script
from rnnedge.textio import heldout_tail, tail_start


@pytest.fixture(scope="module")
def build():
    with export_script("build") as module:
        yield module


def text_file(tmp_path: Path) -> tuple[Path, str]:
    lines = [f"Old verse {i} and so on." for i in range(300)]
    lines += ["The book of the generation begins."] + [f"New verse {i}." for i in range(200)]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "bible.txt"
    path.write_text(text)
    return path, text


def test_the_excerpt_runs_from_its_first_line_to_the_held_out_tail(build, tmp_path):
    path, text = text_file(tmp_path)
    target = tmp_path / "nt.txt"
    excerpt = {
        "file": str(target),
        "first_line": "The book of the generation",
        "heldout_fraction": 0.1,
    }
    build.write_excerpt(path, excerpt)
    written = target.read_text()
    assert written.startswith("The book of the generation begins.\nNew verse 0.")
    start = text.index("The book of the generation")
    assert written == text[start : tail_start(len(text), 0.1)]
    assert written + heldout_tail(text, 0.1) == text[start:]  # nothing held out is in it


def test_a_first_line_not_found_stops_the_build_in_one_line(build, tmp_path):
    path, _ = text_file(tmp_path)
    excerpt = {"file": str(tmp_path / "nt.txt"), "first_line": "Nowhere", "heldout_fraction": 0.1}
    with pytest.raises(SystemExit) as stopped:
        build.write_excerpt(path, excerpt)
    assert str(stopped.value).startswith("error: no line of") and "\n" not in str(stopped.value)
    assert not (tmp_path / "nt.txt").exists()
