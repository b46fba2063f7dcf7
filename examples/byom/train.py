"""Train the example char RNN (char_rnn.py) with plain PyTorch, as a user's own script would,
and write what `rnnedge export --module` takes: weights.pt (the state_dict), vocab.txt (one
character per line, newline written as \\n) and heldout.txt (the last 10 % of the text,
never trained on, for --heldout).

    python examples/byom/train.py TEXT OUT_DIR [--steps N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from char_rnn import build
from torch import nn

ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    text = args.text.read_text(encoding="utf-8")
    split = int(len(text) * 0.9)
    vocab = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = torch.tensor([index[ch] for ch in text[:split]])
    model = build(len(vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(args.steps):
        # 32 random windows of 33 characters: inputs [batch, time], targets shifted by one
        starts = torch.randint(0, len(ids) - 33, (32,))
        windows = torch.stack([ids[s : s + 33] for s in starts.tolist()])
        logits, _ = model(windows[:, :-1], model.begin_state(32))  # [(time * batch), vocab]
        loss = nn.functional.cross_entropy(logits, windows[:, 1:].T.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {loss.item():.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / "weights.pt")
    lines = [ESCAPES.get(ch, ch) for ch in vocab]
    (args.out / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (args.out / "heldout.txt").write_text(text[split:], encoding="utf-8")
    print(f"wrote {args.out}/weights.pt, vocab.txt ({len(vocab)} characters), heldout.txt")


if __name__ == "__main__":
    main()
