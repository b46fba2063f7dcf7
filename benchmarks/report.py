"""Render benchmarks/report.json as REPORT.md and a plot (presentation only).

python benchmarks/report.py    # re-render from report.json, measuring nothing
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

US = 1e6


def floors(config: dict[str, Any], variant: str, peak: float) -> tuple[float, float]:
    """(batch-1 step floor in s, 256-stream step floor in s) for one variant."""
    kind = "int8" if "int8" in variant else "fp32"
    weights = config["variants"][f"onnxruntime {kind}"]["weight_bytes"]
    return weights / config["read_bandwidth"][kind], 256 * config["step_flops"] / peak


def one_stream(figures: dict[str, Any]) -> float:
    """Tokens/s of one stream on its fastest path (onnxruntime: IO binding, as `generate`
    steps), the honest denominator for "N streams are X× one stream"."""
    return 1 / figures["step_batch1"]["median"]


def config_table(name: str, config: dict[str, Any], peak: float) -> list[str]:
    lines = [
        f"### {name}: {config['about']}",
        "",
        f"{config['parameters']:,} parameters, {config['step_flops'] / 1e6:.1f} MFLOP a token.",
        "",
        "| variant | file | step, batch 1: median (p90) | tokens/s, 1 stream "
        "| 64 streams: tokens/s | ×1 stream | prefill 512: tokens/s | batch-1 floor: % reached "
        "| 256-stream FLOP floor: % reached |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, figures in config["variants"].items():
        step = figures["step_batch1"]
        b1_floor, big_floor = floors(config, variant, peak)
        one, many = one_stream(figures), figures["streams"][64]["tokens_per_s"]
        size = f"{figures['size_bytes'] / 1e6:.2f} MB" if figures.get("size_bytes") else "-"
        lines.append(
            f"| {variant} ({figures['threads']} thr) | {size} | {step['median'] * US:,.0f} µs "
            f"({step['p90'] * US:,.0f}) | {1 / step['median']:,.0f} | {many:,.0f} | "
            f"{many / one:.1f}× | {figures['prefill']['tokens_per_s']:,.0f} | "
            f"{100 * b1_floor / step['median']:.0f} % | "
            f"{100 * big_floor / figures['streams'][256]['median']:.0f} % |"
        )
    lines += ["", *interleaved_table(config["interleaved"])]
    lines += [
        "Total tokens/s with B streams stepped together (plain run() calls on numpy arrays, "
        "as StreamBatch makes them; at B = 1 that costs more than the bound step above, "
        "so ratios to one stream use the bound step):",
        "",
        "| variant | "
        + " | ".join(f"B = {b}" for b in config["variants"]["torch eager"]["streams"])
        + " |",
        "|---|" + "---|" * len(config["variants"]["torch eager"]["streams"]),
    ]
    for variant, figures in config["variants"].items():
        lines.append(
            f"| {variant} | "
            + " | ".join(f"{s['tokens_per_s']:,.0f}" for s in figures["streams"].values())
            + " |"
        )
    lines += ["", *threads_table(config["interleaved"])]
    bandwidth = config["read_bandwidth"]
    lines += [
        "",
        f"Read bandwidth measured for buffers of the weights' size: fp32 "
        f"{bandwidth['fp32'] / 1e9:.1f} GB/s, int8 {bandwidth['int8'] / 1e9:.1f} GB/s.",
        "",
    ]
    return lines


def interleaved_table(interleaved: dict[str, Any]) -> list[str]:
    """Batch-1 steps timed in turn within each round, and the per-round ratios."""
    lines = [
        f"Batch-1 step, interleaved: {interleaved['rounds']} rounds, each timing every variant "
        "in turn (this machine's speed drifts, so ratios are taken within a round; median and "
        "range over rounds; torch's reference is its better thread count in each round):",
        "",
        "| variant | step: median of rounds | rounds: fastest – slowest | vs torch eager | "
        "vs onnxruntime fp32 (1 thr) |",
        "|---|---|---|---|---|",
    ]
    for name, seconds in interleaved["seconds"].items():
        vs_torch, vs_fp32 = interleaved["vs_torch"][name], interleaved["vs_fp32"][name]
        lines.append(
            f"| {name} | {np.median(seconds) * US:,.0f} µs | {min(seconds) * US:,.0f} – "
            f"{max(seconds) * US:,.0f} µs | {ratio_cell(vs_torch, 1)} | {ratio_cell(vs_fp32, 2)} |"
        )
    return [*lines, ""]


def threads_table(interleaved: dict[str, Any]) -> list[str]:
    """onnxruntime at 1 and 2 intra-op threads, from the same interleaved rounds."""
    lines = [
        "onnxruntime intra-op threads, from the same interleaved rounds (speed-up of the "
        "second thread: median and range of per-round ratios). The CLI's defaults rest on "
        "these: 1 thread for one stream or input, up to 4 cores for batched work "
        "(`--num-streams`, several inputs, `eval`); `--threads` overrides:",
        "",
        "| model | step, batch 1: 1 thr | 2 thr | 2nd thread | 64 streams, tokens/s: 1 thr "
        "| 2 thr | 2nd thread |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, gains in interleaved["second_thread"].items():
        one, two = (f"onnxruntime {kind} ({t} thr)" for t in (1, 2))
        b1, s64 = interleaved["seconds"], interleaved["streams64_seconds"]
        lines.append(
            f"| {kind} | {np.median(b1[one]) * US:,.0f} µs | {np.median(b1[two]) * US:,.0f} µs "
            f"| {ratio_cell(gains['batch1'], 2)} | {64 / np.median(s64[one]):,.0f} | "
            f"{64 / np.median(s64[two]):,.0f} | {ratio_cell(gains['streams64'], 2)} |"
        )
    return [*lines, ""]


def sweep_table(sweep: dict[str, Any]) -> list[str]:
    """One stream, 1 vs 2 threads, by model width: the evidence for the batch-1 default."""
    widths = sorted({int(key.split("/")[1]) for key in sweep["second_thread"]})
    lines = [
        "## One stream: does a second thread pay?",
        "",
        f"Batch-1 step of 2-layer LSTMs (embedding 64, 63 tokens) at 1 and 2 threads, "
        f"{sweep['rounds']} interleaved rounds; cells: 1-thread step → 2-thread step, and the "
        "second thread's speed-up (median, range over rounds). Below 1× it costs more in "
        "hand-off than it saves, which is why one stream gets 1 thread by default.",
        "",
        "| precision | " + " | ".join(f"hidden {w}" for w in widths) + " |",
        "|---|" + "---|" * len(widths),
    ]
    for kind in ("fp32", "int8"):
        cells = []
        for width in widths:
            one = np.median(sweep["seconds"][f"{kind}/{width}/1"])
            two = np.median(sweep["seconds"][f"{kind}/{width}/2"])
            gain = ratio_cell(sweep["second_thread"][f"{kind}/{width}"], 2)
            cells.append(f"{one * US:,.0f} → {two * US:,.0f} µs, {gain}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def ratio_cell(ratio: dict[str, float], digits: int) -> str:
    return f"{ratio['median']:.{digits}f}× ({ratio['min']:.{digits}f}–{ratio['max']:.{digits}f})"


def streams_table(config: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """64 streams against one, with the ceiling a compute-bound batched step allows.

    A batched fp32 step cannot beat the machine's matrix-product peak, so 64 streams can
    be at most peak ÷ (one stream's tokens/s × FLOPs per token) times one stream: the
    faster the batch-1 step (the goal above), the lower that ceiling.
    """
    lines = [
        "Many streams (1 thread): raw batched step, the compute ceiling on the ratio (fp32), "
        "and end-to-end generation (1 stream: `generate`; 64: `StreamBatch`; sampling with "
        "temperature 0.8, top-k 40, stop matching, decoding):",
        "",
        "| variant | 1 stream: tokens/s | 64 streams: tokens/s | ×1 stream | ceiling on ×1 | "
        "generate, 1 stream | generate, 64 streams | ×1 stream |",
        "|---|---|---|---|---|---|---|---|",
    ]
    peaks = report["matmul_peak_flops_by_threads"]
    for variant, figures in config["variants"].items():
        threads = figures["threads"]
        one, many = one_stream(figures), figures["streams"][64]["tokens_per_s"]
        ceiling = (
            "-" if "int8" in variant else f"{peaks[threads] / (one * config['step_flops']):.1f}×"
        )
        row = f"| {variant} ({threads} thr) | {one:,.0f} | {many:,.0f} | {many / one:.1f}× | "
        row += f"{ceiling} | "
        generated = figures.get("end_to_end")
        if generated:
            g1, g64 = generated[1]["tokens_per_s"], generated[64]["tokens_per_s"]
            row += f"{g1:,.0f} | {g64:,.0f} | {g64 / g1:.1f}× |"
        else:
            row += "- | - | - |"
        lines.append(row)
    lines += [
        "",
        "fp32 matrix-product peak measured in this run: "
        + ", ".join(f"{peaks[t] / 1e9:.0f} GFLOP/s at {t} thr" for t in peaks)
        + ". int8 has no ceiling here: onnxruntime's int8 LSTM kernel outruns its own "
        "MatMulInteger op, so no measured int8 peak bounds it honestly.",
        "",
    ]
    return lines


def cuda_table(config: dict[str, Any], machine: dict[str, Any]) -> list[str]:
    """The GPU comparison (torch eager, onnxruntime fp32 and fp16), or why it is missing."""
    sizes = config["sizes"]
    fp16_cpu = config["fp16_cpu_step_batch1"]["median"]
    fp32_cpu = config["variants"]["onnxruntime fp32"]["step_batch1"]["median"]
    size_line = (
        f"Files: fp32 {sizes['fp32'] / 1e6:.2f} MB, int8 {sizes['int8'] / 1e6:.2f} MB, "
        f"fp16 {sizes['fp16'] / 1e6:.2f} MB. The fp16 file on the CPU provider: batch-1 step "
        f"{fp16_cpu * US:,.0f} µs ({fp32_cpu / fp16_cpu:.2f}× fp32's speed; ORT computes each "
        "op in fp32 between casts), which is why the runtime notes that fp16 is for CUDA."
    )
    if "cuda" not in config:
        providers = ", ".join(machine.get("onnxruntime_providers", []))
        return [
            f"On CUDA: not measured — this onnxruntime has no CUDA provider ({providers}). "
            "Run `make bench` where the `gpu` extra is installed for the fp16 rows. " + size_line,
            "",
        ]
    variants = config["cuda"]
    fp32_b1 = variants["onnxruntime fp32"]["step_batch1"]["median"]
    lines = [
        f"On CUDA ({machine.get('cuda_device') or 'GPU'}; logits return to the host each "
        "step, the state stays where each runtime keeps it):",
        "",
        "| variant | file | step, batch 1: median (p90) | vs fp32 | 64 streams: tokens/s | "
        "256 streams: tokens/s | prefill 512: tokens/s | generate, 1 stream | "
        "generate, 64 streams |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, figures in variants.items():
        step, streams = figures["step_batch1"], figures["streams"]
        size = f"{figures['size_bytes'] / 1e6:.2f} MB" if figures.get("size_bytes") else "-"
        generated = figures.get("end_to_end")
        rates = (
            f"{generated[1]['tokens_per_s']:,.0f} | {generated[64]['tokens_per_s']:,.0f}"
            if generated
            else "- | -"
        )
        lines.append(
            f"| {variant} | {size} | {step['median'] * US:,.0f} µs ({step['p90'] * US:,.0f}) | "
            f"{fp32_b1 / step['median']:.2f}× | {streams[64]['tokens_per_s']:,.0f} | "
            f"{streams[256]['tokens_per_s']:,.0f} | {figures['prefill']['tokens_per_s']:,.0f} | "
            f"{rates} |"
        )
    return [*lines, "", size_line, ""]


def write_markdown(report: dict[str, Any], path: Path) -> None:
    m = report["machine"]
    peak = report["matmul_peak_flops"]
    lines = [
        "# rnnedge benchmark report",
        "",
        "Produced by `make bench` (`python benchmarks/run.py`); the numbers are in `report.json`.",
        f"Machine: {m['cpu']}, {m['cores']} cores; {m['date']}. Python {m['python']}, numpy "
        f"{m['numpy']}, torch {m['torch']}, onnx {m['onnx']}, onnxruntime {m['onnxruntime']}, "
        f"rnnedge {m['rnnedge']}.",
        "",
        "Medians after warm-up; p90 in brackets. onnxruntime's batch-1 step is the path "
        "`generate` uses (IO binding, state kept in place); torch eager's is a plain call. "
        "Each configuration's variants share one set of (random, seeded) weights. "
        "torch eager is shown at its better thread count (1 or 2). "
        "Floors: a batch-1 step reads every weight once (weight bytes ÷ measured read bandwidth "
        "for a buffer of that size); 256 streams need 256 × the step's FLOPs ÷ the measured "
        f"peak of a 2048³ fp32 matrix product ({peak / 1e9:.0f} GFLOP/s, all cores).",
        "",
    ]
    for name, config in report["configs"].items():
        lines += config_table(name, config, peak)
        lines += streams_table(config, report)
        lines += cuda_table(config, m)
    if report.get("thread_sweep"):
        lines += sweep_table(report["thread_sweep"])
    shipped = report["shipped"]
    cold = shipped["cold_start"]
    lines += [
        "## The shipped model",
        "",
        f"`{shipped['path']}`: {shipped['size_bytes'] / 1e6:.2f} MB. Cold start of a fresh "
        f"`rnnedge infer generate --max-new-tokens 1` process: {cold['median_s']:.3f} s median "
        f"of {cold['runs']}, peak RSS {cold['peak_rss_mb']:.0f} MB (torch is never imported).",
        "",
    ]
    if report.get("classifiers"):
        lines += classifier_tables(report["classifiers"])
    lines += embedding_section(path.parent / "embedding.json")
    path.write_text("\n".join(lines))


def embedding_section(data_path: Path) -> list[str]:
    """The "Outside Python" section (Node.js, the browser), measured separately by
    benchmarks/embedding.py, when its data is beside the report."""
    if not data_path.exists():
        return []
    from embedding import render_section  # benchmarks/ is on sys.path, as for run.py

    return render_section(json.loads(data_path.read_text()))


def classifier_tables(classifiers: dict[str, Any]) -> list[str]:
    """Throughput of each shipped classifier, and of 1,024 inputs by chunk size."""
    lines = [
        "## Shipped classifiers (onnxruntime, 1 thread; the int8 twin is int8)",
        "",
        "| model | file | batch 1: sequences/s | batch 64: sequences/s |",
        "|---|---|---|---|",
    ]
    for name, figures in classifiers.items():
        lines.append(
            f"| {name} | {figures['size_bytes'] / 1e6:.2f} MB | "
            f"{figures['batch1']['sequences_per_s']:,.0f} | "
            f"{figures['batch64']['sequences_per_s']:,.0f} |"
        )
    chunks = list(next(iter(classifiers.values()))["chunks"])
    lines += [
        "",
        "`classify` of 1,024 inputs, sorted by length and run in chunks of N "
        "(sequences/s; the runtime's default chunk is marked *):",
        "",
        "| model | " + " | ".join(f"N = {n}" for n in chunks) + " |",
        "|---|" + "---|" * len(chunks),
    ]
    for name, figures in classifiers.items():
        cells = [
            f"{rate:,.0f}" + ("*" if int(n) == figures["default_chunk"] else "")
            for n, rate in figures["chunks"].items()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def plot_streams(report: dict[str, Any], path: Path) -> None:
    """Total tokens/s against the number of streams, one line per variant and config."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, axes = plt.subplots(1, len(report["configs"]), figsize=(11, 4), squeeze=False)
    for axis, (name, config) in zip(axes[0], report["configs"].items(), strict=True):
        for variant, figures in config["variants"].items():
            batches = [int(b) for b in figures["streams"]]
            axis.plot(
                batches,
                [s["tokens_per_s"] for s in figures["streams"].values()],
                marker="o",
                label=variant,
            )
        axis.set(
            xscale="log",
            yscale="log",
            title=name,
            xlabel="streams stepped together",
            ylabel="tokens/s in total",
        )
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def with_int_keys(value: Any) -> Any:
    """JSON turns the batch-size keys into strings; the renderers index them as ints."""
    if isinstance(value, dict):
        return {int(k) if k.isdigit() else k: with_int_keys(v) for k, v in value.items()}
    return value


def main() -> None:
    here = Path(__file__).resolve().parent
    report = with_int_keys(json.loads((here / "report.json").read_text()))
    write_markdown(report, here / "REPORT.md")
    plot_streams(report, here / "streams.png")


if __name__ == "__main__":
    main()
