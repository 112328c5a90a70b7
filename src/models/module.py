"""LightningModule: CogVideoX image-to-video LoRA fine-tuning on progression clips.

Training step (the CogVideoX I2V recipe): clean video latents from the frozen VAE; latents of
the (noise-augmented) degraded first frame I_1 concatenated on the channel axis, zeros for the
other latent frames; uniform timesteps; v-prediction MSE. Only the LoRA parameters train (fp32).

Validation generates the trajectory from I_1 and the prompt with the diffusers
``CogVideoXImageToVideoPipeline`` built from this module's own components (no reload) and scores
every generated frame against the clean target.
"""

from __future__ import annotations

import functools
import logging

import lightning as L
import torch

from src.metrics import frame_psnr_ssim
from src.metrics.image import mean_colour_error
from src.models import recipe
from src.models.lora import add_lora, count_parameters
from src.utils.cli import ConfigError, HardwareError
from src.utils.frames import to_uint8_images
from src.utils.seeding import stable_seed

log = logging.getLogger(__name__)


def load_components(model_cfg: dict):
    kind = model_cfg.get("kind", "tiny")
    if kind == "tiny":
        from src.models.tiny import load_tiny

        components, _ = load_tiny(model_cfg.get("weights"))
        return components
    if kind == "diffusers":
        from src.models.cogvideox import load_cogvideox_components

        return load_cogvideox_components(model_cfg)
    raise ConfigError(f"unknown model.kind {kind!r} (available: tiny, diffusers)")


def check_model_geometry(components, height: int, width: int, frames: int) -> None:
    """Frame count 4k+1 and a resolution the VAE and patching can take, before heavy work."""
    recipe.latent_frame_count(frames, components.vae.config.temporal_compression_ratio)
    spatial = (
        2 ** (len(components.vae.config.block_out_channels) - 1) * components.transformer.config.patch_size
    )
    if height % spatial or width % spatial or height <= 0 or width <= 0:
        raise ConfigError(
            f"model resolution {width}x{height} must be a positive multiple of {spatial} for this model"
        )


