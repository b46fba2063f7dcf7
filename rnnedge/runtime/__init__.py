"""The runtime: onnxruntime + numpy only. Importing it never imports torch (a test proves it)."""

from __future__ import annotations

from pathlib import Path

from rnnedge.runtime.catalog import resolve_model, shipped_models
from rnnedge.runtime.classify import Classifier
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.sampling import SamplingConfig
from rnnedge.runtime.session import available_providers, open_session


def default_model_path() -> Path:
    """$RNNEDGE_MODEL (a path or a shipped name), else the shipped default model."""
    return resolve_model(None)


def load(
    path: str | Path | None = None, device: str = "auto", threads: int | None = None
) -> Generator | Classifier:
    """Load a model — a path, a shipped name or alias (`rnnedge models`), or None for the
    default: a Generator for language models, a Classifier for classifiers, as the file's
    manifest says."""
    loaded = open_session(resolve_model(path), device=device, threads=threads)
    return Classifier(loaded) if loaded.manifest.task == "classification" else Generator(loaded)


def load_generator(
    path: str | Path | None = None, device: str = "auto", threads: int | None = None
) -> Generator:
    """A language model (path, shipped name or None for the default), or an error saying
    which command fits the file instead."""
    return Generator(open_session(resolve_model(path), device=device, threads=threads))


def load_classifier(
    path: str | Path | None, device: str = "auto", threads: int | None = None
) -> Classifier:
    """A classifier (path, or shipped name such as `langid`), or an error saying which
    command fits the file instead."""
    return Classifier(open_session(resolve_model(path), device=device, threads=threads))


__all__ = [
    "Classifier",
    "Generator",
    "SamplingConfig",
    "available_providers",
    "default_model_path",
    "load",
    "load_classifier",
    "load_generator",
    "resolve_model",
    "shipped_models",
]
