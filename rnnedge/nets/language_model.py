"""Token-level recurrent language model: embedding or one-hot → RNN/GRU/LSTM stack → linear.

State travels in torch's native layout ``[layers, batch, hidden]`` inside this module;
the export wrapper converts it to the contract's batch-first layout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rnnedge.contract import CELL_STATES

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

State = tuple[torch.Tensor, ...]


@dataclass
class LMConfig:
    """Architecture of a language model; stored in checkpoints and manifests."""

    vocab_size: int
    cell: str = "lstm"
    hidden: int = 256
    layers: int = 2
    embed_dim: int = 64  # 0 = one-hot input (as the d2l char-RNN tutorial), no learned embedding
    dropout: float = 0.0
    # DropConnect on the recurrent (hidden-to-hidden) weights while training (AWD-LSTM's
    # weight dropout); inference and export use the weights as they are.
    weight_dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class LanguageModel(nn.Module):
    """Predicts the next token at every position; state in and out for streaming."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        if config.embed_dim > 0:
            self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
            input_size = config.embed_dim
        else:
            # One-hot input as a frozen identity table: the same maths as one_hot @ W_ih,
            # and it exports as a plain Gather.
            self.register_buffer("one_hot", torch.eye(config.vocab_size), persistent=False)
            input_size = config.vocab_size
        self.rnn = CELLS[config.cell](
            input_size,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.output_dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        # tokens [B, T] -> [B, T, E]
        if self.config.embed_dim > 0:
            return self.embedding(tokens)
        return F.embedding(tokens, self.one_hot)

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        """Zero state: one ``[layers, batch, hidden]`` tensor per state kind (h, or h and c)."""
        shape = (self.config.layers, batch, self.config.hidden)
        count = 2 if self.config.cell == "lstm" else 1
        return tuple(torch.zeros(shape, device=device) for _ in range(count))

    def forward(
        self, tokens: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        # tokens [B, T] -> logits [B, T, V]; state: (h [L, B, H],) or (h, c)
        if state is None:
            state = self.initial_state(tokens.shape[0], tokens.device)
        rnn_state = state if self.config.cell == "lstm" else state[0]
        outputs, new_state = self.run_rnn(self.embed(tokens), rnn_state)  # [B, T, H]
        logits = self.head(self.output_dropout(outputs))
        new_state = tuple(new_state) if isinstance(new_state, tuple) else (new_state,)
        return logits, new_state

    def run_rnn(self, inputs: torch.Tensor, rnn_state: Any) -> tuple[torch.Tensor, Any]:
        """The recurrent layers; in training with weight dropout, on a dropped copy of the
        hidden-to-hidden weights (one mask per batch, shared by every time step)."""
        if not (self.training and self.config.weight_dropout > 0):
            return self.rnn(inputs, rnn_state)
        dropped = {
            name: F.dropout(weight, self.config.weight_dropout)
            for name, weight in self.rnn.named_parameters()
            if name.startswith("weight_hh")
        }
        return torch.func.functional_call(self.rnn, dropped, (inputs, rnn_state))

    # The step graph calls forward_steps on every streaming model; for an LM it is forward.
    forward_steps = forward

    def state_keys(self) -> tuple[str, ...]:
        """The step graph's state keys, in initial_state's order."""
        return CELL_STATES[self.config.cell]
