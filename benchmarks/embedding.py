"""Speed outside Python: the Node.js client (onnxruntime-node) and the browser
(onnxruntime-web, wasm, 1 and 2 threads) against the Python runtime, on the same models,
machine and run.

    python benchmarks/embedding.py [--rounds 5] [--repeats 3] [--tokens 500]

Measures, in every round and for every runtime in turn (the order rotates each round;
this shared machine drifts, so ratios are taken within a round):

- generation tokens/s: prompt "And God said", temperature 0.8, seed 1, N new tokens, one
  model call per token, timed from tokenizing the prompt to the last token (Python:
  ``Generator.generate``; Node.js and the browser: ``examples/node/model.mjs``'s
  ``generateIds``), on the shipped int8 KJV model and on an fp32 file of the same
  architecture (random seeded weights, exported here: no fp32 KJV file ships);
- a streaming classifier fed one character per call (tokenize, step, softmax), as the
  language box does: the shipped fp32 language identifier;
- cold start to the first token: a fresh ``rnnedge infer generate --max-new-tokens 1``
  process, a fresh ``node generate.mjs --max-new-tokens 1`` process, and in Chromium a
  fresh browser context's navigation to the first token (the browser already running).

Writes benchmarks/embedding.json, then re-renders benchmarks/REPORT.md from report.json
and it (``python benchmarks/report.py`` does the same, measuring nothing). Needs node/npm
with examples/node and examples/web installed (npm), Debian's chromium, and torch for the
fp32 export.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.bench import cpu_name

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
JSON_PATH = HERE / "embedding.json"
KJV = ROOT / "models" / "kjv-char-lstm.onnx"
LANGID = ROOT / "models" / "fortune-langid.onnx"
CHROMIUM = Path("/usr/bin/chromium")
LM_NAMES = ("kjv int8", "kjv-arch fp32")
PYTHON, NODE = "Python (onnxruntime)", "Node.js (onnxruntime-node)"
BROWSER = {1: "Chromium wasm, 1 thread", 2: "Chromium wasm, 2 threads"}
STREAM_TEXT = (
    "Das Wetter war kalt, also blieben wir zu Hause und lasen Bücher. "
    "Am Abend kamen unsere Freunde, und wir sprachen lange über die Reise nach Italien. "
    "Niemand wollte früh schlafen gehen, obwohl der Zug am nächsten Morgen sehr früh fuhr. "
)
COLD_PROMPT = ["--prompt", "And", "--max-new-tokens", "1", "--seed", "0"]


def export_fp32_twin(path: Path) -> None:
    """The shipped KJV architecture (2 × 512 LSTM, embedding 64) and vocabulary in fp32 with
    random seeded weights (speed does not depend on what weights learned), as `path`."""
    sys.path.insert(0, str(HERE))
    from run import CONFIGS, random_payload

    from rnnedge.exporter import export_payload
    from rnnedge.runtime import load

    _, payload = random_payload(CONFIGS["kjv-2x512"][0])
    payload["tokenizer"] = load(KJV).manifest.tokenizer  # the real vocabulary: real prompts
    path.write_bytes(export_payload(payload, None, run_validation=False)[0])


def python_worker(request: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process (`--worker`): the Python runtime's figures for `request`, the same
    workload measure.mjs times for Node.js and the browser."""
    import onnxruntime

    import rnnedge

    result: dict[str, Any] = {"generate": {}, "text": {}}
    settings = request["generate"]
    for name, path in request["lms"].items():
        lm = rnnedge.load(path, device="cpu", threads=1)
        sampling = lm.sampling_config(temperature=settings["temperature"])

        def generation(tokens: int, lm: Any = lm, sampling: Any = sampling) -> tuple[float, str]:
            began = time.perf_counter()
            pieces = lm.generate(settings["prompt"], tokens, sampling, seed=settings["seed"])
            text = "".join(pieces)
            return time.perf_counter() - began, text

        generation(50)  # warm-up, as measure.mjs
        runs = [generation(settings["tokens"]) for _ in range(request["repeats"])]
        result["generate"][name] = [seconds for seconds, _ in runs]
        result["text"][name] = runs[0][1]
    classifier = rnnedge.load(request["classifier"], device="cpu", threads=1)
    stream_seconds(classifier, request["stream"][:50])
    runs = [stream_seconds(classifier, request["stream"]) for _ in range(request["repeats"])]
    result["stream"] = [seconds for seconds, _ in runs]
    result["last"] = runs[0][1].tolist()
    result["versions"] = {
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
    }
    return result


