"""Language-model data: the held-out split and the two batch schemes of the d2l char-RNN tutorial
(random windows, consecutive streams).

- ``random``: each batch is B windows at random offsets; state starts at zero each batch.
- ``sequential``: the training text is cut into B contiguous streams read in order, and the
  state is carried from batch to batch (truncated BPTT: gradients stop at batch edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnedge.errors import InputError
from rnnedge.textio import tail_start


@dataclass
class Split:
    """Token ids of the training part and the held-out (never trained on) tail."""

    train: torch.Tensor  # [N_train] int64
    valid: torch.Tensor  # [N_valid] int64


def split_tail(ids: np.ndarray, valid_fraction: float) -> Split:
    """Hold out the last `valid_fraction` of the ids, so validation is text never seen."""
    if not 0.0 < valid_fraction < 1.0:
        raise InputError(f"--valid-fraction must be between 0 and 1, got {valid_fraction}")
    cut = tail_start(len(ids), valid_fraction)
    tensor = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))
    return Split(train=tensor[:cut], valid=tensor[cut:])


def require_length(ids: torch.Tensor, needed: int, what: str, fix: str) -> None:
    if len(ids) < needed:
        raise InputError(
            f"{what} has {len(ids)} characters but at least {needed} are needed; {fix}"
        )


class RandomWindows:
    """Batches of B windows of T+1 tokens at uniformly random offsets."""

    carries_state = False

    def __init__(self, ids: torch.Tensor, batch: int, seq_len: int, generator: torch.Generator):
        require_length(ids, seq_len + 1, "training text", "lower --seq-len or give more text")
        self.ids, self.batch, self.seq_len, self.generator = ids, batch, seq_len, generator
        self._offsets = torch.arange(seq_len + 1)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(inputs [B, T], targets [B, T], reset_state)."""
        high = len(self.ids) - self.seq_len  # last valid start + 1
        starts = torch.randint(0, high, (self.batch,), generator=self.generator)
        windows = self.ids[starts[:, None] + self._offsets]  # [B, T+1]
        return windows[:, :-1], windows[:, 1:], True

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class SequentialStreams:
    """B contiguous streams read T tokens at a time; the state is carried between batches."""

    carries_state = True

    def __init__(self, ids: torch.Tensor, batch: int, seq_len: int):
        stream_len = (len(ids) - 1) // batch
        require_length(
            ids,
            batch * (seq_len + 1) + 1,
            "training text",
            "lower --batch-size or --seq-len, or give more text",
        )
        self.seq_len = seq_len
        # streams[b] is the b-th contiguous slice; targets are the same slice shifted by one.
        self.inputs = ids[: batch * stream_len].view(batch, stream_len)  # [B, L]
        self.targets = ids[1 : batch * stream_len + 1].view(batch, stream_len)  # [B, L]
        self.position = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(inputs [B, T], targets [B, T], reset_state): reset only when the streams wrap."""
        reset = False
        if self.position + self.seq_len > self.inputs.shape[1]:
            self.position, reset = 0, True
        reset = reset or self.position == 0
        window = slice(self.position, self.position + self.seq_len)
        self.position += self.seq_len
        return self.inputs[:, window], self.targets[:, window], reset

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])


def make_batcher(
    scheme: str, ids: torch.Tensor, batch: int, seq_len: int, generator: torch.Generator
) -> RandomWindows | SequentialStreams:
    if scheme == "random":
        return RandomWindows(ids, batch, seq_len, generator)
    if scheme == "sequential":
        return SequentialStreams(ids, batch, seq_len)
    raise InputError(f"--batching must be 'random' or 'sequential', got {scheme!r}")
