"""LightningModule: LoRA fine-tuning of an image-to-video backbone on progression clips (or, with
``lora=none``, full fine-tuning of its transformer; tiny models only).

Only Lightning concerns live here: the optimiser and schedule, the training step's logging, the
validation loop and its metrics, adapter-only checkpoints. Everything about the model -- loading,
geometry, encoders and their cache, the training loss, trajectory generation, LoRA export -- is
the backbone family's (:mod:`src.models.family`), chosen by ``model._target_``.

Validation generates each trajectory from I_1 and the prompt with the family's diffusers
pipeline built over this module's own components (no reload) and scores every generated frame
against the clean target.
"""

from __future__ import annotations

import logging

import lightning as L
import torch

from src.metrics import frame_psnr_ssim
from src.metrics.image import mean_colour_error
from src.models.family import build_backbone
from src.models.lora import add_lora, count_parameters, is_full_finetune, train_all_parameters
from src.utils.cli import HardwareError
from src.utils.frames import to_uint8_images
from src.utils.seeding import stable_seed

log = logging.getLogger(__name__)


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
        sharded_strategy: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler", "components"])
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.lora_cfg, self.seed = dict(lora), int(seed)
        self.full_finetune = is_full_finetune(self.lora_cfg)  # lora=none: no adapter, all weights train
        self.backbone = build_backbone(model)
        # before any weight loads; a sharded strategy (trainer=fsdp / deepspeed) allows lora=none of any model
        self.backbone.check_finetune_mode(self.lora_cfg, sharded_strategy)
        components = components or self.backbone.load()
        # registered here (Lightning moves them, checkpoints name them transformer.*); the
        # backbone keeps references to the same modules
        self.vae = components.vae.eval().requires_grad_(False)
        self.text_encoder = components.text_encoder.eval().requires_grad_(False)
        self.transformer = components.transformer.requires_grad_(False)
        if self.full_finetune:
            self.trainable_parameters = train_all_parameters(self.transformer)
        else:
            self.trainable_parameters = add_lora(
                self.transformer,
                lora["rank"],
                lora["alpha"],
                lora["target_modules"],
                lora.get("dropout", 0.0),
                lora.get("init", True),
            )
        if self.backbone.config.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.backbone.bind(components)
        self.strict_loading = False  # checkpoints hold only the adapter (or, lora=none, the transformer)
        self.last_frame_metrics: dict | None = None
        self.rank_sync: dict | None = None
        from src.metrics.accumulator import FrameMetricsAccumulator

        self.val_scores = FrameMetricsAccumulator()  # across batches and ranks, each sample once
        self.val_samples: list = []
        # validation metrics beyond PSNR/SSIM; a plain dict so LPIPS never enters checkpoints
        self.metrics_cfg = dict(metrics or {})
        self._metric_models: dict = {}

    @property
    def sharded(self) -> bool:
        """Under Lightning's ModelParallelStrategy (trainer=fsdp / fsdp_cpu): FSDP2 per block."""
        from lightning.pytorch.strategies import ModelParallelStrategy

        trainer = self._trainer
        return trainer is not None and isinstance(trainer.strategy, ModelParallelStrategy)

    def configure_model(self) -> None:
        """FSDP2 (``fully_shard``) on each transformer block, then the transformer: each unit
        keeps its parameters' own dtypes (the frozen base in model.dtype, LoRA in fp32; measured:
        FSDP2 shards such a mixed block, FSDP1 cannot flatten it) and reduces gradients in fp32.
        The VAE and the text encoder are frozen and stay whole on every rank."""
        from torch.distributed.fsdp import FSDPModule

        if not self.sharded or isinstance(
            self.transformer, FSDPModule
        ):  # Lightning calls it per fit/validate
            return
        from src.utils.distributed import shard_transformer

        shard_transformer(
            self.transformer, self.backbone.blocks(self.transformer), self.device_mesh["data_parallel"]
        )

    def train(self, mode: bool = True):
        """Frozen encoders stay in eval mode (T5 has dropout: in train mode it would add noise and
        consume the global RNG, breaking resume equivalence)."""
        super().train(mode)
        self.vae.eval()
        self.text_encoder.eval()
        return self

    def _generator(self, *parts) -> torch.Generator:
        """Every random draw is a pure function of (seed, purpose, step): resumes replay exactly."""
        return torch.Generator(device=self.device).manual_seed(stable_seed(self.seed, *parts))

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
        batches = self.trainer.fit_loop.epoch_loop.batch_progress.total.ready  # this rank's
        self._datamodule_call("set_batches_done", batches, self.trainer.world_size)

    def on_train_start(self) -> None:
        self._sync_clip_numbering()

    def on_train_epoch_start(self) -> None:
        self._sync_clip_numbering()

    def _datamodule_call(self, name: str, *args) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, name):
            getattr(datamodule, name)(*args)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._datamodule_call("record_skipped", batch)  # corrupt clips met in any worker

    def on_validation_batch_start(self, batch, batch_idx, dataloader_idx: int = 0) -> None:
        self._datamodule_call("record_skipped", batch)

    def on_train_end(self) -> None:
        self._datamodule_call("gather_skipped")  # every rank's (a collective: every rank is here)
        from src.utils.distributed import ranks_in_sync

        self.rank_sync = ranks_in_sync(self)  # None in one process; else every rank's weight digest
        if self.rank_sync and not self.rank_sync["in_sync"]:
            log.error("the ranks ended with different trainable weights: %s", self.rank_sync)

    def on_validation_end(self) -> None:
        self._datamodule_call("gather_skipped")

    def training_step(self, batch, batch_idx):
        if "frames" not in batch:  # every clip of this batch was corrupt (counted by the data module)
            if self.trainer.world_size > 1:  # a step must still reduce gradients with the other ranks
                return sum(p.sum() * 0.0 for p in self.transformer.parameters() if p.requires_grad)
            return None
        batch_size = batch["frames"].shape[0]
        # each rank its own noise and timesteps (rank 0 keeps the one-process seed)
        rank = self.global_rank
        purpose = ("train", self.global_step) if rank == 0 else ("train", self.global_step, "rank", rank)
        loss = self.backbone.training_loss(batch, self._generator(*purpose))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=batch_size)
        if "category" in batch:  # paired data: the crop size of the resolution curriculum's stage
            self.log("train/crop_size", float(batch["frames"].shape[-1]), batch_size=batch_size)
        return loss

    def configure_optimizers(self):
        parameters = [p for p in self.transformer.parameters() if p.requires_grad]
        if self.backbone.config.optimizer_8bit:
            optimizer = _adamw_8bit(parameters, self.optimizer_factory)
        else:
            optimizer = self.optimizer_factory(parameters)
        if self.lr_scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.lr_scheduler_factory(optimizer), "interval": "step"},
        }

    def _checkpointed(self, key: str) -> bool:
        """Adapter-only: the frozen base comes from model.weights and is never duplicated; with
        full fine-tuning the whole transformer (the VAE and text encoder stay frozen: not saved)."""
        return key.startswith("transformer.") if self.full_finetune else "lora_" in key

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if self._checkpointed(k)
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # strict_loading is off (the frozen parts are absent), so check what must be there
        if self.full_finetune:
            from src.models.checkpoint_error import CheckpointError

            expected = {f"transformer.{k}" for k in self.transformer.state_dict()}
            missing = sorted(expected - set(checkpoint.get("state_dict") or {}))
            if missing:
                raise CheckpointError(
                    f"this checkpoint lacks {len(missing)} transformer tensors of a full fine-tuning run "
                    f"(e.g. {missing[:3]}): it is not a lora=none checkpoint of this model"
                )

    # -- validation -------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, first_frames_bchw: torch.Tensor, prompts: list[str], seeds: list[int]) -> torch.Tensor:
        """(B, F, C, H, W) in [0, 1] generated from degraded first frames (B, C, H, W) in [0, 1]."""
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]
        return self.backbone.generate(first_frames_bchw, list(prompts), generators)

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
        self.val_scores.reset()
        self.val_samples = []

    def validation_step(self, batch, batch_idx):
        if "frames" not in batch:
            return
        frames = batch["frames"].to(self.device)  # (B, F, C, H, W): degraded ... clean
        target = frames[:, -1]
        # Seeded by the sample's place in the validation set (as batch b, item i of one process),
        # so every rank split draws the same noise: DDP validates exactly as one process does.
        per_batch = getattr(getattr(self.trainer, "datamodule", None), "val_batch_size", None) or len(
            batch["key"]
        )
        places = (
            batch["index"].tolist()
            if "index" in batch
            else [batch_idx * per_batch + i for i in range(len(batch["key"]))]
        )
        seeds = [
            self._generator("val", key, place // per_batch, place % per_batch).initial_seed()
            for key, place in zip(batch["key"], places, strict=True)
        ]
        generated = self.generate(frames[:, 0], batch["prompt"], seeds)
        psnr, ssim = frame_psnr_ssim(generated, target)
        input_psnr, input_ssim = frame_psnr_ssim(frames[:, :1], target)
        lpips_bf = input_lpips = None
        lpips = self._lpips()
        if lpips is not None:
            batch_size, num_frames = generated.shape[:2]
            flat = generated.reshape(batch_size * num_frames, *generated.shape[2:])
            reference = target.unsqueeze(1).expand_as(generated).reshape_as(flat)
            lpips_bf = lpips(flat.float(), reference.float()).view(batch_size, num_frames)
            input_lpips = lpips(frames[:, 0].float(), target.float()).reshape(-1)
        warping = flicker_scores = None
        if self.metrics_cfg.get("temporal", True):
            from src.metrics.temporal import flicker, warping_error

            warping, flicker_scores = [], []
            for video in generated:  # (F, C, H, W) in [0, 1]
                frames_fhwc = to_uint8_images(video)
                warping.append(warping_error(frames_fhwc)[0])
                flicker_scores.append(flicker(frames_fhwc)[0])
        colour = [
            mean_colour_error(video, degraded)
            for video, degraded in zip(
                to_uint8_images(generated[:, 0]), to_uint8_images(frames[:, 0]), strict=True
            )
        ]
        if "index" in batch:
            index = batch["index"]
        else:  # a loader without indices: this rank's running count (not deduplicated across ranks)
            index = torch.arange(frames.shape[0]) + batch_idx * frames.shape[0] + self.global_rank * 10**9
        self.val_scores.update(
            index,
            psnr,
            ssim,
            lpips_bf,
            warping,
            flicker_scores,
            input_psnr.reshape(-1),
            input_ssim.reshape(-1),
            input_lpips,
            colour,
            category=batch.get("category"),
        )
        if len(self.val_samples) < 4:
            for i in range(min(frames.shape[0], 4 - len(self.val_samples))):
                self.val_samples.append(
                    {"key": batch["key"][i], "degraded": frames[i].cpu(), "generated": generated[i].cpu()}
                )

    def on_validation_epoch_end(self) -> None:
        # Every rank's samples, each once (src/metrics/accumulator.py): frame_metrics.json and the
        # logged values are the same numbers. The values are already global, so no sync_dist.
        scores = self.val_scores.compute()
        n = scores["n"]
        if not n:
            return
        psnr, ssim, lpips = scores["psnr"], scores["ssim"], scores["lpips"]
        for index, value in enumerate(lpips or [], start=1):
            self.log(f"val/lpips/f{index}", value)
        temporal = None
        if self.metrics_cfg.get("temporal", True):
            temporal = {key: scores[key] for key in ("warping_error", "flicker")}
            for key, value in temporal.items():
                self.log(f"val/temporal/{key}", value)
        for index, (p, s) in enumerate(zip(psnr, ssim, strict=True), start=1):
            self.log(f"val/psnr/f{index}", p)
            self.log(f"val/ssim/f{index}", s)
        self.log("val/psnr_last", psnr[-1], prog_bar=True)
        self.log("val/ssim_last", ssim[-1])
        self.log("val/first_frame_colour_error", scores["colour"])
        for category, entry in sorted(scores["categories"].items()):
            self.log(f"val/category/{category}/psnr_last", entry["psnr_last"])
            self.log(f"val/category/{category}/ssim_last", entry["ssim_last"])
        from src.metrics import frame_metrics

        # the schema's one owner (src/metrics/frame_metrics.py) derives frames and the means
        self.last_frame_metrics = frame_metrics.make(
            self.hparams.task,
            self.hparams.prompt_mode,
            psnr,
            ssim,
            lpips,  # None when the LPIPS weights are missing (never a made-up number)
            n,
            input_psnr=scores["input_psnr"],
            input_ssim=scores["input_ssim"],
            input_lpips=scores["input_lpips"],
            temporal=temporal,
            # max over channels of |mean colour of generated frame 1 - mean colour of I_1|, 8-bit levels
            first_frame_colour_error={"mean": scores["colour"], "max": scores["colour_max"]},
            global_step=int(self.global_step),
        )
        for name, value in self.last_frame_metrics["mean"].items():
            self.log(f"val/mean/{name}", value)
