"""`rnnedge inspect|eval|bench|doctor|models`: look at, score and measure models."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnedge.cli.common import (
    DeviceOpt,
    JsonOpt,
    ModelArg,
    ThreadsOpt,
    app,
    note_precision,
    print_json,
)
from rnnedge.render import stdout


@app.command("inspect")
def inspect_command(
    model: ModelArg = None,
    json_out: JsonOpt = False,
    write_manifest: Annotated[
        Path | None,
        typer.Option(
            help="Also write the manifest as JSON to this file (for runtimes that cannot read "
            "ONNX metadata, e.g. onnxruntime-node / -web)."
        ),
    ] = None,
) -> None:
    """Task, identity, architecture, tensors, state layout, operator domains, validation."""
    from rnnedge.render import inspect_table
    from rnnedge.runtime.catalog import describe_model, write_manifest_json

    info = describe_model(model)
    if write_manifest is not None:
        write_manifest_json(info["manifest"], write_manifest)
    if json_out:
        from dataclasses import asdict

        print_json({**info, "manifest": asdict(info["manifest"])})
        return
    stdout.print(inspect_table(info))


@app.command("models")
def models_command(json_out: JsonOpt = False) -> None:
    """The models shipped inside rnnedge, by name (use a name wherever a MODEL goes)."""
    from rnnedge.render import models_table
    from rnnedge.runtime.catalog import shipped_models

    models = shipped_models()
    if json_out:
        print_json([m.to_dict() for m in models])
        return
    stdout.print(models_table(models))


@app.command("eval")
def eval_command(
    model: ModelArg = None,
    text: Annotated[Path | None, typer.Option(help="LM: UTF-8 text to score.")] = None,
    tail: Annotated[
        float,
        typer.Option(
            help="LM: score only the last fraction of the file (0.1 = a 10 % "
            "held-out tail); 1 = all."
        ),
    ] = 1.0,
    warmup: Annotated[
        int,
        typer.Option(
            help="LM: read up to N characters before each scored slice first, unscored "
            "(with --tail, the text before the tail), so every character is predicted with "
            "what precedes it, as a compressor given the earlier text; 0 = each slice starts "
            "from a zero state, as training's evaluation does."
        ),
    ] = 0,
    adapt: Annotated[
        float,
        typer.Option(
            help="LM: adaptive reading: the output layer learns from the text as it is "
            "scored, by SGD at this rate (each character scored before it is learnt; "
            "0.002 suits the shipped KJV model); 0 = the static model."
        ),
    ] = 0.0,
    streams: Annotated[
        int,
        typer.Option(
            help="LM: slices of the text read side by side; with --adapt each adapts on its "
            "own, so 1 reads the whole text in order as a compressor does."
        ),
    ] = 32,
    folders: Annotated[Path | None, typer.Option(help="Classifier: one folder per label.")] = None,
    aclimdb: Annotated[Path | None, typer.Option(help="Classifier: aclImdb (its test/).")] = None,
    table: Annotated[Path | None, typer.Option(help="Classifier: CSV or JSONL file.")] = None,
    text_column: str = "text",
    label_column: str = "label",
    images: Annotated[Path | None, typer.Option(help="Classifier: IDX images.")] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Classifier: IDX labels for --images.")
    ] = None,
    add: Annotated[int, typer.Option(help="Addition model: score N random sums.")] = 0,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score a model with the runtime: bits/char for LMs; accuracy, macro-F1, confusion for
    classifiers."""
    from rnnedge.runtime import load
    from rnnedge.runtime.session import workload_threads
    from rnnedge.sources import TextReading, evaluate_model

    # Scoring is batched work: many texts, or 32 slices of one text read together.
    runtime = load(model, device=device, threads=workload_threads(threads, batched=True))
    note_precision(runtime)
    began = time.perf_counter()
    sources = dict(folders=folders, aclimdb=aclimdb, table=table, images=images, labels=labels)
    metrics = evaluate_model(
        runtime,
        text=text,
        tail=tail,
        reading=TextReading(warmup=warmup, adapt=adapt, streams=streams),
        text_column=text_column,
        label_column=label_column,
        add=add,
        **sources,
    )
    metrics["seconds"] = time.perf_counter() - began
    if json_out:
        print_json({"model": str(model or "default"), **metrics})
        return
    from rnnedge.render import eval_lines

    for line in eval_lines(metrics, getattr(runtime, "labels", [])):
        stdout.print(line)


@app.command("bench")
def bench_command(
    model: ModelArg = None,
    steps: Annotated[int, typer.Option(help="Timed steps at batch 1.")] = 200,
    cold: Annotated[bool, typer.Option(help="Also time fresh-process cold starts.")] = True,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Language models: step latency, batched streams, generation, prefill, cold start.
    Classifiers: sequences/s at batch 1 and 64."""
    from rnnedge.bench import bench_model
    from rnnedge.render import bench_report_table, stderr
    from rnnedge.runtime import load

    runtime = load(model, device=device, threads=threads)
    note_precision(runtime)
    with stderr.status("measuring…"):
        report: dict[str, Any] = bench_model(runtime, model, steps=steps, cold=cold)
    if json_out:
        print_json(report)
    else:
        stdout.print(bench_report_table(runtime.task, report))


@app.command("doctor")
def doctor_command(json_out: JsonOpt = False) -> None:
    """Check the installation: onnxruntime build(s), providers, torch, the default model."""
    from rnnedge.doctor import diagnose
    from rnnedge.render import doctor_table

    report = diagnose()
    if json_out:
        print_json(report)
    else:
        stdout.print(doctor_table(report))
    if report["problems"]:
        raise typer.Exit(1)


@app.command("web")
def web_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 8000,
    root: Annotated[
        Path, typer.Option(help="The rnnedge checkout whose examples/web to serve.")
    ] = Path("."),
) -> None:
    """Serve the browser page (examples/web: generation and language ID in wasm) locally."""
    from rnnedge.render import stderr
    from rnnedge.web import make_server, page_url

    server = make_server(root.resolve(), port)
    print(page_url(server), flush=True)
    stderr.print("serving on 127.0.0.1 only; Ctrl-C stops")
    try:
        server.serve_forever()
    finally:
        server.server_close()
