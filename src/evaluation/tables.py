"""The outputs of ``python -m src.eval`` in its run dir: ``metrics.csv`` (one row per image x
method x frame), ``eval_table.md`` (per-frame scores, baselines, drift, categories, temporal
consistency, ReLoBlur's Table I row) and ``frame_metrics.json``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from src.reporting.tables import render_category_section

CSV_COLUMNS = ["image", "method", "frame", "psnr", "ssim", "lpips", "masked_psnr", "masked_ssim"]


def _fmt(value, digits: int) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def render_table(metrics: dict) -> str:
    frames = metrics["frames"]
    lines = [
        f"# Evaluation: {metrics['task']} ({metrics['prompt']} prompts), data={metrics['data']}, "
        f"{metrics['n_images']} image(s)",
        "",
        "| metric | " + " | ".join(f"f{f}" for f in frames) + " |",
        "|---|" + "---|" * len(frames),
    ]
    for name, digits in (("psnr", 2), ("ssim", 4), ("lpips", 4)):
        if metrics.get(name):
            lines.append(f"| {name.upper()} | " + " | ".join(_fmt(v, digits) for v in metrics[name]) + " |")
    for name in ("psnr", "ssim"):
        values = (metrics.get("masked") or {}).get(name)
        if values:
            lines.append(f"| masked {name.upper()} | " + " | ".join(_fmt(v, digits) for v in values) + " |")
    if metrics.get("baselines"):
        lines += ["", "| method | PSNR | SSIM | LPIPS |", "|---|---|---|---|"]
        lines.append(
            f"| generated, frame {frames[-1]} | {_fmt(metrics['psnr'][-1], 2)} | {_fmt(metrics['ssim'][-1], 4)} "
            f"| {_fmt((metrics.get('lpips') or [None])[-1], 4)} |"
        )
        for name, values in metrics["baselines"].items():
            label = "degraded input" if name == "input" else f"{name} (classical)"
            lines.append(
                f"| {label} | {_fmt(values['psnr'], 2)} | {_fmt(values['ssim'], 4)} | {_fmt(values['lpips'], 4)} |"
            )
    if metrics.get("drift"):
        d = metrics["drift"]
        lines += [
            "",
            f"Stage 1 + drift correction ({len(d['psnr'])}-frame correction of frame {frames[-1]}): last frame "
            f"PSNR {_fmt(d['last']['psnr'], 2)}, SSIM {_fmt(d['last']['ssim'], 4)}, LPIPS {_fmt(d['last']['lpips'], 4)} "
            f"(stage 1: {_fmt(metrics['psnr'][-1], 2)}, {_fmt(metrics['ssim'][-1], 4)}).",
        ]
    if metrics.get("categories"):
        lines += render_category_section(
            {**metrics, "label": f"{metrics['task']} on {metrics['data']}"}, None
        )
    if metrics.get("temporal"):
        t = metrics["temporal"]
        lines += [
            "",
            f"Temporal consistency: warping error {_fmt(t['warping_error'], 5)}, flicker {_fmt(t['flicker'], 3)}.",
        ]
    if metrics.get("table1_lpips"):
        lines += [
            "",
            "Table I row (frame-wise LPIPS on ReLoBlur):",
            "",
            "| | " + " | ".join(f"f{f}" for f in frames) + " |",
            "|---|" + "---|" * len(frames),
            "| ours | " + " | ".join(_fmt(v, 3) for v in metrics["table1_lpips"]) + " |",
            "| paper | 0.335 | 0.330 | 0.323 | 0.319 | 0.316 | 0.318 | 0.316 | 0.317 | 0.317 |",
        ]
    if metrics.get("unscored"):
        lines += ["", f"Not scored ({len(metrics['unscored'])} image(s) could not be read):", ""]
        lines += [f"- {u['image']}: {u['reason']}" for u in metrics["unscored"]]
    return "\n".join(lines) + "\n"


def write_outputs(run_dir: Path, metrics: dict, rows: list[dict]) -> None:
    """Each file appears whole (temp file + rename); frame_metrics.json last, as the sign of a
    finished evaluation."""
    import io

    from src.metrics import frame_metrics
    from src.utils.io import write_text_atomic

    run_dir.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_COLUMNS})
    write_text_atomic(run_dir / "metrics.csv", table.getvalue())
    write_text_atomic(run_dir / "eval_table.md", render_table(metrics))
    frame_metrics.write(run_dir, metrics)
