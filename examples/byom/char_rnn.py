"""A user's own model, written the way the from-scratch char-RNN tutorial's PyTorch version
writes it — nothing here knows about rnnedge.

One-hot input built in forward (``F.one_hot(inputs.T, vocab_size)``), a sequence-first
``nn.RNN`` carrying its own ``(1, batch, hidden)`` state, and logits flattened to
``[(time * batch), vocab]``. ``rnnedge export --module examples/byom/char_rnn.py:build``
finds the one-hot input, the RNN and the head by itself and works out that calling
convention by trying it (README, "Bring your own model").
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class RNNModel(nn.Module):
    """One-hot characters → tanh RNN → linear scores for the next character."""

    def __init__(self, vocab_size: int, hidden: int = 128) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, hidden)  # sequence-first: [time, batch, features]
        self.linear = nn.Linear(hidden, vocab_size)

    def forward(
        self, inputs: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # inputs [batch, time] ids -> one-hot [time, batch, vocab]
        x = F.one_hot(inputs.T.long(), self.vocab_size).to(torch.float32)
        y, state = self.rnn(x, state)  # y [time, batch, hidden], state [1, batch, hidden]
        return self.linear(y.reshape(-1, y.shape[-1])), state  # [(time * batch), vocab]

    def begin_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros((1, batch_size, self.rnn.hidden_size))


def build(vocab_size: int) -> RNNModel:
    """The factory `rnnedge export --module` calls (it passes vocab_size: the --vocab size)."""
    return RNNModel(vocab_size)
