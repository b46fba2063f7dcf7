"""Rich tables for `inspect`, `doctor` and export reports (presentation only)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from rnnedge.contract import Manifest


def validation_lines(validation: dict[str, Any]) -> list[str]:
    """One line per validation suite: what was checked and the key figure."""
    lines = []
    for suite in ("fp32", "int8"):
        checks = validation.get(suite)
        if not checks:
            continue
        parts = []
        for name, figures in checks.items():
            mark = "ok" if figures.get("passed") else "FAILED"
            if figures.get("gate") == "argmax agreement":
                detail = (
                    f"argmax agreement {figures['argmax_agreement']:.4f}, "
                    f"max |Δ| {figures['max_abs_diff']:.2e}"
                )
            elif "max_abs_diff" in figures:
                detail = f"max |Δ| {figures['max_abs_diff']:.2e}"
            elif "argmax_agreement" in figures:
                detail = f"argmax agreement {figures['argmax_agreement']:.4f}"
            elif "identical_prefix" in figures:
                detail = f"{figures['identical_prefix']}/{figures['tokens']} greedy tokens equal"
            else:
                detail = ""
            parts.append(f"{name} {mark}" + (f" ({detail})" if detail else ""))
        lines.append(f"validation {suite}: " + ", ".join(parts))
    quality = validation.get("quality")
    if quality:
        lines.append(
            f"held-out bits/char: fp32 {quality['bpc_fp32']:.4f} → int8 "
            f"{quality['bpc_int8']:.4f} ({quality['bpc_change_relative']:+.2%}) over "
            f"{quality['heldout_chars']:,} characters"
        )
    if not validation.get("validated", True):
        lines.append("validation skipped (--no-validate)")
    return lines


def key_value_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, escape(value))
    return table


def inspect_table(info: dict[str, Any]) -> Table:
    manifest: Manifest = info["manifest"]
    arch = manifest.architecture
    training = manifest.training
    tensors = lambda specs: "\n".join(  # noqa: E731
        f"{t.name} {t.dtype} [{', '.join(map(str, t.shape))}]" for t in specs
    )
    rows = [
        ("file", f"{info['path']} ({info['size_bytes'] / 1e6:.2f} MB)"),
        ("task", manifest.task),
        ("schema", manifest.schema_version),
        (
            "architecture",
            f"{arch.get('cell', '?').upper()} {arch.get('layers')} × "
            f"{arch.get('hidden')}, input {arch.get('input')}, "
            f"{arch.get('parameters', 0):,} parameters",
        ),
        (
            "vocabulary",
            f"{len(manifest.tokenizer['vocab'])} {manifest.tokenizer['kind']}s, "
            f"unknown: {manifest.tokenizer['unknown']}",
        ),
        ("inputs", tensors(manifest.inputs)),
        ("outputs", tensors(manifest.outputs)),
        ("state layout", manifest.state_layout),
        ("quantization", str(manifest.export.get("quantization") or "none (fp32)")),
        (
            "training",
            f"step {training.get('step')}, held-out {training.get('best_valid_bpc') or 0:.4f} "
            f"bits/char, {training.get('train_seconds') or 0:.0f} s",
        ),
        ("validation", "\n".join(validation_lines(manifest.validation)) or "none"),
        ("providers here", ", ".join(info["providers_available"])),
    ]
    return key_value_table("rnnedge model", rows)


def doctor_table(report: dict[str, Any]) -> Table:
    builds = report["onnxruntime_builds"]
    rows = [
        ("rnnedge", report["rnnedge"]),
        ("python", f"{report['python']} on {report['platform']}"),
        ("onnxruntime", ", ".join(f"{k} {v}" for k, v in builds.items()) or "not installed"),
        ("providers", ", ".join(report["providers"]) or "-"),
        ("torch", report["torch"] or "not installed (train/export unavailable)"),
        ("default model", report["default_model"] or "-"),
        ("problems", "\n".join(report["problems"]) or "none"),
    ]
    return key_value_table("rnnedge doctor", rows)


def bench_table(report: dict[str, Any]) -> Table:
    """`rnnedge bench`: one row per figure, medians (p90) and throughputs."""
    step = report["step_batch1"]
    rows = [
        ("provider", report["provider"]),
        (
            "step, batch 1",
            f"{step['median'] * 1e6:,.0f} µs median, {step['p90'] * 1e6:,.0f} µs "
            f"p90 ({1 / step['median']:,.0f} tokens/s)",
        ),
    ]
    for batch, figures in report["streams"].items():
        rows.append(
            (
                f"{batch} streams",
                f"{figures['tokens_per_s']:,.0f} tokens/s in total "
                f"({figures['median'] * 1e3:.2f} ms a step)",
            )
        )
    prefill = report["prefill"]
    rows.append((f"prefill {prefill['length']}", f"{prefill['tokens_per_s']:,.0f} tokens/s"))
    if report.get("cold_start"):
        cold = report["cold_start"]
        rows.append(
            (
                "cold start",
                f"{cold['median_s']:.3f} s median of {cold['runs']}, peak RSS "
                f"{cold['peak_rss_mb']:.0f} MB",
            )
        )
    return key_value_table("rnnedge bench", rows)
