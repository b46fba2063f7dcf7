"""fp16 export (for CUDA): what it stores, what it records, and that it runs everywhere.

CPU tests run the fp16 graph on ORT's CPU provider (each op computed in fp32 between fp16
tensors); the CUDA tests run only where a CUDA session really runs, and skip elsewhere
saying why.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

from helpers import invoke, succeeded
from rnnedge.exporter.precision import sort_topologically
from rnnedge.runtime import load, load_generator
from rnnedge.runtime.cuda import cuda_status

# Where a CUDA session really runs, not where the provider is merely listed: onnxruntime-gpu
# lists it on machines without a GPU, and its sessions then run on the CPU.
HAS_CUDA = cuda_status().usable
NEEDS_CUDA = f"needs CUDA, which cannot run here: {cuda_status().reason}"


def test_fp16_model_passes_validation_and_records_quality(tiny_model_fp16, tiny_model):
    manifest = load(tiny_model_fp16).manifest
    assert manifest.export["precision"] == "fp16"
    assert manifest.export["quantization"].startswith("fp16")
    for check in ("axes", "parity", "rollout", "greedy"):
        assert manifest.validation["fp16"][check]["passed"], check
    assert manifest.validation["structure_fp16"]["onnx_checker"].startswith("passed")
    quality = manifest.validation["quality"]
    assert quality["bpc_change"] == pytest.approx(quality["bpc_fp16"] - quality["bpc_fp32"])
    assert abs(quality["bpc_change_relative"]) < 0.01 and quality["heldout_chars"] > 0
    assert quality["measured_on"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert load(tiny_model).manifest.export["precision"] == "fp32"


def test_fp16_file_stores_fp16_weights_behind_an_fp32_contract(tiny_model_fp16, tiny_model):
    graph = onnx.load(tiny_model_fp16).graph
    sizes = {}
    for tensor in graph.initializer:
        sizes.setdefault(tensor.data_type, 0)
        sizes[tensor.data_type] += int(np.prod(tensor.dims))
    assert sizes.get(onnx.TensorProto.FLOAT16, 0) > 0.99 * sum(sizes.values())
    float_io = [
        v.type.tensor_type.elem_type
        for v in [*graph.input, *graph.output]
        if v.type.tensor_type.elem_type != onnx.TensorProto.INT64
    ]
    assert float_io and set(float_io) == {onnx.TensorProto.FLOAT}
    assert weight_bytes(tiny_model_fp16) == pytest.approx(weight_bytes(tiny_model) / 2, rel=0.01)


def weight_bytes(path: Path) -> int:
    return sum(onnx.numpy_helper.to_array(t).nbytes for t in onnx.load(path).graph.initializer)


def test_fp16_logits_and_state_track_fp32(tiny_model_fp16, tiny_model):
    fp32, fp16 = load_generator(tiny_model, device="cpu"), load_generator(tiny_model_fp16)
    tokens = np.random.default_rng(0).integers(0, fp32.vocab_size, (3, 40), dtype=np.int64)
    logits32, state32 = fp32.run(tokens, fp32.initial_state(3))
    logits16, state16 = fp16.run(tokens, fp16.initial_state(3))
    assert logits16.dtype == np.float32 and logits16.shape == logits32.shape
    assert np.abs(logits16 - logits32).max() < 0.05
    assert (logits16.argmax(-1) == logits32.argmax(-1)).mean() > 0.97
    for name in state32:
        assert state16[name].dtype == np.float32
        assert np.abs(state16[name] - state32[name]).max() < 0.02


def test_fp16_on_cpu_says_once_it_is_made_for_cuda_and_still_generates(tiny_model_fp16):
    result = succeeded(
        invoke("infer", "generate", tiny_model_fp16, "--prompt", "the", "--max-new-tokens", "20")
    )
    assert len(result.stdout.rstrip("\n")) == len("the") + 20
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    if HAS_CUDA:
        assert notes == ["note: --device auto: running on CUDA"]
    else:
        assert len(notes) == 1 and "fp16" in notes[0] and "CUDA" in notes[0]


def test_fp16_eval_reproduces_the_recorded_bits_per_char(tiny_model_fp16, corpus):
    scored = succeeded(invoke("eval", tiny_model_fp16, "--text", corpus, "--tail", "0.1", "--json"))
    recorded = load(tiny_model_fp16).manifest.validation["quality"]
    # export measured where eval runs (both pick CUDA when present, else CPU)
    assert json.loads(scored.stdout)["bpc"] == pytest.approx(recorded["bpc_fp16"], abs=1e-5)


def shuffled_graph() -> onnx.GraphProto:
    """y = Relu(x + 1) * 2 with its nodes listed last-first, and a Loop whose body reads
    `scale` from the enclosing graph (so it must come after the node making `scale`)."""
    helper = onnx.helper
    body = helper.make_graph(
        [helper.make_node("Mul", ["v", "scale"], ["v_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, []),
            helper.make_tensor_value_info("v", onnx.TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", onnx.TensorProto.FLOAT, [1]),
        ],
    )
    body.node.insert(0, helper.make_node("Identity", ["cond"], ["cond_out"]))
    nodes = [
        helper.make_node("Loop", ["trips", "", "y"], ["looped"], body=body),
        helper.make_node("Mul", ["r", "two"], ["y"]),
        helper.make_node("Relu", ["s"], ["r"]),
        helper.make_node("Add", ["x", "one"], ["s"]),
        helper.make_node("Add", ["two", "two"], ["scale"]),
    ]
    one = helper.make_tensor("one", onnx.TensorProto.FLOAT, [1], [1.0])
    two = helper.make_tensor("two", onnx.TensorProto.FLOAT, [1], [2.0])
    trips = helper.make_tensor("trips", onnx.TensorProto.INT64, [], [2])
    return helper.make_graph(
        nodes,
        "shuffled",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("looped", onnx.TensorProto.FLOAT, [1])],
        [one, two, trips],
    )


def test_sort_topologically_orders_producers_first_including_subgraph_reads():
    graph = shuffled_graph()
    sort_topologically(graph)
    order = [node.output[0] for node in graph.node]
    assert order.index("s") < order.index("r") < order.index("y") < order.index("looped")
    assert order.index("scale") < order.index("looped")
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)


def test_sort_topologically_names_a_dangling_input():
    graph = shuffled_graph()
    graph.node.append(onnx.helper.make_node("Relu", ["nowhere"], ["lost"]))
    with pytest.raises(ValueError, match="nothing produces"):
        sort_topologically(graph)


@pytest.mark.skipif(not HAS_CUDA, reason=NEEDS_CUDA)
def test_fp16_on_cuda_tracks_fp32_on_cpu_and_generates(tiny_model_fp16, tiny_model):
    fp32 = load_generator(tiny_model, device="cpu")
    fp16 = load_generator(tiny_model_fp16, device="cuda")
    assert fp16.provider == "CUDAExecutionProvider" and fp16.precision_mismatch() is None
    tokens = np.random.default_rng(1).integers(0, fp32.vocab_size, (4, 32), dtype=np.int64)
    logits32, _ = fp32.run(tokens, fp32.initial_state(4))
    logits16, _ = fp16.run(tokens, fp16.initial_state(4))
    assert (logits16.argmax(-1) == logits32.argmax(-1)).mean() > 0.97
    pieces = list(fp16.generate("the", max_new_tokens=16, seed=0))
    assert len(pieces) == 16


@pytest.mark.skipif(not HAS_CUDA, reason=NEEDS_CUDA)
def test_fp32_on_cuda_equals_cpu_and_streams_through_device_state(tiny_model):
    on_cpu = load_generator(tiny_model, device="cpu")
    on_cuda = load_generator(tiny_model, device="cuda")
    assert on_cuda.provider == "CUDAExecutionProvider"
    tokens = np.random.default_rng(2).integers(0, on_cpu.vocab_size, (2, 24), dtype=np.int64)
    cpu_logits, _ = on_cpu.run(tokens, on_cpu.initial_state(2))
    cuda_logits, _ = on_cuda.run(tokens, on_cuda.initial_state(2))
    assert np.abs(cuda_logits - cpu_logits).max() < 1e-3
    assert len(list(on_cuda.generate("the", max_new_tokens=32, seed=0))) == 32
