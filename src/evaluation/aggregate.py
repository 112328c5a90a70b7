"""Aggregation of ``python -m src.eval``'s per-image records into frame_metrics.json (the training
schema of src/metrics/frame_metrics.py): per-frame means over images, the degraded input and the
classical baselines, temporal consistency, masked scores, the drift-corrected trajectories and,
for all-in-one data, one record per degradation category."""

from __future__ import annotations

import math

import numpy as np


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else None


def aggregate(per_image: list[dict], restorer, kind: str, has_lpips: bool) -> dict:
    """Per-frame means over images (the training schema) plus baselines, temporal and masks."""
    num_frames = len(per_image[0]["frames"])

    def frame_means(metric: str) -> list | None:
        values = [_mean(r["frames"][f].get(metric) for r in per_image) for f in range(num_frames)]
        return None if all(v is None for v in values) else values

    from src.metrics import frame_metrics

    psnr, ssim, lpips = frame_means("psnr"), frame_means("ssim"), frame_means("lpips") if has_lpips else None
    metrics = frame_metrics.make(
        restorer.task, restorer.prompt_mode, psnr, ssim, lpips, len(per_image), data=kind
    )
    colour = [r["first_frame_colour_error"] for r in per_image]
    metrics["first_frame_colour_error"] = {"mean": float(np.mean(colour)), "max": float(np.max(colour))}
    if "input" in per_image[0]:
        metrics["input_psnr"] = _mean(r["input"]["psnr"] for r in per_image)
        metrics["input_ssim"] = _mean(r["input"]["ssim"] for r in per_image)
        metrics["baselines"] = {
            "input": {m: _mean(r["input"].get(m) for r in per_image) for m in ("psnr", "ssim", "lpips")},
        }
        for name in sorted({r["baseline"]["name"] for r in per_image}):
            chosen = [r["baseline"] for r in per_image if r["baseline"]["name"] == name]
            metrics["baselines"][name] = {
                m: _mean(b.get(m) for b in chosen) for m in ("psnr", "ssim", "lpips")
            } | {"n_images": len(chosen)}
    if "warping_error" in per_image[0]:
        metrics["temporal"] = {
            "warping_error": _mean(r["warping_error"] for r in per_image),
            "flicker": _mean(r["flicker"] for r in per_image),
            "definition": "src/metrics/temporal.py (Lai et al. 2018 warping error; DIS flow)",
        }
    if any("masked_psnr" in r["frames"][0] for r in per_image):
        metrics["masked"] = {"psnr": frame_means("masked_psnr"), "ssim": frame_means("masked_ssim")}
    if kind == "reloblur":
        metrics["table1_lpips"] = lpips
    if "drift" in per_image[0]:
        metrics["drift"] = _trajectory_means([r["drift"] for r in per_image], has_lpips)
    if any("category" in r for r in per_image):
        metrics["categories"] = {
            category: category_record([r for r in per_image if r.get("category") == category], has_lpips)
            for category in sorted({r["category"] for r in per_image if "category" in r})
        }
    return metrics


def _trajectory_means(trajectories: list[list[dict]], has_lpips: bool) -> dict:
    """Per-frame means of scored trajectories and their last frame: {psnr, ssim, lpips, last}."""
    count = len(trajectories[0])
    out = {
        metric: [_mean(t[f].get(metric) for t in trajectories) for f in range(count)]
        for metric in ("psnr", "ssim", "lpips")
    }
    if not has_lpips:
        out["lpips"] = None
    out["last"] = {metric: (values[-1] if values else None) for metric, values in out.items()}
    return out


def category_record(records: list[dict], has_lpips: bool) -> dict:
    """One category of frame_metrics.json's ``categories`` (schema in src/metrics/frame_metrics.py)."""
    entry = {"n_images": len(records), **_trajectory_means([r["frames"] for r in records], has_lpips)}
    if "input" in records[0]:
        entry["input"] = {m: _mean(r["input"].get(m) for r in records) for m in ("psnr", "ssim", "lpips")}
        entry["baseline"] = {
            "name": records[0]["baseline"]["name"],
            **{m: _mean(r["baseline"].get(m) for r in records) for m in ("psnr", "ssim", "lpips")},
        }
    if "drift" in records[0]:
        entry["drift"] = _trajectory_means([r["drift"] for r in records], has_lpips)
    return entry
