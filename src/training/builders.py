"""What a training config builds: the datamodule, the LightningModule, the loggers and the
callbacks (each through ``hydra.utils.instantiate`` of its config node)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.utils.config import container
from src.utils.distributed import shards_weights


def build_datamodule(cfg: DictConfig):
    from src.models.family import build_backbone

    return hydra.utils.instantiate(
        cfg.data,
        curriculum=container(cfg.get("curriculum")),
        max_steps=cfg.trainer.get("max_steps"),
        accumulate_grad_batches=cfg.trainer.get("accumulate_grad_batches") or 1,
        size_multiple=build_backbone(container(cfg.model)).size_multiple(),
        task=cfg.task.name,
        prompt_mode=cfg.prompt.mode,
        task_prompts=container(cfg.task),
        degradation=container(cfg.degradation),
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
        model=container(cfg.model),
        lora=container(cfg.lora),
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        lr_scheduler=hydra.utils.instantiate(cfg.lr_scheduler) if cfg.get("lr_scheduler") else None,
        seed=cfg.seed,
        task=cfg.task.name,
        prompt_mode=cfg.prompt.mode,
        components=components,
        metrics=container(cfg.metrics) if cfg.get("metrics") else None,
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
