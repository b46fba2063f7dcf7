"""Sequence classifiers: embedding (tokens) or features → RNN/GRU/LSTM stack → pooling → linear.

- Unidirectional models run step by step: ``forward_steps`` gives a prediction after every
  step and carries the state, so classification can run as data arrives.
- Bidirectional models read padded batches with ``lengths``. The backward direction reads
  each sequence reversed *within its own length* (a gather, no packing), so it starts at
  the sequence's real end and a padded batch gives each input's answer alone. That
  exports as plain Gathers and one-direction RNN ops, exact at any batch and length.

Pooling over real steps: ``last`` (the state after the last real step), ``mean``, ``max``;
``per-step`` emits a class at every step (aligned tasks such as binary addition).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from rnnedge.nets.language_model import CELLS

POOLINGS = ("last", "mean", "max", "per-step")
State = tuple[torch.Tensor, ...]


@dataclass
class ClassifierConfig:
    """Architecture of a sequence classifier; stored in checkpoints and manifests."""

    num_classes: int
    input: str = "tokens"  # "tokens" (int64 ids) or "features" (float vectors per step)
    vocab_size: int = 0
    feature_dim: int = 0
    embed_dim: int = 64
    cell: str = "lstm"
    hidden: int = 128
    layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    pooling: str = "last"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def streams(self) -> bool:
        """Whether the model can run step by step (state in, state out)."""
        return not self.bidirectional and self.pooling in ("last", "per-step")


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, T, D] with each row's first lengths[b] steps reversed; padding stays in place."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # [1, T]
    last = (lengths - 1).unsqueeze(1)  # [B, 1]
    index = torch.where(steps <= last, last - steps, steps)  # [B, T]
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class SequenceClassifier(nn.Module):
    """Classifies whole sequences (pooling) or every step (``per-step``)."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        if config.input == "tokens":
            self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
            input_size = config.embed_dim
        else:
            input_size = config.feature_dim
        rnn = CELLS[config.cell]
        if config.bidirectional:
            # One single-layer RNN per layer and direction: the backward one is fed the
            # length-reversed sequence (see reverse_within_lengths).
            self.forward_layers = nn.ModuleList()
            self.backward_layers = nn.ModuleList()
            for layer in range(config.layers):
                size = input_size if layer == 0 else 2 * config.hidden
                self.forward_layers.append(rnn(size, config.hidden, batch_first=True))
                self.backward_layers.append(rnn(size, config.hidden, batch_first=True))
        else:
            self.rnn = rnn(
                input_size,
                config.hidden,
                num_layers=config.layers,
                batch_first=True,
                dropout=config.dropout if config.layers > 1 else 0.0,
            )
        self.dropout = nn.Dropout(config.dropout)
        directions = 2 if config.bidirectional else 1
        self.head = nn.Linear(directions * config.hidden, config.num_classes)

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        # tokens [B, T] -> [B, T, E]; features [B, T, D] pass through
        return self.embedding(inputs) if self.config.input == "tokens" else inputs

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        shape = (self.config.layers, batch, self.config.hidden)
        count = 2 if self.config.cell == "lstm" else 1
        return tuple(torch.zeros(shape, device=device) for _ in range(count))

    def forward_steps(
        self, inputs: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Unidirectional: logits after every step [B, T, C] and the state after the last."""
        if state is None:
            state = self.initial_state(inputs.shape[0], inputs.device)
        rnn_state = state if self.config.cell == "lstm" else state[0]
        outputs, new_state = self.rnn(self.embed(inputs), rnn_state)  # [B, T, H]
        new_state = tuple(new_state) if isinstance(new_state, tuple) else (new_state,)
        return self.head(self.dropout(outputs)), new_state

    def sequence_outputs(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Top-layer outputs at every step [B, T, H * directions] (padding steps undefined)."""
        x = self.embed(inputs)
        if not self.config.bidirectional:
            return self.rnn(x)[0]
        for layer, (fwd, bwd) in enumerate(
            zip(self.forward_layers, self.backward_layers, strict=True)
        ):
            if layer:
                x = self.dropout(x)
            ahead = fwd(x)[0]  # [B, T, H]
            behind = reverse_within_lengths(bwd(reverse_within_lengths(x, lengths))[0], lengths)
            x = torch.cat([ahead, behind], dim=-1)  # [B, T, 2H]
        return x

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] from the real steps of each sequence ([B, T, C] for per-step)."""
        outputs = self.sequence_outputs(inputs, lengths)  # [B, T, H']
        if self.config.pooling == "per-step":
            return self.head(self.dropout(outputs))
        steps = torch.arange(outputs.shape[1], device=outputs.device).unsqueeze(0)  # [1, T]
        real = (steps < lengths.unsqueeze(1)).unsqueeze(-1)  # [B, T, 1]
        if self.config.pooling == "mean":
            pooled = (outputs * real).sum(1) / lengths.unsqueeze(1).to(outputs.dtype)
        elif self.config.pooling == "max":
            pooled = outputs.masked_fill(~real, float("-inf")).max(1).values
        elif self.config.bidirectional:
            # "last" for both directions: forward's state at the real end, backward's at step 0
            # (where the length-reversed backward pass ends).
            hidden = self.config.hidden
            at_end = outputs[torch.arange(outputs.shape[0]), lengths - 1, :hidden]
            pooled = torch.cat([at_end, outputs[:, 0, hidden:]], dim=-1)
        else:
            pooled = outputs[torch.arange(outputs.shape[0]), lengths - 1]  # [B, H]
        return self.head(self.dropout(pooled))
