"""Rebuild a shipped model from its recipe: prepare the data, train, export, evaluate.

    python export/build.py export/kjv-char-lstm.toml [--stage prepare|train|export|all]

Training resumes from ``runs/<name>/last.pt`` when it exists, so an interrupted build
continues where it stopped.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
VERSE_REFERENCE = re.compile(r"^\S+?\d+:\d+ ")


def strip_verse_references(raw: str) -> str:
    """'Ge1:1 In the beginning…' lines → 'In the beginning…', one verse per line."""
    verses = [VERSE_REFERENCE.sub("", line) for line in raw.split("\n") if line.strip()]
    return "\n".join(verses) + "\n"


PREPARATIONS = {"strip-verse-references": strip_verse_references}


def prepare(recipe: dict) -> Path:
    data = recipe["data"]
    target = ROOT / data["file"]
    if not target.exists():
        raw = subprocess.run(data["command"], check=True, capture_output=True, text=True).stdout
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(PREPARATIONS[data["preparation"]](raw))
    print(f"data: {target} ({len(target.read_text())} characters)", file=sys.stderr)
    return target


def train(recipe: dict, text: Path) -> None:
    from rnnedge.cli_render import RichTrainReporter
    from rnnedge.train.lm import LMTrainConfig, fit

    options = dict(recipe["train"])
    options["out"] = str(ROOT / options["out"])
    config = LMTrainConfig(text=str(text), resume=True, **options)
    fit(config, RichTrainReporter())


def export(recipe: dict, text: Path) -> None:
    from rnnedge.exporter import export_checkpoint

    run = ROOT / recipe["train"]["out"]
    options = recipe["export"]
    export_checkpoint(
        run / options["checkpoint"],
        ROOT / recipe["output"],
        quantize=options.get("quantize"),
        heldout=text,
        recipe=Path(sys.argv[1]).name,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--stage", choices=["prepare", "train", "export", "all"], default="all")
    args = parser.parse_args()
    recipe = tomllib.loads(args.recipe.read_text())
    text = prepare(recipe)
    if args.stage in ("train", "all"):
        train(recipe, text)
    if args.stage in ("export", "all"):
        export(recipe, text)


if __name__ == "__main__":
    main()
