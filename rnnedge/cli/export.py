"""`rnnedge export`: a checkpoint to one validated, self-describing ONNX file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnedge.cli.common import JsonOpt, app, print_json, require_torch
from rnnedge.errors import InputError
from rnnedge.render import stderr, stdout


@app.command("export")
def export_command(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the .onnx.")],
    checkpoint: Annotated[
        Path | None,
        typer.Argument(help="Checkpoint from `rnnedge train` (.pt); or give --module instead."),
    ] = None,
    module: Annotated[
        str | None,
        typer.Option(
            help="Your own model: path/to/file.py:factory, a function returning the "
            "torch.nn.Module. The file is run as Python (it is your code; run only files you "
            "trust). See README 'Bring your own model'."
        ),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="With --module: its state_dict (torch.save), read safely.")
    ] = None,
    vocab: Annotated[
        Path | None,
        typer.Option(help="With --module: the tokens in id order, one per line (or a JSON array)."),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="With --module: a classifier's labels in logit order, one per line."),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="With --module: language-model or classification (default: by --labels)."
        ),
    ] = None,
    pooling: Annotated[
        str, typer.Option(help="With --module, classifiers: last, mean, max or per-step.")
    ] = "last",
    quantize: Annotated[
        str | None, typer.Option(help="int8: dynamic int8 weights, for CPU.")
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="fp16 inside the graph, for CUDA (I/O stays fp32).")
    ] = False,
    heldout: Annotated[
        Path | None,
        typer.Option(
            help="Held-out data for the int8/fp16 quality change: LM text (the training file: its "
            "held-out tail) or, for classifiers, a labelled table, folder, aclImdb or IDX images."
        ),
    ] = None,
    validate: Annotated[bool, typer.Option(help="Validate against torch (on by default).")] = True,
    name: Annotated[str | None, typer.Option(help="Model name (default: the file name).")] = None,
    description: Annotated[str | None, typer.Option(help="One line on what it does.")] = None,
    model_version: Annotated[str | None, typer.Option(help="The model's version.")] = None,
    license: Annotated[str | None, typer.Option(help="The model's license (SPDX id).")] = None,
    author: Annotated[list[str] | None, typer.Option(help="Author (repeatable).")] = None,
    data_source: Annotated[
        str | None, typer.Option(help="Where the training data came from.")
    ] = None,
    data_license: Annotated[str | None, typer.Option(help="The training data's license.")] = None,
    write_manifest: Annotated[
        bool,
        typer.Option(help="Also write MODEL.manifest.json beside it (for JavaScript runtimes)."),
    ] = False,
    triton: Annotated[
        Path | None,
        typer.Option(help="Also write a Triton model repository entry here (extra `triton`)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Export a checkpoint, or your own torch module (--module), to one validated,
    self-describing ONNX file."""
    require_torch()
    from rnnedge.exporter import export_checkpoint, identity_options
    from rnnedge.exporter.user_module import export_module_file

    if fp16 and quantize:
        raise InputError(f"--fp16 and --quantize {quantize} both given; pick one precision")
    if (checkpoint is None) == (module is None):
        raise InputError("give a checkpoint or --module path/to/file.py:factory (one of them)")
    options = dict(
        quantize="fp16" if fp16 else quantize,
        heldout=heldout,
        run_validation=validate,
        identity=identity_options(
            name, description, model_version, license, author, data_source, data_license
        ),
    )
    with stderr.status("exporting and validating…"):
        if module is not None:
            result = export_module_file(
                module, output, weights, vocab, labels, task, pooling=pooling, **options
            )
        else:
            result = export_checkpoint(checkpoint, output, **options)
    if write_manifest:
        from rnnedge.runtime.catalog import manifest_json_path, write_manifest_json

        write_manifest_json(result.manifest, manifest_json_path(result.path))
    if triton is not None:
        from rnnedge.serve.triton import write_repository

        stderr.print(f"wrote {write_repository(result.path, triton, name)}")
    if json_out:
        print_json(
            {
                "path": str(result.path),
                "size_bytes": result.size_bytes,
                "validation": result.manifest.validation,
            }
        )
        return
    from rnnedge.render import validation_lines

    stdout.print(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB)")
    for line in validation_lines(result.manifest.validation):
        stdout.print(line)
