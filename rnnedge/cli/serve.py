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


@app.command("serve")
def serve_command(
    models: Annotated[
        list[str], typer.Argument(help=".onnx files or shipped names to load (one or more).")
    ],
    host: Annotated[str, typer.Option(help="Address the HTTP server binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    address: Annotated[
        str | None,
        typer.Option(help="Join this Ray cluster (e.g. 10.0.0.1:6379); default: start one here."),
    ] = None,
    node_ip: Annotated[
        str, typer.Option(help="This node's address for Ray (another host's peers must reach it).")
    ] = "127.0.0.1",
    replicas: Annotated[int, typer.Option(help="Copies of the model server.")] = 1,
    max_streams: Annotated[
        int, typer.Option(help="Concurrent generations per model and replica (then 503).")
    ] = 1024,
    flush_ms: Annotated[
        float, typer.Option(help="Send text made within this many ms of a piece with it.")
    ] = 20.0,
    device: Annotated[str, typer.Option(help="cpu or cuda (per replica).")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads per model.")] = None,
) -> None:
    """Serve models over HTTP on Ray Serve: streamed generation with continuous batching,
    batched classification, /v1/models, /health (protocol: docs/serving.md). Ctrl-C stops."""
    from rnnedge.serve.launch import serve_forever
    from rnnedge.serve.requests import Limits

    limits = Limits(max_streams=max_streams, flush_ms=flush_ms)
    serve_forever(models, host, port, address, node_ip, replicas, limits, device, threads)
