"""The CogVideoX image-to-video training recipe as small pure functions.

Layouts: pixel videos are (B, F, C, H, W) in [0, 1] at the data boundary and (B, C, F, H, W) in
[-1, 1] at the VAE; latents are (B, F', C', h, w) as the transformer takes them, with
F' = (F - 1) / 4 + 1 and h, w = H / s, W / s (s = the VAE's spatial compression).
"""

from __future__ import annotations

import inspect
import math

import torch

from src.utils.cli import ConfigError


def to_vae_video(frames_bfchw: torch.Tensor) -> torch.Tensor:
    """(B, F, C, H, W) in [0, 1] -> (B, C, F, H, W) in [-1, 1]."""
    return frames_bfchw.permute(0, 2, 1, 3, 4).mul(2.0).sub(1.0)


def from_vae_video(video_bcfhw: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) in [-1, 1] -> (B, F, C, H, W) in [0, 1]."""
    return video_bcfhw.add(1.0).div(2.0).clamp(0.0, 1.0).permute(0, 2, 1, 3, 4)


def latent_frame_count(num_frames: int, temporal_compression: int = 4) -> int:
    if (num_frames - 1) % temporal_compression:
        raise ConfigError(f"frames must be {temporal_compression}k+1 (e.g. 9, 13, 49), got {num_frames}")
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


def image_latent_scale(vae_config) -> float:
    """The factor the diffusers I2V pipeline applies to first-frame latents: ``scaling_factor``,
    or its inverse when the VAE config sets ``invert_scale_latents`` (CogVideoX 1.5, whose
    image latents were scaled that way in training; video latents are always x scaling_factor)."""
    scaling = float(vae_config.scaling_factor)
    return 1.0 / scaling if vae_config.get("invert_scale_latents", False) else scaling


def latent_frame_padding(num_latent_frames: int, patch_size_t: int | None) -> int:
    """Extra latent frames so the count divides the transformer's temporal patch (1.5: 2)."""
    return (-num_latent_frames) % patch_size_t if patch_size_t else 0


def prepend_first_latent_frame(latents: torch.Tensor, count: int) -> torch.Tensor:
    """(B, F', C', h, w) -> (B, F' + count, C', h, w) with copies of frame 0 in front: the frames
    the pipeline generates and drops (``latents[:, additional_frames:]``) after sampling."""
    if count == 0:
        return latents
    return torch.cat([latents[:, :1].expand(-1, count, -1, -1, -1), latents], dim=1)


