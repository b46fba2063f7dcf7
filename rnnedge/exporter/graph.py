"""The stateful step graph: a torch wrapper with the contract's names and layout, and the
one function that turns it into ONNX bytes.

The legacy TorchScript exporter (``dynamo=False``) is used: in torch 2.13 the dynamo
exporter silently freezes ``time`` on recurrent models in several configurations, while
the legacy one exports native LSTM/GRU/RNN ops that are exact at any batch and length.
The validation gate (verify.py) checks that, whatever exporter runs here.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from rnnedge.contract import LOGITS, TOKENS, state_names
from rnnedge.nets.language_model import LanguageModel

OPSET = 17


class StepGraph(nn.Module):
    """tokens [B, T] + states [B, L, H] → logits [B, T, V] + states [B, L, H] (batch-first)."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # The contract is batch-first; torch's RNNs want [L, B, H].
        native = tuple(s.transpose(0, 1) for s in state)
        logits, new_state = self.model(tokens, native)
        return (logits, *(s.transpose(0, 1) for s in new_state))


def export_step_graph(model: LanguageModel) -> bytes:
    """ONNX bytes of the step graph with dynamic batch and time (single file, no sidecar)."""
    model.eval()
    graph = StepGraph(model).eval()
    inputs, outputs = state_names(model.config.cell)
    example_tokens = torch.zeros((2, 5), dtype=torch.int64)
    example_state = tuple(s.transpose(0, 1) for s in model.initial_state(2))
    dynamic = {TOKENS: {0: "batch", 1: "time"}, LOGITS: {0: "batch", 1: "time"}}
    dynamic.update({name: {0: "batch"} for name in inputs + outputs})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter warns that it is deprecated and that RNNs with batch_first
        # are traced with a fixed batch in some versions; the validation gate checks both.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (example_tokens, *example_state),
            buffer,
            input_names=[TOKENS, *inputs],
            output_names=[LOGITS, *outputs],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    return buffer.getvalue()
