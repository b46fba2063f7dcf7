"""Checkpoints: plain dicts of tensors and primitives, written atomically.

They load with ``torch.load(weights_only=True)`` (no pickled classes) and carry the model
config and vocabulary, so export needs nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rnnedge.atomic import write_atomic
from rnnedge.errors import InputError

CHECKPOINT_FORMAT = "rnnedge-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus format tags) to `path` atomically."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}
    write_atomic(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (weights_only); InputError if it is missing or not ours."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {str(path)!r} does not exist; check the path")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise InputError(
            f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}); "
            "is it an rnnedge checkpoint?"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{str(path)!r} is not an rnnedge checkpoint")
    return payload