def _adamw_8bit(parameters, factory):
    """bitsandbytes AdamW8bit with the configured optimizer's hyperparameters."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise HardwareError(
            "model.optimizer_8bit=true needs bitsandbytes (pip install bitsandbytes) and a CUDA GPU"
        ) from None
    kwargs = {k: v for k, v in factory.keywords.items() if k in ("lr", "betas", "eps", "weight_decay")}
    return bnb.optim.AdamW8bit(parameters, **kwargs)


class ProgressiveI2VModule(L.LightningModule):
    def __init__(
        self,
        model: dict,
        lora: dict,
        optimizer,
        lr_scheduler=None,
        seed: int = 0,
        task: str = "",
        prompt_mode: str = "",
        components=None,
        metrics: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler", "components"])
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.model_cfg, self.lora_cfg, self.seed = dict(model), dict(lora), int(seed)
        self.height, self.width, self.frames = int(model["height"]), int(model["width"]), int(model["frames"])
        components = components or load_components(self.model_cfg)
        check_model_geometry(components, self.height, self.width, self.frames)
        self.tokenizer, self.scheduler = components.tokenizer, components.scheduler
        self.max_sequence_length = int(model.get("max_sequence_length", components.max_sequence_length))
        self.vae = components.vae.eval().requires_grad_(False)
        self.text_encoder = components.text_encoder.eval().requires_grad_(False)
        self.transformer = components.transformer.requires_grad_(False)
        self.trainable_parameters = add_lora(
            self.transformer,
            lora["rank"],
            lora["alpha"],
            lora["target_modules"],
            lora.get("dropout", 0.0),
            lora.get("init", True),
        )
        if model.get("gradient_checkpointing"):
            self.transformer.enable_gradient_checkpointing()
        self.latent_frames = recipe.latent_frame_count(
            self.frames, self.vae.config.temporal_compression_ratio
        )
        # CogVideoX 1.5 patches time in pairs: copies of latent frame 0 pad the count, and the
        # pipeline drops as many generated frames after sampling.
        self.latent_padding = recipe.latent_frame_padding(
            self.latent_frames, self.transformer.config.get("patch_size_t")
        )
        self.positional_embedding = recipe.configure_positional_embeddings(
            self.transformer,
            model.get("positional_embedding", "sincos"),
            self.frames,
            self.height,
            self.width,
            2 ** (len(self.vae.config.block_out_channels) - 1),
        )
        self.cache = self._build_cache(components)
        self.strict_loading = False  # checkpoints hold only the adapter
        self.last_frame_metrics: dict | None = None
        self._val_sums: dict = {}
        self._rotary_cache = None
        self.val_samples: list = []
        # validation metrics beyond PSNR/SSIM; a plain dict so LPIPS never enters checkpoints
        self.metrics_cfg = dict(metrics or {})
        self._metric_models: dict = {}

    def train(self, mode: bool = True):
        """Frozen encoders stay in eval mode (T5 has dropout: in train mode it would add noise and
        consume the global RNG, breaking resume equivalence)."""
        super().train(mode)
        self.vae.eval()
        self.text_encoder.eval()
        return self

    # -- encoder cache ------------------------------------------------------------------------
    def _build_cache(self, components):
        from src.data.latent_cache import LatentCache, cache_fingerprint, file_hash

        cache_cfg = self.model_cfg.get("cache") or {}
        if not cache_cfg.get("enabled"):
            return None
        fingerprint = cache_fingerprint(
            self.model_cfg, self.vae.config, self.text_encoder.config, self.height, self.width, self.frames
        )
        weights = self.model_cfg.get("weights")
        if weights:  # a regenerated tiny base must not reuse the old entries
            fingerprint["weights_sha256"] = file_hash(weights)
        return LatentCache(cache_cfg["dir"], fingerprint)

    def clip_posteriors(self, video_bcfhw: torch.Tensor, clip_ids: list[str] | None):
        """(mean, logvar) of each clip from the cache when it has them, else from the VAE
        (and stored). Without a cache or clip ids (synthetic clips): always the VAE."""
        if self.cache is None or clip_ids is None:
            return recipe.encode_posterior(self.vae, video_bcfhw)
        means, logvars = [], []
        for index, clip_id in enumerate(clip_ids):
            entry = self.cache.load_posterior(clip_id)
            if entry is None:
                mean, logvar = recipe.encode_posterior(self.vae, video_bcfhw[index : index + 1])
                entry = (mean[0], logvar[0])
                self.cache.save_posterior(clip_id, *entry)
            means.append(entry[0])
            logvars.append(entry[1])
        device, dtype = video_bcfhw.device, video_bcfhw.dtype
        return torch.stack(means).to(device, dtype), torch.stack(logvars).to(device, dtype)

    @torch.no_grad()
    def prompt_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """T5 embeddings (B, L, D), through the cache when there is one. The text encoder runs
        wherever it is (on the CPU once offloaded) and its output comes to this module's device."""
        if self.cache is None:
            return recipe.encode_prompts(self.pipeline, prompts, self.max_sequence_length, self.device)
        rows = []
        for prompt in prompts:
            embeds = self.cache.load_prompt(prompt)
            if embeds is None:
                embeds = recipe.encode_prompts(
                    self.pipeline, [prompt], self.max_sequence_length, self.text_encoder.device
                )[0]
                self.cache.save_prompt(prompt, embeds)
            rows.append(embeds)
        return torch.stack(rows).to(self.device)

    def offload_text_encoder(self) -> None:
        """Move T5 to the CPU once every prompt is cached (frees ~9.5 GB for the 5B models)."""
        if self.text_encoder.device.type != "cpu":
            self.text_encoder.to("cpu")
            log.info("text encoder offloaded to the CPU: prompts come from the cache")

    # -- helpers ----------------------------------------------------------------------------
    @functools.cached_property
    def pipeline(self):
        """The diffusers I2V pipeline over this module's own (LoRA-carrying) components, built once:
        it holds references to the modules, so it follows them across devices and weight loads."""
        return recipe.i2v_pipeline(self)

    def _generator(self, *parts) -> torch.Generator:
        """Every random draw is a pure function of (seed, purpose, step): resumes replay exactly."""
        return torch.Generator(device=self.device).manual_seed(stable_seed(self.seed, *parts))

    def _rotary(self):
        """Rotary embeddings at the training geometry, computed once per device."""
        if self._rotary_cache is None or self._rotary_cache[0] != self.device:
            emb = recipe.rotary_embeddings(
                self.pipeline, self.height, self.width, self.latent_frames + self.latent_padding, self.device
            )
            self._rotary_cache = (self.device, emb)
        return self._rotary_cache[1]

    def parameter_counts(self) -> dict:
        total = sum(count_parameters(m)[0] for m in (self.vae, self.text_encoder, self.transformer))
        return {
            "params/total": total,
            "params/trainable": self.trainable_parameters,
            "params/transformer": count_parameters(self.transformer)[0],
        }

    # -- training ---------------------------------------------------------------------------
    def _sync_clip_numbering(self) -> None:
        # Synthetic clips are numbered by how many training batches came before them, so a run
        # resumed from a checkpoint sees exactly the clips the uninterrupted run saw (Lightning
        # may finish a restored epoch with a fresh iterator, hence also on_train_start).
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "set_batches_done"):
            datamodule.set_batches_done(self.trainer.fit_loop.epoch_loop.batch_progress.total.ready)

    def on_train_start(self) -> None:
        self._sync_clip_numbering()

    def on_train_epoch_start(self) -> None:
        self._sync_clip_numbering()

    def training_step(self, batch, batch_idx):
        if batch is None:  # every clip of this batch was corrupt (counted by the data module)
            return None
        frames = batch["frames"]  # (B, F, C, H, W) in [0, 1]
        generator = self._generator("train", self.global_step)
        video = recipe.to_vae_video(frames.to(self.vae.dtype))
        mean, logvar = self.clip_posteriors(video, batch.get("clip_id"))
        latents = recipe.video_latents(mean, logvar, self.vae.config.scaling_factor, generator)
        latents = recipe.prepend_first_latent_frame(latents, self.latent_padding)
        noise_cfg = self.model_cfg.get("noise_augmentation") or {}
        sigma = None
        if noise_cfg.get("enabled", True):
            sigma = recipe.sample_noise_augmentation(
                frames.shape[0],
                generator,
                noise_cfg.get("mean", -3.0),
                noise_cfg.get("std", 0.5),
                device=self.device,
            )
        condition = recipe.image_latents(
            self.vae, video[:, :, 0], self.latent_frames + self.latent_padding, generator, sigma
        )
        condition = recipe.drop_image_latents(
            condition, float(self.model_cfg.get("image_latent_dropout", 0.0)), generator
        )
        embeds = self.prompt_embeddings(list(batch["prompt"]))
        timesteps = recipe.sample_timesteps(
            frames.shape[0], self.scheduler.config.num_train_timesteps, generator, self.device
        )
        noise = torch.randn(latents.shape, generator=generator, device=self.device, dtype=latents.dtype)
        loss = recipe.i2v_loss(
            self.transformer,
            self.scheduler,
            latents,
            condition,
            embeds.to(latents.dtype),
            timesteps,
            noise,
            self._rotary(),
            recipe.ofs_input(self.transformer, latents),
        )
        self.log("train/loss", loss, prog_bar=True, batch_size=frames.shape[0])
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=frames.shape[0])
        return loss

    def configure_optimizers(self):
        parameters = [p for p in self.transformer.parameters() if p.requires_grad]
        if self.model_cfg.get("optimizer_8bit"):
            optimizer = _adamw_8bit(parameters, self.optimizer_factory)
        else:
            optimizer = self.optimizer_factory(parameters)
        if self.lr_scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.lr_scheduler_factory(optimizer), "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Adapter-only: the frozen base comes from model.weights and is never duplicated.
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if "lora_" in k}

    # -- validation -------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, first_frames_bchw: torch.Tensor, prompts: list[str], seeds: list[int]) -> torch.Tensor:
        """(B, F, C, H, W) in [0, 1] generated from degraded first frames (B, C, H, W) in [0, 1]."""
        sampling = self.model_cfg.get("sampling") or {}
        guidance = float(sampling.get("guidance_scale", 1.0))
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]
        embeds = negative = None
        if self.cache is not None:  # T5 may be offloaded: the pipeline gets embeddings
            embeds = self.prompt_embeddings(list(prompts)).to(self.transformer.dtype)
            if guidance > 1.0:
                negative = self.prompt_embeddings([""] * len(prompts)).to(self.transformer.dtype)
        return recipe.generate_trajectory(
            self.pipeline,
            first_frames_bchw,
            prompts,
            generators,
            self.height,
            self.width,
            self.frames,
            int(sampling.get("num_inference_steps", 25)),
            guidance,
            self.max_sequence_length,
            prompt_embeds=embeds,
            negative_prompt_embeds=negative,
        )

    def _lpips(self):
        """LPIPS(alex) loaded once (None, with one warning, when its weights are missing)."""
        if "lpips" not in self._metric_models:
            model = None
            if self.metrics_cfg.get("lpips", True):
                from src.metrics.lpips import load_lpips

                model = load_lpips(
                    self.metrics_cfg.get("alexnet_weights"), self.metrics_cfg.get("lpips_lin_weights")
                )
            self._metric_models["lpips"] = model
        model = self._metric_models["lpips"]
        return model.to(self.device) if model is not None else None

    def on_validation_epoch_start(self) -> None:
        self._val_sums = {
            "psnr": 0.0,
            "ssim": 0.0,
            "lpips": 0.0,
            "warping_error": 0.0,
            "flicker": 0.0,
            "input_psnr": 0.0,
            "input_ssim": 0.0,
            "input_lpips": 0.0,
            "colour": [],
            "n": 0,
        }
        self.val_samples = []

    def validation_step(self, batch, batch_idx):
        if batch is None:
            return
        frames = batch["frames"].to(self.device)  # (B, F, C, H, W): degraded ... clean
        target = frames[:, -1]
        seeds = [
            self._generator("val", key, batch_idx, i).initial_seed() for i, key in enumerate(batch["key"])
        ]
        generated = self.generate(frames[:, 0], batch["prompt"], seeds)
        psnr, ssim = frame_psnr_ssim(generated, target)
        input_psnr, input_ssim = frame_psnr_ssim(frames[:, :1], target)
        sums = self._val_sums
        sums["psnr"] = sums["psnr"] + psnr.sum(0).cpu()
        sums["ssim"] = sums["ssim"] + ssim.sum(0).cpu()
        sums["input_psnr"] += float(input_psnr.sum())
        sums["input_ssim"] += float(input_ssim.sum())
        lpips = self._lpips()
        if lpips is not None:
            batch_size, num_frames = generated.shape[:2]
            flat = generated.reshape(batch_size * num_frames, *generated.shape[2:])
            reference = target.unsqueeze(1).expand_as(generated).reshape_as(flat)
            sums["lpips"] = (
                sums["lpips"]
                + lpips(flat.float(), reference.float()).view(batch_size, num_frames).sum(0).cpu()
            )
            sums["input_lpips"] += float(lpips(frames[:, 0].float(), target.float()).sum())
        if self.metrics_cfg.get("temporal", True):
            from src.metrics.temporal import flicker, warping_error

            for video in generated:  # (F, C, H, W) in [0, 1]
                frames_fhwc = to_uint8_images(video)
                sums["warping_error"] += warping_error(frames_fhwc)[0]
                sums["flicker"] += flicker(frames_fhwc)[0]
        for video, degraded in zip(
            to_uint8_images(generated[:, 0]), to_uint8_images(frames[:, 0]), strict=True
        ):
            sums["colour"].append(mean_colour_error(video, degraded))
        sums["n"] += frames.shape[0]
        if len(self.val_samples) < 4:
            for i in range(min(frames.shape[0], 4 - len(self.val_samples))):
                self.val_samples.append(
                    {"key": batch["key"][i], "degraded": frames[i].cpu(), "generated": generated[i].cpu()}
                )

    def on_validation_epoch_end(self) -> None:
        n = self._val_sums.get("n", 0)
        if not n:
            return
        psnr = (self._val_sums["psnr"] / n).tolist()
        ssim = (self._val_sums["ssim"] / n).tolist()
        has_lpips = isinstance(self._val_sums["lpips"], torch.Tensor)
        lpips = (self._val_sums["lpips"] / n).tolist() if has_lpips else None
        for index, value in enumerate(lpips or [], start=1):
            self.log(f"val/lpips/f{index}", value, sync_dist=True)
        temporal = None
        if self.metrics_cfg.get("temporal", True):
            temporal = {key: self._val_sums[key] / n for key in ("warping_error", "flicker")}
            for key, value in temporal.items():
                self.log(f"val/temporal/{key}", value, sync_dist=True)
        for index, (p, s) in enumerate(zip(psnr, ssim, strict=True), start=1):
            self.log(f"val/psnr/f{index}", p, sync_dist=True)
            self.log(f"val/ssim/f{index}", s, sync_dist=True)
        self.log("val/psnr_last", psnr[-1], prog_bar=True, sync_dist=True)
        self.log("val/ssim_last", ssim[-1], sync_dist=True)
        self.log("val/first_frame_colour_error", sum(self._val_sums["colour"]) / n, sync_dist=True)
        from src.metrics import frame_metrics

        # the schema's one owner (src/metrics/frame_metrics.py) derives frames and the means
        self.last_frame_metrics = frame_metrics.make(
            self.hparams.task,
            self.hparams.prompt_mode,
            psnr,
            ssim,
            lpips,  # None when the LPIPS weights are missing (never a made-up number)
            n,
            input_psnr=self._val_sums["input_psnr"] / n,
            input_ssim=self._val_sums["input_ssim"] / n,
            input_lpips=self._val_sums["input_lpips"] / n if has_lpips else None,
            temporal=temporal,
            # max over channels of |mean colour of generated frame 1 - mean colour of I_1|, 8-bit levels
            first_frame_colour_error={
                "mean": sum(self._val_sums["colour"]) / n,
                "max": max(self._val_sums["colour"]),
            },
            global_step=int(self.global_step),
        )
        for name, value in self.last_frame_metrics["mean"].items():
            self.log(f"val/mean/{name}", value, sync_dist=True)
