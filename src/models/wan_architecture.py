"""The Wan2.2-TI2V-5B architecture as published (transformer, VAE, UMT5 configs; the UniPC flow
scheduler) and a tiny CPU-sized Wan2.2 built from the same diffusers classes
(``WanTransformer3DModel``, ``AutoencoderKLWan``, UMT5); the models on the meta device, the
diffusers ``WanImageToVideoPipeline(expand_timesteps=True)`` over components, and the family's
geometry and token counts. The recipe (latents, loss, sampling) is :mod:`src.models.wan_recipe`,
the backbone family :mod:`src.models.wan`."""

from __future__ import annotations

import copy
import logging
import math

import torch

from src.models.family import I2VComponents
from src.utils.cli import ConfigError


def _drop_torchvision_advice(record) -> bool:
    # Importing WanImageToVideoPipeline makes transformers resolve CLIPImageProcessor (the
    # pipeline's optional image encoder, unused by TI2V) and advise installing torchvision, which
    # cannot load beside this platform's torch wheel: the advice is wrong here, the notice noise.
    return "requires torchvision (not installed)" not in str(record.msg)


logging.getLogger("transformers.utils.import_utils").addFilter(_drop_torchvision_advice)

# Wan-AI/Wan2.2-TI2V-5B-Diffusers vae/config.json: per-channel statistics of the 48 latent
# channels (the same lists as the original Wan2.2 code's ``Wan2_2_VAE`` mean/std).
_WAN22_LATENTS_MEAN = [
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557,
    -0.1382, 0.0542, 0.2813, 0.0891, 0.1570, -0.0098, 0.0375, -0.1825,
    -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230,
    -0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748,
    0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
]  # fmt: skip
_WAN22_LATENTS_STD = [
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013,
    0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978,
    0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093,
    0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887,
    0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
]  # fmt: skip

# The repository's scheduler/scheduler_config.json: UniPC with flow sigmas, shift 5.
_SCHEDULER = {
    "_class_name": "UniPCMultistepScheduler",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "disable_corrector": [],
    "dynamic_thresholding_ratio": 0.995,
    "final_sigmas_type": "zero",
    "flow_shift": 5.0,
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "predict_x0": True,
    "prediction_type": "flow_prediction",
    "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0,
    "solver_order": 2,
    "solver_p": None,
    "solver_type": "bh2",
    "steps_offset": 0,
    "thresholding": False,
    "timestep_spacing": "linspace",
    "trained_betas": None,
    "use_beta_sigmas": False,
    "use_exponential_sigmas": False,
    "use_flow_sigmas": True,
    "use_karras_sigmas": False,
}

PUBLISHED_ARCHITECTURES: dict[str, dict] = {
    "wan2.2_ti2v_5b": {
        "repo": "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        "version": "2.2-TI2V",
        # transformer/config.json
        "transformer": {
            "patch_size": [1, 2, 2],
            "num_attention_heads": 24,
            "attention_head_dim": 128,
            "in_channels": 48,
            "out_channels": 48,
            "text_dim": 4096,
            "freq_dim": 256,
            "ffn_dim": 14336,
            "num_layers": 30,
            "cross_attn_norm": True,
            "qk_norm": "rms_norm_across_heads",
            "eps": 1e-06,
            "image_dim": None,
            "added_kv_proj_dim": None,
            "rope_max_seq_len": 1024,
            "pos_embed_seq_len": None,
        },
        # vae/config.json (Wan2.2 VAE: 2x2 pixel patchify, then 8x spatial / 4x temporal)
        "vae": {
            "attn_scales": [],
            "base_dim": 160,
            "decoder_base_dim": 256,
            "dim_mult": [1, 2, 4, 4],
            "dropout": 0.0,
            "in_channels": 12,
            "out_channels": 12,
            "is_residual": True,
            "latents_mean": _WAN22_LATENTS_MEAN,
            "latents_std": _WAN22_LATENTS_STD,
            "num_res_blocks": 2,
            "patch_size": 2,
            "scale_factor_spatial": 16,
            "scale_factor_temporal": 4,
            "temperal_downsample": [False, True, True],
            "z_dim": 48,
        },
        # google/umt5-xxl, encoder only (text_encoder/config.json)
        "text_encoder": {
            "d_model": 4096,
            "d_ff": 10240,
            "d_kv": 64,
            "num_layers": 24,
            "num_heads": 64,
            "vocab_size": 256384,
            "feed_forward_proj": "gated-gelu",
            "relative_attention_num_buckets": 32,
            "relative_attention_max_distance": 128,
            "layer_norm_epsilon": 1e-06,
            "tie_word_embeddings": False,
        },
        "scheduler": _SCHEDULER,
        "native": {"height": 704, "width": 1280, "frames": 121, "fps": 24},
        "max_sequence_length": 512,
    },
}

