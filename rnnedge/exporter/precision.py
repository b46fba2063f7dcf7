"""int8 dynamic quantization with onnxruntime: weights int8, activations quantized per call.

LSTM nodes become ``com.microsoft.DynamicQuantizeLSTM`` and the head ``MatMulInteger``;
ORT does not quantize GRU/RNN cells (only their head and embedding).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rnnedge.runtime.session import import_onnxruntime


def quantize_int8(model_bytes: bytes) -> bytes:
    """The int8-weight version of an fp32 model (metadata is re-attached by the caller)."""
    import_onnxruntime()  # a clear error if it is missing
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="rnnedge-quant-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model_bytes)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return target.read_bytes()
