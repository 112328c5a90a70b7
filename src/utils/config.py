"""Hydra/OmegaConf helpers shared by every CLI."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"


def shared_dir() -> Path:
    """The read-only shared folder (Set5, McMaster, LPIPS weights): $PROGRESTORE_SHARED, else
    ``../shared`` beside the repository; what ``paths.shared_dir`` resolves to for Hydra CLIs."""
    return Path(os.environ.get("PROGRESTORE_SHARED", PROJECT_ROOT.parent / "shared"))


def wandb_offline() -> bool:
    """W&B runs offline (no account needed) unless the user sets WANDB_MODE=online."""
    return os.environ.get("WANDB_MODE", "").lower() != "online"


def wandb_run_id(run_dir) -> str:
    """The W&B run id of a run dir: the same dir (a resumed or requeued run) logs into the same
    W&B run (with resume=allow); another dir, another run."""
    import hashlib

    return "r" + hashlib.sha256(str(Path(str(run_dir)).resolve()).encode()).hexdigest()[:15]


def slurm_tasks(devices) -> int:
    """``hydra/launcher=slurm``'s tasks (= GPUs) per node: ``trainer.devices``, which must be a
    number there (one SLURM task per GPU), not -1 or "auto"."""
    try:
        count = int(devices)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        from src.utils.cli import ConfigError

        raise ConfigError(
            f"hydra/launcher=slurm needs trainer.devices as a number of GPUs per node (got {devices!r}): "
            "e.g. trainer=ddp trainer.devices=4"
        )
    return count


def product(*numbers) -> int:
    """``${product:a,b}``: a x b (e.g. the FSDP mesh size: GPUs per node x nodes)."""
    result = 1
    for n in numbers:
        result *= int(n)
    return result


def lora_tag(rank, full=False) -> str:
    """The run-name part of a ``lora`` config: ``r<rank>`` (LoRA), ``full`` (lora=none)."""
    return "full" if full is True else f"r{rank}"


def register_resolvers() -> None:
    """``${project_root:}`` -> the repository root, so outputs land in <repo>/outputs from any cwd;
    ``${wandb_offline:}`` -> see :func:`wandb_offline`; ``${lora_tag:rank,full}`` -> see
    :func:`lora_tag`."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)
    if not OmegaConf.has_resolver("wandb_run_id"):
        OmegaConf.register_new_resolver("wandb_run_id", wandb_run_id)
    if not OmegaConf.has_resolver("slurm_tasks"):
        OmegaConf.register_new_resolver("slurm_tasks", slurm_tasks)
    if not OmegaConf.has_resolver("product"):
        OmegaConf.register_new_resolver("product", product)
    if not OmegaConf.has_resolver("lora_tag"):
        OmegaConf.register_new_resolver("lora_tag", lora_tag)


register_resolvers()