# The tiny Wan2.2: same classes, same latent width (48 channels), same 2x2 pixel patchify and 4x
# temporal compression, but only two VAE down stages (8x spatial in all instead of 16x) so a
# 64x112 clip keeps 8x14 latents (4x7 tokens per latent frame; 16x would leave 2x4 at 64x128).
# 8x16=16 is then the spatial multiple: 64x112 is the geometry of the tiny CogVideoX too.
TINY_WAN_LEARNED_VAE_ARCHITECTURE: dict = {
    "height": 64,
    "width": 112,
    "frames": 9,
    "vae": {
        "base_dim": 24,
        "decoder_base_dim": 32,
        "z_dim": 48,
        "dim_mult": [1, 2, 2],  # the last stage keeps its width (residual shortcut), as [.., 4, 4]
        "num_res_blocks": 2,
        "attn_scales": [],
        "temperal_downsample": [True, True],
        "dropout": 0.0,
        "is_residual": True,
        "in_channels": 12,
        "out_channels": 12,
        "patch_size": 2,
        "scale_factor_spatial": 8,  # patchify 2 x two 2x down stages
        "scale_factor_temporal": 4,
        # placeholders (identity normalisation) until a pretrained tiny VAE measures its own
        "latents_mean": [0.0] * 48,
        "latents_std": [1.0] * 48,
    },
    "transformer": {
        "patch_size": [1, 2, 2],
        "num_attention_heads": 4,
        "attention_head_dim": 32,
        "in_channels": 48,
        "out_channels": 48,
        "text_dim": 128,
        "freq_dim": 64,
        "ffn_dim": 256,
        "num_layers": 2,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-06,
        "image_dim": None,
        "added_kv_proj_dim": None,
        "rope_max_seq_len": 1024,
    },
    "text_encoder": {
        "vocab_size": 384,  # ByT5: 256 bytes + 3 specials + 125 extra ids
        "d_model": 128,
        "d_kv": 32,
        "d_ff": 256,
        "num_layers": 2,
        "num_heads": 4,
        "feed_forward_proj": "gated-gelu",
        "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128,
        "layer_norm_epsilon": 1e-06,
        "tie_word_embeddings": False,
        "seed": 0,
    },
    "max_sequence_length": 160,  # prompt tokens (bytes for ByT5); Wan uses 512
    "scheduler": _SCHEDULER,
}


def _tiny_wan_with_codec() -> dict:
    from src.models.tiny import with_codec

    arch = with_codec(TINY_WAN_LEARNED_VAE_ARCHITECTURE, "tiny_wan")
    # A token is 2x2 latents x 48 channels = 192 numbers (16x16 pixels): a 128-wide stream cannot
    # carry a token of the first frame to the others whole. 6 heads x 32 = 192 wide, 3 blocks:
    # measured 1.6x the 2-block, 128-wide step (UMT5 and the bank-side work do not grow).
    arch["transformer"].update(num_attention_heads=6, num_layers=3, ffn_dim=384)
    return arch


# The default tiny Wan2.2 (model=tiny_wan): UMT5 and a 3-block, 192-wide transformer over the
# linear codec (src/models/codec.py) of the tiny Wan VAE's geometry (8x spatial, 4x temporal, 48
# channels); TINY_WAN_LEARNED_VAE_ARCHITECTURE (model=tiny_wan_learned_vae) keeps the learned
# tiny VAE and the 2-block, 128-wide transformer.
TINY_WAN_ARCHITECTURE: dict = _tiny_wan_with_codec()


def _architecture(name: str) -> dict:
    if name in PUBLISHED_ARCHITECTURES:
        return PUBLISHED_ARCHITECTURES[name]
    if name == "tiny_wan":
        return TINY_WAN_ARCHITECTURE
    raise ConfigError(f"unknown Wan model {name!r} (known: {sorted(PUBLISHED_ARCHITECTURES) + ['tiny_wan']})")


def build_scheduler(config: dict):
    """The UniPC flow scheduler of a ``scheduler`` config dict (``_class_name`` ignored)."""
    from diffusers import UniPCMultistepScheduler

    config = {k: v for k, v in config.items() if not k.startswith("_")}
    return UniPCMultistepScheduler.from_config(config)


# ----------------------------------------------------------------------------- models


