"""Model names: the models shipped inside rnnedge, and how a MODEL argument becomes a file.

A MODEL is an existing file path, a shipped model's name (its file stem, e.g.
``fortune-langid``) or a short alias from ALIASES (``langid``); none means $RNNEDGE_MODEL
(itself a path or a name), else DEFAULT_MODEL. A path that exists wins over a name.

The shipped files are package data of ``rnnedge.models`` (the repository's ``models/``
folder, mapped in pyproject.toml), found with ``importlib.resources`` in editable and wheel
installs alike. Listing them reads each file's manifest from its bytes (no onnxruntime);
onnxruntime is imported only where a model is opened (``describe_model``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from rnnedge.atomic import write_text_atomic
from rnnedge.contract import MANIFEST_KEY, Manifest
from rnnedge.errors import ModelError

DEFAULT_MODEL = "kjv-char-lstm"
# The one alias table: short name -> shipped file stem. `langid` is the int8 file: on one
# CPU core it classifies 1.4-1.6x faster than the fp32 one at the same held-out accuracy
# (models/fortune-langid.md).
ALIASES = {
    "kjv": "kjv-char-lstm",
    "langid": "fortune-langid-int8",
    "fashion": "fashion-mnist-rows",
    "poems": "zh-poems-lstm",
}


@dataclass
class ShippedModel:
    """One model file inside the package."""

    name: str
    aliases: list[str]
    path: Path
    size_bytes: int
    task: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}


def models_dir() -> Path:
    """The installed ``rnnedge.models`` folder (a plain directory: wheels install unpacked)."""
    try:
        return Path(str(files("rnnedge.models")))
    except ModuleNotFoundError:  # an editable install made before models/ became a package
        raise ModelError(
            "the shipped models (package rnnedge.models) are not installed; reinstall "
            "rnnedge (pip install -e . in a checkout)"
        ) from None


def shipped_names() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.onnx"))


def resolve_model(ref: str | Path | None = None) -> Path:
    """The model file for a MODEL argument: a path, a shipped name or alias, or None for
    $RNNEDGE_MODEL / the default. ModelError (one line) when nothing matches."""
    source = ""
    if ref is None or str(ref) == "":
        ref = os.environ.get("RNNEDGE_MODEL") or DEFAULT_MODEL
        source = " (from $RNNEDGE_MODEL)" if os.environ.get("RNNEDGE_MODEL") else ""
    path = Path(ref)
    if path.exists():
        return path
    text = str(ref)
    looks_like_path = "/" in text or os.sep in text
    if not looks_like_path:
        name = ALIASES.get(text, text.removesuffix(".onnx"))
        shipped = models_dir() / f"{name}.onnx"
        if shipped.is_file():
            return shipped
    raise ModelError(not_found_message(text, looks_like_path) + source)


def not_found_message(ref: str, looks_like_path: bool) -> str:
    """What was not found, and what can be named instead."""
    names = [f"{n} ({a})" if (a := aliases_of(n)) else n for n in shipped_names()]
    shipped = ", ".join(names) or "none: this install has no rnnedge.models files"
    if looks_like_path:
        return (
            f"model file {ref!r} does not exist; check the path, or name a shipped model "
            f"(`rnnedge models`: {shipped})"
        )
    return (
        f"no model file or shipped model named {ref!r}; shipped: {shipped} (see `rnnedge models`)"
    )


def aliases_of(name: str) -> str:
    return ", ".join(alias for alias, target in ALIASES.items() if target == name)


def shipped_models() -> list[ShippedModel]:
    """Every model in the package, by name, with its task and description."""
    models = []
    for name in shipped_names():
        path = models_dir() / f"{name}.onnx"
        manifest = read_manifest(path)
        models.append(
            ShippedModel(
                name=name,
                aliases=[a for a, target in ALIASES.items() if target == name],
                path=path,
                size_bytes=path.stat().st_size,
                task=manifest.task,
                description=describe(manifest),
            )
        )
    return models


def read_manifest(path: Path) -> Manifest:
    """A model file's manifest, read from its bytes with the runtime's checks for untrusted
    files, without onnxruntime (listing models must not open sessions)."""
    from rnnedge.runtime.protoscan import read_metadata
    from rnnedge.runtime.session import check_manifest_limits, check_model_bytes, read_model_bytes

    data = read_model_bytes(path)
    check_model_bytes(data, str(path))
    text = read_metadata(data).get(MANIFEST_KEY)
    if text is None:
        raise ModelError(f"{str(path)!r} is not an rnnedge model (no {MANIFEST_KEY!r} metadata)")
    check_manifest_limits(text, str(path))
    return Manifest.from_json(text)


def describe(manifest: Manifest) -> str:
    """The manifest's own description (identity.description), else one made from its task,
    architecture, labels and precision."""
    identity = getattr(manifest, "identity", None)
    if isinstance(identity, dict) and identity.get("description"):
        return str(identity["description"])
    arch = manifest.architecture
    cell = str(arch.get("cell", "rnn")).upper()
    shape = f"{cell} {arch.get('layers', '?')}×{arch.get('hidden', '?')}"
    if arch.get("bidirectional"):
        shape = "bidirectional " + shape
    what = "language model" if manifest.task == "language-model" else manifest.task
    if manifest.labels:
        shown = ", ".join(manifest.labels[:4]) + (", …" if len(manifest.labels) > 4 else "")
        what += f", {len(manifest.labels)} labels ({shown})"
    precision = str(manifest.export.get("quantization") or "fp32").split()[0]
    return f"{shape} {what}, {precision}"


def describe_model(ref: str | Path | None = None) -> dict[str, Any]:
    """What `rnnedge inspect` shows: the file, its size, the providers here, its manifest
    (opened with onnxruntime on CPU, so a file that does not load is reported)."""
    from rnnedge.runtime.session import available_providers, open_session

    path = resolve_model(ref)
    loaded = open_session(path, device="cpu")
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "providers_available": available_providers(),
        "manifest": loaded.manifest,
    }


def write_manifest_json(manifest: Manifest, path: str | Path) -> None:
    """The manifest as a JSON file (for runtimes that cannot read ONNX metadata), written
    atomically."""
    write_text_atomic(path, json.dumps(dataclasses.asdict(manifest), indent=2, ensure_ascii=False))


__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "ShippedModel",
    "describe_model",
    "resolve_model",
    "shipped_models",
    "write_manifest_json",
]


def manifest_json_path(model: str | Path) -> Path:
    """Where a model's JSON manifest copy lives: `name.onnx` → `name.manifest.json`."""
    return Path(model).with_suffix(".manifest.json")
