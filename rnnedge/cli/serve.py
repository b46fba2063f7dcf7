"""`rnnedge triton` (a Triton model repository) and `rnnedge serve` (HTTP on Ray Serve)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnedge.cli.common import app
from rnnedge.render import stdout

KindOpt = Annotated[str, typer.Option(help="Triton instance group: cpu or gpu.")]
MaxBatchOpt = Annotated[
    int, typer.Option(help="Triton max_batch_size: sequences stepped together in one call.")
]


@app.command("triton")
def triton_command(
    model: Annotated[str, typer.Argument(help="A step-graph .onnx file or a shipped name.")],
    repository: Annotated[Path, typer.Argument(help="The model repository folder (created).")],
    name: Annotated[str | None, typer.Option(help="Model name (default: the manifest's).")] = None,
    kind: KindOpt = "cpu",
    max_batch_size: MaxBatchOpt = 64,
) -> None:
    """Write a Triton model repository entry (onnxruntime backend, sequence batcher with
    implicit state) for an exported model."""
    from rnnedge.serve.triton import write_repository

    folder = write_repository(model, repository, name, kind, max_batch_size)
    stdout.print(f"wrote {folder} (config.pbtxt, 1/model.onnx, manifest)")
