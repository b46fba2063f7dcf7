"""Shared steps of the language-model recipes whose held-out part is whole documents at the
end of the prepared text (the poems, Shakespeare's plays): the comparison with classical
models on exactly the same characters, the export, golden vectors and samples.

Every model in the comparison predicts each held-out character given everything before it,
the training text included: the n-gram and the RNN read the end of the training text as
context, the compressors compress the training text first (baselines.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTEXT_CHARS = 2000  # of training text the RNN reads before the held-out part
CHUNK = 512  # characters per runtime call when scoring


def rnn_bpc(model_path: Path, train: str, heldout: str) -> dict[str, float]:
    """The exported model's held-out bits/char, one stream through the runtime, read after
    the end of the training text (as the n-gram and compressors see it)."""
    from rnnedge.runtime import load

    lm = load(model_path, device="cpu", threads=1)
    context = train[-CONTEXT_CHARS:]
    scored = lm.evaluate(heldout, streams=1, chunk=CHUNK, context=context, warmup=len(context))
    return {"bpc": scored["bpc"], "chars": scored["chars"]}


def validation_split(train: str, fraction: float, separator: str) -> int:
    """Where the n-gram's order-choosing validation begins: the last `fraction` of the
    training text, from a document boundary."""
    return train.rfind(separator, 0, int(len(train) * (1 - fraction))) + len(separator)


def ngram_comparison(train: str, heldout: str, vocab: set[str], options: dict) -> dict:
    """Kneser-Ney: order chosen on validation (tail of the training documents), then
    refitted on all training text and scored once on the held-out part."""
    from ngram import KneserNey, choose_order

    start = time.perf_counter()
    cut = validation_split(train, options["validation_fraction"], options["separator"])
    order, valid_scores = choose_order(train[:cut], train[cut:], vocab, options["max_order"])
    model = KneserNey(train, order, vocab)
    bpc = model.bits(train, heldout, order) / len(heldout)
    return {
        "order": order,
        "validation_bpc_by_order": {str(n): s for n, s in valid_scores.items()},
        "validation_chars": len(train) - cut,
        "heldout_bpc": bpc,
        "seconds": time.perf_counter() - start,
    }


def comparison(recipe: dict, model_path: Path, text: str, cut: int) -> dict[str, Any]:
    """The shipped model against the n-gram and the compressors on the same held-out text."""
    from baselines import compressor_bpc

    options = recipe["compare"]
    train, heldout = text[:cut], text[cut:]
    result: dict[str, Any] = {
        "heldout_chars": len(heldout),
        "train_chars": len(train),
        "rnn": rnn_bpc(model_path, train, heldout),
    }
    if options.get("ngram_max_order"):
        ngram = {
            "max_order": options["ngram_max_order"],
            "validation_fraction": options.get("ngram_validation_fraction", 0.05),
            "separator": options.get("separator", "\n\n"),
        }
        result["kneser_ney"] = ngram_comparison(train, heldout, set(text), ngram)
    compressors = tuple(options.get("compressors", ("ppmd",)))
    result["compressors"] = compressor_bpc(train, heldout, compressors)
    print(f"comparison: {result}", file=sys.stderr)
    return result


def samples(model_path: Path, prompts: list[str], settings: list[dict]) -> list[dict]:
    """Generated text for each prompt and sampling setting, by the runtime."""
    from rnnedge.runtime import load
    from rnnedge.runtime.sampling import SamplingConfig

    lm = load(model_path, device="cpu", threads=1)
    out = []
    for prompt in prompts:
        for setting in settings:
            sampling = SamplingConfig(temperature=setting["temperature"])
            text = "".join(
                lm.generate(prompt, setting["tokens"], sampling, seed=setting.get("seed"))
            )
            out.append({"prompt": prompt, **setting, "text": prompt + text})
    return out


def command_line(model: str, sample: dict) -> str:
    """The CLI command that writes `sample`."""
    seed = f" --seed {sample['seed']}" if sample.get("seed") is not None else ""
    return (
        f"rnnedge infer generate {model} --prompt {sample['prompt']} "
        f"--temperature {sample['temperature']}{seed} --max-new-tokens {sample['tokens']}"
    )


def verdict(compare: dict[str, Any]) -> str:
    """One sentence: which baselines the RNN beats on the held-out text, and which not."""
    rnn = compare["rnn"]["bpc"]
    baselines = dict(compare["compressors"])
    if "kneser_ney" in compare:
        baselines[f"Kneser-Ney {compare['kneser_ney']['order']}-gram"] = compare["kneser_ney"][
            "heldout_bpc"
        ]
    beaten = [name for name, bpc in baselines.items() if rnn < bpc]
    ahead = [f"{name} ({bpc:.3f})" for name, bpc in baselines.items() if rnn >= bpc]
    if not ahead:
        return f"The RNN ({rnn:.3f} bits/char) beats every baseline here."
    return f"The RNN ({rnn:.3f} bits/char) does not yet beat {', '.join(ahead)}" + (
        f"; it beats {', '.join(beaten)}." if beaten else "."
    )
