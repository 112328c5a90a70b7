"""The Wan2.2-TI2V-5B image-to-video recipe as small pure functions, plus a tiny CPU-sized Wan2.2
built from the same diffusers classes (``WanTransformer3DModel``, ``AutoencoderKLWan``, UMT5).

Wan2.2-TI2V-5B conditions on the first frame the way diffusers'
``WanImageToVideoPipeline(expand_timesteps=True)`` does: the first frame alone is VAE-encoded
(posterior *mode*), normalised with the VAE's per-channel ``latents_mean``/``latents_std``, and
*replaces* latent frame 0 of the model input (no channel concat, no CLIP image embedding); the
tokens of latent frame 0 get timestep 0, the others the current timestep (per-token timesteps).

Layouts (the suffix of every tensor argument): pixel frames are (B, C, H, W) / (B, F, C, H, W) in
[0, 1] at the data boundary and (B, C, F, H, W) in [-1, 1] at the VAE; latents are
(B, C, F', h, w) as Wan's transformer takes them (unlike CogVideoX's (B, F', C, h, w)), with
F' = (F - 1) / 4 + 1 and h, w = H / s, W / s (s = ``scale_factor_spatial``: 16 for Wan2.2, of
which 2 is the VAE's pixel patchify). Masks are (B, 1, F', h, w); per-token timesteps (B, N)
with N = F' * (h / p) * (w / p) (p = the transformer's spatial patch, 2).
"""

from __future__ import annotations

import copy
import logging
import math

import torch

from src.models.family import Backbone, I2VComponents
from src.models.recipe import encode_posterior, sample_posterior
from src.utils.cli import ConfigError


def _drop_torchvision_advice(record) -> bool:
    # Importing WanImageToVideoPipeline makes transformers resolve CLIPImageProcessor (the
    # pipeline's optional image encoder, unused by TI2V) and advise installing torchvision, which
    # cannot load beside this platform's torch wheel: the advice is wrong here, the notice noise.
    return "requires torchvision (not installed)" not in str(record.msg)


logging.getLogger("transformers.utils.import_utils").addFilter(_drop_torchvision_advice)

__all__ = [
    "PUBLISHED_ARCHITECTURES",
    "TINY_WAN_ARCHITECTURE",
    "TINY_WAN_LEARNED_VAE_ARCHITECTURE",
    "build_meta_models",
    "build_scheduler",
    "build_tiny_wan_components",
    "check_geometry",
    "condition_latents",
    "denormalize_latents",
    "encode_posterior",
    "encode_prompts",
    "first_frame_mask",
    "flow_matching_loss",
    "generate_trajectory",
    "image_to_vae",
    "masked_model_input",
    "meta_figures",
    "normalize_latents",
    "shifted_sigmas",
    "spatial_multiple",
    "token_timesteps",
    "tokens_per_sample",
    "video_latents",
    "wan_pipeline",
    "WanTI2V",
]

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


# ----------------------------------------------------------------------------- latents


def _latent_stats(vae_config, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, 1/std), each (1, C, 1, 1, 1), built exactly as the pipeline builds them: the lists
    to a float32 tensor, cast to the latents' device and dtype, *then* the reciprocal."""
    z_dim = int(vae_config["z_dim"])
    mean = (
        torch.tensor(vae_config["latents_mean"]).view(1, z_dim, 1, 1, 1).to(reference.device, reference.dtype)
    )
    inv_std = 1.0 / torch.tensor(vae_config["latents_std"]).view(1, z_dim, 1, 1, 1).to(
        reference.device, reference.dtype
    )
    return mean, inv_std


def normalize_latents(latents_bcfhw: torch.Tensor, vae_config) -> torch.Tensor:
    """VAE latents -> the transformer's space: ``(x - mean) * (1 / std)`` in the latents' dtype,
    the pipeline's ``prepare_latents`` ops in its order (bit-equal)."""
    mean, inv_std = _latent_stats(vae_config, latents_bcfhw)
    return (latents_bcfhw - mean) * inv_std


def denormalize_latents(latents_bcfhw: torch.Tensor, vae_config) -> torch.Tensor:
    """Inverse of :func:`normalize_latents` as the pipeline decodes: ``x / (1 / std) + mean``."""
    mean, inv_std = _latent_stats(vae_config, latents_bcfhw)
    return latents_bcfhw / inv_std + mean


