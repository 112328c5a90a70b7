"""The CogVideoX image-to-video training recipe as small pure functions.

Layouts: pixel videos are (B, F, C, H, W) in [0, 1] at the data boundary and (B, C, F, H, W) in
[-1, 1] at the VAE; latents are (B, F', C', h, w) as the transformer takes them, with
F' = (F - 1) / 4 + 1 and h, w = H / s, W / s (s = the VAE's spatial compression).
"""

from __future__ import annotations

import math

import torch


def to_vae_video(frames_bfchw: torch.Tensor) -> torch.Tensor:
    """(B, F, C, H, W) in [0, 1] -> (B, C, F, H, W) in [-1, 1]."""
    return frames_bfchw.permute(0, 2, 1, 3, 4).mul(2.0).sub(1.0)


def from_vae_video(video_bcfhw: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) in [-1, 1] -> (B, F, C, H, W) in [0, 1]."""
    return video_bcfhw.add(1.0).div(2.0).clamp(0.0, 1.0).permute(0, 2, 1, 3, 4)


def latent_frame_count(num_frames: int, temporal_compression: int = 4) -> int:
    if (num_frames - 1) % temporal_compression:
        raise ValueError(f"frames must be {temporal_compression}k+1 (e.g. 9, 13, 49), got {num_frames}")
    return (num_frames - 1) // temporal_compression + 1


@torch.no_grad()
def encode_posterior(vae, video_bcfhw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, logvar) of the VAE posterior, each (B, C', F', h, w): cacheable, resampled each step."""
    posterior = vae.encode(video_bcfhw).latent_dist
    return posterior.mean, posterior.logvar


def sample_posterior(
    mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar.clamp(-30.0, 20.0)) * noise


def video_latents(mean: torch.Tensor, logvar: torch.Tensor, scaling_factor: float, generator) -> torch.Tensor:
    """Scaled clean video latents (B, F', C', h, w) from a cached posterior (B, C', F', h, w)."""
    return (sample_posterior(mean, logvar, generator) * scaling_factor).permute(0, 2, 1, 3, 4)


def sample_noise_augmentation(
    batch: int, generator, mean: float = -3.0, std: float = 0.5, device=None
) -> torch.Tensor:
    """Per-sample sigma ~ LogNormal(mean, std) for the first frame (CogVideoX I2V recipe), (B,)."""
    normal = torch.randn(batch, generator=generator, device=device) * std + mean
    return normal.exp()


@torch.no_grad()
def image_latents(
    vae,
    first_frame_bchw: torch.Tensor,
    latent_frames: int,
    scaling_factor: float,
    generator,
    noise_sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """Conditioning latents (B, F', C', h, w): the (noise-augmented) first frame's latents at
    index 0 and zeros for the other latent frames, as the diffusers I2V pipeline builds them.

    ``first_frame_bchw`` is in [-1, 1]; ``noise_sigma`` (B,) adds Gaussian noise of that std in
    pixel space before encoding (None = off).
    """
    image = first_frame_bchw.unsqueeze(2)  # (B, C, 1, H, W)
    if noise_sigma is not None:
        noise = torch.randn(image.shape, generator=generator, device=image.device, dtype=image.dtype)
        image = image + noise_sigma.view(-1, 1, 1, 1, 1).to(image.dtype) * noise
    posterior = vae.encode(image).latent_dist
    latents = sample_posterior(posterior.mean, posterior.logvar, generator) * scaling_factor
    latents = latents.permute(0, 2, 1, 3, 4)  # (B, 1, C', h, w)
    padding = latents.new_zeros(latents.shape[0], latent_frames - 1, *latents.shape[2:])
    return torch.cat([latents, padding], dim=1)


def sample_timesteps(batch: int, num_train_timesteps: int, generator, device=None) -> torch.Tensor:
    """Uniform integer timesteps in [0, T), (B,)."""
    return torch.randint(0, num_train_timesteps, (batch,), generator=generator, device=device)


def i2v_loss(
    transformer,
    scheduler,
    latents: torch.Tensor,
    condition: torch.Tensor,
    prompt_embeds: torch.Tensor,
    timesteps: torch.Tensor,
    noise: torch.Tensor,
    image_rotary_emb,
) -> torch.Tensor:
    """v-prediction MSE of one CogVideoX I2V step. All latents (B, F', C', h, w)."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    model_input = torch.cat([noisy, condition], dim=2)  # channel concat (B, F', 2C', h, w)
    prediction = transformer(
        hidden_states=model_input,
        encoder_hidden_states=prompt_embeds,
        timestep=timesteps,
        image_rotary_emb=image_rotary_emb,
        return_dict=False,
    )[0]
    target = scheduler.get_velocity(latents, noise, timesteps)
    return torch.nn.functional.mse_loss(prediction.float(), target.float())


def i2v_pipeline(components_or_module):
    """A diffusers CogVideoXImageToVideoPipeline over existing components (no copy, no reload):
    anything with tokenizer, text_encoder, vae, transformer and scheduler attributes."""
    from diffusers import CogVideoXImageToVideoPipeline

    c = components_or_module
    return CogVideoXImageToVideoPipeline(
        tokenizer=c.tokenizer,
        text_encoder=c.text_encoder,
        vae=c.vae,
        transformer=c.transformer,
        scheduler=c.scheduler,
    )


def rotary_embeddings(pipeline, height: int, width: int, latent_frames: int, device):
    """Rotary embeddings exactly as the diffusers I2V pipeline computes them (None if unused)."""
    if not pipeline.transformer.config.use_rotary_positional_embeddings:
        return None
    return pipeline._prepare_rotary_positional_embeddings(height, width, latent_frames, device)


def encode_prompts(pipeline, prompts: list[str], max_sequence_length: int, device) -> torch.Tensor:
    """T5 embeddings (B, L, D) via the pipeline's own prompt encoder (same padding/truncation)."""
    embeds, _ = pipeline.encode_prompt(
        prompt=prompts,
        do_classifier_free_guidance=False,
        max_sequence_length=max_sequence_length,
        device=device,
    )
    return embeds


def cosine_lr(step: int, total: int, warmup: int = 0) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
