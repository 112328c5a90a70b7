"""``python -m src.eval`` on images: every generated frame of a checkpoint's trajectories scored
against the clean image, with the degraded input and the task's classical baseline, the temporal
consistency of each trajectory, sample strips, and the run dir's outputs (src/evaluation/tables.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from src.evaluation.aggregate import aggregate
from src.evaluation.options import EvalOptions
from src.evaluation.readers import allinone_items, paired_items, reloblur_items, synthetic_items
from src.evaluation.scoring import score_image
from src.evaluation.tables import write_outputs
from src.utils.cli import ConfigError, InputError, UserError

log = logging.getLogger(__name__)


def evaluate_images(options: EvalOptions, run_dir: Path) -> dict:
    """Scores of every image of ``options.data`` (any kind but video), written to ``run_dir``;
    returns frame_metrics.json's data. The data layout (paired, ReLoBlur) and a drift checkpoint
    are checked before a model loads."""
    from tqdm import tqdm

    from src.evaluation.baselines import restore_baseline
    from src.metrics.image import mean_colour_error
    from src.metrics.temporal import flicker, warping_error
    from src.models.restorer import load_restorer, restore_chained
    from src.restoration.outputs import strip_image

    kind, inference, data_cfg = options.kind, options.inference, options.data
    loaders = None  # paired / ReLoBlur: their layout errors surface before the model loads
    drift_checkpoint = None
    if options.drift:
        from src.models.checkpoints import resolve_checkpoint

        drift_checkpoint = resolve_checkpoint(options.drift)  # a bad drift= fails before a model loads
    if kind == "paired":
        loaders = paired_items(data_cfg)
    elif kind == "reloblur":
        loaders = reloblur_items(data_cfg)
    restorer = load_restorer(options.ckpt, inference.model_overrides(), device=inference.device)
    drift = (
        load_restorer(drift_checkpoint, inference.model_overrides(), device=inference.device)
        if drift_checkpoint
        else None
    )
    if kind == "reloblur" and restorer.task != "deblur":
        raise ConfigError(
            f"ReLoBlur is a deblurring benchmark but the checkpoint is for {restorer.task}; "
            "use a deblur checkpoint (or task=deblur to force it)"
        )
    if kind == "synthetic" and restorer.task == "allinone":
        raise ConfigError(
            "an all-in-one checkpoint has no progression schedule: evaluate it with data=allinone "
            "degradation=allinone (every category on held-out photos) or data=paired"
        )
    lpips_model = options.metrics.lpips_model()
    if kind == "synthetic":
        loaders = synthetic_items(
            data_cfg,
            options.degradation,
            restorer.task,
            restorer.height,
            restorer.width,
            restorer.frames,
            inference.seed,
        )
    elif kind == "allinone":
        loaders = allinone_items(
            data_cfg,
            options.degradation,
            restorer.height,
            restorer.width,
            inference.seed,
        )
    if options.max_images:
        loaders = loaders[: options.max_images]
    crop, y_channel = options.metrics.crop_border, options.metrics.y_channel
    ssim_y = options.metrics.ssim_y_channel

    def score(image, item):
        return score_image(image, item.clean, item.mask, lpips_model, crop, y_channel, ssim_y)

    rows, per_image = [], []
    samples_dir = run_dir / "samples"
    started = time.time()
    unscored = []  # [{"image", "reason"}]: what could not be read is listed, the rest is scored
    for index, load in enumerate(tqdm(loaders, desc=f"eval {kind}", unit="image")):
        try:
            item = load()  # one image pair in memory at a time
        except UserError as err:
            log.warning("not scored: %s", err)
            unscored.append({"image": getattr(load, "name", f"#{index + 1}"), "reason": str(err)})
            continue
        prompt = restorer.prompt(item.caption)
        (frames, info), *corrected = restore_chained(
            [restorer] + ([drift] if drift else []),
            item.degraded,
            item.caption,
            inference.seed,
            **inference.restore_kwargs(),
        )
        scores = [score(f, item) for f in frames]
        record = {"key": item.key, "prompt": prompt, "tiles": info["tiles"], "frames": scores}
        if item.category is not None:
            record["category"] = item.category
        record["first_frame_colour_error"] = mean_colour_error(frames[0], item.degraded)
        for frame, value in enumerate(scores, start=1):
            rows.append({"image": item.key, "method": "generated", "frame": frame, **value})
        if corrected:
            drift_frames = corrected[0][0]
            record["drift"] = [score(f, item) for f in drift_frames]
            for frame, value in enumerate(record["drift"], start=1):
                rows.append({"image": item.key, "method": "drift", "frame": frame, **value})
        if options.baselines:
            record["input"] = score(item.degraded, item)
            rows.append({"image": item.key, "method": "input", "frame": 1, **record["input"]})
            if restorer.task == "allinone":
                from src.evaluation.baselines import restore_category_baseline

                restored, name = restore_category_baseline(item.degraded, item.params)
            else:
                restored, name = restore_baseline(restorer.task, item.degraded, item.params)
            record["baseline"] = {"name": name, **score(restored, item)}
            rows.append({"image": item.key, "method": name, "frame": len(frames), **record["baseline"]})
        if options.metrics.temporal:
            record["warping_error"], _ = warping_error(frames)
            record["flicker"], _ = flicker(frames)
        per_image.append(record)
        if index < options.samples:
            from PIL import Image

            samples_dir.mkdir(parents=True, exist_ok=True)
            shown = [frames] + ([corrected[0][0][1:]] if corrected else [])
            panel = np.concatenate([item.degraded[None], *shown, item.clean[None]])
            labels = ["degraded", *(f"frame {k}" for k in range(1, len(frames) + 1))]
            labels += [f"drift {k}" for k in range(2, len(corrected[0][0]) + 1)] if corrected else []
            strip = strip_image(panel, 160, labels + ["target"])
            Image.fromarray(strip).save(samples_dir / f"{item.key.replace('/', '__')}.png")
    if not per_image:
        reasons = "; ".join(u["reason"] for u in unscored[:3])
        raise InputError(
            f"no images to evaluate{': none could be read (' + reasons + ')' if unscored else ''}"
        )
    metrics = aggregate(per_image, restorer, kind, lpips_model is not None)
    metrics["unscored"] = unscored
    metrics["seconds"] = round(time.time() - started, 1)
    metrics["settings"] = {
        "data": data_cfg,
        "mode": inference.mode,
        "seed": inference.seed,
        "checkpoint": restorer.description,
        "drift_checkpoint": drift.description if drift else None,
        "metric_conventions": {
            "crop_border": crop,
            "y_channel": y_channel,
            "ssim_y_channel": y_channel if ssim_y is None else ssim_y,
            "quantized": True,
        },
    }
    write_outputs(run_dir, metrics, rows)
    return metrics