def image_to_vae(first_frame_bchw: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> [-1, 1] float32 as the pipeline's ``VideoProcessor.preprocess``
    maps a tensor image of the target size (``2 * x - 1``; the same ops as
    ``recipe.to_vae_video``). The pipeline resizes other sizes with *nearest* interpolation and
    skips this mapping when the tensor has negative values: pass [0, 1] images of the right size."""
    return 2.0 * first_frame_bchw.to(torch.float32) - 1.0


@torch.no_grad()
def condition_latents(vae, first_frame_bchw: torch.Tensor) -> torch.Tensor:
    """Normalised clean first-frame latents (B, C, 1, h, w), as ``prepare_latents`` builds them
    with ``expand_timesteps=True``: the image *alone* (one frame, no zero frames after it) through
    the VAE in the VAE's dtype, the posterior *mode* (mean, no sampling), cast to float32, then
    normalised. ``first_frame_bchw`` is in [-1, 1] (:func:`image_to_vae`)."""
    image = first_frame_bchw.unsqueeze(2).to(device=vae.device, dtype=vae.dtype)  # (B, C, 1, H, W)
    latents = vae.encode(image).latent_dist.mode()
    return normalize_latents(latents.to(torch.float32), vae.config)


def video_latents(
    mean_bcfhw: torch.Tensor, logvar_bcfhw: torch.Tensor, vae_config, generator: torch.Generator | None
) -> torch.Tensor:
    """Normalised clean video latents (B, C, F', h, w), float32: a posterior sample of a cached
    (mean, logvar) (:func:`src.models.recipe.encode_posterior`), resampled each step."""
    sample = sample_posterior(mean_bcfhw, logvar_bcfhw, generator)
    return normalize_latents(sample.to(torch.float32), vae_config)


def first_frame_mask(latents_bcfhw: torch.Tensor) -> torch.Tensor:
    """(B, 1, F', h, w): ones, zeros on latent frame 0 (the pipeline's ``first_frame_mask``,
    which it builds with batch 1 and broadcasts)."""
    b, _, f, h, w = latents_bcfhw.shape
    mask = torch.ones(b, 1, f, h, w, dtype=latents_bcfhw.dtype, device=latents_bcfhw.device)
    mask[:, :, 0] = 0
    return mask


def masked_model_input(
    latents_bcfhw: torch.Tensor, condition_bc1hw: torch.Tensor, mask_b1fhw: torch.Tensor
) -> torch.Tensor:
    """``(1 - mask) * condition + mask * latents``: the pipeline's per-step transformer input
    (condition (B, C, 1, h, w) broadcast over frames, or a full (B, C, F', h, w))."""
    return (1 - mask_b1fhw) * condition_bc1hw + mask_b1fhw * latents_bcfhw


def token_timesteps(mask_b1fhw: torch.Tensor, timestep_b: torch.Tensor, patch_size) -> torch.Tensor:
    """(B, N) per-token timesteps: the pipeline's ``(first_frame_mask[0][0][:, ::2, ::2] *
    t).flatten()`` with the transformer's patch size instead of its hard-coded 2, and one
    timestep per sample (B,) (or a scalar) instead of one per call. A token takes the mask value
    of the first latent element of its patch (the mask is constant within a patch when p_t = 1)."""
    p_t, p_h, p_w = (int(p) for p in patch_size)
    grid = mask_b1fhw[:, 0, ::p_t, ::p_h, ::p_w]  # (B, F'/p_t, h/p_h, w/p_w)
    timestep_b = torch.as_tensor(timestep_b, device=grid.device)
    return (grid * timestep_b.reshape(-1, 1, 1, 1)).flatten(1)


def shifted_sigmas(batch: int, generator, shift: float, device=None) -> torch.Tensor:
    """(B,) training sigmas with the SD3/Wan flow shift: u ~ U[0, 1) from ``generator``,
    ``s = shift * u / (1 + (shift - 1) * u)`` (shift 5 for Wan2.2-TI2V-5B, the scheduler's
    ``flow_shift``; the same map the UniPC scheduler applies to its inference sigmas). The
    transformer's timestep is ``s * num_train_timesteps`` (1000)."""
    u = torch.rand(batch, generator=generator, device=device)
    return shift * u / (1 + (shift - 1) * u)


def flow_matching_loss(
    transformer,
    latents_bcfhw: torch.Tensor,
    condition_bc1hw: torch.Tensor,
    mask_b1fhw: torch.Tensor,
    prompt_embeds_bld: torch.Tensor,
    sigmas_b: torch.Tensor,
    noise_bcfhw: torch.Tensor,
    loss_on_first_frame: bool = False,
    conditioned: torch.Tensor | None = None,
    num_train_timesteps: int = 1000,
) -> torch.Tensor:
    """Flow-matching MSE of one Wan2.2 TI2V step (scalar, float32).

    ``x_t = (1 - s) x_0 + s e`` with s = ``sigmas_b`` (B,). For conditioned samples
    (``conditioned`` (B,) bool, None = all) latent frame 0 of the model input is replaced by the
    clean ``condition_bc1hw`` and its tokens get timestep 0, the others ``s * T``
    (:func:`masked_model_input`, :func:`token_timesteps`: exactly the pipeline's input); the
    other samples (text-only steps) keep the noisy frame 0 and the plain timestep on all tokens.
    The target is the velocity ``e - x_0``. Latent frame 0 of conditioned samples is left out of
    the loss (its input is the clean condition at t = 0, from which ``e`` cannot be predicted and
    which inference overwrites anyway) unless ``loss_on_first_frame`` (VideoX-Fun's Wan2.2 TI2V
    trainer is reported to include it; not re-checked here). The mean is over the latent
    elements that count.
    """
    batch = latents_bcfhw.shape[0]
    if conditioned is None:
        conditioned = torch.ones(batch, dtype=torch.bool, device=latents_bcfhw.device)
    cond_b11111 = conditioned.to(device=latents_bcfhw.device, dtype=torch.bool).view(-1, 1, 1, 1, 1)
    mask = mask_b1fhw.expand(batch, *mask_b1fhw.shape[1:])
    mask = torch.where(cond_b11111, mask, torch.ones_like(mask))  # text-only: no frame replaced

    s = sigmas_b.to(latents_bcfhw.dtype).view(-1, 1, 1, 1, 1)
    noisy = (1 - s) * latents_bcfhw + s * noise_bcfhw
    dtype = transformer.dtype
    model_input = masked_model_input(noisy, condition_bc1hw, mask).to(dtype)
    timesteps = token_timesteps(mask, sigmas_b.float() * num_train_timesteps, transformer.config.patch_size)
    prediction = transformer(
        hidden_states=model_input,
        timestep=timesteps,
        encoder_hidden_states=prompt_embeds_bld.to(dtype),
        return_dict=False,
    )[0]
    target = noise_bcfhw.float() - latents_bcfhw.float()
    error = (prediction.float() - target).square()
    weight = torch.ones_like(mask, dtype=torch.float32)
    if not loss_on_first_frame:
        weight = torch.where(cond_b11111, mask.float(), weight)
    weight = weight.expand_as(error)
    return (error * weight).sum() / weight.sum().clamp_min(1.0)


# ----------------------------------------------------------------------------- prompts, sampling


@torch.no_grad()
def encode_prompts(pipeline, prompts: list[str], max_sequence_length: int, device) -> torch.Tensor:
    """UMT5 embeddings (B, L, D) via the pipeline's own prompt encoder: the prompt cleaned
    (ftfy, whitespace), tokenised to ``max_sequence_length``, and the embeddings past each prompt's
    length set to zero, as the pipeline pads them. No graph (the text encoder is frozen)."""
    embeds, _ = pipeline.encode_prompt(
        prompt=list(prompts),
        do_classifier_free_guidance=False,
        max_sequence_length=max_sequence_length,
        device=device,
    )
    return embeds


@torch.no_grad()
def generate_trajectory(
    pipeline,
    first_frames_bchw: torch.Tensor,
    prompts: list[str],
    generators: list[torch.Generator],
    height: int,
    width: int,
    num_frames: int,
    num_inference_steps: int,
    guidance_scale: float,
    max_sequence_length: int,
    prompt_embeds: torch.Tensor | None = None,
    negative_prompt_embeds: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, F, C, H, W) in [0, 1] sampled by the Wan I2V pipeline from first frames (B, C, H, W) in
    [0, 1] (same contract as ``recipe.generate_trajectory``). ``prompt_embeds`` (B, L, D) replace
    ``prompts`` (cached embeddings).

    One pipeline call per sample: with ``expand_timesteps`` the pipeline encodes the *whole* image
    batch once per generator (or repeats it ``batch_size`` times), so B different first frames
    in one call would give B*B condition latents. Sample i uses ``generators[i]``, which is what a
    batched call would draw for it too."""
    from src.models import recipe

    if len(generators) != first_frames_bchw.shape[0]:
        raise ValueError(f"{len(generators)} generators for {first_frames_bchw.shape[0]} first frames")
    settings = (height, width, num_frames, num_inference_steps, guidance_scale, max_sequence_length)

    def rows(embeds, i):
        return None if embeds is None else embeds[i : i + 1]

    return torch.cat(
        [  # the shared pipeline call (recipe.generate_trajectory), one sample at a time
            recipe.generate_trajectory(
                pipeline,
                first_frames_bchw[i : i + 1],
                list(prompts[i : i + 1]),
                [generator],
                *settings,
                prompt_embeds=rows(prompt_embeds, i),
                negative_prompt_embeds=rows(negative_prompt_embeds, i),
            )
            for i, generator in enumerate(generators)
        ]
    )


# ----------------------------------------------------------------------------- the family

UNTRAINED = "untrained"  # model.weights value: the tiny architecture, randomly initialised (seed 0)


class WanTI2V(Backbone):
    """Wan2.2-TI2V-5B (``wan2.2_ti2v_5b``) and the tiny Wan (``tiny_wan``), the V-Bridge backbone.

    Training step (:func:`flow_matching_loss`): normalised video latents from the VAE posterior
    (cached), latent frame 0 replaced by the clean first-frame latent (posterior mode) with its
    tokens at timestep 0, x_t = (1 - s) x_0 + s e with s from uniform timesteps shifted by
    ``model.shift``, velocity target e - x_0, latent frame 0 out of the loss unless
    ``model.loss_on_first_frame``; ``model.condition_probability`` < 1 gives text-only steps.
    Sampling: ``WanImageToVideoPipeline(expand_timesteps=True)``, UniPC flow with the same shift.
    """

    block_list = "blocks"  # WanTransformer3DModel.blocks

    family = "wan"
    published = PUBLISHED_ARCHITECTURES
    # Assumption, not a measurement: CogVideoX's 3.0 GiB decode peak at 480x720 scaled by the
    # pixels of 704x1280 (x2.6); make bench-gpu on a GPU replaces it with a number.
    vae_decode_gib = 8.0
    vae_dtype = "float32"
    report_geometries = ((9, 704, 1280), (9, 960, 960))

    @property
    def pipeline_class(self):
        from diffusers import WanImageToVideoPipeline

        return WanImageToVideoPipeline

    def make_pipeline(self, components):
        return wan_pipeline(components)

    # -- config time ------------------------------------------------------------------------------
    def check_options(self) -> None:
        super().check_options()
        c = self.config
        if c.shift is None or c.shift <= 0:
            raise ConfigError(
                f"model.shift must be a positive number for {c.name} (flow matching; 5.0 published)"
            )
        if c.positional_embedding != "rope":
            raise ConfigError(
                f"model.positional_embedding={c.positional_embedding}: {c.name} has 3-D rotary embeddings only; "
                "leave it at rope"
            )

    def architecture(self) -> dict:
        if self.is_tiny:
            if self.config.weights == UNTRAINED:
                return TINY_WAN_ARCHITECTURE
            from src.models.tiny import read_tiny_architecture

            return read_tiny_architecture(self.config.weights)
        return self.published_or_local_architecture()

    def size_multiple(self, vae_config=None, transformer_config=None) -> int:
        if vae_config is None:
            arch = self.architecture()
            vae_config, transformer_config = arch["vae"], arch["transformer"]
        return spatial_multiple(vae_config, transformer_config)

    def check_geometry(self, vae_config, transformer_config) -> None:
        frames, height, width = self.geometry
        _check_geometry(frames, height, width, vae_config, transformer_config, self.name)

    # -- loading ----------------------------------------------------------------------------------
    def load_tiny(self) -> I2VComponents:
        if self.config.weights == UNTRAINED:
            logging.getLogger(__name__).warning(
                "%s: model.weights=%s -- randomly initialised (seed 0), no pretrained base: every stage "
                "runs, the samples are noise",
                self.name,
                UNTRAINED,
            )
            with torch.random.fork_rng():
                torch.manual_seed(0)
                return build_tiny_wan_components(TINY_WAN_ARCHITECTURE)
        from src.models.tiny import load_tiny

        components, _ = load_tiny(self.config.weights, build=build_tiny_wan_components)
        return components

    def load_pretrained(self) -> I2VComponents:
        """Transformer and UMT5 in ``model.dtype``, the VAE in fp32 (as the Wan2.2 pipeline and
        trainers run it), through ``from_pretrained`` of the diffusers layout."""
        from diffusers import AutoencoderKLWan

        from src.utils.cli import InputError

        directory = self.resolve_weights()
        dtype = getattr(torch, self.config.dtype)
        logging.getLogger(__name__).info("loading %s from %s (%s, VAE fp32)", self.name, directory, dtype)
        vae = AutoencoderKLWan.from_pretrained(str(directory), subfolder="vae", torch_dtype=torch.float32)
        pipeline = self.pipeline_class.from_pretrained(str(directory), vae=vae, torch_dtype=dtype)
        if pipeline.transformer.config.in_channels != vae.config.z_dim or vae.config.z_dim != 48:
            raise InputError(
                f"{directory} is not a Wan2.2 TI2V model (transformer in_channels "
                f"{pipeline.transformer.config.in_channels}, VAE z_dim {vae.config.z_dim}; expected 48)"
            )
        return self.components_of(pipeline)

    build_tiny = staticmethod(build_tiny_wan_components)
    build_meta = staticmethod(build_meta_models)

    # -- binding ----------------------------------------------------------------------------------
    def bind(self, components: I2VComponents, cache: bool = True):
        shift = float(self.config.shift)
        if components.scheduler.config.get("flow_shift") != shift:  # model.shift samples too
            components.scheduler = type(components.scheduler).from_config(
                components.scheduler.config, flow_shift=shift
            )
        return super().bind(components, cache)

    def configure_transformer(self, transformer, mode: str, vae_config=None) -> str:
        return "rope"

    # -- encoding, loss, sampling -----------------------------------------------------------------
    def encode_prompts(self, prompts: list[str], device) -> torch.Tensor:
        return encode_prompts(self.pipeline, prompts, int(self.config.max_sequence_length), device)

    def training_loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        from src.models import recipe

        c, vae, device = self.config, self.components.vae, self.device
        frames = batch["frames"]  # (B, F, C, H, W) in [0, 1]
        batch_size = frames.shape[0]
        video = recipe.to_vae_video(frames.to(vae.dtype))  # (B, C, F, H, W) in [-1, 1]
        mean, logvar = self.clip_posteriors(video, batch.get("clip_id"))
        latents = video_latents(mean, logvar, vae.config, generator)
        first = image_to_vae(frames[:, 0])  # the pipeline's preprocessing of I_1
        if c.noise_augmentation.enabled:
            sigma = recipe.sample_noise_augmentation(
                batch_size, generator, c.noise_augmentation.mean, c.noise_augmentation.std, device=device
            )
            noise = torch.randn(first.shape, generator=generator, device=device, dtype=first.dtype)
            first = first + sigma.view(-1, 1, 1, 1).to(first.dtype) * noise
        condition = condition_latents(vae, first)
        conditioned = None
        if c.condition_probability < 1.0:
            conditioned = torch.rand(batch_size, generator=generator, device=device) < c.condition_probability
        embeds = self.prompt_embeddings(list(batch["prompt"]))
        sigmas = shifted_sigmas(batch_size, generator, float(c.shift), device=device)
        noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
        return flow_matching_loss(
            self.components.transformer,
            latents,
            condition,
            first_frame_mask(latents),
            embeds,
            sigmas,
            noise,
            loss_on_first_frame=c.loss_on_first_frame,
            conditioned=conditioned,
            num_train_timesteps=int(self.components.scheduler.config.num_train_timesteps),
        )

    def sample(self, *args, **kwargs) -> torch.Tensor:
        return generate_trajectory(self.pipeline, *args, **kwargs)

    # -- memory plan ------------------------------------------------------------------------------
    def tokens_per_sample(
        self, vae_config: dict, transformer_config: dict, frames: int, height: int, width: int
    ) -> dict:
        patch = transformer_config["patch_size"]
        latent_frames = (frames - 1) // int(vae_config["scale_factor_temporal"]) + 1
        s = int(vae_config["scale_factor_spatial"])
        grid = [latent_frames // int(patch[0]), height // s // int(patch[1]), width // s // int(patch[2])]
        video = tokens_per_sample(
            frames, height, width, {"vae": vae_config, "transformer": transformer_config}
        )
        text = int(self.config.max_sequence_length)
        return {
            "latent_frames": latent_frames,
            "latent_frames_padded": latent_frames,
            "grid": grid,
            "video_tokens": video,
            "text_tokens": text,
            "tokens": video + text,
        }

    def transformer_shape(self, transformer_config: dict) -> tuple[int, int]:
        return (
            int(transformer_config["num_attention_heads"]) * int(transformer_config["attention_head_dim"]),
            int(transformer_config["num_layers"]),
        )
