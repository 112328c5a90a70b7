"""Lightning callbacks: frame-wise metrics to disk (frame_metrics.json) and to W&B."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch

from src.utils.frames import label_panels, to_uint8_images, write_gif

log = logging.getLogger(__name__)


def trajectory_strip(degraded_fchw: torch.Tensor, generated_fchw: torch.Tensor) -> np.ndarray:
    """(F, H, 3W, 3) uint8 frames: degraded input trajectory | generated | ground truth (the
    trajectory's clean last frame, on every frame), labelled "degraded", "generated", "target" at
    the top left of each panel (no labels when H < 24: see ``label_panels``)."""
    clean = degraded_fchw[-1:].expand_as(degraded_fchw)
    panel = torch.cat([degraded_fchw, generated_fchw, clean], dim=-1)  # (F, C, H, 3W)
    return label_panels(to_uint8_images(panel), ["degraded", "generated", "target"])


class FrameMetricsWriter(L.Callback):
    """After each validation: ``<run_dir>/frame_metrics.json`` (readable without W&B), and in
    W&B a metric-vs-frame line chart and sample videos (degraded | generated | target, labelled)."""

    def __init__(self, output_dir: str, max_videos: int = 4):
        self.output_dir = Path(output_dir)
        self.max_videos = max_videos

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = getattr(pl_module, "last_frame_metrics", None)
        if not metrics or trainer.sanity_checking or not trainer.is_global_zero:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        from src.metrics import frame_metrics

        frame_metrics.write(self.output_dir, metrics)
        samples_dir = self.output_dir / "samples"
        samples_dir.mkdir(exist_ok=True)
        gifs = []
        for sample in getattr(pl_module, "val_samples", [])[: self.max_videos]:
            gif = samples_dir / f"{sample['key'].replace('/', '__')}_step{trainer.global_step:06d}.gif"
            gifs.append(
                (sample["key"], write_gif(trajectory_strip(sample["degraded"], sample["generated"]), gif))
            )
        self._log_wandb(trainer, metrics, gifs)

    @staticmethod
    def _log_wandb(trainer: L.Trainer, metrics: dict, gifs: list) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            if not isinstance(logger, WandbLogger):
                continue
            import wandb

            curves = [name for name in ("psnr", "ssim", "lpips") if metrics.get(name)]
            table = wandb.Table(
                columns=["frame", *curves],
                data=[
                    [frame, *(metrics[name][i] for name in curves)]
                    for i, frame in enumerate(metrics["frames"])
                ],
            )
            payload = {
                f"val/{name}_vs_frame": wandb.plot.line(
                    table, "frame", name, title=f"{name.upper()} vs frame (val)"
                )
                for name in curves
            }
            payload["val/frame_table"] = table
            for key, gif in gifs:
                payload[f"val/video/{key}"] = wandb.Video(
                    str(gif), format="gif", caption="degraded | generated | target"
                )
            # No explicit step: W&B drops rows whose step is behind its own counter; Lightning's
            # WandbLogger keys its x-axis on "trainer/global_step" the same way.
            payload["trainer/global_step"] = trainer.global_step
            logger.experiment.log(payload)


class PrecomputeEncoderCache(L.Callback):
    """Before training: the VAE posterior of every training clip and the T5 embedding of every
    training and validation prompt (and of "" for guidance) into the module's cache, each rank
    taking its share under DDP; then, if ``offload_text_encoder``, T5 moves to the CPU.

    Does nothing without ``model.cache.enabled`` or with clips made on the fly (data=synthetic:
    every clip is new, so there is nothing to reuse)."""

    def __init__(self, offload_text_encoder: bool = True):
        self.offload_text_encoder = offload_text_encoder

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from tqdm import tqdm

        from src.models import recipe

        backbone = getattr(pl_module, "backbone", None)
        cache = getattr(backbone, "cache", None)
        datamodule = getattr(trainer, "datamodule", None)
        train_set = getattr(datamodule, "train_set", None)
        if cache is None or not getattr(train_set, "supports_cache", False):
            return
        indices = range(trainer.global_rank, len(train_set), trainer.world_size)
        # prompts come from the index; a clip is decoded only when its posterior is not cached yet
        prompts = {""} | {train_set.entries[i]["prompt"] for i in indices}
        for index in tqdm(indices, desc="encoder cache", unit="clip", disable=not trainer.is_global_zero):
            clip_id = train_set.clip_id(index)
            if cache.load_posterior(clip_id) is not None:
                continue
            item = train_set[index]
            if item is None:  # corrupt clip: skipped and counted by the dataset
                continue
            video = recipe.to_vae_video(item["frames"][None].to(pl_module.device, pl_module.vae.dtype))
            mean, logvar = backbone.encode_posterior(video)
            cache.save_posterior(clip_id, mean[0], logvar[0])
        val_set = getattr(datamodule, "val_set", None)
        prompts.update(entry["prompt"] for entry in getattr(val_set, "entries", []))
        for prompt in sorted(prompts):
            backbone.prompt_embeddings([prompt])
        trainer.strategy.barrier("encoder_cache")
        log.info("encoder cache %s: %s", cache.directory, cache.stats)
        if self.offload_text_encoder:
            backbone.offload_text_encoder()


class InterruptCheckpoint(L.Callback):
    """Ctrl-C during training: save ``<dirpath>/interrupted.ckpt`` (adapter, optimizer, scheduler
    and loop state, like ``last.ckpt``) and say how to resume from it."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt) or not trainer.is_global_zero:
            return
        import sys

        path = self.dirpath / "interrupted.ckpt"
        try:
            trainer.save_checkpoint(path)
        except Exception as err:  # noqa: BLE001 - say so, never mask the interrupt
            print(f"interrupted at step {trainer.global_step}; saving {path} failed: {err}", file=sys.stderr)
            return
        print(
            f"interrupted at step {trainer.global_step}: saved {path}; resume with the same command "
            f"plus ckpt_path={path}",
            file=sys.stderr,
        )


class PreemptionCheckpoint(L.Callback):
    """Preemption and time-outs on a cluster. SLURM sends a signal some time before it kills a
    job (submitit asks for SIGUSR2, ``signal_delay_s`` ahead; NCCL may catch USR1). On it, at the next batch end,
    every rank agrees, ``<dirpath>/last.ckpt`` is written atomically (a temporary file renamed;
    the same state as the periodic checkpoints) with ``.preempted.json`` beside it, and the
    signal goes on to the handler that was there before (submitit's: it requeues the job). The
    requeued job runs the same config in the same run dir and resumes from ``last.ckpt`` by
    itself (src/train.py, ``ckpt_path=auto``). Without a scheduler's handler the run stops with
    exit status 3 and the same message.

    ``rehearse_at_step``: send the signal to this process once, at that step (recorded in
    ``<dirpath>/.preemption_rehearsed``), to try requeue and resume before a long job."""

    EXIT_STATUS = 3

    def __init__(self, dirpath: str, signal_name: str = "USR2", rehearse_at_step: int | None = None):
        import signal

        self.dirpath, self.signal_name = Path(dirpath), str(signal_name).upper().removeprefix("SIG")
        if not hasattr(signal, f"SIG{self.signal_name}"):
            from src.utils.cli import ConfigError

            raise ConfigError(
                f"callbacks.preemption.signal_name={signal_name!r} is not a signal (e.g. USR1, USR2, TERM)"
            )
        self.signum = getattr(signal, f"SIG{self.signal_name}")
        self.rehearse_at_step = None if rehearse_at_step is None else int(rehearse_at_step)
        self.requested = self.preempted = False
        self._previous = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        import signal
        import threading

        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return  # Python delivers signals to the main thread only
        self._previous = signal.getsignal(self.signum)
        signal.signal(self.signum, self._on_signal)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        import signal

        if stage == "fit" and self._previous is not None and signal.getsignal(self.signum) == self._on_signal:
            signal.signal(self.signum, self._previous)

    def _on_signal(self, signum, frame) -> None:
        self.requested = True  # acted on at the next batch end: never in the middle of a step
        log.warning("received SIG%s: checkpointing at the end of this batch", self.signal_name)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        import os

        from src.utils.rundir import LAST_CHECKPOINT, PREEMPTED

        if self.rehearse_at_step is not None and trainer.global_step == self.rehearse_at_step:
            marker = self.dirpath / ".preemption_rehearsed"
            if trainer.is_global_zero and not marker.exists():
                self.dirpath.mkdir(parents=True, exist_ok=True)
                marker.write_text(f"step {trainer.global_step}\n")
                os.kill(os.getpid(), self.signum)  # handled at once, in this (main) thread
        if not trainer.strategy.reduce_boolean_decision(self.requested, all=False):
            return
        self.preempted = True
        path, partial = self.dirpath / LAST_CHECKPOINT, self.dirpath / f".{LAST_CHECKPOINT}.partial"
        trainer.save_checkpoint(partial)  # every rank takes part (sharded strategies write shards)
        if trainer.is_global_zero:
            os.replace(partial, path)  # a requeued job never finds half a file
            (self.dirpath / PREEMPTED).write_text(
                json.dumps({"global_step": int(trainer.global_step), "checkpoint": str(path)}) + "\n"
            )
        trainer.strategy.barrier()
        log.warning(
            "preempted at step %d: saved %s; the requeued job resumes from it (or rerun the same command "
            "with ckpt_path=auto)",
            trainer.global_step,
            path,
        )
        previous = self._previous
        if callable(previous):
            previous(self.signum, None)  # submitit: requeue this job and exit
        raise SystemExit(self.EXIT_STATUS)
