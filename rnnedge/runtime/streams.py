"""Many independent generations stepped together in one batched call per token.

Each stream keeps its own state rows, sampling settings, seed and stop strings; streams
join (prefilled alone, then their state rows appended) and leave (rows dropped) at any
step. A stream's text is the same as generating it alone with the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rnnedge.errors import InputError
from rnnedge.runtime.generate import Generation, Generator
from rnnedge.runtime.graph import State
from rnnedge.runtime.sampling import SamplingConfig, sample_tokens


class StreamBatch:
    """A dynamic batch of streams over one model."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.ids: list[int] = []
        self.streams: list[Generation] = []
        self.state: State = generator.initial_state(0)  # [0, L, H] per state
        self.logits = np.zeros((0, generator.vocab_size), dtype=np.float32)  # [B, V] next
        self._next_id = 0

    def __len__(self) -> int:
        return len(self.streams)

    def add(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        sampling: SamplingConfig | None = None,
        seed: int | None = None,
        stop: tuple[str, ...] = (),
        unknown: str | None = None,
    ) -> int:
        """Prefill a new stream and add it to the batch; returns its id."""
        stream, live = self.generator.start_generation(
            prompt, max_new_tokens, sampling, seed, stop, unknown
        )
        state = live.state  # [1, L, H] per state
        stream_id, self._next_id = self._next_id, self._next_id + 1
        if not stream.done:
            self.ids.append(stream_id)
            self.streams.append(stream)
            self.state = {k: np.concatenate([self.state[k], state[k]]) for k in self.state}
            self.logits = np.concatenate([self.logits, stream.last_logits[None]])
        return stream_id

    def step(self) -> dict[int, str]:
        """Advance every stream by one token: {stream id: text emitted} (finished ones leave)."""
        if not self.streams:
            return {}
        tokens = sample_tokens(
            self.logits,
            [stream.sampling for stream in self.streams],
            np.array([stream.uniform() for stream in self.streams]),
        )[:, None]  # [B, 1]
        emitted, keep = {}, []
        for row, (stream_id, stream) in enumerate(zip(self.ids, self.streams, strict=True)):
            text = stream.accept(int(tokens[row, 0]))
            if text:
                emitted[stream_id] = text
            if not stream.done:
                keep.append(row)
        if len(keep) < len(self.streams):
            tokens = tokens[keep]
            self.state = {k: v[keep] for k, v in self.state.items()}
            self.ids = [self.ids[r] for r in keep]
            self.streams = [self.streams[r] for r in keep]
        if self.streams:
            logits, self.state = self.generator.run(tokens, self.state)  # [B, 1, V]
            self.logits = logits[:, -1]
        else:  # all left: a stream added later must not meet the leavers' rows
            self.logits = self.logits[:0]  # [0, V]
        return emitted

    def run(self) -> Iterator[tuple[int, str]]:
        """Step until every stream is done, yielding (stream id, text) as text is made."""
        while self.streams:
            yield from self.step().items()


def generate_many(
    generator: Generator,
    prompt: str,
    count: int,
    max_new_tokens: int = 200,
    sampling: SamplingConfig | None = None,
    seed: int | None = None,
    stop: tuple[str, ...] = (),
    unknown: str | None = None,
) -> list[str]:
    """`count` generations from one prompt stepped together (seeds seed, seed+1, …): their
    texts, each the same as generating it alone with its seed."""
    if count < 1:
        raise InputError(f"--num-streams must be at least 1, got {count}")
    batch = StreamBatch(generator)
    for index in range(count):
        batch.add(
            prompt, max_new_tokens, sampling, None if seed is None else seed + index, stop, unknown
        )
    texts = [""] * count
    for index, text in batch.run():
        texts[index] += text
    return texts