def stream_seconds(classifier: Any, text: str) -> tuple[float, np.ndarray]:
    """Push `text` one character at a time; (wall seconds, the last probabilities [C])."""
    began = time.perf_counter()
    stream = classifier.open_stream()
    for ch in text:
        probs = stream.push(ch)  # [1, C]
    return time.perf_counter() - began, probs[-1]


def run_json(command: list[str], stdin: str | None = None) -> dict[str, Any]:
    """Run a worker and parse its JSON line; a failure raises with the worker's stderr."""
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=900
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cold_process(command: list[str]) -> dict[str, float]:
    """Wall seconds and peak RSS of one fresh process (rnnedge.bench's spawn probe)."""
    from rnnedge.bench import SPAWN_PROBE

    figures = run_json([sys.executable, "-c", SPAWN_PROBE, json.dumps(command)])
    if figures["exit_code"] != 0:
        raise RuntimeError(f"cold-start run failed: {' '.join(command)}")
    return {"seconds": figures["wall_s"], "peak_rss_mb": figures["max_rss_kib"] / 1024}


@contextlib.contextmanager
def site(fp32: Path) -> Iterator[str]:
    """`rnnedge web` (COOP/COEP headers, 127.0.0.1) over a root holding the checkout's
    examples, models and benchmarks plus extra/ (the fp32 twin); stopped by its PID."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("examples", "models", "benchmarks"):
            (root / name).symlink_to(ROOT / name)
        (root / "extra").mkdir()
        shutil.copy(fp32, root / "extra" / fp32.name)
        command = [sys.executable, "-m", "rnnedge", "web", "--port", "0", "--root", str(root)]
        server = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        try:
            url = server.stdout.readline().strip()  # http://127.0.0.1:PORT/examples/web/
            if not url.startswith("http://127.0.0.1:"):
                raise RuntimeError(f"rnnedge web did not start: {url!r}")
            yield url.removesuffix("examples/web/")
        finally:
            server.terminate()  # our own child, by its PID
            server.wait(timeout=30)


def browser_round(base: str, request: dict[str, Any], order: list[int]) -> dict[str, Any]:
    """One Chromium launch: a fresh context per thread count (in `order`), then the example
    page itself (examples/web) to its ready state."""
    lms = "&".join(f"lm={name}={url}" for name, url in request["urls"].items())
    pages = [
        {"query": f"{lms}&classifier=/models/{LANGID.name}&threads={threads}", "request": request}
        for threads in order
    ]
    node = shutil.which("node") or "node"
    answer = run_json(
        [node, str(HERE / "js" / "browser.mjs")],
        stdin=json.dumps({"base": base, "pages": pages, "examplePage": True}),
    )
    for threads, page in zip(order, answer["pages"], strict=True):
        if page["threads"] != threads or (threads > 1 and not page["isolated"]):
            raise RuntimeError(f"the page ran {page['threads']} threads, not {threads}")
    return {**answer, "pages": dict(zip(order, answer["pages"], strict=True))}


def figures(result: dict[str, Any], request: dict[str, Any], cold: dict[str, float]) -> dict:
    """One runtime's figures in one round: medians of its repeats as rates, and its text."""
    tokens, chars = request["generate"]["tokens"], len(request["stream"])
    return {
        "tokens_per_s": {
            name: tokens / float(np.median(s)) for name, s in result["generate"].items()
        },
        "chars_per_s": chars / float(np.median(result["stream"])),
        "cold": cold,
        "text": result["text"],
        "last": result["last"],
        "versions": result.get("versions", {}),
    }


