"""benchmarks/gpu.py without a GPU: its CUDA code paths run here on the CPU provider (the
device only changes where onnxruntime puts the buffers), its profile reading is checked on
a real onnxruntime profile, and a whole `run` reports every CUDA figure as "not available"
with the probe's reason while still measuring the CPU."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rnnedge.runtime.cuda import cuda_status
from rnnedge.runtime.generate import Generator
from rnnedge.runtime.session import open_session

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu():
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bound_batched_step_computes_what_run_computes(gpu, tiny_model) -> None:
    generator = Generator(open_session(tiny_model, device="cpu"))
    assert gpu.bound_matches_run(generator, batch=5, steps=6) < 1e-5


def test_state_residency_reads_a_real_profile(gpu, tiny_model, tmp_path) -> None:
    """On the CPU provider: every node on the CPU, no Memcpy, the state buffers host
    buffers that onnxruntime wrote into in place; so not 'on the device'."""
    found = gpu.state_residency(tiny_model, "cpu", tmp_path, batch=4, steps=3)
    nodes = found["nodes_by_provider"]
    assert set(nodes) == {"CPUExecutionProvider"} and found["node_events"] == sum(nodes.values())
    assert found["node_events"] % 3 == 0  # the same nodes, once per step
    assert found["memcpy_nodes"] == {} and found["state_sized_memcpy_events"] == 0
    assert found["state_buffer_devices"] == ["cpu"] and found["state_buffers_kept_their_addresses"]
    assert found["state_stays_on_device"] is False
    assert not list(tmp_path.glob("profile-*"))  # the profile file is removed


def event(op: str, provider: str, outputs: list[dict]) -> dict:
    return {
        "cat": "Node",
        "name": f"n_{op}_kernel_time",
        "args": {"op_name": op, "provider": provider, "output_type_shape": outputs},
    }


def test_memcpy_nodes_carrying_state_are_counted(gpu) -> None:
    profile = [
        event("LSTM", "CUDAExecutionProvider", [{"float16": [1, 1, 64, 512]}]),
        event("MemcpyToHost", "CUDAExecutionProvider", [{"float": [64, 1, 512]}]),  # state
        event("MemcpyFromHost", "CUDAExecutionProvider", [{"int64": [64, 1]}]),  # tokens
        event("MemcpyToHost", "CUDAExecutionProvider", [{"float": [2]}]),  # a small shape
        {"cat": "Session", "name": "model_run", "args": {}},
    ]
    found = gpu.copies_in_profile(profile, batch=64, hidden=512)
    assert found["node_events"] == 4 and found["nodes_by_provider"] == {"CUDAExecutionProvider": 4}
    assert found["state_sized_memcpy_events"] == 1 and len(found["memcpy_nodes"]) == 3


def test_fp16_validation_runs_and_measures(gpu, tiny_model, tiny_model_fp16, corpus) -> None:
    files = {"fp32": tiny_model, "fp16": tiny_model_fp16}
    text = Path(corpus).read_text()[-4000:]
    found = gpu.fp16_validation(files, text, device="cpu", greedy_tokens=50)
    assert found["measured_on"] == "CPUExecutionProvider" and found["heldout_chars"] > 3000
    assert found["argmax_agreement_fp32_same_device"] == 1.0  # fp32 CPU against itself
    assert found["argmax_agreement"] > 0.95 and abs(found["bpc_change"]) < 0.05
    assert found["bpc_change"] == pytest.approx(found["bpc_fp16"] - found["bpc_fp32_cpu"])
    assert 0 <= found["greedy_identical_prefix"] <= 50


def test_library_versions_read_as_dotted(gpu) -> None:
    assert gpu.dotted(13000) == "13.0" and gpu.dotted(12080) == "12.8"
    assert gpu.dotted(91000, cudnn=True) == "9.10.0" and gpu.dotted(0) is None
    assert gpu.library_version("libnothing-here.so.1", "cudaRuntimeGetVersion") is None


@pytest.mark.slow
def test_a_whole_run_without_cuda_says_why_and_measures_the_cpu(
    gpu, tiny_model, tiny_model_fp16, tmp_path
) -> None:
    status = cuda_status()
    if status.usable:
        pytest.skip("CUDA runs here: the 'not available' report cannot be observed")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_model, models / "lm.fp32.onnx")
    shutil.copy(tiny_model_fp16, models / "lm.fp16.onnx")
    gpu.run(models, tmp_path / "out", batches=(1, 4), quick=True)
    report = json.loads((tmp_path / "out" / "gpu-report.json").read_text())
    for kind in ("fp32", "fp16"):
        assert report["streams"][f"cuda {kind}"] == {"not_available": status.reason}
        assert report["state_residency"][kind] == {"not_available": status.reason}
    assert report["fp16_validation"] == {"not_available": status.reason}
    cpu = report["streams"]["cpu fp32"]
    assert all(cpu[str(b)][path]["tokens_per_s"] > 0 for b in (1, 4) for path in ("run", "bound"))
    assert all(
        report["classify"][name]["cuda"] == {"not_available": status.reason}
        for name in report["classify"]
    )
    text = (tmp_path / "out" / "GPU.md").read_text()
    assert f"CUDA: not available: {status.reason}" in text
    assert np.isfinite(cpu["4"]["run"]["median_s"])
