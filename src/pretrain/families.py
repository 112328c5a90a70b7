"""What differs between the two families' pretraining (:class:`CogVideoXPretraining` for
``--model tiny``, :class:`WanPretraining` for ``--model tiny_wan``): their files, architectures,
first-frame latents of the bank, latent statistics, pipeline, prompt embeddings and loss."""

from __future__ import annotations

from pathlib import Path

import torch

from src.models import recipe
from src.models.tiny import (
    DEFAULT_WEIGHTS,
    TINY_ARCHITECTURE,
    TINY_LEARNED_VAE_ARCHITECTURE,
    build_tiny_components,
)
from src.utils.config import PROJECT_ROOT


def t5_embeddings(components, token_ids: torch.Tensor) -> torch.Tensor:
    """The text encoder's embeddings as the diffusers pipeline computes them (padded ids in, last
    hidden state out), with gradients."""
    return components.text_encoder(token_ids)[0]


def tokenize(components, prompts: list[str]) -> torch.Tensor:
    return components.tokenizer(
        prompts,
        padding="max_length",
        max_length=components.max_sequence_length,
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    ).input_ids


def umt5_embeddings(components, token_ids: torch.Tensor) -> torch.Tensor:
    """UMT5 embeddings as the Wan pipeline computes them (attention mask from the padding, the
    positions past each prompt zeroed), with gradients."""
    mask = (token_ids != components.tokenizer.pad_token_id).long()
    embeds = components.text_encoder(token_ids, mask).last_hidden_state
    return embeds * mask.unsqueeze(-1).to(embeds.dtype)


class FamilyFiles:
    """Where a family's base, record and resumable state live; the learned-VAE variant's names
    carry ``learned_vae``: the weights file (src/models/pretrained/<file_stem>[_learned_vae]),
    the record (experiments/<record_stem>[_learned_vae]_pretrain.json), the state dir name."""

    file_stem: str
    record_stem: str
    state_prefix: str

    @staticmethod
    def _suffix(autoencoder: str) -> str:
        return "" if autoencoder == "codec" else "_learned_vae"

    def weights(self, autoencoder: str = "codec") -> Path:
        return DEFAULT_WEIGHTS.parent / f"{self.file_stem}{self._suffix(autoencoder)}.safetensors"

    def record(self, autoencoder: str = "codec") -> Path:
        return PROJECT_ROOT / "experiments" / f"{self.record_stem}{self._suffix(autoencoder)}_pretrain.json"

    def state_name(self, seed: int, autoencoder: str = "codec") -> str:
        return f"{self.state_prefix}{'' if autoencoder == 'codec' else 'learned_vae_'}seed{seed}"


class CogVideoXPretraining(FamilyFiles):
    """The tiny CogVideoX's pieces of the pretraining (``--model tiny``)."""

    @staticmethod
    def architecture(autoencoder: str = "codec") -> dict:
        return TINY_ARCHITECTURE if autoencoder == "codec" else TINY_LEARNED_VAE_ARCHITECTURE

    file_stem, record_stem, state_prefix = DEFAULT_WEIGHTS.stem, "tiny", ""
    load_build = None  # load_tiny's default: the tiny CogVideoX
    transformer_steps = 4500  # the shipped base's

    @staticmethod
    def build(arch):
        return build_tiny_components(arch)

    @staticmethod
    def first_frame_posterior(vae, video_bcfhw, count, generator):
        """Posterior of the noise-augmented first frame (the CogVideoX I2V recipe's condition)."""
        sigma = recipe.sample_noise_augmentation(count, generator)
        first = video_bcfhw[:, :, :1]
        first = first + sigma.view(-1, 1, 1, 1, 1) * torch.randn(first.shape, generator=generator)
        return recipe.encode_posterior(vae, first)

    @staticmethod
    def latent_statistics(samples) -> dict:
        return {"scaling_factor": float(1.0 / samples.std())}  # as CogVideoX's 1.15258426

    @staticmethod
    def pipeline(components):
        return recipe.i2v_pipeline(components)

    generate_trajectory = staticmethod(recipe.generate_trajectory)

    @staticmethod
    def loss(components, arch):
        scaling = components.vae.config.scaling_factor
        latent_frames = recipe.latent_frame_count(arch["frames"])
        rotary = recipe.rotary_embeddings(
            recipe.i2v_pipeline(components), arch["height"], arch["width"], latent_frames, torch.device("cpu")
        )

        def step_loss(bank, index, token_ids, generator):
            latents = recipe.video_latents(
                bank["mean"][index].float(), bank["logvar"][index].float(), scaling, generator
            )
            image = recipe.sample_posterior(
                bank["image_mean"][index].float(), bank["image_logvar"][index].float(), generator
            )
            image = image * recipe.image_latent_scale(components.vae.config)
            condition = recipe.pad_image_latents(image.permute(0, 2, 1, 3, 4), latent_frames)
            embeds = t5_embeddings(components, token_ids[index])
            timesteps = recipe.sample_timesteps(
                len(index), components.scheduler.config.num_train_timesteps, generator
            )
            noise = torch.randn(latents.shape, generator=generator)
            return recipe.i2v_loss(
                components.transformer,
                components.scheduler,
                latents,
                condition,
                embeds,
                timesteps,
                noise,
                rotary,
            )

        return step_loss


