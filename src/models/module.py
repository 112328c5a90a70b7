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
from src.models import recipe
from src.models.lora import add_lora, count_parameters
from src.utils.seeding import stable_seed

log = logging.getLogger(__name__)


def load_components(model_cfg: dict):
    kind = model_cfg.get("kind", "tiny")
    if kind == "tiny":
        from src.models.tiny import load_tiny

        components, _ = load_tiny(model_cfg.get("weights"))
        return components
    raise ValueError(f"unknown model.kind {kind!r} (available: tiny)")


def check_model_geometry(components, height: int, width: int, frames: int) -> None:
    """Frame count 4k+1 and a resolution the VAE and patching can take, before heavy work."""
    recipe.latent_frame_count(frames, components.vae.config.temporal_compression_ratio)
    spatial = (
        2 ** (len(components.vae.config.block_out_channels) - 1) * components.transformer.config.patch_size
    )
    if height % spatial or width % spatial or height <= 0 or width <= 0:
        raise ValueError(
            f"model resolution {width}x{height} must be a positive multiple of {spatial} for this model"
        )


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
        self.strict_loading = False  # checkpoints hold only the adapter
        self.last_frame_metrics: dict | None = None
        self._val_sums: dict = {}
        self._rotary_cache = None
        self.val_samples: list = []

    def train(self, mode: bool = True):
        """Frozen encoders stay in eval mode (T5 has dropout: in train mode it would add noise and
        consume the global RNG, breaking resume equivalence)."""
        super().train(mode)
        self.vae.eval()
        self.text_encoder.eval()
        return self

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
                self.pipeline, self.height, self.width, self.latent_frames, self.device
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
        scaling = self.vae.config.scaling_factor
        mean, logvar = recipe.encode_posterior(self.vae, video)
        latents = recipe.video_latents(mean, logvar, scaling, generator)
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
            self.vae, video[:, :, 0], self.latent_frames, scaling, generator, sigma
        )
        with torch.no_grad():
            embeds = recipe.encode_prompts(
                self.pipeline, list(batch["prompt"]), self.max_sequence_length, self.device
            )
        rotary = self._rotary()
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
            rotary,
        )
        self.log("train/loss", loss, prog_bar=True, batch_size=frames.shape[0])
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=frames.shape[0])
        return loss

    def configure_optimizers(self):
        parameters = [p for p in self.transformer.parameters() if p.requires_grad]
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
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]
        pipeline = self.pipeline
        pipeline.set_progress_bar_config(disable=True)
        output = pipeline(
            image=first_frames_bchw.float(),
            prompt=list(prompts),
            height=self.height,
            width=self.width,
            num_frames=self.frames,
            num_inference_steps=int(sampling.get("num_inference_steps", 25)),
            guidance_scale=float(sampling.get("guidance_scale", 1.0)),
            generator=generators,
            output_type="pt",
            max_sequence_length=self.max_sequence_length,
        ).frames
        return output.float().clamp(0, 1)

    def on_validation_epoch_start(self) -> None:
        self._val_sums = {"psnr": 0.0, "ssim": 0.0, "input_psnr": 0.0, "input_ssim": 0.0, "n": 0}
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
        for index, (p, s) in enumerate(zip(psnr, ssim, strict=True), start=1):
            self.log(f"val/psnr/f{index}", p, sync_dist=True)
            self.log(f"val/ssim/f{index}", s, sync_dist=True)
        self.log("val/psnr_last", psnr[-1], prog_bar=True, sync_dist=True)
        self.log("val/ssim_last", ssim[-1], sync_dist=True)
        self.last_frame_metrics = {
            "task": self.hparams.task,
            "prompt": self.hparams.prompt_mode,
            "frames": list(range(1, len(psnr) + 1)),
            "psnr": psnr,
            "ssim": ssim,
            "lpips": None,  # joins with the evaluation issue (LPIPS without torchvision)
            "n_images": n,
            "input_psnr": self._val_sums["input_psnr"] / n,
            "input_ssim": self._val_sums["input_ssim"] / n,
            "global_step": int(self.global_step),
        }
