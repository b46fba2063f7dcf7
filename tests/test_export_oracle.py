"""Exported graphs checked against an independent numpy forward pass.

For every cell (rnn, gru, lstm) and depth (1, 2, 3) a tiny model is trained for two steps
and exported; the test then reads the weights out of the ONNX file itself (embedding
table, each recurrent node's W/R/B and attributes, the head's MatMul/Gemm and bias),
recomputes logits and final states with tests/numpy_rnn.py from random contract-layout
states, and compares with onnxruntime running the file. A second check ties the graph's
weights back to the checkpoint's torch weights (gate order and transposes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch

from conftest import make_text, train_tiny
from numpy_rnn import gru, lstm, rnn
from rnnedge.contract import STATE_IN_PREFIX, STATE_OUT_PREFIX, TOKENS
from rnnedge.exporter import export_checkpoint
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.session import open_session

TOLERANCE = 1e-4
BATCH, TIME = 3, 11
RECURRENT_OPS = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
HIDDEN = {1: 8, 2: 10, 3: 12}
# torch's gate blocks → ONNX's gate blocks: LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h.
TORCH_TO_ONNX_GATES = {"rnn": [0], "gru": [1, 0, 2], "lstm": [0, 3, 1, 2]}


@dataclass(frozen=True)
class Case:
    cell: str
    layers: int

    @property
    def hidden(self) -> int:
        return HIDDEN[self.layers]

    @property
    def embed_dim(self) -> int:
        # Each cell gets one one-hot model (embed_dim 0) and two embedding models.
        return 0 if self.layers == 2 else 6

    @property
    def id(self) -> str:
        kind = "onehot" if self.embed_dim == 0 else f"emb{self.embed_dim}"
        return f"{self.cell}-L{self.layers}-H{self.hidden}-{kind}"


CASES = [Case(cell, layers) for cell in ("rnn", "gru", "lstm") for layers in (1, 2, 3)]


@dataclass
class Exported:
    case: Case
    checkpoint: Path
    onnx_path: Path


@pytest.fixture(scope="module")
def small_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle-data") / "small.txt"
    path.write_text(make_text(3_000, seed=7))
    return path


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def exported(
    request: pytest.FixtureRequest, small_text: Path, tmp_path_factory: pytest.TempPathFactory
) -> Exported:
    case: Case = request.param
    folder = tmp_path_factory.mktemp(case.id)
    checkpoint = train_tiny(
        small_text,
        folder / "run",
        cell=case.cell,
        layers=case.layers,
        hidden=case.hidden,
        embed_dim=case.embed_dim,
        batch_size=2,
        seq_len=8,
        steps=2,
        eval_every=1,
        checkpoint_every=1,
        seed=case.layers,
    )
    path = folder / "model.onnx"
    export_checkpoint(checkpoint, path, run_validation=True)
    return Exported(case, checkpoint, path)


# --------------------------------------------------------------------------------------
# Reading the graph
# --------------------------------------------------------------------------------------


class Graph:
    """The constants and nodes of an ONNX graph, looked up by tensor name."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.nodes = list(model.graph.node)
        self.constants: dict[str, np.ndarray] = {
            init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer
        }
        for node in self.nodes:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = constant_value(node)

    def const(self, name: str) -> np.ndarray:
        assert name in self.constants, f"{name!r} is not a constant of the graph"
        return self.constants[name].astype(np.float64)

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        return [n for n in self.nodes if name in n.input]


def constant_value(node: onnx.NodeProto) -> np.ndarray:
    (attr,) = node.attribute
    if attr.name == "value":
        return onnx.numpy_helper.to_array(attr.t)
    return np.asarray(onnx.helper.get_attribute_value(attr))


def attributes(node: onnx.NodeProto) -> dict:
    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: [x.decode() for x in v] if k == "activations" else v for k, v in values.items()}


def embedding_table(graph: Graph) -> np.ndarray:
    """The data input of the Gather that reads `tokens`: [vocab, input_size]."""
    gathers = [n for n in graph.consumers(TOKENS) if n.op_type == "Gather"]
    assert len(gathers) == 1, "expected one Gather reading the tokens"
    (gather,) = gathers
    assert gather.input[1] == TOKENS
    assert attributes(gather).get("axis", 0) == 0
    return graph.const(gather.input[0])


def recurrent_nodes(graph: Graph, cell: str) -> list[onnx.NodeProto]:
    ops = {n.op_type for n in graph.nodes} & set(RECURRENT_OPS.values())
    assert ops == {RECURRENT_OPS[cell]}, f"recurrent ops in graph: {ops}"
    # Graph nodes are topologically sorted, and layer l+1 consumes layer l's output.
    return [n for n in graph.nodes if n.op_type == RECURRENT_OPS[cell]]


