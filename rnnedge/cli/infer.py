"""`rnnedge infer generate|classify`: stream text or labels from a model (no torch)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnedge.cli.common import (
    DeviceOpt,
    JsonOpt,
    ModelArg,
    ThreadsOpt,
    infer_app,
    note_precision,
    print_json,
)
from rnnedge.errors import InputError
from rnnedge.render import stderr, stdout


@infer_app.command("generate")
def generate_command(
    model: ModelArg = None,
    prompt: Annotated[str, typer.Option(help="Text to continue (fed in one call).")] = "",
    max_new_tokens: int = 200,
    temperature: Annotated[
        float | None, typer.Option(help="0 = greedy; default from the model.")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option(help="Sample from the k most likely; 0 = all; default from model.")
    ] = None,
    top_p: Annotated[
        float | None, typer.Option(help="Nucleus sampling mass; 1 = off; default from model.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Same seed, same text (in any language).")
    ] = None,
    stop: Annotated[
        list[str] | None, typer.Option(help="Stop before this string (repeatable).")
    ] = None,
    unknown: Annotated[
        str | None,
        typer.Option(help="Prompt characters outside the vocabulary: error (default) or skip."),
    ] = None,
    echo: Annotated[bool, typer.Option(help="Print the prompt before the continuation.")] = True,
    stats: Annotated[bool, typer.Option(help="Tokens/s and provider on stderr.")] = False,
    num_streams: Annotated[
        int,
        typer.Option(
            help="Generate N streams together in one batched call per token "
            "(seeds SEED, SEED+1, …); each is printed when it finishes."
        ),
    ] = 1,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stream generated text to stdout as it is made."""
    from rnnedge.runtime import load_generator
    from rnnedge.runtime.session import workload_threads
    from rnnedge.runtime.streams import generate_many

    generator = load_generator(
        model, device=device, threads=workload_threads(threads, num_streams > 1)
    )
    note_precision(generator)
    sampling = generator.sampling_config(temperature, top_k, top_p)
    options = dict(sampling=sampling, seed=seed, stop=tuple(stop or ()), unknown=unknown)
    began = time.perf_counter()
    if num_streams != 1:
        texts = generate_many(generator, prompt, num_streams, max_new_tokens, **options)
        show_streams(generator, prompt, texts, echo, json_out, time.perf_counter() - began, stats)
        return
    pieces = generator.generate(prompt, max_new_tokens=max_new_tokens, **options)
    if json_out:
        text = "".join(pieces)
        seconds = time.perf_counter() - began
        print_json(
            {"prompt": prompt, "text": text, "provider": generator.provider, "seconds": seconds}
        )
        return
    count = write_pieces(prompt if echo else "", pieces)
    if stats:
        seconds = time.perf_counter() - began
        stderr.print(
            f"{count} characters in {seconds:.3f} s ({count / seconds:,.0f} tokens/s "
            f"incl. prefill) on {generator.provider}"
        )


def write_pieces(prefix: str, pieces: Any) -> int:
    """Write `prefix`, then each piece as it comes (flushed), then a newline; characters."""
    sys.stdout.write(prefix)
    count = 0
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
        count += len(piece)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return count


def show_streams(
    generator: Any,
    prompt: str,
    texts: list[str],
    echo: bool,
    json_out: bool,
    seconds: float,
    stats: bool,
) -> None:
    """`--num-streams`: every stream's text, as JSON or one block per stream."""
    if json_out:
        print_json(
            {"prompt": prompt, "streams": texts, "provider": generator.provider, "seconds": seconds}
        )
        return
    shown = prompt if echo else ""
    for index, text in enumerate(texts):
        sys.stdout.write(f"--- stream {index} ---\n{shown}{text}\n")
    sys.stdout.flush()
    if stats:
        total = sum(len(t) for t in texts)
        stderr.print(
            f"{len(texts)} streams, {total} characters in {seconds:.3f} s "
            f"({total / seconds:,.0f} tokens/s in total) on {generator.provider}"
        )


