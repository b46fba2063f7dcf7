"""Checkpoints: plain dicts of tensors and primitives, written atomically.

They load with ``torch.load(weights_only=True)`` (no pickled classes) and carry the model
config and vocabulary, so export needs nothing else.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import torch

from rnnedge.atomic import write_atomic
from rnnedge.errors import InputError

ConfigT = TypeVar("ConfigT")

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


def model_config_of(config_class: type[ConfigT], stored: dict[str, Any]) -> ConfigT:
    """The architecture a checkpoint stores, as `config_class`; InputError naming the options
    this version does not know (a checkpoint written by another rnnedge version)."""
    unknown = sorted(set(stored) - {f.name for f in fields(config_class)})  # type: ignore[arg-type]
    if unknown:
        raise InputError(
            f"the checkpoint's model has option(s) {', '.join(map(repr, unknown))} that this "
            "rnnedge does not know: it was written by another version; use that version"
        )
    return config_class(**stored)