def one_round(index: int, request: dict[str, Any], base: str) -> dict[str, Any]:
    """Every runtime once, in an order that rotates with `index`."""
    node = shutil.which("node") or "node"
    kjv = str(KJV)
    steps = {
        PYTHON: lambda: figures(
            run_json([sys.executable, str(HERE / "embedding.py"), "--worker", json.dumps(request)]),
            request,
            cold_process([sys.executable, "-m", "rnnedge", "infer", "generate", kjv, *COLD_PROMPT]),
        ),
        NODE: lambda: figures(
            run_json([node, str(HERE / "js" / "node-bench.mjs"), json.dumps(request)]),
            request,
            cold_process([node, str(ROOT / "examples/node/generate.mjs"), kjv, *COLD_PROMPT]),
        ),
        "browser": lambda: browser_round(base, request, [1, 2] if index % 2 == 0 else [2, 1]),
    }
    load = os.getloadavg()[0]  # this machine is shared: the report shows the range
    names = list(steps)
    names = names[index % len(names) :] + names[: index % len(names)]
    measured = {name: steps[name]() for name in names}
    browser = measured.pop("browser")
    for threads, page in browser["pages"].items():
        cold = {"seconds": page["cold"]}
        measured[BROWSER[threads]] = figures(page, request, cold)
    measured["example page ready (s)"] = browser["example"]["seconds"]
    versions = {**measured[PYTHON]["versions"], **measured[NODE]["versions"]}
    web = browser["pages"][1]["version"]
    return {
        "runtimes": measured,
        "versions": versions,
        "chromium": browser["chromium"],
        "web": web,
        "load_average": load,
    }


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": float(np.median(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per runtime: each figure's median and range over rounds, and its ratio to Python's
    taken within each round (> 1: faster than Python)."""
    summary: dict[str, Any] = {}
    python = [r["runtimes"][PYTHON] for r in rounds]
    for name in [PYTHON, NODE, *BROWSER.values()]:
        mine = [r["runtimes"][name] for r in rounds]
        rates = {lm: [m["tokens_per_s"][lm] for m in mine] for lm in LM_NAMES}
        py_rates = {lm: [p["tokens_per_s"][lm] for p in python] for lm in LM_NAMES}
        chars, py_chars = [m["chars_per_s"] for m in mine], [p["chars_per_s"] for p in python]
        cold, py_cold = [m["cold"]["seconds"] for m in mine], [p["cold"]["seconds"] for p in python]
        summary[name] = {
            "tokens_per_s": {lm: spread(rates[lm]) for lm in LM_NAMES},
            "tokens_vs_python": {
                lm: spread(np.divide(rates[lm], py_rates[lm]).tolist()) for lm in LM_NAMES
            },
            "chars_per_s": spread(chars),
            "chars_vs_python": spread(np.divide(chars, py_chars).tolist()),
            "cold_s": spread(cold),
            "cold_vs_python": spread(np.divide(py_cold, cold).tolist()),
        }
        if "peak_rss_mb" in mine[0]["cold"]:
            summary[name]["peak_rss_mb"] = spread([m["cold"]["peak_rss_mb"] for m in mine])
    summary["example page ready (s)"] = spread(
        [r["runtimes"]["example page ready (s)"] for r in rounds]
    )
    summary["wasm second thread"] = second_thread(rounds)
    return summary


def second_thread(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Chromium wasm at 2 threads against 1 thread, per round (> 1: the second thread pays):
    generation of each model and the character stream."""
    pairs = [(r["runtimes"][BROWSER[1]], r["runtimes"][BROWSER[2]]) for r in rounds]
    gains = {
        lm: spread([two["tokens_per_s"][lm] / one["tokens_per_s"][lm] for one, two in pairs])
        for lm in LM_NAMES
    }
    gains["stream"] = spread([two["chars_per_s"] / one["chars_per_s"] for one, two in pairs])
    return gains


def first_difference(a: str, b: str) -> int | None:
    """Index of the first character where `a` and `b` differ; None when equal."""
    if a == b:
        return None
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def agreement(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per runtime and model: where its generated text first differs from Python's (None:
    identical), and the largest |Δ| of the stream's last probabilities, over every round."""
    result: dict[str, Any] = {}
    for name in [NODE, *BROWSER.values()]:
        texts = {
            lm: sorted(
                {
                    first_difference(
                        r["runtimes"][PYTHON]["text"][lm], r["runtimes"][name]["text"][lm]
                    )
                    for r in rounds
                },
                key=lambda d: -1 if d is None else d,
            )
            for lm in LM_NAMES
        }
        probs = max(
            float(
                np.abs(
                    np.subtract(r["runtimes"][PYTHON]["last"], r["runtimes"][name]["last"])
                ).max()
            )
            for r in rounds
        )
        result[name] = {"first_difference": texts, "stream_probabilities_max_abs_diff": probs}
    return result


