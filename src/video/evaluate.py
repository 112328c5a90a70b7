"""``python -m src.eval data=video``: quality and temporal consistency of restored videos.

Videos with ground truth, either synthetic or the user's:

- synthetic (default): held-out photographs (Set5 under the shared folder, else the bundled
  held-out photos; never trained on) moved by a known camera path of the pretraining motion
  generator (:func:`src.data.motion.natural_motion_clip`: pans, tilts, zooms, static shots) at the
  model's resolution, then degraded by the checkpoint's task frame by frame, with one draw of the
  degradation per video (``degradation_in_time: constant``: the same blur, scale and darkness in
  every frame, fresh sensor noise per frame, as real footage) or a new draw per frame
  (``per_frame``);
- ``data.pairs_dir``: ``<dir>/degraded/<name>.<video or frame folder>`` beside
  ``<dir>/clean/<name>...`` with the same frame count and size.

Every setting of ``data.settings`` (temporal-consistency options of
:class:`src.video.restore.VideoOptions`) restores every video; the trajectories of each distinct
sampling rule (noise, early stop) are generated once and shared by the settings that differ only
in post-processing (output frame, colour, blend). Scores per setting: per-frame PSNR / SSIM /
LPIPS against the ground truth (mean over frames and videos), warping error (Lai et al. 2018) with
the flow and occlusion mask of the *ground-truth* video (``data.flow``; numbers compare only within
one flow method, which is recorded), and the flicker a video adds beyond the ground truth's own
change. The degraded input and the task's classical baseline (per frame) are scored alike.

Writes ``video_metrics.json``, ``video_table.md``, ``video_settings.png`` (quality vs consistency)
and, for the first ``samples`` videos, ``videos/<video>/<setting>.mp4`` side by side with the
input, in the run dir.

The videos come from :mod:`src.video.eval_data`, the per-method summary and the acceptance
criterion from :mod:`src.video.acceptance`; the settings are checked by
:class:`src.evaluation.options.EvalOptions` before a model loads.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from src.evaluation.options import EvalOptions
from src.utils.cli import ConfigError
from src.video.acceptance import ACCEPT_PSNR_LOSS_DB, acceptance, summarize
from src.video.eval_data import VideoItem, pair_videos, synthetic_videos

log = logging.getLogger(__name__)


def _score_video(frames, item, ref_flows, score, lpips_on: bool) -> dict:
    from src.metrics.temporal import flicker, warping_error

    per_frame = [score(f, c) for f, c in zip(frames, item.clean, strict=True)]
    return {
        "psnr": [s["psnr"] for s in per_frame],
        "ssim": [s["ssim"] for s in per_frame],
        "lpips": [s["lpips"] for s in per_frame] if lpips_on else None,
        "warping_error": warping_error(frames, flows=ref_flows)[0],
        "flicker": flicker(frames, reference=item.clean)[0],
    }


def evaluate_video(options: EvalOptions, run_dir: Path) -> dict:
    """Every consistency setting of ``options.video_settings`` (checked by
    :class:`~src.evaluation.options.EvalOptions`) on every video of ``options.data``, scored and
    written to ``run_dir``; returns video_metrics.json's data."""
    from tqdm import tqdm

    from src.evaluation.baselines import restore_baseline
    from src.evaluation.scoring import score_image
    from src.metrics.temporal import reference_flows
    from src.models.restorer import load_restorer
    from src.video.restore import FrameRestorer

    inference, settings, data_cfg = options.inference, options.video_settings, options.data
    flow = settings["independent"].flow
    loaders = pair_videos(data_cfg) if data_cfg.get("pairs_dir") else None
    restorer = load_restorer(options.ckpt, inference.model_overrides(), device=inference.device)
    if loaders is None:
        if restorer.task == "allinone":
            raise ConfigError(
                "an all-in-one checkpoint has no task degradation to synthesize: use data.pairs_dir="
            )
        loaders = synthetic_videos(
            data_cfg,
            options.degradation,
            restorer.task,
            restorer.height,
            restorer.width,
            inference.seed,
        )
    if options.max_images:
        loaders = loaders[: options.max_images]
    lpips_model = options.metrics.lpips_model()
    crop, y_channel = options.metrics.crop_border, options.metrics.y_channel

    def score(image, clean):
        return score_image(image, clean, None, lpips_model, crop, y_channel)

    sampling = {}  # (noise, early_stop) -> the settings sharing its trajectories
    for name, setting in settings.items():
        sampling.setdefault((setting.noise, setting.early_stop), []).append(name)
    started, per_video, timings = time.time(), [], {"generate_s": 0.0, "post_s": 0.0, "flow_s": 0.0}
    baseline_name = None
    for index, load in enumerate(tqdm(loaders, desc="eval video", unit="video")):
        item = load()
        prompt = restorer.prompt(item.caption)
        tick = time.time()
        ref_flows = reference_flows(item.clean, method=flow)
        timings["flow_s"] += time.time() - tick
        methods, outputs = {}, {}
        for (_, _), names in sampling.items():
            tick = time.time()
            generator = FrameRestorer(restorer, prompt, settings[names[0]])
            batch = int(settings[names[0]].batch)
            trajectories = np.concatenate(
                [
                    generator.generate(item.degraded[i : i + batch], i)
                    for i in range(0, len(item.degraded), batch)
                ]
            )
            timings["generate_s"] += time.time() - tick
            for name in names:
                tick = time.time()
                post = FrameRestorer(restorer, prompt, settings[name])
                outputs[name] = post.finish(item.degraded, trajectories)
                timings["post_s"] += time.time() - tick
                methods[name] = _score_video(outputs[name], item, ref_flows, score, lpips_model is not None)
        if options.baselines:
            methods["input"] = _score_video(item.degraded, item, ref_flows, score, lpips_model is not None)
            restored = []
            for frame, params in zip(item.degraded, item.params or [None] * len(item.degraded), strict=True):
                image, baseline_name = restore_baseline(restorer.task, frame, params)
                restored.append(image)
            outputs[baseline_name] = np.stack(restored)
            methods[baseline_name] = _score_video(
                outputs[baseline_name], item, ref_flows, score, lpips_model is not None
            )
        per_video.append(
            {
                "video": item.name,
                "motion": item.motion,
                "frames": len(item.clean),
                "prompt": prompt,
                "methods": methods,
            }
        )
        if index < options.samples:
            write_sample_videos(run_dir / "videos" / item.name, item, outputs)
    names = list(settings) + (["input", baseline_name] if options.baselines else [])
    summary = summarize(per_video, names)
    metrics = {
        "kind": "video",
        "task": restorer.task,
        "flow": flow,  # warping errors compare only within one flow method
        "warping_error_reference": "ground-truth video: its flow and Lai et al.'s occlusion mask",
        "methods": summary,
        "settings": {name: {k: v for k, v in vars(o).items()} for name, o in settings.items()},
        "baseline": baseline_name,
        "acceptance": acceptance(summary, list(settings)),
        "videos": per_video,
        "data": data_cfg,
        "checkpoint": restorer.description,
        "seed": options.inference.seed,
        "seconds": round(time.time() - started, 1),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    write_video_outputs(run_dir, metrics)
    return metrics


def write_sample_videos(folder: Path, item: VideoItem, outputs: dict) -> None:
    """``<folder>/<method>.mp4``: input | restored | ground truth, side by side."""
    from src.video.io import VideoWriter

    folder.mkdir(parents=True, exist_ok=True)
    for name, frames in outputs.items():
        panel = np.concatenate([item.degraded, frames, item.clean], axis=2)
        with VideoWriter(folder / f"{name}.mp4", panel.shape[2], panel.shape[1], item.fps) as writer:
            writer.write(panel)


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _percent(row: dict | None) -> str:
    reduction = row and row["warping_error_reduction"]
    return "-" if reduction is None else f"{-100 * reduction:+.1f} %"


def _db(row: dict | None) -> str:
    return "-" if not row else f"{row['psnr_change_db']:+.2f} dB"


def render_video_table(metrics: dict) -> str:
    acc = metrics["acceptance"]
    rel = acc["relative_to_independent"]
    lines = [
        f"Task {metrics['task']}; {metrics['methods']['independent']['videos']} videos; flow {metrics['flow']} "
        f"(warping error against the ground truth's flow and occlusions; x 1e3).",
        "",
        "| setting | PSNR | SSIM | LPIPS | warping error | flicker | WE vs independent | PSNR vs independent |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in metrics["methods"].items():
        r = rel.get(name)
        lines.append(
            f"| {name} | {_fmt(s['psnr'], 2)} | {_fmt(s['ssim'], 3)} | {_fmt(s['lpips'], 3)} | "
            f"{_fmt(s['warping_error'] * 1e3 if s['warping_error'] is not None else None, 3)} | {_fmt(s['flicker'], 2)} | "
            f"{_percent(r)} | {_db(r)} |"
        )
    best = acc["best_setting"]
    lines += [
        "",
        f"Best setting within {ACCEPT_PSNR_LOSS_DB} dB of independent: **{best}**"
        + (
            f" (warping error {-100 * acc['best_warping_error_reduction']:+.1f} %, PSNR {acc['best_psnr_change_db']:+.2f} dB)"
            if best
            else ""
        )
        + f"; acceptance ({acc['criterion']}): {'yes' if acc['passed'] else 'NO'}.",
    ]
    return "\n".join(lines) + "\n"


def write_video_outputs(run_dir: Path, metrics: dict) -> None:
    from src.utils.io import write_text_atomic

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "video_metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_text_atomic(run_dir / "video_table.md", render_video_table(metrics))
    from src.video.figures import plot_video_settings

    plot_video_settings([metrics], run_dir / "video_settings.png")


def log_video_to_wandb(options: EvalOptions, metrics: dict, run_dir: Path) -> None:
    """One W&B run: a table of every setting, its scalars, and the sample videos as video panels."""
    import wandb

    from src.evaluation.wandb_logging import start_eval_run

    run = start_eval_run(
        options,
        f"eval_{metrics['task']}_video",
        {"data": "video", "flow": metrics["flow"], "seed": options.inference.seed},
    )
    try:
        columns = ["setting", "psnr", "ssim", "lpips", "warping_error", "flicker"]
        rows = [[name] + [scores.get(c) for c in columns[1:]] for name, scores in metrics["methods"].items()]
        payload = {"eval_video/settings": wandb.Table(columns=columns, data=rows)}
        for name, scores in metrics["methods"].items():
            for key in columns[1:]:
                if scores.get(key) is not None:
                    payload[f"eval_video/{name}/{key}"] = scores[key]
        for video in sorted((run_dir / "videos").glob("*/*.mp4")):
            payload[f"eval_video/samples/{video.parent.name}/{video.stem}"] = wandb.Video(
                str(video), format="mp4"
            )
        run.log(payload)
        run.summary["run_dir"] = str(run_dir)
    finally:
        run.finish()
