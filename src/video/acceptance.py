"""The summary of ``python -m src.eval data=video`` per method and its acceptance criterion (issue
15): the best consistency setting cuts the warping error of independent per-frame restoration by
at least 30 % while losing at most 0.3 dB of mean PSNR. Shared by the evaluation, its table and
the figures (:mod:`src.video.figures`)."""

from __future__ import annotations

import numpy as np

ACCEPT_WE_REDUCTION = 0.30  # issue 15: the best setting cuts warping error by >= 30 % vs independent
ACCEPT_PSNR_LOSS_DB = 0.3  # while losing at most 0.3 dB of mean PSNR


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarize(per_video: list[dict], names: list[str]) -> dict:
    """Per method: the means over every frame of every video, and the per-video values."""
    out = {}
    for name in names:
        scores = [v["methods"][name] for v in per_video if name in v["methods"]]
        out[name] = {
            "psnr": _mean([x for s in scores for x in s["psnr"]]),
            "ssim": _mean([x for s in scores for x in s["ssim"]]),
            "lpips": _mean([x for s in scores for x in (s["lpips"] or [])]),
            "warping_error": _mean([s["warping_error"] for s in scores]),
            "flicker": _mean([s["flicker"] for s in scores]),
            "videos": len(scores),
        }
    return out


def acceptance(summary: dict, settings: list[str]) -> dict:
    """The best setting (lowest warping error among those within 0.3 dB of independent's PSNR)
    and whether it cuts the warping error by at least 30 %."""
    reference = summary["independent"]
    rows = {}
    for name in settings:
        s = summary[name]
        rows[name] = {
            "warping_error_reduction": 1.0 - s["warping_error"] / reference["warping_error"]
            if reference["warping_error"]
            else None,
            "psnr_change_db": s["psnr"] - reference["psnr"],
        }
    eligible = [
        n for n in settings if n != "independent" and rows[n]["psnr_change_db"] >= -ACCEPT_PSNR_LOSS_DB
    ]
    best = min(eligible, key=lambda n: summary[n]["warping_error"]) if eligible else None
    return {
        "relative_to_independent": rows,
        "best_setting": best,
        "best_warping_error_reduction": rows[best]["warping_error_reduction"] if best else None,
        "best_psnr_change_db": rows[best]["psnr_change_db"] if best else None,
        "criterion": f"warping error -{ACCEPT_WE_REDUCTION:.0%} or better vs independent, PSNR loss <= {ACCEPT_PSNR_LOSS_DB} dB",
        "passed": bool(best and rows[best]["warping_error_reduction"] >= ACCEPT_WE_REDUCTION),
    }