class WanPretraining(FamilyFiles):
    """The tiny Wan2.2's pieces of the pretraining (``--model tiny_wan``)."""

    @staticmethod
    def architecture(autoencoder: str = "codec") -> dict:
        from src.models.wan_architecture import TINY_WAN_ARCHITECTURE, TINY_WAN_LEARNED_VAE_ARCHITECTURE

        return TINY_WAN_ARCHITECTURE if autoencoder == "codec" else TINY_WAN_LEARNED_VAE_ARCHITECTURE

    file_stem, record_stem, state_prefix = "tiny_wan_ti2v", "tiny_wan", "tiny_wan_"
    transformer_steps = 6000  # the shipped base's

    @staticmethod
    def load_build(arch):
        from src.models.wan_architecture import build_tiny_wan_components

        return build_tiny_wan_components(arch)

    @staticmethod
    def build(arch):
        from src.models.wan_architecture import build_tiny_wan_components

        return build_tiny_wan_components(arch)

    @staticmethod
    def first_frame_posterior(vae, video_bcfhw, count, generator):
        """Posterior of the clean first frame alone (its mode is Wan's condition latent)."""
        return recipe.encode_posterior(vae, video_bcfhw[:, :, :1])

    @staticmethod
    def latent_statistics(samples) -> dict:
        """Per-channel mean and std of the latents (what Wan2.2's VAE config lists)."""
        flat = samples.transpose(0, 1).reshape(samples.shape[1], -1)
        return {"latents_mean": flat.mean(1).tolist(), "latents_std": flat.std(1).tolist()}

    @staticmethod
    def pipeline(components):
        from src.models.wan_architecture import wan_pipeline

        return wan_pipeline(components)

    @staticmethod
    def generate_trajectory(*args, **kwargs):
        from src.models.wan_recipe import generate_trajectory

        return generate_trajectory(*args, **kwargs)

    @staticmethod
    def loss(components, arch):
        from src.models import wan_recipe

        vae_config = components.vae.config
        shift = float(components.scheduler.config.flow_shift)

        def step_loss(bank, index, token_ids, generator):
            latents = wan_recipe.video_latents(
                bank["mean"][index].float(), bank["logvar"][index].float(), vae_config, generator
            )
            condition = wan_recipe.normalize_latents(
                bank["image_mean"][index].float(), vae_config
            )  # the mode
            embeds = umt5_embeddings(components, token_ids[index])
            sigmas = wan_recipe.shifted_sigmas(len(index), generator, shift)
            noise = torch.randn(latents.shape, generator=generator)
            return wan_recipe.flow_matching_loss(
                components.transformer,
                latents,
                condition,
                wan_recipe.first_frame_mask(latents),
                embeds,
                sigmas,
                noise,
                num_train_timesteps=int(components.scheduler.config.num_train_timesteps),
            )

        return step_loss


FAMILY = {"tiny": CogVideoXPretraining(), "tiny_wan": WanPretraining()}
