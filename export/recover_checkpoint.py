"""Rebuild a training checkpoint from a shipped LSTM language-model ONNX file.

A recipe that fine-tunes a shipped model needs its weights as a checkpoint (`rnnedge train
lm --init-from`); when the run folder that produced the model is gone, its ONNX file still
holds every weight. This reads them back (dequantising an int8 file's weights: each is
``(q - zero_point) * scale``), puts the ONNX gate order (i, o, f, c) back into PyTorch's
(i, f, g, o) and writes a checkpoint with the manifest's architecture and vocabulary.

    python export/recover_checkpoint.py models/kjv-char-lstm.onnx runs/kjv-start.pt

Only what `--init-from` reads is written (task, model_config, tokenizer, model): the
optimizer and schedule start afresh in the fine-tuning run.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from rnnedge.nets.language_model import LanguageModel, LMConfig
from rnnedge.train.checkpoint import save_checkpoint

# ONNX stacks the LSTM gates as (i, o, f, c); PyTorch as (i, f, g=c, o).
ONNX_TO_TORCH_GATES = (0, 2, 3, 1)


def dequantised_initialisers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every float initialiser by name; an int8 one under its float name (no suffix)."""
    raw = {init.name: numpy_helper.to_array(init).copy() for init in model.graph.initializer}
    weights = {name: value for name, value in raw.items() if value.dtype == np.float32}
    for name, value in raw.items():
        if name.endswith("_quantized"):
            base = name.removesuffix("_quantized")
            scale, zero = raw[f"{base}_scale"], raw[f"{base}_zero_point"]
            # int8 weights per tensor: scale and zero point are scalars or [1]
            weights[base] = (value.astype(np.float32) - zero.astype(np.float32)) * scale
    return weights


def torch_gates(stacked: np.ndarray) -> torch.Tensor:
    """[4H, ...] in ONNX gate order -> the same rows in PyTorch's gate order."""
    gates = np.split(stacked, 4, axis=0)
    return torch.from_numpy(np.concatenate([gates[i] for i in ONNX_TO_TORCH_GATES]))


def lstm_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The LSTM nodes (plain or DynamicQuantizeLSTM), first layer first."""
    return [node for node in model.graph.node if node.op_type.endswith("LSTM")]


def layer_weights(node: onnx.NodeProto, weights: dict[str, np.ndarray]) -> dict[str, Any]:
    """One layer's PyTorch tensors from its node's W, R and B inputs."""
    quantized = node.op_type == "DynamicQuantizeLSTM"
    w_in, r_in, b_in = (name.removesuffix("_quantized") for name in node.input[1:4])
    # plain LSTM: W [1, 4H, in], R [1, 4H, H]; DynamicQuantizeLSTM stores them transposed
    w, r = weights[w_in][0], weights[r_in][0]
    if quantized:
        w, r = w.T, r.T
    bias = weights[b_in][0]  # [8H]: input biases then recurrent biases
    half = bias.shape[0] // 2
    return {
        "weight_ih": torch_gates(w),
        "weight_hh": torch_gates(r),
        "bias_ih": torch_gates(bias[:half]),
        "bias_hh": torch_gates(bias[half:]),
    }


def state_dict_from_onnx(model: onnx.ModelProto, config: LMConfig) -> dict[str, torch.Tensor]:
    """The LanguageModel state dict the ONNX file's initialisers describe."""
    weights = dequantised_initialisers(model)
    state = {
        "embedding.weight": torch.from_numpy(weights["model.embedding.weight"]),
        "head.bias": torch.from_numpy(weights["model.head.bias"]),
    }
    head = next(n for n in model.graph.node if n.op_type in ("MatMul", "MatMulInteger"))
    head_weight = weights[head.input[1].removesuffix("_quantized")]  # [H, V]
    state["head.weight"] = torch.from_numpy(np.ascontiguousarray(head_weight.T))
    for layer, node in enumerate(lstm_nodes(model)):
        for key, tensor in layer_weights(node, weights).items():
            state[f"rnn.{key}_l{layer}"] = tensor.contiguous()
    expected = LanguageModel(config).state_dict().keys()
    assert set(state) == set(expected), sorted(set(state) ^ set(expected))
    return state


def recover(onnx_path: str, checkpoint_path: str) -> None:
    """Write `checkpoint_path`: the weights, architecture and vocabulary of `onnx_path`."""
    model = onnx.load(onnx_path)
    manifest = json.loads({p.key: p.value for p in model.metadata_props}["rnnedge.manifest"])
    architecture = manifest["architecture"]
    if manifest["task"] != "language-model" or architecture["cell"] != "lstm":
        raise SystemExit(f"error: {onnx_path} is not an LSTM language model; only those recover")
    fields = ("cell", "vocab_size", "embed_dim", "hidden", "layers", "dropout")
    config = LMConfig(**{key: architecture[key] for key in fields})
    payload = {
        "task": "language-model",
        "model_config": config.to_dict(),
        "tokenizer": manifest["tokenizer"],
        "model": state_dict_from_onnx(model, config),
        "recovered_from": {"file": onnx_path, "version": manifest["identity"]["version"]},
    }
    save_checkpoint(checkpoint_path, payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx", help="an LSTM language model written by rnnedge export")
    parser.add_argument("checkpoint", help="where to write the checkpoint")
    args = parser.parse_args()
    recover(args.onnx, args.checkpoint)


if __name__ == "__main__":
    main()
