"""The runtime: onnxruntime + numpy only. Importing it never imports torch (a test proves it)."""

from __future__ import annotations

import os
from pathlib import Path

from rnnedge.errors import ModelError
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
) -> Generator:
    """Load a language model for generation (the shipped default when `path` is None)."""
    return Generator(open_session(path or default_model_path(), device=device, threads=threads))


__all__ = ["Generator", "SamplingConfig", "available_providers", "default_model_path", "load"]