@torch.no_grad()
def image_latents(
    vae,
    first_frame_bchw: torch.Tensor,
    latent_frames: int,
    generator,
    noise_sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """Conditioning latents (B, F', C', h, w): the (noise-augmented) first frame's latents at
    index 0 and zeros for the other latent frames, as the diffusers I2V pipeline builds them
    (posterior *sample*, scaled by :func:`image_latent_scale`). ``latent_frames`` counts any
    padding frames.

    ``first_frame_bchw`` is in [-1, 1]; ``noise_sigma`` (B,) adds Gaussian noise of that std in
    pixel space before encoding (None = off).
    """
    image = first_frame_bchw.unsqueeze(2)  # (B, C, 1, H, W)
    if noise_sigma is not None:
        noise = torch.randn(image.shape, generator=generator, device=image.device, dtype=image.dtype)
        image = image + noise_sigma.view(-1, 1, 1, 1, 1).to(image.dtype) * noise
    posterior = vae.encode(image).latent_dist
    latents = sample_posterior(posterior.mean, posterior.logvar, generator) * image_latent_scale(vae.config)
    return pad_image_latents(latents.permute(0, 2, 1, 3, 4), latent_frames)  # from (B, 1, C', h, w)


def pad_image_latents(latents: torch.Tensor, latent_frames: int) -> torch.Tensor:
    """(B, 1, C', h, w) scaled first-frame latents -> (B, F', C', h, w) conditioning: zeros for
    the other latent frames, as the diffusers I2V pipeline pads them."""
    padding = latents.new_zeros(latents.shape[0], latent_frames - 1, *latents.shape[2:])
    return torch.cat([latents, padding], dim=1)


def drop_image_latents(condition: torch.Tensor, probability: float, generator) -> torch.Tensor:
    """Zero the whole conditioning of each sample with ``probability`` (image-latent dropout)."""
    if probability <= 0:
        return condition
    keep = torch.rand(condition.shape[0], generator=generator, device=condition.device) >= probability
    return condition * keep.view(-1, 1, 1, 1, 1).to(condition.dtype)


def ofs_input(transformer, reference: torch.Tensor) -> torch.Tensor | None:
    """CogVideoX 1.5 I2V's ``ofs`` conditioning: the constant 2.0 the pipeline passes, (1,)."""
    if transformer.config.get("ofs_embed_dim") is None:
        return None
    return reference.new_full((1,), 2.0)


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
    ofs: torch.Tensor | None = None,
    skip_frames: int = 0,
) -> torch.Tensor:
    """v-prediction MSE of one CogVideoX I2V step. All latents (B, F', C', h, w). ``skip_frames``
    leading latent frames (frame 0 and any padding copies of it) are left out of the loss
    (``model.loss_on_first_frame=false``; CogVideoX's own recipe keeps them: 0)."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    model_input = torch.cat([noisy, condition], dim=2)  # channel concat (B, F', 2C', h, w)
    prediction = transformer(
        hidden_states=model_input,
        encoder_hidden_states=prompt_embeds,
        timestep=timesteps,
        ofs=ofs,
        image_rotary_emb=image_rotary_emb,
        return_dict=False,
    )[0]
    target = scheduler.get_velocity(latents, noise, timesteps)
    if skip_frames:
        prediction, target = prediction[:, skip_frames:], target[:, skip_frames:]
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
    """(B, F, C, H, W) in [0, 1] sampled by the diffusers I2V pipeline from first frames (B, C,
    H, W) in [0, 1]: the one sampling call shared by validation, export checks and inference.
    ``prompt_embeds`` (B, L, D) replace ``prompts`` when T5 is offloaded (cached embeddings)."""
    pipeline.set_progress_bar_config(disable=True)
    output = pipeline(
        image=first_frames_bchw.float(),
        prompt=None if prompt_embeds is not None else list(prompts),
        prompt_embeds=prompt_embeds,
        negative_prompt_embeds=negative_prompt_embeds,
        height=height,
        width=width,
        num_frames=num_frames,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        generator=generators,
        output_type="pt",
        max_sequence_length=max_sequence_length,
    ).frames
    return output.float().clamp(0, 1)


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


POSITIONAL_EMBEDDING_MODES = ("sincos", "learned", "none")


def configure_positional_embeddings(
    transformer, mode: str, frames: int, height: int, width: int, spatial_compression: int = 8
) -> str:
    """Fix which absolute positional embedding a CogVideoX 1.0 I2V transformer adds (it carries a
    learned table for 49 frames at 480x720, and diffusers silently swaps in a sin-cos table at
    any other frame count). One choice, applied here to the transformer object, holds in
    training, validation and in the exported LoRA's inference:

    - ``sincos``: the sin-cos table at the run's geometry (what diffusers computes at 9 frames; a
      stock pipeline at the same frame count reproduces it);
    - ``learned``: the shipped table; only at its native 49 frames and resolution;
    - ``none``: no absolute embedding (rotary only, like CogVideoX 1.5); inference must apply the
      same (``src`` does, from the LoRA export's metadata).

    Returns the effective mode (``rotary-only`` for models without an absolute embedding).
    """
    if mode not in POSITIONAL_EMBEDDING_MODES:
        raise ConfigError(
            f"model.positional_embedding must be one of {POSITIONAL_EMBEDDING_MODES}, got {mode!r}"
        )
    embed = transformer.patch_embed
    if not getattr(embed, "use_learned_positional_embeddings", False):
        return "none" if not getattr(embed, "use_positional_embeddings", False) else "sincos"
    cfg = transformer.config
    spatial = spatial_compression
    native_size = (cfg.sample_height * spatial, cfg.sample_width * spatial)
    native = frames == cfg.sample_frames and (height, width) == native_size
    if mode != "none" and (height, width) != native_size:
        raise ConfigError(
            f"this model (learned positional embedding, e.g. CogVideoX-5B-I2V) takes "
            f"{native_size[0]}x{native_size[1]} only, got {height}x{width}; set model.height/width "
            "to that, or model.positional_embedding=none to drop the absolute embedding (untested by THUDM)"
        )
    if mode == "none":
        embed.use_learned_positional_embeddings = False
        embed.use_positional_embeddings = False
        return "none"
    if mode == "learned":
        if not native:
            raise ConfigError(
                f"model.positional_embedding=learned needs the table's native {cfg.sample_frames} frames, "
                f"got {frames}; use sincos (what diffusers computes at other frame counts) or none"
            )
        return "learned"
    if native:  # diffusers would use the learned table here: replace it by sin-cos explicitly
        table = embed._get_positional_embeddings(
            cfg.sample_height, cfg.sample_width, frames, device=embed.pos_embedding.device
        )
        embed.pos_embedding = table.to(embed.pos_embedding.dtype)
    return "sincos"


def cosine_lr(step: int, total: int, warmup: int = 0) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# -- early stopping (zero-shot video restoration, arXiv 2407.01960 sec. "early stopping") -----------
def early_stop_steps(num_inference_steps: int, fraction: float | None) -> int | None:
    """Denoising steps run before the denoised estimate is decoded: ``ceil(fraction * N)``, at
    least 1; None (no early stop) for a null fraction or one that keeps every step."""
    if fraction is None:
        return None
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"early_stop must be a fraction of the steps in (0, 1], got {fraction}")
    steps = max(1, math.ceil(fraction * num_inference_steps - 1e-9))
    return None if steps >= num_inference_steps else steps


def denoised_estimate(scheduler, step_output: tuple, model_output: torch.Tensor, sample: torch.Tensor):
    """x0-hat of the step just taken: the scheduler's own ``pred_original_sample`` where its
    ``step`` returns one (CogVideoX's DDIM and DPM schedulers return (prev, x0)); for a
    flow-matching scheduler (Wan's UniPC, ``prediction_type=flow_prediction``) ``x_t - sigma_t v``
    with the sigma of the step just taken."""
    if isinstance(step_output, tuple) and len(step_output) >= 2 and step_output[1] is not None:
        return step_output[1]
    if getattr(scheduler.config, "prediction_type", None) == "flow_prediction":
        sigma = scheduler.sigmas[scheduler.step_index - 1].to(sample.device, sample.dtype)
        return sample - sigma * model_output.to(sample.dtype)
    raise ConfigError(f"early_stop is not supported with {type(scheduler).__name__}")


class early_stopping:  # noqa: N801 (a context manager, used as `with early_stopping(...)`)
    """Within the block, every call of ``pipeline`` runs only ``steps`` denoising steps and
    decodes the denoised estimate x0-hat of the last one (None: no change). The scheduler's
    ``step`` is wrapped for the block: after step ``steps`` it returns x0-hat as the latents and sets
    the pipeline's ``_interrupt`` flag, whose check at the top of the diffusers loop skips the
    remaining steps (CogVideoX and Wan I2V pipelines alike); ``set_timesteps``, called once per
    pipeline call, restarts the count."""

    def __init__(self, pipeline, steps: int | None):
        self.pipeline, self.steps, self.taken = pipeline, steps, 0

    def __enter__(self):
        if self.steps is None:
            return self
        scheduler = self.pipeline.scheduler
        self._step, self._set_timesteps = scheduler.step, scheduler.set_timesteps
        signature = inspect.signature(self._step)  # where `sample` sits differs (DDIM, DPM, UniPC)

        def set_timesteps(*args, **kwargs):
            self.taken = 0
            return self._set_timesteps(*args, **kwargs)

        def step(model_output, *args, **kwargs):
            output = self._step(model_output, *args, **kwargs)
            self.taken += 1
            if self.taken != self.steps:
                return output
            sample = signature.bind(model_output, *args, **kwargs).arguments["sample"]
            estimate = denoised_estimate(scheduler, output, model_output, sample)
            self.pipeline._interrupt = True
            return (estimate, *output[1:]) if isinstance(output, tuple) else (estimate,)

        scheduler.set_timesteps, scheduler.step = set_timesteps, step
        return self

    def __exit__(self, *exc):
        if self.steps is not None:
            scheduler = self.pipeline.scheduler
            del scheduler.step, scheduler.set_timesteps  # the instance attributes: the class's again
        return False
