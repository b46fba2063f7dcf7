"""The graphs of the contract as torch wrappers, and the one function that exports them.

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

from rnnedge.contract import FEATURES, LENGTHS, LOGITS, TOKENS, state_names

OPSET = 17


class StepGraph(nn.Module):
    """inputs [B, T(, D)] + states [B, L, H] → logits [B, T, C] + states (batch-first)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # The contract is batch-first; torch's RNNs want [L, B, H].
        native = tuple(s.transpose(0, 1) for s in state)
        logits, new_state = self.model.forward_steps(inputs, native)
        return (logits, *(s.transpose(0, 1) for s in new_state))


def input_name(model: nn.Module) -> str:
    return FEATURES if getattr(model.config, "input", "tokens") == "features" else TOKENS


def example_input(model: nn.Module, batch: int, time: int) -> torch.Tensor:
    config = model.config
    if input_name(model) == FEATURES:
        return torch.zeros((batch, time, config.feature_dim))
    return torch.zeros((batch, time), dtype=torch.int64)


def to_onnx(
    module: nn.Module,
    args: tuple,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[str, dict[int, str]],
) -> bytes:
    """ONNX bytes of `module` (single file, no external-data sidecar)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter warns that it is deprecated and that batch_first RNNs may be
        # traced with a fixed batch; the validation gate checks the axes and values.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            args,
            buffer,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    return buffer.getvalue()


def export_step_graph(model: nn.Module) -> bytes:
    """The streaming graph: dynamic batch and time, state in and out."""
    model.eval()
    name = input_name(model)
    state_in, state_out = state_names(model.state_keys())
    example_state = tuple(s.transpose(0, 1) for s in model.initial_state(2))
    dynamic = {name: {0: "batch", 1: "time"}, LOGITS: {0: "batch", 1: "time"}}
    dynamic.update({n: {0: "batch"} for n in state_in + state_out})
    return to_onnx(
        StepGraph(model),
        (example_input(model, 2, 5), *example_state),
        [name, *state_in],
        [LOGITS, *state_out],
        dynamic,
    )


class LengthsGraph(nn.Module):
    """inputs [B, T(, D)] + lengths [B] → logits [B, C] (or [B, T, C] per step)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, lengths)


def export_lengths_graph(model: nn.Module) -> bytes:
    """The whole-sequence graph of bidirectional classifiers."""
    model.eval()
    name = input_name(model)
    dynamic = {name: {0: "batch", 1: "time"}, LENGTHS: {0: "batch"}, LOGITS: {0: "batch"}}
    if model.config.pooling == "per-step":
        dynamic[LOGITS][1] = "time"
    lengths = torch.tensor([5, 3], dtype=torch.int64)
    return to_onnx(
        LengthsGraph(model),
        (example_input(model, 2, 5), lengths),
        [name, LENGTHS],
        [LOGITS],
        dynamic,
    )
