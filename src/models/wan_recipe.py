"""The Wan2.2-TI2V-5B image-to-video recipe as small pure functions: latents, the flow-matching
loss, prompt encoding and sampling (the architectures and the tiny Wan2.2 are in
:mod:`src.models.wan_architecture`, the backbone family in :mod:`src.models.wan`).

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

import torch

from src.models.recipe import sample_posterior

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
