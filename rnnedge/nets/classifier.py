"""Sequence classifiers: embedding (tokens) or features → RNN/GRU/LSTM stack → pooling → linear.

- Unidirectional models run step by step: ``forward_steps`` gives a prediction after every
  step and carries the state, so classification can run as data arrives. Mean and max
  pooling stream too: the running sum of outputs and the step count, or the running max,
  travel with the RNN state.
- Bidirectional models read padded batches with ``lengths``. The backward direction reads
  each sequence reversed *within its own length* (a gather, no packing), so it starts at
  the sequence's real end and a padded batch gives each input's answer alone. That
  exports as plain Gathers and one-direction RNN ops, exact at any batch and length.

Pooling over real steps: ``last`` (the state after the last real step), ``mean``, ``max``;
``per-step`` emits a class at every step (aligned tasks such as binary addition).

Hashed n-gram inputs (``ngram_max`` >= 2, token models): each step's input is its token's
embedding plus, for every order n in 2..ngram_max, a row of that order's table picked by a
hash of the last n token ids. A table row is memory the recurrent cell would otherwise have
to learn (the words, suffixes and letter pairs that tell close languages apart), at the
cost of a lookup per step: the cell's own size, hence its speed, is unchanged. The hash is
computed inside the graph, so runtimes feed token ids as before; the last ngram_max - 1 ids
travel as one more state (``recent_tokens``, ids as float32, 0 = before the start).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch
from torch import nn

from rnnedge.contract import CELL_STATES, RECENT_TOKENS
from rnnedge.nets.language_model import CELLS

POOLINGS = ("last", "mean", "max", "per-step")
# Poolings a step graph can carry; mean and max carry their running value as extra states.
STREAMING_POOLINGS = ("last", "per-step", "mean", "max")
POOL_SUM, POOL_COUNT, POOL_MAX = "pool_sum", "pool_count", "pool_max"
# Horner base of the n-gram hash (a prime above any vocabulary here); reducing modulo the
# bucket count after every token keeps each product below 2^63 for any table size used.
NGRAM_HASH_BASE = 1_000_003
# recent_tokens holds ids as float32, exact up to 2^24.
MAX_NGRAM_VOCAB = 2**24
# Max pooling streams as the running max of (output + MAX_SHIFT). Every cell's outputs lie in
# [-1, 1] (tanh-bounded: LSTM, GRU and the tanh RNN), so the shifted outputs are >= 0 and the
# all-zero initial state every client already uses is exactly "nothing read yet": no special
# initial value, which Triton's implicit state could not hold anyway.
MAX_SHIFT = 1.0
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
    ngram_max: int = 0  # 0: none; N >= 2: hashed n-grams of orders 2..N (token inputs)
    ngram_buckets: int = 0  # rows of each order's table
    ngram_dim: int = 0  # width of the tables' rows; 0 = embed_dim (else projected to it)
    embed_dropout: float = 0.0  # dropout on each step's input vector (token models)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def streams(self) -> bool:
        """Whether the model can run step by step (state in, state out)."""
        return not self.bidirectional and self.pooling in STREAMING_POOLINGS

    def state_layout(self) -> list[tuple[str, int, int]]:
        """The step graph's states in order: (key, rows, width) of each [batch, rows, width].

        The RNN's own states (h, then c for LSTM) are [batch, layers, hidden]; mean pooling
        adds the running sum of top-layer outputs [batch, 1, hidden] and the count of steps
        read so far [batch, 1, 1]; max pooling the running max of the shifted top-layer
        outputs [batch, 1, hidden] (see MAX_SHIFT); n-gram inputs the last ngram_max - 1
        token ids, oldest first [batch, 1, ngram_max - 1].
        """
        layout = [(key, self.layers, self.hidden) for key in CELL_STATES[self.cell]]
        if self.pooling == "mean":
            layout += [(POOL_SUM, 1, self.hidden), (POOL_COUNT, 1, 1)]
        if self.pooling == "max":
            layout += [(POOL_MAX, 1, self.hidden)]
        if self.ngram_max:
            layout += [(RECENT_TOKENS, 1, self.ngram_max - 1)]
        return layout


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, T, D] with each row's first lengths[b] steps reversed; padding stays in place."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # [1, T]
    last = (lengths - 1).unsqueeze(1)  # [B, 1]
    index = torch.where(steps <= last, last - steps, steps)  # [B, T]
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def running_mean(
    outputs: torch.Tensor, total: torch.Tensor, count: torch.Tensor
) -> tuple[torch.Tensor, State]:
    """Mean of all outputs so far at every step, continuing from a carried sum and count.

    outputs [B, T, H]; total [1, B, H] and count [1, B, 1] (torch's state layout) →
    means [B, T, H] and the new (total, count).
    """
    sums = total.transpose(0, 1) + outputs.cumsum(dim=1)  # [B, T, H]
    steps = torch.arange(1, outputs.shape[1] + 1, device=outputs.device, dtype=outputs.dtype)
    counts = count.transpose(0, 1) + steps.view(1, -1, 1)  # [B, T, 1]
    return sums / counts, (sums[:, -1:].transpose(0, 1), counts[:, -1:].transpose(0, 1))


def cumulative_max(shifted: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Running max over time: shifted [B, T, H] from start [B, H] → [B, T, H].

    A scripted loop because opset 17 has no CumMax and torch.cummax does not export: the
    ONNX exporter writes this loop as a Loop over the call's steps, exact for any length.
    """
    maxima: list[torch.Tensor] = []
    current = start
    for step in range(shifted.shape[1]):
        current = torch.maximum(current, shifted[:, step])
        maxima.append(current)
    return torch.stack(maxima, dim=1)


with warnings.catch_warnings():
    # torch.jit.script is deprecated, but the legacy ONNX exporter (see exporter/graph.py)
    # turns only a scripted loop into an ONNX Loop; tracing would fix the call's length.
    warnings.simplefilter("ignore", DeprecationWarning)
    cumulative_max = torch.jit.script(cumulative_max)


def running_max(outputs: torch.Tensor, carried: torch.Tensor) -> tuple[torch.Tensor, State]:
    """Max of all outputs so far at every step, continuing from the carried shifted max.

    outputs [B, T, H]; carried [1, B, H] (torch's state layout, 0 = nothing read) → maxima
    [B, T, H] and the new carried state.
    """
    shifted = cumulative_max(outputs + MAX_SHIFT, carried[0])  # [B, T, H], all >= 0
    return shifted - MAX_SHIFT, (shifted[:, -1:].transpose(0, 1),)


def ngram_hashes(history: torch.Tensor, max_order: int, steps: int, buckets: int) -> list:
    """Buckets of the n-grams of every order 2..max_order ending at each of the last `steps`
    positions: one [B, steps] tensor per order.

    history [B, P + steps] token ids, the P >= max_order - 1 ids before the call first (0 =
    before the start). An n-gram's bucket is Horner's rule over its ids, oldest first,
    modulo `buckets` after every id; so the n-gram ending at t extends the (n-1)-gram ending
    at t - 1 by one id, and each order costs one multiply-add over the previous order's
    hashes shifted by one step (one per order, not one per id).
    """
    hashed = history % buckets  # order 1 at every position [B, P + steps]
    by_order = []
    for _ in range(2, max_order + 1):
        hashed = (hashed[:, :-1] * NGRAM_HASH_BASE + history[:, -hashed.shape[1] + 1 :]) % buckets
        by_order.append(hashed[:, hashed.shape[1] - steps :])  # [B, steps]
    return by_order


class SequenceClassifier(nn.Module):
    """Classifies whole sequences (pooling) or every step (``per-step``)."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        if config.input == "tokens":
            self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
            width = config.ngram_dim or config.embed_dim
            self.ngram_tables = nn.ModuleList(
                nn.Embedding(config.ngram_buckets, width) for _ in range(2, config.ngram_max + 1)
            )
            # Narrow rows hold more buckets in the same bytes; one matrix widens their sum.
            self.ngram_projection = (
                nn.Linear(width, config.embed_dim, bias=False)
                if width != config.embed_dim
                else None
            )
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
        self.embed_dropout = nn.Dropout(config.embed_dropout)
        directions = 2 if config.bidirectional else 1
        self.head = nn.Linear(directions * config.hidden, config.num_classes)

    def embed(self, inputs: torch.Tensor, recent: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [B, T] → [B, T, E] (plus the n-gram rows); features [B, T, D] pass through.

        recent [B, ngram_max - 1]: the ids read before these (None: nothing read yet).
        """
        if self.config.input != "tokens":
            return inputs
        if not self.config.ngram_max:
            return self.embed_dropout(self.embedding(inputs))
        return self.embed_history(self.token_history(inputs, recent), inputs.shape[1])

    def embed_history(self, history: torch.Tensor, steps: int) -> torch.Tensor:
        """The last `steps` ids of history [B, ngram_max - 1 + steps] → inputs [B, steps, E]:
        their embeddings plus their n-gram rows."""
        inputs = history[:, history.shape[1] - steps :]  # [B, steps]
        embedded = self.embedding(inputs)  # [B, steps, E]
        buckets = ngram_hashes(history, self.config.ngram_max, steps, self.config.ngram_buckets)
        rows = sum(
            table(ids) for table, ids in zip(self.ngram_tables, buckets, strict=True)
        )  # [B, steps, ngram_dim]
        if self.ngram_projection is not None:
            rows = self.ngram_projection(rows)
        return self.embed_dropout(embedded + rows)

    def token_history(self, inputs: torch.Tensor, recent: torch.Tensor | None) -> torch.Tensor:
        """The ids before this call (zeros at the start) followed by inputs [B, T]."""
        if recent is None:
            recent = inputs.new_zeros((inputs.shape[0], self.config.ngram_max - 1))
        return torch.cat([recent.to(inputs.dtype), inputs], dim=1)

    def state_keys(self) -> tuple[str, ...]:
        """The step graph's state keys, in initial_state's order."""
        return tuple(key for key, _, _ in self.config.state_layout())

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        """Zero states in torch's layout: [rows, B, width] for each of state_layout()."""
        return tuple(
            torch.zeros((rows, batch, width), device=device)
            for _, rows, width in self.config.state_layout()
        )

    def forward_steps(
        self, inputs: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Unidirectional: logits after every step [B, T, C] and the state after the last."""
        if state is None:
            state = self.initial_state(inputs.shape[0], inputs.device)
        cells = len(CELL_STATES[self.config.cell])
        rnn_state = state[:cells] if self.config.cell == "lstm" else state[0]
        if self.config.ngram_max:
            # One history serves the n-gram rows and the ids carried to the next call.
            history = self.token_history(inputs, state[-1][0])  # [B, ngram_max - 1 + T]
            embedded = self.embed_history(history, inputs.shape[1])
        else:
            embedded = self.embed(inputs)
        outputs, new_state = self.rnn(embedded, rnn_state)  # [B, T, H]
        new_state = tuple(new_state) if isinstance(new_state, tuple) else (new_state,)
        if self.config.pooling in ("mean", "max"):
            running = running_mean if self.config.pooling == "mean" else running_max
            pooling_states = state[cells:-1] if self.config.ngram_max else state[cells:]
            outputs, pooled_state = running(outputs, *pooling_states)
            new_state = (*new_state, *pooled_state)
        if self.config.ngram_max:
            last_ids = history[:, history.shape[1] - (self.config.ngram_max - 1) :]
            new_state = (*new_state, last_ids.to(state[-1].dtype).unsqueeze(0))
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
