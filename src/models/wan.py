"""The Wan2.2-TI2V family (:class:`WanTI2V`: Wan2.2-TI2V-5B and the tiny Wan2.2), the V-Bridge
backbone, over the recipe of :mod:`src.models.wan_recipe` and the architectures of
:mod:`src.models.wan_architecture`; every public name of both is importable from here too
(``__all__``), as ``src.models.wan.<name>``.
"""

from __future__ import annotations

import logging

import torch

from src.models.family import Backbone, I2VComponents
from src.models.recipe import encode_posterior
from src.models.wan_architecture import (
    PUBLISHED_ARCHITECTURES,
    TINY_WAN_ARCHITECTURE,
    TINY_WAN_LEARNED_VAE_ARCHITECTURE,
    _check_geometry,
    build_meta_models,
    build_scheduler,
    build_tiny_wan_components,
    check_geometry,
    meta_figures,
    spatial_multiple,
    tokens_per_sample,
    wan_pipeline,
)
from src.models.wan_recipe import (
    condition_latents,
    denormalize_latents,
    encode_prompts,
    first_frame_mask,
    flow_matching_loss,
    generate_trajectory,
    image_to_vae,
    masked_model_input,
    normalize_latents,
    shifted_sigmas,
    token_timesteps,
    video_latents,
)
from src.utils.cli import ConfigError

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
