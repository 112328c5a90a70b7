"""Where a trained adapter (or a fully fine-tuned transformer) lives and what it was trained for:
a run dir, a LoRA export, a full fine-tuning export or a Lightning checkpoint resolved to a
:class:`CheckpointInfo` (each checked readable and complete before a model loads), the checks
before a resume, and the training config of a checkpoint's run. :mod:`src.models.restorer` loads
what this resolves onto its base model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from src.models.checkpoint_error import CheckpointError, read_json_file

# Fields a resumed run must share with its checkpoint: they change what the adapter is (or whether
# its tensors fit at all). Resuming with another task or prompt mode is refused too, unless the
# run says so explicitly (ckpt_allow_mismatch=true: fine-tune an adapter onward for another task).
HARD_RESUME_FIELDS = (
    "model.name",
    "lora.rank",
    "lora.alpha",
    "lora.target_modules",
    "lora.full",  # lora=none (the whole transformer) vs an adapter
    "model.frames",
    "model.height",
    "model.width",
)
SOFT_RESUME_FIELDS = ("task", "prompt_mode")


def read_lightning_checkpoint(path: str | Path) -> dict:
    """An adapter-only Lightning checkpoint of this platform, loaded safely (``weights_only=True``),
    or one :class:`CheckpointError`: unsafe loading is never tried and never suggested."""
    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"checkpoint {path} is empty (0 bytes; a crash while saving?): use another one from its "
            "checkpoints/ folder, or train again"
        )
    try:
        # mmap: only what is read is read -- the validation before a resume (Lightning then loads
        # the file itself) or before a model loads costs the header, not the tensors (measured:
        # 0.036 s instead of 0.52 s for a 1 GiB checkpoint)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # any failure to parse an untrusted file means: not a usable checkpoint
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}): it is truncated, damaged or not a "
            "checkpoint of this platform, and was not loaded; use another one or train again"
        ) from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not (
        any("lora_" in str(k) for k in state)
        or (is_full_checkpoint(checkpoint) and any(str(k).startswith("transformer.") for k in state))
    ):
        raise CheckpointError(
            f"checkpoint {path} holds no LoRA adapter (nor, for lora=none, transformer weights): it is not "
            "a checkpoint of this platform"
        )
    return checkpoint


def is_full_checkpoint(checkpoint: dict) -> bool:
    """A Lightning checkpoint of a full fine-tuning run (lora=none: its hyperparameters say
    ``lora.full: true``; it holds the whole transformer, not an adapter)."""
    from src.models.lora import is_full_finetune

    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    lora = hparams.get("lora") if isinstance(hparams, dict) else None
    return is_full_finetune(lora) if isinstance(lora, dict) else False


def _field(hparams: dict, dotted: str):
    value = hparams
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return list(value) if isinstance(value, (list, tuple)) else value


def check_resume(checkpoint: dict, path: str | Path, run: dict, allow_mismatch: bool = False) -> None:
    """Refuse to resume ``checkpoint`` into a run of another model, LoRA shape or geometry (its
    tensors would not fit), or -- unless ``allow_mismatch`` -- of another task or prompt mode.
    ``run`` holds the new run's values under the same names as the module's hyperparameters."""
    hparams = checkpoint.get("hyper_parameters") or {}
    if not hparams:
        raise CheckpointError(
            f"checkpoint {path} records no training settings: it is not a checkpoint of this platform"
        )
    for fields, soft in ((HARD_RESUME_FIELDS, False), (SOFT_RESUME_FIELDS, True)):
        differ = []
        for name in fields:
            old, new = _field(hparams, name), _field(run, name)
            if old is not None and new is not None and old != new and not (soft and allow_mismatch):
                setting = name.replace("prompt_mode", "prompt")
                differ.append(f"{setting}: checkpoint {old}, this run {new}")
        if differ:
            fix = (
                "pass ckpt_allow_mismatch=true to fine-tune it onward anyway"
                if soft
                else "resume with the checkpoint's settings (its run dir's .hydra/overrides.yaml)"
            )
            raise CheckpointError(f"cannot resume {path}: {'; '.join(differ)}; {fix}")


@dataclass
class CheckpointInfo:
    """Where an adapter (or a fully fine-tuned transformer) lives and what it was trained for
    (from ``lora_config.json`` / ``finetune_config.json``)."""

    lora_dir: Path | None  # diffusers-format export (run_dir/lora) or None for a .ckpt
    run_dir: Path | None
    lightning_ckpt: Path | None
    config: dict  # lora_config.json: r, lora_alpha, target_modules, task, prompt, model, geometry
    overrides: list[str] = field(default_factory=list)  # the run's Hydra overrides
    transformer_dir: Path | None = None  # lora=none: save_pretrained export (run_dir/transformer)

    @property
    def full(self) -> bool:
        """Full fine-tuning (lora=none): the whole transformer, not an adapter."""
        return self.config.get("full") is True

    @property
    def source(self) -> Path | None:
        """The file or directory the trained weights come from."""
        return self.lightning_ckpt or self.lora_dir or self.transformer_dir


def resolve_checkpoint(ckpt: str | Path) -> CheckpointInfo:
    """A run dir (holding ``lora/``, or ``transformer/`` for lora=none), a LoRA export dir
    (holding ``lora_config.json``), a full fine-tuning export dir (holding
    ``finetune_config.json``) or a Lightning ``.ckpt`` inside ``<run_dir>/checkpoints/``."""
    from src.models.lora import FINETUNE_CONFIG_NAME

    if ckpt in (None, "", "???"):
        raise CheckpointError("ckpt= is required: a training run dir, its lora/ dir, or a .ckpt file")
    path = Path(str(ckpt)).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    lightning_ckpt = None
    if path.is_file():
        if path.suffix != ".ckpt":
            raise CheckpointError(f"{path} is neither a run dir, a LoRA dir nor a Lightning .ckpt file")
        # readable and an adapter (or transformer) of this platform, before a model loads
        checkpoint = read_lightning_checkpoint(path)
        lightning_ckpt, run_dir, lora_dir = path, path.parent.parent, path.parent.parent / "lora"
        if is_full_checkpoint(checkpoint):
            return _resolved_full(run_dir / "transformer", run_dir, lightning_ckpt)
    elif (path / "lora_config.json").is_file():
        lora_dir, run_dir = path, path.parent if (path.parent / ".hydra").is_dir() else None
    elif (path / FINETUNE_CONFIG_NAME).is_file():
        return _resolved_full(path, path.parent if (path.parent / ".hydra").is_dir() else None, None)
    elif (path / "lora" / "lora_config.json").is_file():
        lora_dir, run_dir = path / "lora", path
    elif (path / "transformer" / FINETUNE_CONFIG_NAME).is_file():
        return _resolved_full(path / "transformer", path, None)
    else:
        raise CheckpointError(
            f"{path} holds no LoRA export (no lora_config.json in it or in {path / 'lora'}) and no "
            f"fine-tuned transformer (no {FINETUNE_CONFIG_NAME} in it or in {path / 'transformer'}); "
            "pass a training run dir, its lora/ or transformer/ dir or a checkpoints/*.ckpt file"
        )
    config_file = lora_dir / "lora_config.json"
    if lightning_ckpt is None:
        from src.models.lora import LORA_WEIGHTS_NAME, check_safetensors

        check_safetensors(lora_dir / LORA_WEIGHTS_NAME)  # complete, before a model loads
    if config_file.is_file():
        config = read_json_file(config_file, "the LoRA export's settings")
    elif lightning_ckpt is not None:
        config = _config_from_run(run_dir)
    else:  # pragma: no cover - guarded above
        raise CheckpointError(f"no lora_config.json in {lora_dir}")
    return CheckpointInfo(
        lora_dir=None if lightning_ckpt else lora_dir,
        run_dir=run_dir,
        lightning_ckpt=lightning_ckpt,
        config=config,
        overrides=_run_overrides(run_dir),
    )


def _run_overrides(run_dir: Path | None) -> list[str]:
    """The run's Hydra overrides (``.hydra/overrides.yaml``); none when it has no such file."""
    if run_dir is not None and (run_dir / ".hydra" / "overrides.yaml").is_file():
        from omegaconf import OmegaConf

        return [str(o) for o in OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")]
    return []


def _resolved_full(
    transformer_dir: Path, run_dir: Path | None, lightning_ckpt: Path | None
) -> CheckpointInfo:
    """A full fine-tuning run's weights (lora=none): its ``transformer/`` export, or its Lightning
    checkpoint (settings from the export's finetune_config.json, else the run's saved config)."""
    from src.models.lora import FINETUNE_CONFIG_NAME, check_transformer_export

    config_file = transformer_dir / FINETUNE_CONFIG_NAME
    if lightning_ckpt is None:
        check_transformer_export(transformer_dir)  # complete, before a model loads
    if config_file.is_file():
        config = read_json_file(config_file, "the transformer export's settings")
    else:
        config = _config_from_run(run_dir)
    if config.get("full") is not True:
        raise CheckpointError(f"{config_file} does not say full: true: it is not a lora=none export")
    return CheckpointInfo(
        lora_dir=None,
        run_dir=run_dir,
        lightning_ckpt=lightning_ckpt,
        config=config,
        overrides=_run_overrides(run_dir),
        transformer_dir=None if lightning_ckpt else transformer_dir,
    )


def _config_from_run(run_dir: Path) -> dict:
    """lora_config.json's (or finetune_config.json's) fields from a run's saved Hydra config (a run
    killed before export)."""
    from omegaconf import OmegaConf

    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise CheckpointError(f"{run_dir} has neither lora/lora_config.json nor .hydra/config.yaml")
    cfg = OmegaConf.load(saved)
    fields = {
        "task": str(cfg.task.name),
        "prompt": str(cfg.prompt.mode),
        "model": str(cfg.model.name),
        "frames": int(cfg.model.frames),
        "height": int(cfg.model.height),
        "width": int(cfg.model.width),
        "seed": int(cfg.seed),
    }
    if cfg.lora.get("full", False) is True:  # lora=none: finetune_config.json's fields
        return {"full": True, **fields}
    adapter = {"r": int(cfg.lora.rank), "lora_alpha": float(cfg.lora.alpha)}
    return {**adapter, "target_modules": list(cfg.lora.target_modules), **fields}


# Overrides of the training run that do not change the model or prompts (they may name paths or
# groups that no longer exist where inference runs).
_IRRELEVANT_OVERRIDE_PREFIXES = (
    "trainer",
    "logger",
    "callbacks",
    "data",
    "debug",
    "paths",
    "ckpt_path",
    "train",
    "validate",
    "export_lora",
    "optimizer",
    "lr_scheduler",
    "run_name",
    "experiment",
    "hydra",
)


def compose_run_config(info: CheckpointInfo, overrides: list[str] | None = None):
    """The training config of the checkpoint's run (its model, task, prompt and LoRA groups),
    with ``overrides`` (e.g. ``task=sr``, ``model.sampling.num_inference_steps=10``) on top."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from src.utils.config import CONFIG_DIR

    config = info.config
    overrides = list(overrides or [])
    chosen = {o.split("=")[0] for o in overrides}
    base = [f"{group}={config[group]}" for group in ("model", "task", "prompt") if group not in chosen]
    kept = [
        o
        for o in info.overrides
        if o.lstrip("+~").split("=")[0].split(".")[0].split("@")[0] not in _IRRELEVANT_OVERRIDE_PREFIXES
        and not o.startswith(("model=", "task=", "prompt="))
    ]
    # The CLIs run inside @hydra.main, whose global state compose() may not reuse: set it aside.
    global_hydra = GlobalHydra.instance()
    outer = global_hydra.hydra if global_hydra.is_initialized() else None
    global_hydra.clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose("train", overrides=base + kept + overrides)
    except Exception as err:  # unknown model/task group, bad override: one clear line
        raise CheckpointError(f"cannot rebuild the checkpoint's config: {err}") from None
    finally:
        GlobalHydra.instance().clear()
        if outer is not None:
            GlobalHydra.instance().initialize(outer)
