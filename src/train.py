"""python -m src.train task=lowlight prompt=adaptive [group=option ...] [key=value ...]

LoRA fine-tuning of an image-to-video backbone (CogVideoX I2V or Wan2.2-TI2V, chosen by model=) on
progression clips (see conf/train.yaml).
Each run writes to its Hydra run dir under outputs/: checkpoints/ (adapter-only), lora/ (diffusers
format), frame_metrics.json, samples/*.gif, run_summary.json, and the logs of its loggers.

A thin command line over :mod:`src.training`: the options are checked once
(:func:`src.training.validate.validate_config`, after the user-error policy's check of a preset's
mandatory values), then :func:`src.training.run.train` runs the job.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.training.run import train
from src.utils.cli import hydra_cli, user_errors
from src.utils.config import CONFIG_DIR
from src.utils.distributed import one_job_of_ranks

USAGE = "python -m src.train task=<sr|deblur|lowlight> prompt=<uniform|adaptive> [key=value ...]"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
@user_errors(USAGE)
def main(cfg: DictConfig) -> dict:
    """One job; W&B is always closed. The user-error policy (one line, exit 2; a failing multirun
    job recorded in FAILED.txt while the sweep goes on) is src.utils.cli's."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    sweep_group = Path(hydra_cfg.sweep.dir).name if multirun else None
    try:
        with one_job_of_ranks():  # a multirun's next job launches its own DDP ranks
            return train(cfg, run_dir, sweep_group)
    finally:
        try:
            import wandb

            if wandb.run is not None:
                wandb.finish()
        except ImportError:
            pass


def _alias_null_scheduler(argv: list[str]) -> list[str]:
    """``lr_scheduler=null`` (a constant LR, as before the group existed) selects ``lr_scheduler=none``."""
    return ["lr_scheduler=none" if a in ("lr_scheduler=null", "lr_scheduler=None") else a for a in argv]


if __name__ == "__main__":
    hydra_cli(main, "train", _alias_null_scheduler)
