"""Runtime: no torch, prefill == stepping, sampling, stop strings, seeds, evaluation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rnnedge.runtime import load
from rnnedge.runtime.generate import StopMatcher, cross_entropy_sum
from rnnedge.runtime.sampling import SamplingConfig, nucleus, sample_token, sample_tokens
from rnnedge.runtime.session import MAX_BATCH_THREADS, workload_threads
from rnnedge.runtime.streams import StreamBatch
from rnnedge.train.checkpoint import load_checkpoint

# Makes `import torch` fail in the child, as in an install without the train extra.
BLOCK_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch' (blocked by test)")
sys.meta_path.insert(0, Block())
"""


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_runtime_imports_never_pull_torch(tiny_model):
    code = f"""
import sys, rnnedge, rnnedge.runtime, rnnedge.cli
from rnnedge.runtime import load
text = "".join(load({str(tiny_model)!r}).generate("the", max_new_tokens=5, seed=0))
print(len(text), "torch" in sys.modules)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5", "False"]


def test_cli_generate_works_where_torch_cannot_be_imported(tiny_model):
    code = (
        BLOCK_TORCH
        + f"""
sys.argv = ["rnnedge", "infer", "generate", {str(tiny_model)!r}, "--prompt", "the lord",
            "--max-new-tokens", "12", "--seed", "1"]
from rnnedge.cli import main
main()
"""
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("the lord") and len(result.stdout.strip()) == 8 + 12


def test_train_without_torch_says_what_to_install(tmp_path):
    code = (
        BLOCK_TORCH
        + """
sys.argv = ["rnnedge", "train", "lm", "--text", "x.txt"]
from rnnedge.cli import main
main()
"""
    )
    result = run_python(code)
    assert result.returncode == 1
    assert "pip install 'rnnedge[train]'" in result.stderr and "Traceback" not in result.stderr


def test_prefill_in_one_call_equals_feeding_char_by_char(tiny_model):
    generator = load(tiny_model)
    ids = generator.tokenizer.encode("and the lord said unto moses")[None, :]  # [1, T]
    whole, whole_state = generator.run(ids, generator.initial_state(1))
    state, steps = generator.initial_state(1), []
    for t in range(ids.shape[1]):
        logits, state = generator.run(ids[:, t : t + 1], state)
        steps.append(logits)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), whole, atol=1e-5)
    for name in state:
        np.testing.assert_allclose(state[name], whole_state[name], atol=1e-5)


def test_runtime_eval_matches_training_eval(tiny_model, tiny_checkpoint, corpus):
    """The runtime's bits/char of the held-out tail equals what training reported."""
    payload = load_checkpoint(tiny_checkpoint)
    text = corpus.read_text()
    tail = text[round(len(text) * 0.9) :]
    assert load(tiny_model).evaluate(tail)["bpc"] == pytest.approx(
        payload["valid"]["bpc"], abs=1e-4
    )


def slice_cost(generator, window: str, warmup: int) -> tuple[float, int]:
    """Nats of `window`'s characters after its first warmup + 1, read from a zero state in one
    call: the brute-force reference for one slice of `evaluate(..., warmup=...)`."""
    ids = generator.tokenizer.encode(window)
    logits, _ = generator.run(ids[None, :-1], generator.initial_state(1))  # [1, T-1, V]
    return cross_entropy_sum(logits[:, warmup:], ids[None, warmup + 1 :]), ids.size - warmup - 1


@pytest.mark.parametrize("streams", [1, 3])
def test_eval_with_warmup_scores_every_slice_after_its_context(tiny_model, corpus, streams):
    """Each slice is read after the `warmup` characters before it (the context for the first),
    unscored; every character of the text is scored once but the remainder of the last slice."""
    generator = load(tiny_model)
    text = corpus.read_text()
    context, tail, warmup = text[:400], text[400:700], 50
    got = generator.evaluate(tail, streams=streams, context=context, warmup=warmup)
    length = 300 // streams
    whole = context + tail
    total = 0.0
    for i in range(streams):
        first = 400 + i * length  # the slice's first scored character
        nats, scored = slice_cost(generator, whole[first - warmup - 1 : first + length], warmup)
        assert scored == length
        total += nats
    assert (got["chars"], got["unscored_chars"], got["warmup_chars"]) == (300, 0, warmup)
    assert got["loss"] == pytest.approx(total / 300, rel=1e-6)


def test_eval_warmup_is_limited_to_the_context_there_is(tiny_model, corpus):
    text = corpus.read_text()
    got = load(tiny_model).evaluate(text[20:220], streams=2, context=text[:20], warmup=500)
    assert got["warmup_chars"] == 19  # the first slice's input starts at the context's start
    alone = load(tiny_model).evaluate(text[:220], streams=2)
    assert alone["warmup_chars"] == 0 and alone["chars"] == 218  # 219 after the first, 2 slices


