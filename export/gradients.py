"""What the BPTT tutorial derives, checked numerically: gradients of a recurrent network by
finite differences against autograd, and how the gradient reaching early steps fades.

- ``gradient_check``: a tiny rnnedge language model (vanilla RNN, GRU or LSTM) in float64;
  every parameter's derivative of the sequence loss by central differences,
  (L(w + eps) - L(w - eps)) / 2 eps, against the one backpropagation through time gives.
- ``gradient_through_time``: a long-range task (the label is the first input bit, read at
  the last of T steps, the other steps are noise); the norm of dLoss/dh_t for each step t
  shows how much of the loss's gradient reaches step t, for a vanilla RNN and an LSTM, at
  initialisation and after a short training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from rnnedge.nets.language_model import LanguageModel, LMConfig


def sequence_loss(
    model: LanguageModel, inputs: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    state = tuple(s.double() for s in model.initial_state(inputs.shape[0]))  # float64 zeros
    logits, _ = model(inputs, state)  # [B, T, V]
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def gradient_check(cell: str, seed: int = 0, eps: float = 1e-6) -> dict[str, float]:
    """Autograd against central differences over every weight: the relative difference of
    the two gradient vectors, ||a - n|| / (||a|| + ||n||), and the largest absolute one."""
    torch.manual_seed(seed)
    config = LMConfig(vocab_size=5, cell=cell, hidden=4, layers=2, embed_dim=3, dropout=0.0)
    model = LanguageModel(config).double().eval()
    ids = torch.randint(0, 5, (2, 7), generator=torch.Generator().manual_seed(seed))
    inputs, targets = ids[:, :-1], ids[:, 1:]  # [2, 6] each
    model.zero_grad()
    sequence_loss(model, inputs, targets).backward()
    analytic = torch.cat([p.grad.view(-1) for p in model.parameters()])  # [P]
    numeric = torch.zeros_like(analytic)
    with torch.no_grad():
        index = 0
        for param in model.parameters():
            flat = param.view(-1)
            for i in range(flat.numel()):
                saved = flat[i].item()
                flat[i] = saved + eps
                up = sequence_loss(model, inputs, targets).item()
                flat[i] = saved - eps
                down = sequence_loss(model, inputs, targets).item()
                flat[i] = saved
                numeric[index] = (up - down) / (2 * eps)
                index += 1
    difference = (analytic - numeric).norm() / (analytic.norm() + numeric.norm())
    return {
        "relative_difference": difference.item(),
        "max_abs_difference": (analytic - numeric).abs().max().item(),
        "parameters": analytic.numel(),
    }


@dataclass
class LongRange:
    """The label is the first bit; T - 1 noise bits follow; the answer is read at step T."""

    steps: int = 50
    batch: int = 64

    def batch_of(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        bits = torch.randint(0, 2, (self.batch, self.steps), generator=generator)  # [B, T]
        return bits.float().unsqueeze(-1), bits[:, 0]  # [B, T, 1], [B]


class Unrolled(nn.Module):
    """A one-layer RNN or LSTM cell unrolled by hand, so each step's hidden state can be
    asked for its gradient."""

    def __init__(self, cell: str, hidden: int) -> None:
        super().__init__()
        self.cell_kind = cell
        self.cell = nn.LSTMCell(1, hidden) if cell == "lstm" else nn.RNNCell(1, hidden)
        if cell == "lstm":
            # Forget-gate bias 1 (gates are ordered i, f, g, o): the cell starts by keeping
            # its memory, the usual LSTM initialisation (Gers et al.; Jozefowicz et al.).
            with torch.no_grad():
                self.cell.bias_hh[hidden : 2 * hidden].fill_(1.0)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x [B, T, 1] → (logits [B, 2] after the last step, hidden states [B, H] per step)."""
        batch = x.shape[0]
        h = x.new_zeros(batch, self.cell.hidden_size)
        c = x.new_zeros(batch, self.cell.hidden_size)
        states = []
        for t in range(x.shape[1]):
            if self.cell_kind == "lstm":
                h, c = self.cell(x[:, t], (h, c))
            else:
                h = self.cell(x[:, t], h)
            if h.requires_grad:
                h.retain_grad()
            states.append(h)
        return self.head(h), states


def gradient_norms(model: Unrolled, task: LongRange, generator: torch.Generator) -> list[float]:
    """||dLoss/dh_t|| (mean over the batch) for each step t."""
    x, y = task.batch_of(generator)
    logits, states = model(x)
    model.zero_grad()
    F.cross_entropy(logits, y).backward()
    return [s.grad.norm(dim=-1).mean().item() for s in states]


def train_long_range(model: Unrolled, task: LongRange, steps: int, seed: int) -> float:
    """Adam for `steps` batches; accuracy on 1,024 fresh sequences afterwards."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        x, y = task.batch_of(generator)
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    test = LongRange(task.steps, 1024)
    with torch.no_grad():
        x, y = test.batch_of(torch.Generator().manual_seed(seed + 1))
        return (model(x)[0].argmax(-1) == y).float().mean().item()


def gradient_through_time(
    steps: int = 50, hidden: int = 32, train_steps: int = 300, seed: int = 0
) -> dict[str, dict]:
    """Per cell: gradient norms per step at initialisation and after training, and the
    trained model's accuracy on the long-range task."""
    task, out = LongRange(steps), {}
    for cell in ("rnn", "lstm"):
        torch.manual_seed(seed)
        model = Unrolled(cell, hidden)
        at_init = gradient_norms(model, task, torch.Generator().manual_seed(seed))
        accuracy = train_long_range(model, task, train_steps, seed)
        trained = gradient_norms(model, task, torch.Generator().manual_seed(seed))
        out[cell] = {"init": at_init, "trained": trained, "accuracy": accuracy}
    return out
