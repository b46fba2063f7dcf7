"""Streaming text generation and held-out evaluation with a stateful step graph.

The prompt is fed in one call (prefill, ``time = len(prompt)``); each new token is then
one call with ``time = 1``, the state carried from ``state_out.*`` to ``state_in.*``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rnnedge.errors import InputError
from rnnedge.runtime.adapt import OutputAdapter, hidden_features
from rnnedge.runtime.graph import State, StatefulGraph
from rnnedge.runtime.prng import PortableRng
from rnnedge.runtime.sampling import SamplingConfig, sample_token
from rnnedge.runtime.session import LoadedSession
from rnnedge.runtime.stream import ModelStream
from rnnedge.tokenizer import CharTokenizer


@dataclass
class StopMatcher:
    """Holds back text that might begin a stop string, so a stop string is never emitted."""

    stops: tuple[str, ...]
    pending: str = ""
    stopped: bool = False

    def feed(self, piece: str) -> str:
        """Text that is safe to emit after adding `piece`; sets `stopped` on a match."""
        self.pending += piece
        hits = [self.pending.find(s) for s in self.stops if s and s in self.pending]
        if hits:
            self.stopped = True
            out, self.pending = self.pending[: min(hits)], ""
            return out
        hold = max((self._overlap(s) for s in self.stops if s), default=0)
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out

    def _overlap(self, stop: str) -> int:
        """Length of the longest suffix of `pending` that is a proper prefix of `stop`."""
        for size in range(min(len(stop) - 1, len(self.pending)), 0, -1):
            if self.pending.endswith(stop[:size]):
                return size
        return 0

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


@dataclass
class Generation:
    """One generation's own settings and progress: sampling, RNG, stop strings, budget."""

    sampling: SamplingConfig
    rng: PortableRng
    matcher: StopMatcher
    remaining: int
    vocab: list[str]
    last_logits: np.ndarray  # [V], the prediction for the next token
    done: bool = False

    def __post_init__(self) -> None:
        self.done = self.remaining <= 0

    def advance(self) -> tuple[int, str]:
        """Sample the next token; return it and the text now safe to emit (may be empty)."""
        token = sample_token(self.last_logits, self.sampling, self.rng)
        return token, self.accept(token)

    def uniform(self) -> float:
        """This stream's next uniform draw (greedy streams draw none, as `sample_token`)."""
        return self.rng.random() if self.sampling.temperature > 0 else 0.0

    def accept(self, token: int) -> str:
        """Record the sampled `token`; return the text now safe to emit (may be empty)."""
        self.remaining -= 1
        text = self.matcher.feed(self.vocab[token])
        if self.matcher.stopped:
            self.done = True
        elif self.remaining <= 0:
            self.done = True
            text += self.matcher.flush()
        return text


