"""One training job: validate, build, fit, validate, export, summarise (``python -m src.train``).

Each run writes to its run dir: checkpoints/ (adapter-only), lora/ (diffusers format),
frame_metrics.json, samples/*.gif, run_summary.json, and the logs of its loggers.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.training.builders import build_callbacks, build_datamodule, build_loggers, build_module
from src.training.validate import validate_config
from src.utils.cli import drop_duplicate_lightning_handler
from src.utils.config import container
from src.utils.distributed import use_job_overrides_for_ddp_children
from src.utils.io import write_text_atomic

log = logging.getLogger("src.train")  # the name its log lines have always had


def train(cfg: DictConfig, run_dir: Path, sweep_group: str | None = None) -> dict:
    import lightning as L

    drop_duplicate_lightning_handler()
    use_job_overrides_for_ddp_children()  # DDP ranks re-run this job, not the whole sweep
    from src.utils.rundir import resolve_ckpt_path

    resumed = resolve_ckpt_path(cfg.ckpt_path, run_dir)  # auto / a requeued job after preemption
    if resumed != cfg.ckpt_path:
        log.info("resuming from %s (ckpt_path=%s)", resumed, cfg.ckpt_path)
    elif str(cfg.ckpt_path) == "auto":
        log.info("ckpt_path=auto: no checkpoint in %s yet, starting afresh", run_dir)
    cfg.ckpt_path = resumed
    validate_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    drift = cfg.get("drift") or {}
    if drift.get("stage1"):  # V-Bridge stage 2: stage 1's outputs on its training pairs (cached)
        from src.training.drift import build_correction_pairs

        build_correction_pairs(
            drift.stage1,
            seed=int(cfg.seed),
            batch_size=int(drift.get("batch_size", 8)),
            overwrite=bool(drift.get("overwrite", False)),
        )
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")  # data errors surface here, before the model is built
    if hasattr(datamodule, "write_pair_listing"):
        datamodule.write_pair_listing(run_dir)  # the chosen and skipped pairs, with the seed
    module = build_module(cfg)
    loggers = build_loggers(cfg, sweep_group)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=build_callbacks(cfg), logger=loggers or False)
    counts = module.parameter_counts()
    log.info("parameters: %s", counts)
    for logger in loggers:
        logger.log_hyperparams({**container(cfg), **counts, "run_dir": str(run_dir)})
    started = time.time()
    if cfg.train:
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        except SystemExit:
            # Lightning exits 1 after Ctrl-C (InterruptCheckpoint has saved interrupted.ckpt);
            # a preempted run leaves with its scheduler's status (a requeue) as it is
            preempted = any(getattr(c, "preempted", False) for c in trainer.callbacks)
            if trainer.interrupted and not preempted:
                raise KeyboardInterrupt from None
            raise
        from src.utils.rundir import CHECKPOINTS, PREEMPTED

        (run_dir / CHECKPOINTS / PREEMPTED).unlink(missing_ok=True)  # the preempted run has finished
    already_validated = (module.last_frame_metrics or {}).get("global_step") == trainer.global_step
    if cfg.validate and not already_validated:
        # train=false ckpt_path=...: evaluate a checkpoint (e.g. with other sampling settings).
        trainer.validate(
            module, datamodule=datamodule, verbose=False, ckpt_path=None if cfg.train else cfg.ckpt_path
        )
    summary = {
        "run_dir": str(run_dir),
        "seed": cfg.seed,
        "task": cfg.task.name,
        "prompt": cfg.prompt.mode,
        "model": cfg.model.name,
        "lora": container(cfg.lora),
        "global_step": int(trainer.global_step),
        "minutes": (time.time() - started) / 60,
        **counts,
        "frame_metrics": module.last_frame_metrics,
        "skipped_clips": datamodule.skipped_clips(),
        "data": getattr(datamodule, "description", None),
        "drift_stage1": drift.get("stage1"),
        "ddp": module.rank_sync,  # world size and every rank's weight digest (null in one process)
    }
    gathered = None
    if cfg.export_lora and module.sharded:  # FSDP2 shards: every rank helps to make them whole
        from src.models.lora import full_tensors, lora_state_dict

        transformer = module.transformer
        gathered = full_tensors(
            transformer.state_dict() if module.full_finetune else lora_state_dict(transformer)
        )
    if cfg.export_lora and trainer.is_global_zero:
        # <run_dir>/lora (LoRA) or <run_dir>/transformer (lora=none): summary lora_dir / transformer_dir
        directory = module.backbone.export_trained(
            module.transformer,
            run_dir,
            container(cfg.lora),
            extra={"task": cfg.task.name, "prompt": cfg.prompt.mode, "seed": cfg.seed},
            state_dict=gathered,
        )
        summary[f"{directory.name}_dir"] = str(directory)
    if trainer.is_global_zero:
        write_text_atomic(run_dir / "run_summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    log.info("run dir: %s", run_dir)
    if module.last_frame_metrics:
        m = module.last_frame_metrics
        log.info(
            "last frame: PSNR %.2f dB, SSIM %.3f (degraded input: %.2f dB, %.3f); PSNR per frame %s",
            m["psnr"][-1],
            m["ssim"][-1],
            m["input_psnr"],
            m["input_ssim"],
            [round(p, 2) for p in m["psnr"]],
        )
    return summary