def head_layer(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """(weight [hidden, vocab], bias [vocab]) such that logits = h @ weight + bias."""
    (producer,) = [n for n in graph.nodes if "logits" in n.output]
    if producer.op_type == "Gemm":
        attrs = attributes(producer)
        assert attrs.get("transA", 0) == 0
        weight = graph.const(producer.input[1])
        weight = weight.T if attrs.get("transB", 0) else weight
        bias = graph.const(producer.input[2]) * attrs.get("beta", 1.0)
        return weight * attrs.get("alpha", 1.0), bias
    assert producer.op_type == "Add", f"logits made by {producer.op_type}"
    bias_name, matmul_out = sorted(producer.input, key=lambda n: n not in graph.constants)
    (matmul,) = [n for n in graph.nodes if matmul_out in n.output]
    assert matmul.op_type == "MatMul", f"head product is {matmul.op_type}"
    assert matmul.input[1] in graph.constants, "MatMul weight is expected on the right"
    return graph.const(matmul.input[1]), graph.const(bias_name)


# --------------------------------------------------------------------------------------
# The numpy forward pass
# --------------------------------------------------------------------------------------


def input_named(node: onnx.NodeProto, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


def numpy_forward(
    graph: Graph, cell: str, tokens: np.ndarray, state: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """tokens [B, T] + contract states [B, L, H] → logits [B, T, V], final states [B, L, H]."""
    x = embedding_table(graph)[tokens].transpose(1, 0, 2)  # [T, B, E]
    h0 = state[STATE_IN_PREFIX + "h"].astype(np.float64)  # [B, L, H]
    c0 = state.get(STATE_IN_PREFIX + "c")
    finals: dict[str, list[np.ndarray]] = {"h": [], "c": []}
    for layer, node in enumerate(recurrent_nodes(graph, cell)):
        attrs = attributes(node)
        assert attrs.get("direction", "forward") == "forward"
        assert input_named(node, 4) == "", "unexpected sequence_lens"
        W, R = graph.const(node.input[1]), graph.const(node.input[2])
        B = graph.const(node.input[3]) if input_named(node, 3) else None
        initial_h = h0[:, layer, :][None]  # [1, B, H]
        common = {"activations": attrs.get("activations"), "clip": attrs.get("clip")}
        if cell == "lstm":
            P = graph.const(node.input[7]) if input_named(node, 7) else None
            y, y_h, y_c = lstm(
                x,
                W,
                R,
                B,
                initial_h,
                c0[:, layer, :][None].astype(np.float64),
                P=P,
                input_forget=attrs.get("input_forget", 0),
                **common,
            )
            finals["c"].append(y_c[0])
        elif cell == "gru":
            y, y_h = gru(
                x,
                W,
                R,
                B,
                initial_h,
                linear_before_reset=attrs.get("linear_before_reset", 0),
                **common,
            )
        else:
            y, y_h = rnn(x, W, R, B, initial_h, **common)
        assert y.shape[1] == 1  # one direction
        x = y[:, 0]  # [T, B, H]
        finals["h"].append(y_h[0])
    weight, bias = head_layer(graph)
    logits = x.transpose(1, 0, 2) @ weight + bias  # [B, T, V]
    states = {
        STATE_OUT_PREFIX + kind: np.stack(values, axis=1)  # [B, L, H]
        for kind, values in finals.items()
        if values
    }
    return logits, states


def random_inputs(runtime: Generator, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, runtime.vocab_size, size=(BATCH, TIME), dtype=np.int64)
    state = {
        name: rng.standard_normal(value.shape).astype(np.float32)
        for name, value in runtime.initial_state(BATCH).items()
    }
    return tokens, state


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_onnxruntime_matches_numpy_oracle(exported: Exported) -> None:
    case = exported.case
    graph = Graph(onnx.load(exported.onnx_path))
    runtime = Generator(open_session(exported.onnx_path, device="cpu"))
    tokens, state = random_inputs(runtime, seed=case.layers)
    assert state[STATE_IN_PREFIX + "h"].shape == (BATCH, case.layers, case.hidden)

    ort_logits, ort_state = runtime.run(tokens, state)
    ref_logits, ref_state = numpy_forward(graph, case.cell, tokens, state)

    assert ort_logits.shape == ref_logits.shape == (BATCH, TIME, runtime.vocab_size)
    np.testing.assert_allclose(ort_logits, ref_logits, rtol=0, atol=TOLERANCE)
    expected_kinds = ["h", "c"] if case.cell == "lstm" else ["h"]
    assert sorted(ort_state) == sorted(STATE_IN_PREFIX + k for k in expected_kinds)
    for kind in expected_kinds:
        got = ort_state[STATE_IN_PREFIX + kind]
        want = ref_state[STATE_OUT_PREFIX + kind]
        assert got.shape == want.shape == (BATCH, case.layers, case.hidden)
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE, err_msg=kind)


def test_states_are_per_layer_and_per_sequence(exported: Exported) -> None:
    # Changing one sequence's layer-0 state moves only that sequence's outputs.
    case = exported.case
    graph = Graph(onnx.load(exported.onnx_path))
    runtime = Generator(open_session(exported.onnx_path, device="cpu"))
    tokens, state = random_inputs(runtime, seed=100 + case.layers)
    changed = {k: v.copy() for k, v in state.items()}
    changed[STATE_IN_PREFIX + "h"][1, 0, :] += 1.0
    base_logits, _ = runtime.run(tokens, state)
    new_logits, _ = runtime.run(tokens, changed)
    np.testing.assert_allclose(base_logits[[0, 2]], new_logits[[0, 2]], rtol=0, atol=1e-6)
    assert np.abs(base_logits[1] - new_logits[1]).max() > 1e-6
    ref_logits, _ = numpy_forward(graph, case.cell, tokens, changed)
    np.testing.assert_allclose(new_logits, ref_logits, rtol=0, atol=TOLERANCE)


def torch_weights_in_onnx_layout(
    params: dict[str, torch.Tensor], cell: str, layer: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W [1, G*H, in], R [1, G*H, H], B [1, 2*G*H] from torch's weight_ih/hh, bias_ih/hh."""
    order = TORCH_TO_ONNX_GATES[cell]

    def reorder(t: torch.Tensor) -> np.ndarray:
        blocks = np.split(t.double().numpy(), len(order), axis=0)
        return np.concatenate([blocks[i] for i in order], axis=0)

    W = reorder(params[f"rnn.weight_ih_l{layer}"])
    R = reorder(params[f"rnn.weight_hh_l{layer}"])
    B = np.concatenate(
        [reorder(params[f"rnn.bias_ih_l{layer}"]), reorder(params[f"rnn.bias_hh_l{layer}"])]
    )
    return W[None], R[None], B[None]


def test_graph_weights_are_the_checkpoint_weights(exported: Exported) -> None:
    case = exported.case
    graph = Graph(onnx.load(exported.onnx_path))
    payload = torch.load(exported.checkpoint, map_location="cpu", weights_only=True)
    params = payload["model"]
    nodes = recurrent_nodes(graph, case.cell)
    assert len(nodes) == case.layers
    for layer, node in enumerate(nodes):
        W, R, B = torch_weights_in_onnx_layout(params, case.cell, layer)
        np.testing.assert_allclose(graph.const(node.input[1]), W, rtol=0, atol=0)
        np.testing.assert_allclose(graph.const(node.input[2]), R, rtol=0, atol=0)
        np.testing.assert_allclose(graph.const(node.input[3]), B, rtol=0, atol=0)
        assert attributes(node)["hidden_size"] == case.hidden
        if case.cell == "gru":
            # torch's GRU applies the reset gate after the recurrent product.
            assert attributes(node).get("linear_before_reset", 0) == 1
    table = embedding_table(graph)
    vocab = payload["model_config"]["vocab_size"]
    if case.embed_dim:
        np.testing.assert_array_equal(table, params["embedding.weight"].double().numpy())
    else:
        np.testing.assert_array_equal(table, np.eye(vocab))
    weight, bias = head_layer(graph)
    np.testing.assert_array_equal(weight, params["head.weight"].double().numpy().T)
    np.testing.assert_array_equal(bias, params["head.bias"].double().numpy())


def test_manifest_records_architecture_and_validation(exported: Exported) -> None:
    case = exported.case
    manifest = open_session(exported.onnx_path, device="cpu").manifest
    arch = manifest.architecture
    assert (arch["cell"], arch["layers"], arch["hidden"]) == (case.cell, case.layers, case.hidden)
    assert arch["embed_dim"] == case.embed_dim
    assert arch["input"] == ("one-hot" if case.embed_dim == 0 else "embedding")
    assert manifest.validation["validated"] is True
    assert manifest.validation["fp32"]["parity"]["passed"] is True
    assert manifest.validation["fp32"]["parity"]["max_abs_diff"] <= TOLERANCE
    for state in manifest.states:
        assert state.shape == ["batch", case.layers, case.hidden]
