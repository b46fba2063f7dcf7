"""The runtime: onnxruntime + numpy only. Importing it never imports torch (a test proves it)."""

from __future__ import annotations

import os
from pathlib import Path

from rnnedge.errors import ModelError
from rnnedge.runtime.classify import Classifier
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.sampling import SamplingConfig
from rnnedge.runtime.session import available_providers, open_session

DEFAULT_MODEL_NAME = "kjv-char-lstm.onnx"


def default_model_path() -> Path:
    """$RNNEDGE_MODEL, else the shipped default in the repository's models/ folder."""
    if os.environ.get("RNNEDGE_MODEL"):
        return Path(os.environ["RNNEDGE_MODEL"])
    path = Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL_NAME
    if not path.exists():
        raise ModelError(
            f"no model given and the shipped default {str(path)!r} is missing; "
            "pass a MODEL path or set RNNEDGE_MODEL"
        )
    return path


def load(
    path: str | Path | None = None, device: str = "auto", threads: int | None = None
) -> Generator | Classifier:
    """Load a model (the shipped default when `path` is None): a Generator for language
    models, a Classifier for classifiers, as the file's manifest says."""
    loaded = open_session(path or default_model_path(), device=device, threads=threads)
    return Classifier(loaded) if loaded.manifest.task == "classification" else Generator(loaded)


def load_generator(
    path: str | Path | None = None, device: str = "auto", threads: int | None = None
) -> Generator:
    """A language model, or an error saying which command fits the file instead."""
    return Generator(open_session(path or default_model_path(), device=device, threads=threads))


def load_classifier(
    path: str | Path, device: str = "auto", threads: int | None = None
) -> Classifier:
    """A classifier, or an error saying which command fits the file instead."""
    return Classifier(open_session(path, device=device, threads=threads))


__all__ = [
    "Classifier",
    "Generator",
    "SamplingConfig",
    "available_providers",
    "default_model_path",
    "load",
]
