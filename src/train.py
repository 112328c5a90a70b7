"""python -m src.train task=lowlight prompt=adaptive [group=option ...] [key=value ...]

LoRA fine-tuning of an image-to-video backbone (CogVideoX I2V or Wan2.2-TI2V, chosen by model=) on
progression clips (see conf/train.yaml).
Each run writes to its Hydra run dir under outputs/: checkpoints/ (adapter-only), lora/ (diffusers
format), frame_metrics.json, samples/*.gif, run_summary.json, and the logs of its loggers.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from src.utils.cli import (
    ConfigError,
    HardwareError,
    MissingFileError,
    drop_duplicate_lightning_handler,
    hydra_cli,
    number,
    require_cuda,
    user_errors,
)
from src.utils.config import CONFIG_DIR
from src.utils.distributed import (
    one_job_of_ranks,
    shards_weights,
    strategy_name,
    use_job_overrides_for_ddp_children,
)
from src.utils.io import write_text_atomic

log = logging.getLogger("src.train")


def _container(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def validate_config(cfg: DictConfig) -> None:
    """Cheap checks with one clear message each, before any data or model is loaded."""
    from src.data.degradations import check_task
    from src.models.family import build_backbone
    from src.models.lora import is_full_finetune, validate_lora_config

    paired = str((cfg.data or {}).get("_target_", "")).endswith("PairedDataModule")
    if cfg.task.name == "allinone":
        if not paired:
            raise ConfigError(
                "task=allinone trains one model on paired LQ/HQ sequences: use data=allinone "
                "(synthetic pairs, with degradation=allinone) or data=paired (your folders), "
                "or experiment=vbridge_tiny"
            )
    else:
        check_task(cfg.task.name)
    number(cfg.seed, "seed")
    for key in ("frames", "height", "width"):
        number(cfg.model[key], f"model.{key}")
    for key in ("max_steps", "accumulate_grad_batches", "log_every_n_steps"):
        if cfg.trainer.get(key) is not None:
            number(cfg.trainer[key], f"trainer.{key}")
    if is_full_finetune(cfg.lora):  # lora=none of a model it does not fit: refused first, weights unread
        build_backbone(_container(cfg.model)).check_finetune_mode(cfg.lora, shards_weights(cfg.trainer))
    validate_lora_config(
        cfg.lora.rank,
        cfg.lora.alpha,
        cfg.lora.target_modules,
        cfg.lora.dropout,
        full=cfg.lora.get("full", False),
    )
    sampling = cfg.model.get("sampling") or {}
    if "num_inference_steps" in sampling:
        number(sampling.num_inference_steps, "model.sampling.num_inference_steps", at_least=1)
    if "guidance_scale" in sampling:
        number(sampling.guidance_scale, "model.sampling.guidance_scale", float)
    for key in ("lr", "weight_decay"):
        if cfg.optimizer.get(key) is not None:
            number(cfg.optimizer[key], f"optimizer.{key}", float, at_least=0)
    if cfg.get("lr_scheduler") and cfg.lr_scheduler.get("total_steps") is not None:
        if number(cfg.lr_scheduler.total_steps, "lr_scheduler.total_steps") < 1:
            raise ConfigError(
                f"the one-cycle LR schedule needs trainer.max_steps >= 1 (got {cfg.trainer.max_steps}); "
                "or pass lr_scheduler=null"
            )
    if cfg.prompt.mode not in ("uniform", "adaptive"):
        raise ConfigError(f"prompt.mode must be uniform or adaptive, got {cfg.prompt.mode}")
    if str(cfg.trainer.get("accelerator", "cpu")) in ("gpu", "cuda"):
        require_cuda(f"trainer.accelerator={cfg.trainer.accelerator} (trainer=gpu / ddp / fsdp / deepspeed)")
    if strategy_name(cfg.trainer) == "DeepSpeedStrategy":
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise HardwareError(
                "trainer=deepspeed needs the deepspeed package: pip install deepspeed (on a CUDA machine)"
            )
    if cfg.ckpt_path:
        check_resume_checkpoint(cfg)
    if cfg.model.get("optimizer_8bit"):
        require_cuda("model.optimizer_8bit=true (bitsandbytes AdamW8bit)")
    # the family's own checks: geometry against its architecture, options, weights on this machine
    backbone = build_backbone(_container(cfg.model))
    if (cfg.get("curriculum") or {}).get("stages"):  # every stage's crop size, before the weights
        curriculum = resolve_curriculum(cfg, backbone)
        backbone.check_stage_sizes([stage.size for stage in curriculum.stages])
    backbone.check_config()


def resolve_curriculum(cfg: DictConfig, backbone):
    """The run's resolution curriculum with its sizes rounded to the family's token multiple."""
    from src.data.paired import Curriculum

    return Curriculum.resolve(
        _container(cfg.get("curriculum")),
        cfg.trainer.get("max_steps"),
        int(cfg.model.height),
        int(cfg.model.width),
        backbone.size_multiple(),
    )


def check_resume_checkpoint(cfg: DictConfig) -> None:
    """``ckpt_path`` must be a readable adapter checkpoint of this platform, of the same model,
    LoRA shape and geometry, and -- unless ``ckpt_allow_mismatch=true`` -- the same task and prompt."""
    from src.models.restorer import check_resume, read_lightning_checkpoint

    if not Path(str(cfg.ckpt_path)).expanduser().is_file():
        raise MissingFileError(
            f"ckpt_path={cfg.ckpt_path} does not exist: pass the last.ckpt of an earlier run"
        )
    checkpoint = read_lightning_checkpoint(cfg.ckpt_path)
    run = {
        "model": _container(cfg.model),
        "lora": _container(cfg.lora),
        "task": cfg.task.name,
        "prompt_mode": cfg.prompt.mode,
    }
    check_resume(checkpoint, cfg.ckpt_path, run, bool(cfg.get("ckpt_allow_mismatch", False)))
    # A OneCycleLR schedule is fixed at its start: its state ends at the first run's max_steps, and
    # torch raises deep inside the loop when a resumed run steps past it.
    planned = (cfg.get("lr_scheduler") or {}).get("total_steps")
    for scheduler in checkpoint.get("lr_schedulers") or []:
        total = scheduler.get("total_steps") if isinstance(scheduler, dict) else None
        if cfg.train and total is not None and planned is not None and int(planned) != int(total):
            raise ConfigError(
                f"ckpt_path={cfg.ckpt_path}: its one-cycle LR schedule ends at step {total}, this run's at "
                f"{planned} (trainer.max_steps={cfg.trainer.max_steps}); resume with trainer.max_steps={total}, or "
                "lr_scheduler=null (constant LR) to train on longer"
            )


def build_datamodule(cfg: DictConfig):
    from src.models.family import build_backbone

    return hydra.utils.instantiate(
        cfg.data,
        curriculum=_container(cfg.get("curriculum")),
        max_steps=cfg.trainer.get("max_steps"),
        accumulate_grad_batches=cfg.trainer.get("accumulate_grad_batches") or 1,
        size_multiple=build_backbone(_container(cfg.model)).size_multiple(),
        task=cfg.task.name,
        prompt_mode=cfg.prompt.mode,
        task_prompts=_container(cfg.task),
        degradation=_container(cfg.degradation),
        height=cfg.model.height,
        width=cfg.model.width,
        frames=cfg.model.frames,
        seed=cfg.seed,
        shared_dir=cfg.paths.shared_dir,
        _convert_="all",
    )


def build_module(cfg: DictConfig, components=None):
    from src.models.module import ProgressiveI2VModule

    return ProgressiveI2VModule(
        model=_container(cfg.model),
        lora=_container(cfg.lora),
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        lr_scheduler=hydra.utils.instantiate(cfg.lr_scheduler) if cfg.get("lr_scheduler") else None,
        seed=cfg.seed,
        task=cfg.task.name,
        prompt_mode=cfg.prompt.mode,
        components=components,
        metrics=_container(cfg.metrics) if cfg.get("metrics") else None,
        sharded_strategy=shards_weights(cfg.trainer),
    )


def build_loggers(cfg: DictConfig, sweep_group: str | None) -> list:
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None or "_target_" not in node:
            continue
        overrides = {}
        if name == "wandb" and sweep_group:
            overrides["group"] = node.get("group") or sweep_group
        loggers.append(hydra.utils.instantiate(node, **overrides))
    return loggers


def build_callbacks(cfg: DictConfig) -> list:
    return [
        hydra.utils.instantiate(node)
        for node in (cfg.get("callbacks") or {}).values()
        if node and "_target_" in node
    ]


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
        from src.drift import build_correction_pairs

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
        logger.log_hyperparams({**_container(cfg), **counts, "run_dir": str(run_dir)})
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
        "lora": _container(cfg.lora),
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
            _container(cfg.lora),
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


USAGE = "python -m src.train task=<sr|deblur|lowlight> prompt=<uniform|adaptive> [key=value ...]"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
@user_errors(USAGE)
def main(cfg: DictConfig) -> dict:
    """One job; W&B is always closed. The user-error policy (one line, exit 2; a failing multirun
    job recorded in FAILED.txt while the sweep goes on) is src.utils.cli's."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    sweep_group = Path(hydra_cfg.sweep.dir).name if multirun else None
    try:
        with one_job_of_ranks():  # a multirun's next job launches its own DDP ranks
            return train(cfg, run_dir, sweep_group)
    finally:
        try:
            import wandb

            if wandb.run is not None:
                wandb.finish()
        except ImportError:
            pass


def _alias_null_scheduler(argv: list[str]) -> list[str]:
    """``lr_scheduler=null`` (a constant LR, as before the group existed) selects ``lr_scheduler=none``."""
    return ["lr_scheduler=none" if a in ("lr_scheduler=null", "lr_scheduler=None") else a for a in argv]


if __name__ == "__main__":
    hydra_cli(main, "train", _alias_null_scheduler)
