"""The real backbones: CogVideoX-5B-I2V (1.0) and CogVideoX1.5-5B-I2V, loaded with diffusers
``from_pretrained`` from a local directory or the Hugging Face cache, and their published
architectures for building on the meta device (``src.model_report``) without any weights.

The architecture dicts below are the published ``config.json`` values of THUDM's repositories
(transformer, VAE, T5 v1.1 XXL encoder, scheduler); experiments/README.md says where each came
from. Nothing here downloads unless ``model.download=true``.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import torch

from src.models.tiny import I2VComponents, build_scheduler
from src.utils.cli import ConfigError, InputError, UserError

log = logging.getLogger(__name__)

_TRANSFORMER_COMMON = {
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 64,
    "dropout": 0.0,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 32,  # noisy latents + image latents (I2V channel concat)
    "max_text_seq_length": 226,
    "norm_elementwise_affine": True,
    "norm_eps": 1e-05,
    "num_attention_heads": 48,
    "num_layers": 42,
    "out_channels": 16,
    "patch_size": 2,
    "spatial_interpolation_scale": 1.875,
    "temporal_compression_ratio": 4,
    "temporal_interpolation_scale": 1.0,
    "text_embed_dim": 4096,
    "time_embed_dim": 512,
    "timestep_activation_fn": "silu",
    "use_rotary_positional_embeddings": True,
}

_VAE = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 256, 512],
    "down_block_types": ["CogVideoXDownBlock3D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 16,
    "latents_mean": None,
    "latents_std": None,
    "layers_per_block": 3,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_height": 480,
    "sample_width": 720,
    "scaling_factor": 0.7,
    "shift_factor": None,
    "temporal_compression_ratio": 4,
    "up_block_types": ["CogVideoXUpBlock3D"] * 4,
    "use_post_quant_conv": False,
    "use_quant_conv": False,
}

# google/t5-v1_1-xxl, encoder only (text_encoder/config.json of both repositories).
_T5_XXL = {
    "d_model": 4096,
    "d_ff": 10240,
    "d_kv": 64,
    "num_layers": 24,
    "num_heads": 64,
    "vocab_size": 32128,
    "feed_forward_proj": "gated-gelu",
    "layer_norm_epsilon": 1e-06,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "tie_word_embeddings": False,
}

_SCHEDULER = {
    "_class_name": "CogVideoXDDIMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "snr_shift_scale": 1.0,
    "steps_offset": 0,
    "timestep_spacing": "trailing",
}

PUBLISHED_ARCHITECTURES: dict[str, dict] = {
    "cogvideox_5b_i2v": {
        "repo": "THUDM/CogVideoX-5b-I2V",
        "version": "1.0",
        "transformer": {
            **_TRANSFORMER_COMMON,
            "sample_frames": 49,
            "sample_height": 60,
            "sample_width": 90,
            "use_learned_positional_embeddings": True,
        },
        "vae": {**_VAE, "invert_scale_latents": False},
        "text_encoder": _T5_XXL,
        "scheduler": _SCHEDULER,
        "native": {"height": 480, "width": 720, "frames": 49, "fps": 8},
    },
    "cogvideox1.5_5b_i2v": {
        "repo": "THUDM/CogVideoX1.5-5B-I2V",
        "version": "1.5",
        "transformer": {
            **_TRANSFORMER_COMMON,
            "patch_size_t": 2,
            "patch_bias": False,
            "ofs_embed_dim": 512,
            "sample_frames": 81,
            "sample_height": 300,
            "sample_width": 300,
            "use_learned_positional_embeddings": False,
        },
        "vae": {**_VAE, "invert_scale_latents": True},
        "text_encoder": _T5_XXL,
        "scheduler": _SCHEDULER,
        "native": {"height": 768, "width": 1360, "frames": 81, "fps": 16},
    },
}

REQUIRED_SUBFOLDERS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")


class ModelWeightsMissing(UserError, FileNotFoundError):
    """The real model's weights are not on this machine; the message says where we looked and
    how to fetch them."""


def _fetch_hint(repo: str) -> str:
    return (
        f"fetch them on a machine with network access with `huggingface-cli download {repo}` "
        f"(about 22 GB; the HF cache is {os.environ.get('HF_HOME', '~/.cache/huggingface')}), or "
        f"`git lfs clone https://huggingface.co/{repo}` and pass model.path=<that dir>; "
        "model.download=true lets this run download it"
    )


def resolve_model_dir(name: str, path: str, revision: str | None = None, download: bool = False) -> Path:
    """A directory holding the diffusers layout (model_index.json + the five subfolders):
    ``path`` itself when it is a directory, else ``path`` as a hub id looked up in the local
    HF cache (downloaded only when ``download``). Raises :class:`ModelWeightsMissing`."""
    repo = PUBLISHED_ARCHITECTURES.get(name, {}).get("repo", path)
    candidate = Path(os.path.expanduser(str(path)))
    looked = []
    if candidate.is_dir():
        directory = candidate
    else:
        looked.append(f"no directory {candidate}")
        try:
            from huggingface_hub import snapshot_download

            directory = Path(snapshot_download(str(path), revision=revision, local_files_only=not download))
        except Exception as err:  # offline, not cached, no network, unknown repo: one message
            looked.append(f"hub id {path!r} not in the local Hugging Face cache ({type(err).__name__})")
            raise ModelWeightsMissing(
                f"model {name}: weights not found ({'; '.join(looked)}). {_fetch_hint(repo)}"
            ) from None
    missing = [sub for sub in REQUIRED_SUBFOLDERS if not (directory / sub).is_dir()]
    if missing or not (directory / "model_index.json").is_file():
        raise ModelWeightsMissing(
            f"model {name}: {directory} is not a complete diffusers CogVideoX I2V directory "
            f"(missing {missing or ['model_index.json']}). {_fetch_hint(repo)}"
        )
    return directory


def load_cogvideox_components(model_cfg: dict) -> I2VComponents:
    """Transformer, VAE, T5 + tokenizer and scheduler as shipped, via the diffusers I2V pipeline's
    ``from_pretrained``; base weights in ``model.dtype`` (bf16 by default)."""
    from diffusers import CogVideoXImageToVideoPipeline

    name = str(model_cfg.get("name"))
    directory = resolve_model_dir(
        name, str(model_cfg["path"]), model_cfg.get("revision"), bool(model_cfg.get("download", False))
    )
    dtype = getattr(torch, str(model_cfg.get("dtype", "bfloat16")))
    log.info("loading %s from %s (%s)", name, directory, dtype)
    pipeline = CogVideoXImageToVideoPipeline.from_pretrained(str(directory), torch_dtype=dtype)
    expected = PUBLISHED_ARCHITECTURES.get(name)
    if expected is not None:
        got_t = pipeline.transformer.config.get("patch_size_t")
        if got_t != expected["transformer"].get("patch_size_t"):
            raise InputError(
                f"model {name} expects CogVideoX {expected['version']} weights, but {directory} has "
                f"patch_size_t={got_t}: is model.path pointing at the other version?"
            )
    if pipeline.transformer.config.in_channels != 32:
        raise InputError(f"{directory} is not an image-to-video model (transformer in_channels != 32)")
    if model_cfg.get("vae_slicing", True):
        pipeline.vae.enable_slicing()
    if model_cfg.get("vae_tiling", True):
        pipeline.vae.enable_tiling()
    return I2VComponents(
        tokenizer=pipeline.tokenizer,
        text_encoder=pipeline.text_encoder,
        vae=pipeline.vae,
        transformer=pipeline.transformer,
        scheduler=pipeline.scheduler,
        max_sequence_length=int(model_cfg.get("max_sequence_length", 226)),
        name=name,
    )


def build_meta_models(name: str) -> dict[str, torch.nn.Module]:
    """The published transformer, VAE and T5 encoder on the meta device (no memory, no weights)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    if name not in PUBLISHED_ARCHITECTURES:
        raise ConfigError(f"unknown model {name!r} (known: {sorted(PUBLISHED_ARCHITECTURES)})")
    arch = copy.deepcopy(PUBLISHED_ARCHITECTURES[name])
    with torch.device("meta"):
        transformer = CogVideoXTransformer3DModel(**arch["transformer"])
        vae = AutoencoderKLCogVideoX(**arch["vae"])
        text_encoder = T5EncoderModel(T5Config(**arch["text_encoder"]))
    return {"transformer": transformer, "vae": vae, "text_encoder": text_encoder}


