"""Generate text from an rnnedge language model served by Triton (sequence batcher, implicit state).

    rnnedge triton kjv-char-lstm models/            # writes models/kjv-char-lstm/
    tritonserver --model-repository models/         # a server with the onnxruntime backend
    python examples/triton/client.py models/kjv-char-lstm --prompt "And God said" --tokens 200

Needs only `tritonclient[grpc]` and numpy. Each generation is one Triton *sequence*: a unique
correlation id, the prompt sent in one request flagged `sequence_start` (Triton resets the
model's state to zero), then one request per new token carrying only that token; the
recurrent state never leaves the server. The last request is flagged `sequence_end`, which
frees the sequence's slot. Sampling (greedy or temperature) happens here, on the logits.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient


def step(client, model: str, tokens: list[int], seq: int, start: bool, end: bool) -> np.ndarray:
    """Send `tokens` as one request of sequence `seq`; the logits [V] after the last one."""
    data = np.array([tokens], dtype=np.int64)  # [1, T]
    tensor = grpcclient.InferInput("tokens", list(data.shape), "INT64")
    tensor.set_data_from_numpy(data)
    result = client.infer(
        model,
        [tensor],
        outputs=[grpcclient.InferRequestedOutput("logits")],
        sequence_id=seq,
        sequence_start=start,
        sequence_end=end,
    )
    return result.as_numpy("logits")[0, -1]  # [1, T, V] → [V]


def pick(logits: np.ndarray, temperature: float, rng: random.Random) -> int:
    if temperature <= 0:
        return int(logits.argmax())
    weights = np.exp((logits - logits.max()) / temperature)
    return rng.choices(range(len(logits)), weights=weights.tolist())[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the model's folder in the repository")
    parser.add_argument("--url", default="127.0.0.1:8001", help="Triton's gRPC address")
    parser.add_argument("--prompt", default="And God said")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--sequence-id", type=int, default=random.randrange(1, 2**31))
    args = parser.parse_args()
    name = args.folder.name
    manifest = json.loads((args.folder / f"{name}.manifest.json").read_text())
    vocab = manifest["tokenizer"]["vocab"]
    index = {piece: i for i, piece in enumerate(vocab)}
    client = grpcclient.InferenceServerClient(args.url)
    rng = random.Random(0)
    logits = step(client, name, [index[c] for c in args.prompt], args.sequence_id, True, False)
    print(args.prompt, end="", flush=True)
    for n in range(args.tokens):
        token = pick(logits, args.temperature, rng)
        print(vocab[token], end="", flush=True)
        last = n == args.tokens - 1
        logits = step(client, name, [token], args.sequence_id, False, last)
    print()


if __name__ == "__main__":
    main()
