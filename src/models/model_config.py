"""The typed schema of every ``conf/model/*.yaml`` (:class:`ModelConfig`: the same keys in every
file; defaults live in the YAML files, none in code) and its validation. Every backbone family
(:class:`src.models.family.Backbone`) holds its config as a :class:`ModelConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from omegaconf import MISSING

from src.utils.cli import ConfigError


# -- the typed schema of every conf/model/*.yaml ------------------------------------------------
@dataclass
class NoiseAugmentation:
    enabled: bool = MISSING
    mean: float = MISSING  # first-frame noise sigma ~ LogNormal(mean, std), pixel space, per sample
    std: float = MISSING


@dataclass
class EncoderCache:
    enabled: bool = MISSING
    dir: str = MISSING


@dataclass
class Sampling:
    num_inference_steps: int = MISSING
    guidance_scale: float = MISSING


@dataclass
class ModelConfig:
    """Every key every ``conf/model/*.yaml`` sets (``MISSING`` = no default in code)."""

    name: str = MISSING
    weights: str | None = MISSING  # the tiny model's safetensors file; null for a real model
    path: str | None = MISSING  # a diffusers directory or hub id; null for a tiny model
    revision: str | None = MISSING
    download: bool = MISSING
    dtype: str = MISSING  # base weights; LoRA parameters stay fp32
    height: int = MISSING
    width: int = MISSING
    frames: int = MISSING
    max_sequence_length: int = MISSING
    positional_embedding: str = MISSING
    noise_augmentation: NoiseAugmentation = field(default_factory=NoiseAugmentation)
    condition_probability: float = MISSING  # probability a sample is image-conditioned
    loss_on_first_frame: bool = MISSING
    shift: float | None = MISSING  # flow-matching timestep shift (Wan); null for DDPM families
    gradient_checkpointing: bool = MISSING
    vae_slicing: bool = MISSING
    vae_tiling: bool = MISSING
    optimizer_8bit: bool = MISSING
    lora_targets: dict[str, list[str]] = MISSING  # named target sets the lora/*.yaml files use
    cache: EncoderCache = field(default_factory=EncoderCache)
    sampling: Sampling = field(default_factory=Sampling)


MODEL_KEYS = tuple(f.name for f in fields(ModelConfig))


def validate_model_config(config: dict) -> ModelConfig:
    """The model config as a typed :class:`ModelConfig`, or one :class:`ConfigError` naming the
    key (missing, unknown, or of the wrong type)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    values = {k: v for k, v in dict(config).items() if k != "_target_"}
    unknown = sorted(set(values) - set(MODEL_KEYS))
    missing = sorted(set(MODEL_KEYS) - set(values))
    if unknown or missing:
        raise ConfigError(
            f"model config {values.get('name', '?')}: "
            + "; ".join(
                part
                for part in (
                    f"unknown keys {unknown}" if unknown else "",
                    f"missing keys {missing}" if missing else "",
                )
                if part
            )
            + " (the schema is src.models.family.ModelConfig; every conf/model/*.yaml sets every key)"
        )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), values)
        typed = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        raise ConfigError(f"model.{key}: {str(err).splitlines()[0]}") from None
    return typed