class Generator(StatefulGraph):
    """A loaded language model: prefill, step, sample, stream, evaluate."""

    task = "language-model"

    def __init__(self, loaded: LoadedSession) -> None:
        super().__init__(loaded)
        self.tokenizer = CharTokenizer.from_dict(loaded.manifest.tokenizer)

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def encode_prompt(self, prompt: str, unknown: str | None = None) -> np.ndarray:
        tokenizer = self.tokenizer.with_policy(unknown) if unknown else self.tokenizer
        ids = tokenizer.encode(prompt)
        if ids.size == 0:
            # An empty prompt starts a fresh line when the vocabulary has one (verse/line
            # corpora), which is what the model saw at the start of most training windows.
            if "\n" not in self.tokenizer.vocab:
                raise InputError(
                    "the prompt is empty (after dropping unknown characters); "
                    "give --prompt some text"
                )
            ids = self.tokenizer.encode("\n")
        return ids

    def sampling_config(
        self,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
    ) -> SamplingConfig:
        """The model's sampling defaults (its manifest), each overridden where given."""
        given = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        defaults = {k: v for k, v in self.manifest.sampling.items() if k in given}
        config = SamplingConfig(**{**defaults, **{k: v for k, v in given.items() if v is not None}})
        config.check()
        return config

    def open_stream(self) -> TextStream:
        """A new stream over this model: push text or tokens, sample, save, restore."""
        return TextStream(self)

    def start_generation(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        sampling: SamplingConfig | None = None,
        seed: int | None = None,
        stop: tuple[str, ...] = (),
        unknown: str | None = None,
    ) -> tuple[Generation, TextStream]:
        """Prefill `prompt` in one call; the generation holds its sampling, RNG and stops."""
        sampling = sampling or self.sampling_config()
        sampling.check()
        if max_new_tokens < 0:
            raise InputError(f"--max-new-tokens must be >= 0, got {max_new_tokens}")
        live = self.open_stream()
        live.push_encoded(self.encode_prompt(prompt, unknown))  # prefill: one call
        generation = Generation(
            sampling,
            PortableRng(seed),
            StopMatcher(tuple(stop)),
            max_new_tokens,
            self.tokenizer.vocab,
            live.logits,
        )
        return generation, live

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        sampling: SamplingConfig | None = None,
        seed: int | None = None,
        stop: tuple[str, ...] = (),
        unknown: str | None = None,
    ) -> Iterator[str]:
        """Generated text piece by piece (the prompt itself is not repeated).

        Checks and the prefill run now, so bad input fails before any text is emitted.
        """
        generation, live = self.start_generation(
            prompt, max_new_tokens, sampling, seed, stop, unknown
        )
        return self._pieces(generation, live)

    def _pieces(self, generation: Generation, live: TextStream) -> Iterator[str]:
        while not generation.done:
            token, text = generation.advance()
            if text:
                yield text
            if generation.done:
                return
            generation.last_logits = live.push_token(token)  # [V]

    def evaluate(
        self,
        text: str,
        streams: int = 32,
        chunk: int = 256,
        context: str = "",
        warmup: int = 0,
        adapt: float = 0.0,
    ) -> dict[str, float]:
        """Loss, perplexity and bits/char of `text`: `streams` slices read in chunks, state carried.

        With ``warmup`` 0 each slice starts from a zero state, exactly as training's held-out
        evaluation reads text, so the numbers compare. With ``warmup`` N > 0 each slice is
        preceded by up to N characters that come before it (`context`, the text before
        `text`, for the first slice), read unscored: every scored character is predicted
        with what precedes it, as a compressor given the earlier text predicts it.
        With ``adapt`` > 0 the output layer learns from each slice as it is scored, at that
        SGD rate (runtime/adapt.py); the slices are then read one character per call.
        """
        known = self.tokenizer.with_policy("skip")
        before, ids = known.encode(context), known.encode(text)
        if before.size == 0:  # nothing precedes the first character: it is context only
            before, ids = ids[:1], ids[1:]
        if ids.size < 2:
            raise InputError(
                "evaluation text has too few known characters to score; give more text"
            )
        layout = SliceLayout.of(before.size, ids.size, streams, warmup)
        inputs, targets = layout.arrays(np.concatenate([before, ids]))  # [S, W+L], [S, L]
        state = self.initial_state(layout.streams)
        for start in range(0, layout.warmup, chunk):  # read, not scored
            _, state = self.run(inputs[:, start : min(start + chunk, layout.warmup)], state)
        scored = inputs[:, layout.warmup :]  # [S, L]
        if adapt:
            total = self._score_adapting(scored, targets, state, adapt)
        else:
            total = self._score(scored, targets, state, chunk)
        nats = total / targets.size
        return {
            "loss": nats,
            "perplexity": math.exp(nats),
            "bpc": nats / math.log(2),
            "chars": int(targets.size),
            "skipped_chars": int(len(text) - known.encode(text).size),
            "unscored_chars": int(ids.size - targets.size),
            "warmup_chars": layout.warmup,
            **({"adapt": adapt, "streams": layout.streams} if adapt else {}),
        }

    def _score(self, inputs: np.ndarray, targets: np.ndarray, state: State, chunk: int) -> float:
        """Nats of `targets` [S, L], reading `inputs` [S, L] `chunk` steps per call."""
        total = 0.0
        for start in range(0, inputs.shape[1], chunk):
            logits, state = self.run(inputs[:, start : start + chunk], state)  # [S, t, V]
            total += cross_entropy_sum(logits, targets[:, start : start + chunk])
        return total

    def _score_adapting(
        self, inputs: np.ndarray, targets: np.ndarray, state: State, rate: float
    ) -> float:
        """Nats of `targets` [S, L], one step per call, the output layer adapting (adapt.py)."""
        hidden = hidden_features(state).shape[-1]
        adapter = OutputAdapter.zeros(rate, inputs.shape[0], self.classes, hidden)
        total = 0.0
        for step in range(inputs.shape[1]):
            logits, state = self.run(inputs[:, step : step + 1], state)  # [S, 1, V]
            total += adapter.score(logits[:, 0], hidden_features(state), targets[:, step])
        return total


@dataclass(frozen=True)
class SliceLayout:
    """Where `evaluate` reads: `streams` slices of `length` scored characters each, every
    slice preceded by `warmup` unscored characters. Positions index the ids of context +
    text; the scored ones begin at `first` (the first character of the text)."""

    first: int
    streams: int
    length: int
    warmup: int

    @classmethod
    def of(cls, first: int, scored: int, streams: int, warmup: int) -> SliceLayout:
        """The layout for `scored` characters after `first` of context (`first` >= 1)."""
        streams = max(1, min(streams, scored // 2))
        # Every slice gets the same warm-up, so the batch stays rectangular; the first slice
        # can look back no further than the context's first character.
        return cls(first, streams, scored // streams, min(max(warmup, 0), first - 1))

    def arrays(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inputs [S, W+L], targets [S, L]): input t of a slice predicts its target t - W."""
        offsets = self.length * np.arange(self.streams)[:, None]  # [S, 1]
        inputs = ids[self.first - 1 - self.warmup + offsets + np.arange(self.warmup + self.length)]
        targets = ids[self.first + offsets + np.arange(self.length)]
        return inputs, targets


class TextStream(ModelStream):
    """A language model's stream: push text or tokens as they arrive, sample the next token."""

    def __init__(self, generator: Generator) -> None:
        super().__init__(generator)
        self.generator = generator

    def push_text(self, text: str, unknown: str | None = None) -> np.ndarray:
        """Feed `text` (tokenized by the model's policy, or `unknown`); logits [T, V]."""
        tokenizer = self.generator.tokenizer
        ids = (tokenizer.with_policy(unknown) if unknown else tokenizer).encode(text)
        return self.push_encoded(ids)

    def push_token(self, token: int) -> np.ndarray:
        """Feed one token id; the logits [V] for the token after it."""
        return self.push_encoded(np.array([token], dtype=np.int64))[-1]

    def sample(self, sampling: SamplingConfig, rng: PortableRng) -> int:
        """Draw the next token from the current logits and push it; returns its id."""
        if self.logits is None:
            raise InputError("nothing pushed yet: push a prompt before sampling")
        token = sample_token(self.logits, sampling, rng)
        self.push_token(token)
        return token


def cross_entropy_sum(logits: np.ndarray, targets: np.ndarray) -> float:
    """Sum over all positions of -log softmax(logits)[target]; logits [..., V], targets [...]."""
    logits = logits.astype(np.float64)
    peak = logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(logits - peak).sum(axis=-1)) + peak[..., 0]
    picked = np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return float((log_norm - picked).sum())