US_MS = 1000


def rate_cell(figure: dict[str, float]) -> str:
    return f"{figure['median']:,.0f} ({figure['min']:,.0f}–{figure['max']:,.0f})"


def ratio_cell(figure: dict[str, float]) -> str:
    return f"{figure['median']:.2f}× ({figure['min']:.2f}–{figure['max']:.2f})"


def seconds_cell(figure: dict[str, float]) -> str:
    return f"{figure['median']:.2f} s ({figure['min']:.2f}–{figure['max']:.2f})"


def speed_table(data: dict[str, Any]) -> list[str]:
    """One row per runtime: tokens/s of each model, chars/s of the stream, cold start."""
    s = data["settings"]
    lines = [
        f"| runtime | {s['models']['kjv int8']['label']}: tokens/s | × Python "
        f"| {s['models']['kjv-arch fp32']['label']}: tokens/s | × Python "
        f"| {s['models']['langid']['label']}, 1 char per call: chars/s | × Python "
        "| cold start to first token | × Python |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in data["summary"].items():
        if "tokens_per_s" not in f:
            continue
        cells = []
        for lm in LM_NAMES:
            cells += [rate_cell(f["tokens_per_s"][lm]), ratio_cell(f["tokens_vs_python"][lm])]
        cells += [rate_cell(f["chars_per_s"]), ratio_cell(f["chars_vs_python"])]
        cold = seconds_cell(f["cold_s"])
        if "peak_rss_mb" in f:
            cold += f", peak RSS {f['peak_rss_mb']['median']:.0f} MB"
        cells += [cold, ratio_cell(f["cold_vs_python"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def agreement_lines(data: dict[str, Any]) -> list[str]:
    """What the timed runs generated, compared with Python's (a check, not a timing)."""
    lines = []
    for name, found in data["agreement"].items():
        parts = []
        for lm, differences in found["first_difference"].items():
            label = data["settings"]["models"][lm]["label"]
            if differences == [None]:
                parts.append(f"{label} text identical to Python's in every round")
            else:
                where = ", ".join("none" if d is None else str(d) for d in differences)
                parts.append(f"{label} text first differs from Python's at character {where}")
        probs = found["stream_probabilities_max_abs_diff"]
        lines.append(
            f"- {name}: " + "; ".join(parts) + f"; stream probabilities within {probs:.1e}."
        )
    return lines


def precision_lines(data: dict[str, Any]) -> list[str]:
    """int8 against fp32 of the same architecture, per round and runtime: the int8 file is
    the fast one natively; whether it is in wasm is what a web app needs to know."""
    parts = []
    for name in [PYTHON, NODE, *BROWSER.values()]:
        ratios = [
            r["runtimes"][name]["tokens_per_s"]["kjv int8"]
            / r["runtimes"][name]["tokens_per_s"]["kjv-arch fp32"]
            for r in data["rounds"]
        ]
        parts.append(f"{name} {ratio_cell(spread(ratios))}")
    return [
        "Generation with the int8 file against the fp32 one (same architecture), within each "
        "round: " + ", ".join(parts) + ".",
        "",
    ]


def second_thread_lines(data: dict[str, Any]) -> list[str]:
    """The second wasm thread's effect, per round (absent from data measured before it)."""
    gains = data["summary"].get("wasm second thread")
    if not gains:
        return []
    labels = {lm: data["settings"]["models"][lm]["label"] for lm in LM_NAMES}
    parts = [f"{labels[lm]} generation {ratio_cell(gains[lm])}" for lm in LM_NAMES]
    parts.append(f"the character stream {ratio_cell(gains['stream'])}")
    return [
        "Chromium wasm at 2 threads against 1, within each round: " + ", ".join(parts) + ". "
        "2 is this machine's core count, and other processes kept both cores busy during the "
        "run (the load above): these rows say what a second thread does here, on a busy "
        "2-core machine, not on an idle or larger one.",
        "",
    ]


def render_section(data: dict[str, Any]) -> list[str]:
    """The report's "Outside Python" section from embedding.json's data (summaries are
    recomputed from its raw rounds, so a new summary renders for an old run)."""
    data = {**data, "summary": summarise(data["rounds"]), "agreement": agreement(data["rounds"])}
    s, m = data["settings"], data["machine"]
    page = data["summary"]["example page ready (s)"]
    loads = [r["load_average"] for r in data["rounds"]]
    return [
        "## Outside Python: Node.js and the browser",
        "",
        f"Produced by `python benchmarks/embedding.py` ({m['date']}; the numbers are in "
        f"`embedding.json`). {m['cpu']}, {m['cores']} cores, shared (1-minute load average "
        f"{min(loads):.1f}–{max(loads):.1f} at the rounds' starts). Python {m['python']} with "
        f"onnxruntime {m['onnxruntime']}; Node.js {m['node']} with onnxruntime-node "
        f"{m['onnxruntime-node']}; Chromium {m['chromium']} (headless) with onnxruntime-web "
        f"{m['onnxruntime-web']} (wasm, SIMD; 2 threads through a cross-origin isolated "
        "server, `rnnedge web`).",
        "",
        f"{s['rounds']} rounds; in each, every runtime runs in turn (order rotating) and its "
        f"figure is the median of {s['repeats']} timed runs after a warm-up; cells give the "
        "median over rounds (fastest–slowest round), and × Python is the ratio to Python's "
        "figure in the same round (> 1: faster). Every runtime uses one intra-op thread "
        f"unless the row says otherwise. Generation: prompt {s['prompt']!r}, temperature "
        f"{s['temperature']}, seed {s['seed']}, {s['tokens']} new tokens, one model call per "
        "token, timed from tokenizing the prompt to the last token. Stream: "
        f"{s['stream_chars']} characters of German pushed one per call (tokenize, step with "
        "the state carried, softmax), as the page's language box does. Cold start: a fresh "
        "`rnnedge infer generate --max-new-tokens 1` process, a fresh `node generate.mjs "
        "--max-new-tokens 1` process, and for Chromium a fresh browser context's navigation "
        "to the first token (browser already running; the page's modules, the "
        f"{s['wasm_bytes'] / 1e6:.1f} MB wasm binary and the model fetched from 127.0.0.1 "
        "uncached, compiled, session created, one token generated).",
        "",
        *speed_table(data),
        "",
        *precision_lines(data),
        *second_thread_lines(data),
        f"The example page itself (`examples/web/`, both of its default models opened) is "
        f"ready {seconds_cell(page)} after navigation in a fresh context.",
        "",
        *agreement_lines(data),
        "",
        *[f"- {note}" for note in s["models_notes"]],
        "",
    ]


def machine(rounds: list[dict[str, Any]], versions: dict[str, str]) -> dict[str, Any]:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "date": now(),
        **versions,
        "chromium": rounds[0]["chromium"],
        "onnxruntime-web": rounds[0]["web"],
    }


def settings(args: argparse.Namespace, fp32: Path) -> dict[str, Any]:
    wasm = ROOT / "examples/web/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm"
    return {
        "rounds": args.rounds,
        "repeats": args.repeats,
        "tokens": args.tokens,
        "prompt": "And God said",
        "temperature": 0.8,
        "seed": 1,
        "stream_chars": len(STREAM_TEXT),
        "wasm_bytes": wasm.stat().st_size,
        "fp32_sha256": hashlib.sha256(fp32.read_bytes()).hexdigest(),
        "models": {
            "kjv int8": {"path": "models/kjv-char-lstm.onnx", "label": "KJV int8 (shipped)"},
            "kjv-arch fp32": {"path": None, "label": "KJV architecture fp32"},
            "langid": {"path": "models/fortune-langid.onnx", "label": "langid fp32 (shipped)"},
        },
        "models_notes": [
            f"KJV int8 is the shipped `models/kjv-char-lstm.onnx` ({KJV.stat().st_size / 1e6:.2f} "
            "MB, 2 × 512 LSTM, dynamic int8). No fp32 KJV file ships, so the fp32 column is the "
            f"same architecture and vocabulary in fp32 ({fp32.stat().st_size / 1e6:.2f} MB) "
            "with random seeded weights, exported by this script (speed does not depend on "
            "what the weights learned; its text is noise).",
            "langid fp32 is the shipped `models/fortune-langid.onnx` "
            f"({LANGID.stat().st_size / 1e6:.2f} MB, LSTM-64, mean pooling: four state tensors "
            "carried per call).",
        ],
    }


def request_for(args: argparse.Namespace, fp32: Path) -> dict[str, Any]:
    return {
        "lms": {"kjv int8": str(KJV), "kjv-arch fp32": str(fp32)},
        "urls": {"kjv int8": f"/models/{KJV.name}", "kjv-arch fp32": f"/extra/{fp32.name}"},
        "classifier": str(LANGID),
        "repeats": args.repeats,
        "generate": {
            "prompt": "And God said",
            "tokens": args.tokens,
            "temperature": 0.8,
            "seed": 1,
        },
        "stream": STREAM_TEXT,
    }


def check_tools() -> None:
    """One line naming what is missing, before anything is measured."""
    node = shutil.which("node")
    if node is None:
        sys.exit("node is not on PATH: install Node.js (>= 18) to measure outside Python")
    installs = {
        "examples/node/node_modules/onnxruntime-node": "ONNXRUNTIME_NODE_INSTALL=skip npm install",
        "examples/web/node_modules/onnxruntime-web": "npm install",
        "examples/web/node_modules/playwright-core": "npm install",
    }
    for folder, command in installs.items():
        if not (ROOT / folder).is_dir():
            where = "/".join(Path(folder).parts[:2])
            sys.exit(f"{folder} is missing: cd {where} && {command}")
    if not CHROMIUM.exists():
        sys.exit("Debian's chromium is not installed (apt-get install chromium)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument(
        "--append",
        action="store_true",
        help="add these rounds to embedding.json's (same settings and versions), e.g. a "
        "later run at another time of day",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(python_worker(json.loads(args.worker))))
        return
    check_tools()
    earlier = json.loads(JSON_PATH.read_text()) if args.append else None
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "kjv-arch-fp32.onnx"
        export_fp32_twin(fp32)
        data = measure_rounds(args, fp32, earlier)
    from rnnedge.atomic import write_text_atomic

    write_text_atomic(JSON_PATH, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    sys.path.insert(0, str(HERE))
    import report

    report.main()
    print(f"wrote {JSON_PATH} and {HERE / 'REPORT.md'}", file=sys.stderr)


def measure_rounds(
    args: argparse.Namespace, fp32: Path, earlier: dict[str, Any] | None
) -> dict[str, Any]:
    """`args.rounds` new rounds (after `earlier`'s, which must share settings and versions)."""
    request, config = request_for(args, fp32), settings(args, fp32)
    if earlier is not None:
        check_same(earlier["settings"], config, "settings")
    start = len(earlier["rounds"]) if earlier else 0
    rounds = []
    with site(fp32) as base:
        for index in range(start, start + args.rounds):
            print(f"round {index + 1}/{start + args.rounds} …", file=sys.stderr)
            rounds.append({**one_round(index, request, base), "date": now()})
    found = machine(rounds, rounds[0]["versions"])
    if earlier is not None:
        check_same(earlier["machine"], found, "machine")
        found["date"] = f"{earlier['machine']['date']} and {found['date']}"
        rounds = earlier["rounds"] + rounds
    config["rounds"] = len(rounds)
    return {
        "machine": found,
        "settings": config,
        "rounds": rounds,
        "summary": summarise(rounds),
        "agreement": agreement(rounds),
    }


def check_same(before: dict[str, Any], now_: dict[str, Any], what: str) -> None:
    """--append refuses, in one line, rounds that would not compare with the earlier ones."""
    ignored = {"rounds", "date", "load_average", "models_notes"}
    differ = [k for k in before if k not in ignored and before[k] != now_.get(k)]
    if differ:
        sys.exit(
            f"--append: {what} differ from embedding.json's ({', '.join(differ)}); run without it"
        )


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


if __name__ == "__main__":
    main()
