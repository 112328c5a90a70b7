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
    if not OmegaConf.has_resolver("lora_tag"):
        OmegaConf.register_new_resolver("lora_tag", lora_tag)


register_resolvers()