@infer_app.command("classify")
def classify_command(
    model: Annotated[str, typer.Argument(help="Classifier: an .onnx file or a shipped name.")],
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Texts to classify ('a+b' for the addition model; '-' with --stream reads "
            "stdin as it arrives).",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="One input per line; '-' reads stdin.")
    ] = None,
    images: Annotated[Path | None, typer.Option(help="IDX images (image-row models).")] = None,
    first: Annotated[int, typer.Option(help="With --images: classify the first N.")] = 10,
    top: Annotated[int, typer.Option(help="Show the k most likely labels.")] = 1,
    stream: Annotated[
        bool, typer.Option(help="Show how the prediction evolves step by step (one input).")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="With --stream: draw per-step class probabilities to a PNG (needs matplotlib)."
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Classify --file on Ray Data ('local' starts Ray here, HOST:PORT joins a "
            "cluster; extra `serve`): JSONL/CSV/Parquet 'text' column or text lines; JSON lines."
        ),
    ] = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Label and probability for each input (batched), or step by step with --stream."""
    from rnnedge.runtime import load_classifier
    from rnnedge.runtime.session import workload_threads

    if top < 1:
        raise InputError(f"--top must be at least 1, got {top}")
    if ray is not None:
        from rnnedge.serve.bulk import classify_to_stdout

        return classify_to_stdout(model, file, ray, top)
    live = stream and inputs == ["-"] and file is None and images is None
    items, shown = ([], []) if live else classify_inputs(inputs, file, images, first)
    batched = not stream and len(items) > 1
    classifier = load_classifier(model, device=device, threads=workload_threads(threads, batched))
    note_precision(classifier)
    if live:
        stream_stdin(classifier, top, json_out)
    elif stream:
        stream_one(classifier, items, shown, plot, json_out)
    else:
        show_predictions(shown, classifier.classify(items, top=top), json_out)


def show_predictions(shown: list[str], predictions: list[Any], json_out: bool) -> None:
    """One JSON line per input, or a table."""
    if json_out:
        for text, prediction in zip(shown, predictions, strict=True):
            sys.stdout.write(
                json.dumps({"input": text, **prediction.to_dict()}, ensure_ascii=False) + "\n"
            )
        return
    from rnnedge.render import predictions_table

    stdout.print(predictions_table(shown, predictions))


def classify_inputs(
    inputs: list[str] | None, file: Path | None, images: Path | None, first: int
) -> tuple[list[Any], list[str]]:
    """(items for the classifier, how to show each) from arguments, a file, stdin or IDX."""
    if images is not None:
        if first < 1:
            raise InputError(f"--first must be at least 1, got {first}")
        from rnnedge.datasets import read_idx

        pixels = read_idx(images)[:first]  # raw bytes: the model's manifest says the scale
        return list(pixels), [f"{images.name}[{i}]" for i in range(len(pixels))]
    items = list(inputs or [])
    if file is not None:
        from rnnedge.textio import read_text

        content = sys.stdin.read() if str(file) == "-" else read_text(file)
        items += [line for line in content.splitlines() if line.strip()]
    if not items:
        raise InputError(
            "nothing to classify: give inputs as arguments, --file F, --file - (stdin) or --images"
        )
    return items, items


def stream_one(
    classifier: Any, items: list[Any], shown: list[str], plot: Path | None, json_out: bool
) -> None:
    """Per-step probabilities of a single input, as bars, JSON lines or a picture."""
    from rnnedge.render import plot_steps, step_json_lines, stream_lines

    if len(items) != 1:
        raise InputError(f"--stream takes exactly one input, got {len(items)}")
    if plot is not None and not plot.parent.is_dir():
        raise InputError(
            f"cannot write --plot {str(plot)!r}: its folder does not exist; create it first"
        )
    steps = classifier.stream_probabilities(items[0])  # [T, C]
    if plot is not None:
        plot_steps(steps, classifier.labels, shown[0], plot)
        stderr.print(f"wrote {plot}")
    if json_out:
        sys.stdout.writelines(step_json_lines(steps, classifier.labels))
        return
    for line in stream_lines(steps, classifier.labels, classifier.step_pieces(items[0])):
        stdout.print(line)


def stream_stdin(classifier: Any, top: int, json_out: bool) -> None:
    """`--stream -`: push each stdin line into one stream as it arrives; print the prediction."""
    from rnnedge.render import prediction_line

    if not classifier.inputs.reads_text:
        raise InputError(
            f"--stream - feeds stdin's text lines, but this model reads "
            f"{classifier.inputs.kind} inputs; pass one input (or --images) with --stream"
        )
    live = classifier.open_stream()
    for line in sys.stdin:
        text = line.rstrip("\n")
        if not text:
            continue
        live.push(text)
        prediction = live.prediction(top)
        if json_out:
            record = {"steps": live.steps, **prediction.to_dict()}
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            stdout.print(prediction_line(live.steps, prediction))
        sys.stdout.flush()
