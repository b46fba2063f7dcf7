"""examples/triton/client.py against a stand-in for Triton (no Triton server can be installed
here): a fake gRPC client that keeps each sequence's implicit state the way the repository's
config.pbtxt tells Triton to (state_in.X fed from the previous request's state_out.X, the
initial state on `sequence_start`, dropped on `sequence_end`) and runs 1/model.onnx with
onnxruntime. Checks the example's protocol and the config's state pairs end to end; it is not
a test of Triton itself (docs/serving.md says how to run that)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import invoke, succeeded

pb = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="needs the `triton` extra (tritonclient[grpc])"
)
from google.protobuf import text_format  # noqa: E402  (after the importorskip guard)

CLIENT = Path(__file__).parent.parent / "examples" / "triton" / "client.py"


class FakeInput:
    def __init__(self, name: str, shape: list[int], datatype: str) -> None:
        self.name, self.shape, self.datatype = name, shape, datatype

    def set_data_from_numpy(self, array: np.ndarray) -> None:
        assert list(array.shape) == self.shape and self.datatype == "INT64"
        self.array = array


class FakeTriton:
    """Sequences with implicit state over onnxruntime, as the repository's config says."""

    def __init__(self, repository: Path) -> None:
        import onnxruntime as ort

        self.repository = repository
        self.sessions, self.configs, self.states = {}, {}, {}
        for folder in repository.iterdir():
            config = text_format.Parse((folder / "config.pbtxt").read_text(), pb.ModelConfig())
            self.configs[folder.name] = config
            self.sessions[folder.name] = ort.InferenceSession(str(folder / "1" / "model.onnx"))
        self.requests: list[tuple[int, bool, bool, int]] = []

    def initial(self, config) -> dict[str, np.ndarray]:
        states = config.sequence_batching.state
        assert all(s.initial_state[0].zero_data for s in states)
        return {s.input_name: np.zeros([1, *s.dims], np.float32) for s in states}

    def infer(self, model, inputs, outputs, sequence_id, sequence_start, sequence_end):
        config = self.configs[model]
        self.requests.append((sequence_id, sequence_start, sequence_end, inputs[0].shape[1]))
        state = self.initial(config) if sequence_start else self.states[sequence_id]
        names = [o.name for o in config.output] + [
            s.output_name for s in config.sequence_batching.state
        ]
        feeds = {i.name: i.array for i in inputs}
        assert set(feeds) == {i.name for i in config.input}  # the client sends no state
        values = dict(zip(names, self.sessions[model].run(names, {**feeds, **state}), strict=True))
        if sequence_end:
            self.states.pop(sequence_id, None)
        else:
            self.states[sequence_id] = {
                s.input_name: values[s.output_name] for s in config.sequence_batching.state
            }
        return FakeResult(values)


class FakeResult:
    def __init__(self, values: dict[str, np.ndarray]) -> None:
        self.values = values

    def as_numpy(self, name: str) -> np.ndarray:
        return self.values[name]


def test_client_generates_what_the_cli_generates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import tritonclient.grpc as grpcclient

    succeeded(invoke("triton", "kjv-char-lstm", tmp_path))
    server = FakeTriton(tmp_path)
    monkeypatch.setattr(grpcclient, "InferenceServerClient", lambda url: server)
    monkeypatch.setattr(grpcclient, "InferInput", FakeInput)
    monkeypatch.setattr(grpcclient, "InferRequestedOutput", lambda name: name)
    spec = importlib.util.spec_from_file_location("triton_client_example", CLIENT)
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    folder = tmp_path / "kjv-char-lstm"
    argv = [str(CLIENT), str(folder), "--prompt", "And God said", "--tokens", "80"]
    monkeypatch.setattr(sys, "argv", [*argv, "--sequence-id", "42"])
    client.main()
    served = capsys.readouterr().out
    options = ["--prompt", "And God said", "--max-new-tokens", "80", "--temperature", "0"]
    cli = succeeded(invoke("infer", "generate", "kjv-char-lstm", *options))
    assert served == cli.stdout
    assert server.requests[0] == (42, True, False, len("And God said"))  # the prompt, one call
    assert all(r[:2] == (42, False) and r[3] == 1 for r in server.requests[1:])  # a token each
    assert server.requests[-1][2] and not server.states  # ended: its state is freed
