"""The stream object: push as data arrives, read, save/restore anywhere, reset.

Every check compares the stream against an independent path through the same model (one
graph call over the whole input, classify(), a fresh process-like reload), so a change that
breaks carried state, serialisation or the bound on mean-pooled streams fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import error_line, invoke, succeeded
from rnnedge.errors import InputError
from rnnedge.runtime import load, load_classifier
from rnnedge.runtime.prng import PortableRng

ROOT = Path(__file__).resolve().parents[1]
LANGID = ROOT / "models" / "fortune-langid.onnx"
TEXT = "the lord said unto moses behold"


def test_text_pushed_in_pieces_equals_one_call(tiny_model: Path) -> None:
    lm = load(tiny_model)
    whole = lm.open_stream()
    expected = whole.push_text(TEXT)  # [T, V]
    pieces = lm.open_stream()
    got = np.concatenate(
        [pieces.push_text(part) for part in ("the lo", "r", "d said unto ", "moses behold")]
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert pieces.steps == whole.steps == len(TEXT)
    for name, value in whole.state.items():
        np.testing.assert_allclose(pieces.state[name], value, atol=1e-5)


def test_saved_state_continues_identically_in_a_fresh_model(tiny_model: Path) -> None:
    sampling_args = dict(temperature=0.9)
    first = load(tiny_model)
    stream = first.open_stream()
    stream.push_text(TEXT)
    saved = json.loads(json.dumps(stream.get_state()))  # through text, as an app would store it
    rng = PortableRng(5)
    sampling = first.sampling_config(**sampling_args)
    continued = [stream.sample(sampling, rng) for _ in range(60)]

    second = load(tiny_model)  # another session, as another process would have
    restored = second.open_stream()
    restored.set_state(saved)
    rng = PortableRng(5)
    assert [restored.sample(sampling, rng) for _ in range(60)] == continued
    assert restored.steps == len(TEXT) + 60


def test_reset_returns_to_the_initial_state(tiny_model: Path) -> None:
    lm = load(tiny_model)
    stream = lm.open_stream()
    fresh = stream.push_text("and").copy()
    stream.push_text(" the lord said")
    stream.reset()
    assert stream.steps == 0 and stream.logits is None
    np.testing.assert_array_equal(stream.push_text("and"), fresh)


def test_generate_is_built_on_the_stream(tiny_model: Path) -> None:
    lm = load(tiny_model)
    greedy = lm.sampling_config(temperature=0.0)
    text = "".join(lm.generate("and the", 40, greedy))
    stream = lm.open_stream()
    stream.push_text("and the")
    tokens = [stream.sample(greedy, PortableRng(0)) for _ in range(40)]
    assert lm.tokenizer.decode(tokens) == text


def test_state_of_another_model_or_format_is_refused(tiny_model: Path) -> None:
    lm_stream = load(tiny_model).open_stream()
    lm_stream.push_text("and")
    langid = load_classifier(LANGID).open_stream()
    with pytest.raises(InputError, match="belongs to model"):
        langid.set_state(lm_stream.get_state())
    with pytest.raises(InputError, match="not a saved rnnedge stream state"):
        langid.set_state({"arrays": {}})


def test_classifier_stream_pushed_in_chunks_agrees_with_classify() -> None:
    classifier = load_classifier(LANGID)
    text = "Der Hund läuft schnell über die Straße"
    stream = classifier.open_stream()
    for chunk in ("Der Hund ", "läuft schnell", " über die Straße"):
        probs = stream.push(chunk)  # [T, C]
        assert probs.shape[1] == len(classifier.labels)
    whole = classifier.classify([text], top=3)[0]
    assert stream.prediction(3).label == whole.label == "de"
    np.testing.assert_allclose(stream.probabilities, whole.probabilities, atol=1e-5)


def test_mean_pooled_stream_enforces_its_stated_step_bound() -> None:
    classifier = load_classifier(LANGID)
    assert classifier.manifest.architecture["max_steps"] == 2**24
    classifier.manifest.architecture["max_steps"] = 10  # a small bound, same mechanism
    stream = classifier.open_stream()
    stream.push("123456789")
    with pytest.raises(InputError, match="would pass 10 steps"):
        stream.push("ab")
    stream.reset()
    stream.push("ab")  # a reset stream counts from zero


def test_classify_stream_reads_stdin_line_by_line() -> None:
    lines = "Das Wetter war gestern\nsehr kalt und nass\nund heute auch\n"
    result = succeeded(
        invoke_with_input(["infer", "classify", str(LANGID), "-", "--stream", "--json"], lines)
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["steps"] for r in records] == [22, 40, 54]  # characters pushed so far
    assert records[-1]["label"] == "de"
    whole = load_classifier(LANGID).open_stream()
    whole.push("Das Wetter war gesternsehr kalt und nassund heute auch")
    assert records[-1]["probability"] == pytest.approx(float(whole.probabilities.max()), abs=1e-6)


def test_stdin_stream_into_a_model_that_reads_no_text_is_one_line() -> None:
    line = error_line(invoke("infer", "classify", "fashion-mnist-rows", "-", "--stream"), "stdin")
    assert "image-rows" in line


def invoke_with_input(args: list[str], text: str):
    from typer.testing import CliRunner

    from rnnedge.cli import app

    return CliRunner().invoke(app, args, input=text)


def test_stream_batch_takes_new_streams_after_all_left(tiny_model: Path) -> None:
    from rnnedge.runtime.streams import StreamBatch

    lm = load(tiny_model)
    greedy = lm.sampling_config(temperature=0.0)
    batch = StreamBatch(lm)
    batch.add("and", 3, greedy)
    batch.add("the", 3, greedy)
    list(batch.run())  # both finish in the same step
    later = batch.add("behold", 20, greedy)
    text = "".join(t for sid, t in batch.run() if sid == later)
    assert text == "".join(lm.generate("behold", 20, greedy))
