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

import torch

from src.models.family import Backbone, I2VComponents, ModelWeightsMissing  # noqa: F401 (re-exported)
from src.utils.cli import ConfigError, InputError

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
    from src.models.tiny import build_scheduler

    return build_scheduler(PUBLISHED_ARCHITECTURES[name]["scheduler"])


class CogVideoXI2V(Backbone):
    """CogVideoX image-to-video, 1.0 (``cogvideox_5b_i2v``) and 1.5 (``cogvideox1.5_5b_i2v``), and
    the embedded tiny model. What differs between the versions (temporal patches of 2 with
    latent-frame padding, the ``ofs`` input, ``invert_scale_latents``, the learned positional
    table of 1.0) is read from the transformer and VAE configs, as diffusers' pipeline reads it.

    Training step (the CogVideoX I2V recipe, :mod:`src.models.recipe`): clean video latents from
    the VAE posterior (cached), the (noise-augmented) first frame's latents concatenated on the
    channel axis with zeros for the other latent frames, uniform DDPM timesteps, v-prediction MSE.
    """

    family = "cogvideox"
    published = PUBLISHED_ARCHITECTURES
    vae_decode_gib = 3.0  # tiled + sliced CogVideoX VAE decode peak at 480x720 (assumption)
    report_geometries = ((9, 480, 720), (9, 768, 1360))

    @property
    def pipeline_class(self):
        from diffusers import CogVideoXImageToVideoPipeline

        return CogVideoXImageToVideoPipeline

    def make_pipeline(self, components):
        from src.models import recipe

        return recipe.i2v_pipeline(components)

    # -- config time ------------------------------------------------------------------------------
    def check_options(self) -> None:
        from src.models import recipe

        super().check_options()
        c = self.config
        if c.shift is not None:
            raise ConfigError(
                f"model.shift={c.shift}: {c.name} trains with DDPM v-prediction (CogVideoXDDIMScheduler), "
                "not flow matching; set model.shift=null"
            )
        if c.positional_embedding not in recipe.POSITIONAL_EMBEDDING_MODES:
            raise ConfigError(
                f"model.positional_embedding must be one of {recipe.POSITIONAL_EMBEDDING_MODES}, "
                f"got {c.positional_embedding!r}"
            )

    def architecture(self) -> dict:
        if self.is_tiny:
            from src.models.tiny import read_tiny_architecture

            return read_tiny_architecture(self.config.weights)
        return self.published_or_local_architecture()

    def size_multiple(self, vae_config=None, transformer_config=None) -> int:
        if vae_config is None:
            arch = self.architecture()
            vae_config, transformer_config = arch["vae"], arch["transformer"]
        return 2 ** (len(vae_config["block_out_channels"]) - 1) * int(transformer_config["patch_size"])

    def check_geometry(self, vae_config, transformer_config) -> None:
        """Frame count 4k+1 and a resolution the VAE and patching take; CogVideoX 1.0's learned
        positional table at its native size only (unless model.positional_embedding=none)."""
        from src.models import recipe

        frames, height, width = self.geometry
        recipe.latent_frame_count(frames, int(vae_config.get("temporal_compression_ratio", 4)))
        spatial = 2 ** (len(vae_config["block_out_channels"]) - 1)
        multiple = self.size_multiple(vae_config, transformer_config)
        if height % multiple or width % multiple or height <= 0 or width <= 0:
            raise ConfigError(
                f"{self.name}: model.height and model.width must be positive, each a multiple of {multiple}; "
                f"got {height}x{width}"
            )
        native = (transformer_config["sample_height"] * spatial, transformer_config["sample_width"] * spatial)
        if (
            transformer_config.get("use_learned_positional_embeddings")
            and self.config.positional_embedding != "none"
            and (height, width) != native
        ):
            version = PUBLISHED_ARCHITECTURES.get(self.name, {}).get("version", "1.0")
            raise ConfigError(
                f"{self.name} (CogVideoX {version}) takes {native[0]}x{native[1]} only, got {height}x{width} "
                "(its learned positional embedding has that size); model.positional_embedding=none drops it"
            )
        patch_t = transformer_config.get("patch_size_t")
        if patch_t and (frames - 1) % 16:
            latent = recipe.latent_frame_count(frames)
            log.warning(
                "%s prefers 16N+1 frames (81, 161); %d frames are padded to %d latent frames",
                self.name,
                frames,
                latent + recipe.latent_frame_padding(latent, patch_t),
            )

    # -- loading ----------------------------------------------------------------------------------
    def load_tiny(self) -> I2VComponents:
        from src.models.tiny import load_tiny

        components, _ = load_tiny(self.config.weights)
        return components

    def load_pretrained(self) -> I2VComponents:
        """Transformer, VAE, T5 + tokenizer and scheduler as shipped, via the diffusers I2V
        pipeline's ``from_pretrained``; base weights in ``model.dtype`` (bf16 by default)."""
        directory = self.resolve_weights()
        dtype = getattr(torch, self.config.dtype)
        log.info("loading %s from %s (%s)", self.name, directory, dtype)
        pipeline = self.pipeline_class.from_pretrained(str(directory), torch_dtype=dtype)
        expected = PUBLISHED_ARCHITECTURES.get(self.name)
        if expected is not None:
            got_t = pipeline.transformer.config.get("patch_size_t")
            if got_t != expected["transformer"].get("patch_size_t"):
                raise InputError(
                    f"model {self.name} expects CogVideoX {expected['version']} weights, but {directory} has "
                    f"patch_size_t={got_t}: is model.path pointing at the other version?"
                )
        if pipeline.transformer.config.in_channels != 32:
            raise InputError(f"{directory} is not an image-to-video model (transformer in_channels != 32)")
        return self.components_of(pipeline)

    @staticmethod
    def build_tiny(architecture: dict) -> I2VComponents:
        from src.models.tiny import build_tiny_components

        return build_tiny_components(architecture)

    build_meta = staticmethod(build_meta_models)

    # -- binding ----------------------------------------------------------------------------------
    def bind(self, components: I2VComponents, cache: bool = True):
        from src.models import recipe

        super().bind(components, cache)
        frames = self.config.frames
        self.latent_frames = recipe.latent_frame_count(
            frames, components.vae.config.temporal_compression_ratio
        )
        # CogVideoX 1.5 patches time in pairs: copies of latent frame 0 pad the count, and the
        # pipeline drops as many generated frames after sampling.
        self.latent_padding = recipe.latent_frame_padding(
            self.latent_frames, components.transformer.config.get("patch_size_t")
        )
        self._rotary_cache = None
        return self

    def configure_transformer(self, transformer, mode: str, vae_config=None) -> str:
        from src.models import recipe

        vae_config = vae_config if vae_config is not None else self.components.vae.config
        frames, height, width = self.geometry
        return recipe.configure_positional_embeddings(
            transformer, mode, frames, height, width, 2 ** (len(vae_config.block_out_channels) - 1)
        )

    def apply_exported_policy(self, pipeline, export_config: dict) -> None:
        from src.models import recipe

        if export_config.get("positional_embedding") and export_config.get("frames"):
            recipe.configure_positional_embeddings(
                pipeline.transformer,
                str(export_config["positional_embedding"]),
                int(export_config["frames"]),
                int(export_config["height"]),
                int(export_config["width"]),
                pipeline.vae_scale_factor_spatial,
            )

    def _rotary(self):
        """Rotary embeddings at the training geometry, exactly as the pipeline computes them;
        once per device."""
        from src.models import recipe

        device = self.device
        if self._rotary_cache is None or self._rotary_cache[0] != device:
            frames, height, width = self.geometry
            emb = recipe.rotary_embeddings(
                self.pipeline, height, width, self.latent_frames + self.latent_padding, device
            )
            self._rotary_cache = (device, emb)
        return self._rotary_cache[1]

    # -- encoding, loss, sampling -----------------------------------------------------------------
    def encode_prompts(self, prompts: list[str], device) -> torch.Tensor:
        from src.models import recipe

        return recipe.encode_prompts(self.pipeline, prompts, int(self.config.max_sequence_length), device)

    def training_loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        from src.models import recipe

        c, vae, device = self.config, self.components.vae, self.device
        frames = batch["frames"]  # (B, F, C, H, W) in [0, 1]
        video = recipe.to_vae_video(frames.to(vae.dtype))
        mean, logvar = self.clip_posteriors(video, batch.get("clip_id"))
        latents = recipe.video_latents(mean, logvar, vae.config.scaling_factor, generator)
        latents = recipe.prepend_first_latent_frame(latents, self.latent_padding)
        sigma = None
        if c.noise_augmentation.enabled:
            sigma = recipe.sample_noise_augmentation(
                frames.shape[0], generator, c.noise_augmentation.mean, c.noise_augmentation.std, device=device
            )
        condition = recipe.image_latents(
            vae, video[:, :, 0], self.latent_frames + self.latent_padding, generator, sigma
        )
        condition = recipe.drop_image_latents(condition, 1.0 - float(c.condition_probability), generator)
        embeds = self.prompt_embeddings(list(batch["prompt"]))
        timesteps = recipe.sample_timesteps(
            frames.shape[0], self.components.scheduler.config.num_train_timesteps, generator, device
        )
        noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
        return recipe.i2v_loss(
            self.components.transformer,
            self.components.scheduler,
            latents,
            condition,
            embeds.to(latents.dtype),
            timesteps,
            noise,
            self._rotary(),
            recipe.ofs_input(self.components.transformer, latents),
            skip_frames=0 if c.loss_on_first_frame else 1 + self.latent_padding,
        )

    def sample(self, *args, **kwargs) -> torch.Tensor:
        from src.models import recipe

        return recipe.generate_trajectory(self.pipeline, *args, **kwargs)

    # -- memory plan ------------------------------------------------------------------------------
    def tokens_per_sample(
        self, vae_config: dict, transformer_config: dict, frames: int, height: int, width: int
    ) -> dict:
        """Video tokens + text tokens of one sample, as the CogVideoX transformer sees it."""
        from src.models import recipe

        vae_spatial = 2 ** (len(vae_config["block_out_channels"]) - 1)
        patch = int(transformer_config["patch_size"])
        patch_t = transformer_config.get("patch_size_t")
        latent_frames = recipe.latent_frame_count(
            frames, int(transformer_config["temporal_compression_ratio"])
        )
        padded = latent_frames + recipe.latent_frame_padding(latent_frames, patch_t)
        grid_h, grid_w = height // vae_spatial // patch, width // vae_spatial // patch
        video = (padded // (patch_t or 1)) * grid_h * grid_w
        text = int(transformer_config["max_text_seq_length"])
        return {
            "latent_frames": latent_frames,
            "latent_frames_padded": padded,
            "grid": [padded // (patch_t or 1), grid_h, grid_w],
            "video_tokens": video,
            "text_tokens": text,
            "tokens": video + text,
        }

    def transformer_shape(self, transformer_config: dict) -> tuple[int, int]:
        return (
            int(transformer_config["num_attention_heads"]) * int(transformer_config["attention_head_dim"]),
            int(transformer_config["num_layers"]),
        )
