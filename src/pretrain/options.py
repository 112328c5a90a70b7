"""The settings of a pretraining, typed: what ``python -m src.pretrain_tiny`` parses and checks
(:func:`src.pretrain_tiny.parse_args`, which fills every default) and :func:`src.pretrain.run.pretrain`
runs. The fields keep the command line's order: the record lists them (``args``) in it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Settings that change the result; a resumed run must have the same ones.
RESULT_ARGS = (
    "autoencoder",
    "fit_clips",
    "vae_steps",
    "vae_batch",
    "vae_lr",
    "vae_crop",
    "temporal_weight",
    "bank_clips",
    "transformer_steps",
    "transformer_batch",
    "transformer_lr",
    "text_lr",
    "seed",
    "model",
)


@dataclass
class PretrainOptions:
    """The command line's options (``--fit-clips`` is ``fit_clips``), every default filled in."""

    autoencoder: str  # "codec" or "learned"
    fit_clips: int
    init_from: Path | None
    deblock: float
    vae_steps: int
    vae_batch: int
    vae_lr: float
    vae_crop: int
    temporal_weight: float
    bank_clips: int
    transformer_steps: int
    transformer_batch: int
    transformer_lr: float
    text_lr: float
    photos_dir: str  # a directory, or "none"
    seed: int
    threads: int
    checkpoint_minutes: float
    state_dir: Path | None
    fresh: bool
    budget_minutes: float | None
    stop_after: str | None  # one of src.pretrain.stages.STAGES
    model: str  # "tiny" or "tiny_wan"
    out: Path
    record: Path