def published_scheduler(name: str):
    return build_scheduler(PUBLISHED_ARCHITECTURES[name]["scheduler"])


def check_geometry(
    name: str, frames: int, height: int, width: int, positional_embedding: str = "sincos"
) -> None:
    """Frame count and resolution against the published architecture, before any weight loads."""
    from src.models import recipe

    arch = PUBLISHED_ARCHITECTURES[name]
    recipe.latent_frame_count(frames)
    tcfg = arch["transformer"]
    multiple = 8 * tcfg["patch_size"]
    if height % multiple or width % multiple or height <= 0 or width <= 0:
        raise ConfigError(
            f"{name}: height and width must be positive multiples of {multiple}, got {height}x{width}"
        )
    native = (tcfg["sample_height"] * 8, tcfg["sample_width"] * 8)
    if (
        tcfg["use_learned_positional_embeddings"]
        and positional_embedding != "none"
        and (height, width) != native
    ):
        raise ConfigError(
            f"{name} (CogVideoX {arch['version']}) takes {native[0]}x{native[1]} only, got {height}x{width} "
            "(its learned positional embedding has that size); model.positional_embedding=none drops it"
        )
    if tcfg.get("patch_size_t") and (frames - 1) % 16:
        log.warning(
            "%s prefers 16N+1 frames (81, 161); %d frames are padded to %d latent frames",
            name,
            frames,
            recipe.latent_frame_count(frames)
            + recipe.latent_frame_padding(recipe.latent_frame_count(frames), 2),
        )
