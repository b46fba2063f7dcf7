"""The Triton model repository: config.pbtxt parsed back with Triton's own protobuf and checked
against the ONNX graph (onnx.load) and the manifest, for every shipped model kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import error_line, invoke, succeeded

pb = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="needs the `triton` extra (tritonclient[grpc])"
)
onnx = pytest.importorskip("onnx", reason="needs the `train` extra (onnx)")
from google.protobuf import text_format  # noqa: E402  (after the importorskip guards)

from rnnedge.runtime.catalog import read_manifest, resolve_model  # noqa: E402

ONNX_TO_TRITON = {onnx.TensorProto.INT64: "TYPE_INT64", onnx.TensorProto.FLOAT: "TYPE_FP32"}
SHIPPED = ["kjv-char-lstm", "fortune-langid", "fashion-mnist-rows"]


def read_config(folder: Path) -> pb.ModelConfig:
    return text_format.Parse((folder / "config.pbtxt").read_text(), pb.ModelConfig())


def graph_tensors(values: list) -> dict[str, tuple[str, list]]:
    """name → (Triton type name, shape as the graph declares it: ints and axis names)."""
    return {
        v.name: (
            ONNX_TO_TRITON[v.type.tensor_type.elem_type],
            [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
        )
        for v in values
    }


def without_batch(shape: list) -> list[int]:
    assert isinstance(shape[0], str), f"batch axis must be dynamic in the graph: {shape}"
    return [d if isinstance(d, int) else -1 for d in shape[1:]]


def check_tensors(entries, graph: dict, skip: set[str]) -> None:
    """Config inputs/outputs = the graph's non-state tensors, with types and dims."""
    expected = {n: (t, without_batch(s)) for n, (t, s) in graph.items() if n not in skip}
    got = {e.name: (pb.DataType.Name(e.data_type), list(e.dims)) for e in entries}
    assert got == expected


def check_states(config: pb.ModelConfig, inputs: dict, outputs: dict, manifest) -> None:
    """Each implicit state pairs state_in.X with state_out.X, as the manifest and graph say."""
    states = config.sequence_batching.state
    assert {(s.input_name, s.output_name) for s in states} == {
        (s.input, s.output) for s in manifest.states
    }
    for state in states:
        suffix = state.input_name.removeprefix("state_in.")
        assert state.output_name == f"state_out.{suffix}" != state.input_name
        kind, shape = inputs[state.input_name]
        assert outputs[state.output_name] == (kind, shape)
        assert (pb.DataType.Name(state.data_type), list(state.dims)) == (kind, without_batch(shape))
        (initial,) = state.initial_state
        assert initial.zero_data and list(initial.dims) == list(state.dims)
        assert initial.data_type == state.data_type


@pytest.mark.parametrize("name", SHIPPED)
def test_config_matches_graph_and_manifest(name: str, tmp_path: Path) -> None:
    result = succeeded(invoke("triton", name, tmp_path, "--max-batch-size", "16"))
    source = resolve_model(name)
    manifest = read_manifest(source)
    folder = tmp_path / manifest.identity["name"]
    assert str(folder) in result.output
    config = read_config(folder)
    assert (config.name, config.platform, config.max_batch_size) == (
        folder.name,
        "onnxruntime_onnx",
        16,
    )
    assert (folder / "1" / "model.onnx").read_bytes() == source.read_bytes()
    graph = onnx.load(folder / "1" / "model.onnx").graph
    inputs, outputs = graph_tensors(graph.input), graph_tensors(graph.output)
    state_names = {s.input for s in manifest.states} | {s.output for s in manifest.states}
    check_tensors(config.input, inputs, state_names)
    check_tensors(config.output, outputs, state_names)
    check_states(config, inputs, outputs, manifest)
    batching = config.sequence_batching
    assert batching.WhichOneof("strategy_choice") == "oldest"
    assert not batching.control_input  # the graph reads no control tensor
    assert [g.kind for g in config.instance_group] == [pb.ModelInstanceGroup.KIND_CPU]
    copied = json.loads((folder / f"{folder.name}.manifest.json").read_text())
    assert copied["labels"] == manifest.labels and copied["states"] == [
        {**vars(s)} for s in manifest.states
    ]


def test_gpu_kind_and_replacing_an_older_entry(tmp_path: Path) -> None:
    succeeded(invoke("triton", "fortune-langid", tmp_path, "--name", "langid"))
    (tmp_path / "langid" / "stale.txt").write_text("from an older export")
    succeeded(invoke("triton", "fortune-langid", tmp_path, "--name", "langid", "--kind", "gpu"))
    config = read_config(tmp_path / "langid")
    assert [g.kind for g in config.instance_group] == [pb.ModelInstanceGroup.KIND_GPU]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["langid"]  # nothing left behind
    assert not (tmp_path / "langid" / "stale.txt").exists()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--kind", "tpu"], ["--kind", "cpu or gpu"]),
        (["--max-batch-size", "0"], ["--max-batch-size", "at least 1"]),
        (["--name", "../up"], ["name", "--name"]),
    ],
)
def test_bad_options_are_one_line(args: list[str], needles: list[str], tmp_path: Path) -> None:
    result = invoke("triton", "fortune-langid", tmp_path / "repo", *args)
    error_line(result, *needles)
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


def test_a_graph_without_state_is_refused() -> None:
    from rnnedge.errors import InputError
    from rnnedge.serve.triton import build_config

    manifest = read_manifest(resolve_model("fortune-langid"))
    manifest.states = []
    with pytest.raises(InputError, match="streaming step graph"):
        build_config(manifest, "m", 8, "cpu")


@pytest.mark.slow
def test_export_writes_the_repository(tiny_checkpoint: Path, tmp_path: Path) -> None:
    model = tmp_path / "tiny.onnx"
    succeeded(invoke("export", tiny_checkpoint, "-o", model, "--triton", tmp_path / "repo"))
    folder = tmp_path / "repo" / "tiny"
    assert (folder / "1" / "model.onnx").read_bytes() == model.read_bytes()
    config = read_config(folder)
    assert [s.input_name for s in config.sequence_batching.state] == ["state_in.c", "state_in.h"]
