"""Prove the numpy RNN/GRU/LSTM oracle against ONNX's node tests and onnxruntime."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import onnxruntime as ort
import pytest

from numpy_rnn import gru, lstm, rnn

ORACLES: dict[str, Callable[..., tuple[np.ndarray, ...]]] = {
    "RNN": rnn,
    "GRU": gru,
    "LSTM": lstm,
}
# ONNX input names by position; node inputs are positional and may be "".
INPUT_NAMES = {
    "RNN": ["X", "W", "R", "B", "sequence_lens", "initial_h"],
    "GRU": ["X", "W", "R", "B", "sequence_lens", "initial_h"],
    "LSTM": ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"],
}
NUM_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
# Every onnx release since layout support ships at least defaults, initial
# bias, seq_length/peepholes and batchwise for each op.
MIN_NODE_CASES = {"RNN": 4, "GRU": 4, "LSTM": 4}
NODE_DIR_PATTERN = re.compile(r"test_(lstm|gru|rnn|simple_rnn)_")


class NodeCase(NamedTuple):
    name: str
    node: onnx.NodeProto
    inputs: list[np.ndarray]  # the node's present inputs, in order
    outputs: list[np.ndarray]  # the node's present outputs, in order


def _cases_from_data_dir(root: Path) -> list[NodeCase]:
    """Read ``test_*/model.onnx`` + ``test_data_set_0/*.pb`` as shipped by onnx."""

    def load(paths: list[Path]) -> list[np.ndarray]:
        paths.sort(key=lambda p: int(p.stem.split("_")[1]))  # input_10 after input_9
        return [onnx.numpy_helper.to_array(onnx.load_tensor(str(p))) for p in paths]

    cases = []
    for case_dir in sorted(root.iterdir()):
        if not NODE_DIR_PATTERN.match(case_dir.name) or case_dir.name.endswith("_expanded"):
            continue
        node = onnx.load(str(case_dir / "model.onnx")).graph.node[0]
        data = case_dir / "test_data_set_0"
        cases.append(
            NodeCase(
                case_dir.name,
                node,
                load(list(data.glob("input_*.pb"))),
                load(list(data.glob("output_*.pb"))),
            )
        )
    return cases


def _cases_from_generators() -> list[NodeCase]:
    """Rebuild the node cases from the onnx package's own generator scripts.

    Some onnx wheels (1.23 among them) no longer ship backend/test/data/node.
    Importing ``onnx.backend.test.case.node.<op>`` runs each ``export_*``
    method (seeded with 0, exactly as ``backend-test-tools generate-data``
    does), which records the model and its input/output arrays in the
    package's test-case list.
    """
    registry = importlib.import_module("onnx.backend.test.case.node")
    for module in ("lstm", "gru", "rnn"):
        importlib.import_module(f"onnx.backend.test.case.node.{module}")
    cases = {}
    for case in registry._NodeTestCases:
        node = case.model.graph.node[0]
        if node.op_type in ORACLES and len(case.model.graph.node) == 1:
            ((inputs, outputs),) = case.data_sets
            cases[case.name] = NodeCase(case.name, node, list(inputs), list(outputs))
    return [cases[name] for name in sorted(cases)]


def _collect_node_cases() -> list[NodeCase]:
    data_root = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    if data_root.is_dir() and any(NODE_DIR_PATTERN.match(p.name) for p in data_root.iterdir()):
        return _cases_from_data_dir(data_root)
    return _cases_from_generators()


NODE_CASES = _collect_node_cases()


def _node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    attrs = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        attrs[attr.name] = value
    return attrs


def test_node_cases_were_found() -> None:
    found = {op: 0 for op in ORACLES}
    for case in NODE_CASES:
        found[case.node.op_type] += 1
    for op, minimum in MIN_NODE_CASES.items():
        assert found[op] >= minimum, f"only {found[op]} {op} node cases found: {found}"


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_onnx_node_case(case: NodeCase) -> None:
    op = case.node.op_type
    present = iter(case.inputs)
    kwargs: dict[str, Any] = {
        name: next(present)
        # Trailing optional inputs may be omitted from the node entirely.
        for name, wired in zip(INPUT_NAMES[op], case.node.input, strict=False)
        if wired
    }
    attrs = _node_attributes(case.node)
    hidden_size = attrs.pop("hidden_size")
    assert kwargs["R"].shape[-1] == hidden_size
    kwargs.update(attrs)  # attribute names match the oracle's keyword names

    results = ORACLES[op](**kwargs)

    expected = iter(case.outputs)
    compared = 0
    for name, result in zip(case.node.output, results, strict=False):
        if not name:
            continue
        want = next(expected)
        assert result.shape == want.shape, name
        np.testing.assert_allclose(result, want, rtol=1e-5, atol=1e-5, err_msg=name)
        compared += 1
    assert compared == len(case.outputs)


# ---------------------------------------------------------------------------
# Random single-node models against onnxruntime
# ---------------------------------------------------------------------------

SEQ, BATCH, INPUT, HIDDEN = 6, 3, 4, 5
LENGTHS = np.array([4, 6, 1], dtype=np.int32)  # one full, one short, one minimal


def _run_ort_and_oracle(
    op: str,
    direction: str,
    with_lengths: bool,
    seed: int,
    **attrs: Any,
) -> tuple[list[np.ndarray], tuple[np.ndarray, ...]]:
    """Build one random single-node model, run it on onnxruntime and the oracle."""
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    gates = NUM_GATES[op]

    def rand(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    feeds = {
        "X": rand(SEQ, BATCH, INPUT, scale=1.0),
        "W": rand(dirs, gates * HIDDEN, INPUT),
        "R": rand(dirs, gates * HIDDEN, HIDDEN),
        "B": rand(dirs, 2 * gates * HIDDEN),
        "sequence_lens": LENGTHS,
        "initial_h": rand(dirs, BATCH, HIDDEN),
    }
    if op == "LSTM":
        feeds["initial_c"] = rand(dirs, BATCH, HIDDEN)
        feeds["P"] = rand(dirs, 3 * HIDDEN)
    if not with_lengths:
        del feeds["sequence_lens"]

    node_inputs = [n if n in feeds else "" for n in INPUT_NAMES[op]]
    outputs = ["Y", "Y_h", "Y_c"][: 3 if op == "LSTM" else 2]
    node = onnx.helper.make_node(
        op,
        node_inputs,
        outputs,
        hidden_size=HIDDEN,
        direction=direction,
        **attrs,
    )
    graph = onnx.helper.make_graph(
        [node],
        f"{op.lower()}_{direction}",
        [
            onnx.helper.make_tensor_value_info(
                name, onnx.helper.np_dtype_to_tensor_dtype(value.dtype), value.shape
            )
            for name, value in feeds.items()
        ],
        [
            onnx.helper.make_tensor_value_info(
                name,
                onnx.TensorProto.FLOAT,
                [SEQ, dirs, BATCH, HIDDEN] if name == "Y" else [dirs, BATCH, HIDDEN],
            )
            for name in outputs
        ],
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", 22)], ir_version=10
    )
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    from_ort = session.run(None, feeds)
    from_oracle = ORACLES[op](**feeds, direction=direction, **attrs)
    return from_ort, from_oracle


def _assert_same(from_ort: list[np.ndarray], from_oracle: tuple[np.ndarray, ...]) -> None:
    assert len(from_ort) == len(from_oracle)
    for name, got, want in zip(("Y", "Y_h", "Y_c"), from_oracle, from_ort, strict=False):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "seq_lens"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_matches_onnxruntime(op: str, direction: str, with_lengths: bool) -> None:
    from_ort, from_oracle = _run_ort_and_oracle(op, direction, with_lengths, seed=7)
    _assert_same(from_ort, from_oracle)
    if with_lengths:
        # Padded steps must really be zeros, otherwise the comparison above
        # would not exercise the sequence_lens handling at all.
        y = from_oracle[0]  # [seq, dirs, batch, hidden]
        for b, length in enumerate(LENGTHS):
            assert not y[length:, :, b].any()
            assert y[:length, :, b].all()


# Attributes the ONNX node cases never set; each entry is checked against
# onnxruntime on a bidirectional model with ragged sequence lengths.
ATTRIBUTE_VARIANTS = {
    "rnn_relu_clip": ("RNN", {"activations": ["Relu", "Sigmoid"], "clip": 0.7}),
    "gru_linear_before_reset": ("GRU", {"linear_before_reset": 1}),
    "gru_activations_alpha_beta": (
        "GRU",
        {
            "activations": ["HardSigmoid", "LeakyRelu", "Sigmoid", "Softsign"],
            "activation_alpha": [0.3, 0.2],
            "activation_beta": [0.4],
            "clip": 1.5,
        },
    ),
    "lstm_input_forget": ("LSTM", {"input_forget": 1}),
    "lstm_activations_clip": (
        "LSTM",
        {
            "activations": ["Sigmoid", "Tanh", "Softsign", "HardSigmoid", "Elu", "Relu"],
            "clip": 0.8,
        },
    ),
}


@pytest.mark.parametrize("variant", sorted(ATTRIBUTE_VARIANTS), ids=sorted(ATTRIBUTE_VARIANTS))
def test_attribute_variants_match_onnxruntime(variant: str) -> None:
    op, attrs = ATTRIBUTE_VARIANTS[variant]
    from_ort, from_oracle = _run_ort_and_oracle(
        op, "bidirectional", with_lengths=True, seed=11, **attrs
    )
    _assert_same(from_ort, from_oracle)
