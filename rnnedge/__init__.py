"""rnnedge: recurrent models from PyTorch training to stateful ONNX graphs on onnxruntime.

Importing this package stays light: no torch, no onnxruntime until a model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from rnnedge.runtime import Classifier, Generator


def load(
    path: str | None = None, device: str = "auto", threads: int | None = None
) -> Generator | Classifier:
    """Load an rnnedge ONNX model: a file path, a shipped model's name or alias (e.g.
    "langid"; `rnnedge models` lists them), or None for $RNNEDGE_MODEL / the default."""
    from rnnedge.runtime import load as runtime_load

    return runtime_load(path, device=device, threads=threads)


__all__ = ["__version__", "load"]
