"""Every training option checked once, with one clear message each, before any data or model is
loaded (``python -m src.train`` calls :func:`validate_config` at the start of each job)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from src.utils.cli import ConfigError, HardwareError, MissingFileError, number, require_cuda
from src.utils.config import container
from src.utils.distributed import shards_weights, strategy_name


def check_drift_stage1(cfg: DictConfig) -> None:
    """``drift.stage1`` (V-Bridge's second stage), when set: a finished stage-1 run dir trained on
    pairs, checked before anything derived from it (``data.root: ${drift.stage1}/drift/pairs``)
    is used."""
    stage1 = (cfg.get("drift") or {}).get("stage1")
    if stage1:
        from src.training.drift import read_stage1_config

        read_stage1_config(stage1)


def validate_config(cfg: DictConfig) -> None:
    """Cheap checks with one clear message each, before any data or model is loaded."""
    from src.data.degradations import check_task
    from src.models.family import build_backbone
    from src.models.lora import is_full_finetune, validate_lora_config

    check_drift_stage1(cfg)
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
    if (cfg.data or {}).get(
        "batch_size"
    ) is not None:  # as the datamodule says it, before drift pairs are made
        number(cfg.data.batch_size, "data.batch_size", at_least=1)
    for key in ("max_steps", "accumulate_grad_batches", "log_every_n_steps"):
        if cfg.trainer.get(key) is not None:
            number(cfg.trainer[key], f"trainer.{key}")
    if is_full_finetune(cfg.lora):  # lora=none of a model it does not fit: refused first, weights unread
        build_backbone(container(cfg.model)).check_finetune_mode(cfg.lora, shards_weights(cfg.trainer))
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
    backbone = build_backbone(container(cfg.model))
    if (cfg.get("curriculum") or {}).get("stages"):  # every stage's crop size, before the weights
        curriculum = resolve_curriculum(cfg, backbone)
        backbone.check_stage_sizes([stage.size for stage in curriculum.stages])
    backbone.check_config()


def resolve_curriculum(cfg: DictConfig, backbone):
    """The run's resolution curriculum with its sizes rounded to the family's token multiple."""
    from src.data.curriculum import Curriculum

    return Curriculum.resolve(
        container(cfg.get("curriculum")),
        cfg.trainer.get("max_steps"),
        int(cfg.model.height),
        int(cfg.model.width),
        backbone.size_multiple(),
    )


def check_resume_checkpoint(cfg: DictConfig) -> None:
    """``ckpt_path`` must be a readable adapter checkpoint of this platform, of the same model,
    LoRA shape and geometry, and -- unless ``ckpt_allow_mismatch=true`` -- the same task and prompt."""
    from src.models.checkpoints import check_resume, read_lightning_checkpoint

    if not Path(str(cfg.ckpt_path)).expanduser().is_file():
        raise MissingFileError(
            f"ckpt_path={cfg.ckpt_path} does not exist: pass the last.ckpt of an earlier run"
        )
    checkpoint = read_lightning_checkpoint(cfg.ckpt_path)
    run = {
        "model": container(cfg.model),
        "lora": container(cfg.lora),
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