def test_same_seed_same_text_and_greedy_is_deterministic(tiny_model):
    generator = load(tiny_model)
    run = lambda **kw: "".join(generator.generate("the", max_new_tokens=60, **kw))  # noqa: E731
    assert run(seed=3) == run(seed=3) != run(seed=4)
    greedy = SamplingConfig(temperature=0.0)
    assert run(sampling=greedy, seed=1) == run(sampling=greedy, seed=2)


def test_sampling_truncation():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert sample_token(logits, SamplingConfig(temperature=0.0), rng) == 0
    top2 = {sample_token(logits, SamplingConfig(top_k=2), rng) for _ in range(300)}
    assert top2 == {0, 1}
    assert nucleus(np.array([0.5, 0.3, 0.15, 0.05]), 0.7).tolist() == [0.5, 0.3, 0, 0]
    draws = (
        np.bincount([sample_token(logits, SamplingConfig(), rng) for _ in range(4000)], minlength=4)
        / 4000
    )
    np.testing.assert_allclose(draws, [0.5, 0.3, 0.15, 0.05], atol=0.03)


def test_batched_sampling_equals_each_row_alone():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 3, (40, 30)).astype(np.float32)  # [B, V]
    choices = [
        SamplingConfig(temperature=0.0),
        SamplingConfig(temperature=0.8),
        SamplingConfig(top_k=3),
        SamplingConfig(temperature=1.3, top_p=0.6),
        SamplingConfig(top_k=10, top_p=0.9),
    ]
    configs = [choices[i % len(choices)] for i in range(len(logits))]
    uniforms = rng.random(len(logits))
    batched = sample_tokens(logits, configs, uniforms)
    alone = [
        sample_tokens(logits[row : row + 1], [configs[row]], uniforms[row : row + 1])[0]
        for row in range(len(logits))
    ]
    assert batched.tolist() == alone
    assert len(set(batched.tolist())) > 5  # the draws really differ between rows


def test_stop_matcher_never_emits_the_stop_string_even_split_across_pieces():
    matcher, out = StopMatcher(("Amen",)), ""
    for piece in "so be it. Am", "e", "n. more":
        out += matcher.feed(piece)
        if matcher.stopped:
            break
    assert matcher.stopped and out == "so be it. "
    unmatched = StopMatcher(("Amen",))
    text = "".join(unmatched.feed(c) for c in "Am I here") + unmatched.flush()
    assert text == "Am I here" and not unmatched.stopped


def test_int8_model_passes_validation_and_records_quality(tiny_model_int8):
    manifest = load(tiny_model_int8).manifest
    assert manifest.export["quantization"].startswith("int8")
    for check in ("axes", "parity", "rollout", "greedy"):
        assert manifest.validation["int8"][check]["passed"], check
    quality = manifest.validation["quality"]
    assert abs(quality["bpc_change"]) < 0.05 and quality["heldout_chars"] > 0


def test_embedding_api_generate_streams_pieces(tiny_model):
    import rnnedge

    pieces = list(rnnedge.load(tiny_model).generate("the", max_new_tokens=10, seed=0))
    assert len(pieces) == 10 and all(isinstance(p, str) for p in pieces)
    assert json.loads(load(tiny_model).manifest.to_json())["task"] == "language-model"


def test_batched_streams_equal_each_stream_alone_with_joins_and_leaves(tiny_model):
    generator = load(tiny_model)
    settings = [  # (max_new_tokens, sampling, seed, stop): each stream its own
        (25, SamplingConfig(temperature=0.9), 1, ()),
        (8, SamplingConfig(temperature=0.0), 2, ()),
        (40, SamplingConfig(temperature=1.0, top_k=5), 3, ()),
        (30, SamplingConfig(temperature=0.7, top_p=0.8), 4, ("lord",)),
    ]
    batch, texts = StreamBatch(generator), {}
    for tokens, sampling, seed, stop in settings[:2]:
        batch.add("the", tokens, sampling, seed, stop)
    for _ in range(5):  # two streams run alone for a while, then two more join
        for stream_id, text in batch.step().items():
            texts[stream_id] = texts.get(stream_id, "") + text
    for tokens, sampling, seed, stop in settings[2:]:
        batch.add("and", tokens, sampling, seed, stop)
    for stream_id, text in batch.run():
        texts[stream_id] = texts.get(stream_id, "") + text
    alone = {
        i: "".join(generator.generate("the" if i < 2 else "and", *settings[i])) for i in range(4)
    }
    assert texts == alone and len(batch) == 0
    assert len(texts[0]) == 25 and len(texts[1]) == 8


def test_thread_default_follows_the_workload(monkeypatch):
    monkeypatch.delenv("RNNEDGE_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert workload_threads(None, batched=False) is None  # open_session's default: 1
    assert workload_threads(None, batched=True) == MAX_BATCH_THREADS
    assert workload_threads(3, batched=True) == 3  # --threads wins
    monkeypatch.setenv("RNNEDGE_THREADS", "1")
    assert workload_threads(None, batched=True) is None  # so does $RNNEDGE_THREADS
