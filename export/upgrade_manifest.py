"""Restate a shipped model's manifest in schema 1.1 without retraining or re-exporting.

    python export/upgrade_manifest.py models/*.onnx

The graph and its weights are not touched. What changes: the graph's inputs and outputs
are declared exactly as the manifest states them (the exporter had left names such as
'Slicestate_out.pool_sum_dim_1' on fixed axes), the manifest gains the model's identity
(from its recipe's [identity] table), the full tokenizer spec, its operator domains and
flat metadata copies, absolute build paths are reduced to file names, and the export
timestamp goes (so the same checkpoint gives the same bytes). The validation report stays
the one measured when the file was exported; ``export.manifest_upgrade`` says what was done.
A JSON copy of the manifest is written beside each model for JavaScript runtimes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
import tomllib

from rnnedge.atomic import write_bytes_atomic
from rnnedge.contract import MANIFEST_KEY, SCHEMA_VERSION, Manifest
from rnnedge.exporter import lm_tokenizer_spec, model_identity, portable
from rnnedge.exporter.onnx_io import declare_shapes, with_manifest
from rnnedge.runtime.catalog import manifest_json_path, write_manifest_json
from rnnedge.runtime.graph import FLOAT32_EXACT_COUNT
from rnnedge.tokenizer import CharTokenizer, tokenizer_from_dict

ROOT = Path(__file__).resolve().parent.parent


def recipe_identity(manifest: Manifest) -> dict:
    """The [identity] table of the recipe the model was built from."""
    name = str(manifest.export.get("recipe") or "").removesuffix(".toml")
    recipe = tomllib.loads((ROOT / "export" / f"{name}.toml").read_text())
    return recipe.get("identity", {})


def restated(manifest: Manifest, path: Path) -> Manifest:
    """`manifest` in schema 1.1 (see the module docstring)."""
    previous = manifest.schema_version
    payload = {"data": manifest.training.get("data", {})}
    manifest.identity = model_identity(payload, path, recipe_identity(manifest))
    manifest.identity["recipe"] = manifest.export.get("recipe")
    if manifest.task == "language-model":
        manifest.tokenizer = lm_tokenizer_spec(CharTokenizer.from_dict(manifest.tokenizer))
    elif manifest.tokenizer.get("vocab"):
        manifest.tokenizer = tokenizer_from_dict(manifest.tokenizer).to_dict()
    if manifest.architecture.get("pooling") == "mean" and manifest.states:
        manifest.architecture["max_steps"] = FLOAT32_EXACT_COUNT
    manifest.training = portable(manifest.training)
    manifest.export.pop("exported_at", None)
    manifest.export["manifest_upgrade"] = (
        f"{previous} -> {SCHEMA_VERSION} by export/upgrade_manifest.py; graph and weights "
        "unchanged, validation as measured at export"
    )
    manifest.schema_version = SCHEMA_VERSION
    return manifest


def upgrade(path: Path) -> None:
    model = onnx.load(str(path), load_external_data=False)
    entries = {p.key: p.value for p in model.metadata_props}
    manifest = restated(Manifest.from_json(entries[MANIFEST_KEY]), path)
    data = with_manifest(declare_shapes(model.SerializeToString(), manifest), manifest)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    write_bytes_atomic(path, data)
    write_manifest_json(manifest, manifest_json_path(path))
    print(f"{path}: schema {manifest.schema_version}, {len(data):,} bytes", file=sys.stderr)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        upgrade(Path(argument))
