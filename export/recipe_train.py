"""Train a recipe's language model: its ``[base.train]`` stage first when it has one.

A recipe may fine-tune: ``[base.train]`` trains the starting model and ``[train]`` starts a
new run from it with ``init_from`` (e.g. other batching, or, with its own ``text``, part of
the text). Both resume from their ``last.pt``, so the one command
``build.py <recipe> --stage train`` rebuilds either stage.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def training_stages(recipe: dict) -> list[dict]:
    """The [train] options of each stage, in order, paths made absolute."""
    stages = [recipe["base"]["train"]] if "base" in recipe else []
    absolute = []
    for options in [*stages, recipe["train"]]:
        options = dict(options)
        for key in ("out", "init_from", "text"):
            if options.get(key):
                options[key] = str(ROOT / options[key])
        absolute.append(options)
    return absolute


def train(recipe: dict, text: Path) -> None:
    """Train (or resume) every stage of the recipe on `text` (or on the stage's own)."""
    from rnnedge.render import RichTrainReporter
    from rnnedge.train.lm import LMTrainConfig, fit

    for options in training_stages(recipe):
        options.setdefault("text", str(text))
        fit(LMTrainConfig(resume=True, **options), RichTrainReporter())


def final_text(recipe: dict, text: Path) -> Path:
    """The text the exported (last) stage trained on: its held-out tail is the model's."""
    return Path(training_stages(recipe)[-1].get("text", text))