def build_meta_models(name: str = "wan2.2_ti2v_5b") -> dict[str, torch.nn.Module]:
    """The published transformer, VAE and UMT5 encoder on the meta device (no memory, no weights)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    arch = copy.deepcopy(_architecture(name))
    text_cfg = {k: v for k, v in arch["text_encoder"].items() if k != "seed"}
    with torch.device("meta"):
        transformer = WanTransformer3DModel(**arch["transformer"])
        vae = AutoencoderKLWan(**arch["vae"])
        text_encoder = UMT5EncoderModel(UMT5Config(**text_cfg))
    return {"transformer": transformer, "vae": vae, "text_encoder": text_encoder}


def build_tiny_wan_components(architecture: dict | None = None) -> I2VComponents:
    """Randomly initialised tiny Wan2.2 (VAE and transformer from the global RNG, the UMT5 encoder
    from its fixed seed without touching the global RNG), the download-free ``ByT5Tokenizer``, and
    the UniPC flow scheduler; every module in eval mode, as ``from_pretrained`` returns them."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from src.models.tiny import assemble_tiny

    arch = copy.deepcopy(architecture or TINY_WAN_ARCHITECTURE)
    return assemble_tiny(
        arch,
        lambda cfg: UMT5EncoderModel(UMT5Config(**cfg)),
        AutoencoderKLWan,
        WanTransformer3DModel,
        build_scheduler(arch["scheduler"]),
        "tiny_wan",
    )


def wan_pipeline(components):
    """A diffusers ``WanImageToVideoPipeline(expand_timesteps=True)`` (the Wan2.2 TI2V mode) over
    existing components (no copy, no reload): no CLIP image encoder, no second transformer."""
    from diffusers import WanImageToVideoPipeline

    c = components
    return WanImageToVideoPipeline(
        tokenizer=c.tokenizer,
        text_encoder=c.text_encoder,
        vae=c.vae,
        transformer=c.transformer,
        scheduler=c.scheduler,
        image_encoder=None,
        image_processor=None,
        expand_timesteps=True,
    )


# ----------------------------------------------------------------------------- geometry


def spatial_multiple(vae_config, transformer_config) -> int:
    """Pixels per token side: the VAE's spatial factor times the transformer's spatial patch
    (16 x 2 = 32 for Wan2.2-TI2V-5B), the multiple the pipeline rounds height/width down to."""
    patch = transformer_config["patch_size"]
    scale = int(vae_config["scale_factor_spatial"])
    return math.lcm(scale * int(patch[1]), scale * int(patch[2]))


def check_geometry(frames: int, height: int, width: int, name: str = "wan2.2_ti2v_5b") -> None:
    """ConfigError unless ``frames`` is 4k+1 (>= 1) and height/width are positive multiples of
    :func:`spatial_multiple`, for a known architecture (see :func:`_check_geometry`)."""
    arch = _architecture(name)
    _check_geometry(frames, height, width, arch["vae"], arch["transformer"], name)


def _check_geometry(frames, height, width, vae_config, transformer_config, name: str) -> None:
    """The one geometry check of the Wan family. The diffusers pipeline would silently round all
    three down (with a log warning only), so the video it samples would not be the one trained on."""
    temporal = int(vae_config["scale_factor_temporal"])
    if not isinstance(frames, int) or frames < 1 or (frames - 1) % temporal:
        raise ConfigError(
            f"model.frames must be {temporal}k+1 (e.g. 9, 17, 121) for {name}, got {frames} "
            "(the Wan pipeline would silently round it down)"
        )
    multiple = spatial_multiple(vae_config, transformer_config)
    for setting, value in (("model.height", height), ("model.width", width)):
        if not isinstance(value, int) or value <= 0 or value % multiple:
            raise ConfigError(
                f"{setting} must be a positive multiple of {multiple} (VAE {vae_config['scale_factor_spatial']}x "
                f"x patch {transformer_config['patch_size'][1]}) for {name}, got {value} "
                "(the Wan pipeline would silently round it down)"
            )


def tokens_per_sample(frames: int, height: int, width: int, arch: dict | str = "wan2.2_ti2v_5b") -> int:
    """Transformer tokens of one clip: F' * (H / s / p) * (W / s / p), F' = (F - 1) / 4 + 1."""
    arch = _architecture(arch) if isinstance(arch, str) else arch
    vae, patch = arch["vae"], arch["transformer"]["patch_size"]
    latent_frames = (frames - 1) // int(vae["scale_factor_temporal"]) + 1
    s = int(vae["scale_factor_spatial"])
    return (latent_frames // patch[0]) * (height // s // patch[1]) * (width // s // patch[2])


def meta_figures(name: str = "wan2.2_ti2v_5b") -> dict:
    """Parameter counts of the meta-device models and token counts at two training geometries."""
    models = build_meta_models(name)
    arch = _architecture(name)

    def count(module):
        return sum(p.numel() for p in module.parameters())

    return {
        "transformer_parameters": count(models["transformer"]),
        "text_encoder_parameters": count(models["text_encoder"]),
        "vae_parameters": count(models["vae"]),
        "tokens_9x704x1280": tokens_per_sample(9, 704, 1280, arch),
        "tokens_9x960x960": tokens_per_sample(9, 960, 960, arch),
    }
