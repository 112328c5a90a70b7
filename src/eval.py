"""python -m src.eval ckpt=<run dir | lora dir | .ckpt> data=<synthetic|paired|reloblur> [...]

Scores every generated frame of a checkpoint's trajectories against the clean image, the way the
paper reports them (per-frame PSNR / SSIM / LPIPS curves; for ReLoBlur, Table I's frame-wise
LPIPS), with the degraded input and the task's classical baseline in the same tables, and the
temporal consistency (warping error, flicker) of each trajectory.

Outputs in the run dir (``outputs/runs/eval/<time>/``): ``frame_metrics.json`` (the training
schema: task, prompt, frames, psnr, ssim, lpips, n_images, ... plus ``baselines``, ``temporal``,
``masked`` and ``table1_lpips``), ``metrics.csv`` (one row per image x method x frame),
``eval_table.md`` and ``samples/`` strips (degraded | trajectory | clean).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.evaluation.options import EvalOptions
from src.utils.cli import hydra_cli, user_errors
from src.utils.config import CONFIG_DIR

log = logging.getLogger(__name__)


@hydra.main(config_path=str(CONFIG_DIR), config_name="eval", version_base="1.3")
@user_errors("python -m src.eval ckpt=<run dir | lora dir | .ckpt> data=<synthetic|paired|reloblur>")
def main(cfg: DictConfig) -> dict:
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    options = EvalOptions.from_config(cfg)
    if options.kind == "video":  # videos with ground truth: src/video/evaluate.py
        from src.video.evaluate import evaluate_video, log_video_to_wandb, render_video_table

        metrics = evaluate_video(options, run_dir)
        if options.wandb:
            log_video_to_wandb(options, metrics, run_dir)
        print(render_video_table(metrics))
        log.info("eval outputs in %s", run_dir)
        return metrics
    from src.evaluation.images import evaluate_images
    from src.evaluation.tables import render_table
    from src.evaluation.wandb_logging import log_to_wandb

    metrics = evaluate_images(options, run_dir)
    if options.wandb:
        log_to_wandb(options, metrics, run_dir)
    print(render_table(metrics))
    log.info("eval outputs in %s", run_dir)
    return metrics


def _alias_data_group(argv: list[str]) -> list[str]:
    """``data=X`` selects the evaluation source (the group is eval_data, packaged as ``data``)."""
    return [f"eval_data@data={a[5:]}" if a.startswith("data=") else a for a in argv]


if __name__ == "__main__":
    hydra_cli(main, "eval", _alias_data_group)
