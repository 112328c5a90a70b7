"""peft LoRA adapters on a backbone's transformer: attach, count, export in diffusers format; and
full fine-tuning (``lora=none``, ``lora.full: true``): every transformer weight trains, exported
as the whole transformer (diffusers ``save_pretrained``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from src.models.checkpoint_error import CheckpointError, read_json_file


def is_full_finetune(lora_cfg) -> bool:
    """Whether a ``lora`` config asks for full fine-tuning (``lora=none``: ``full: true``) rather
    than an adapter; configs without the key (older runs) are LoRA."""
    return (lora_cfg or {}).get("full", False) is True


def validate_lora_config(rank, alpha, target_modules, dropout=0.0, full=False) -> None:
    """One clear message naming the lora.* setting; raises src.utils.cli.ConfigError. With
    ``full`` (lora=none) no adapter is attached: rank/alpha/dropout 0 and no target modules."""
    from src.utils.cli import ConfigError, number

    if not isinstance(full, bool):
        raise ConfigError(f"lora.full={full} must be true (lora=none: full fine-tuning) or false (LoRA)")
    if full:
        adapter = {"rank": rank, "alpha": alpha, "dropout": dropout}
        if any(value not in (0, None) for value in adapter.values()) or list(target_modules or []):
            raise ConfigError(
                "lora.full=true (lora=none: full fine-tuning) trains every transformer weight and attaches "
                "no adapter, so lora.rank, lora.alpha and lora.dropout must be 0 and lora.target_modules "
                f"empty; got {adapter} and target_modules={list(target_modules or [])}. Drop those "
                "overrides, or use lora=default for LoRA"
            )
        return
    number(rank, "lora.rank", at_least=1)
    number(alpha, "lora.alpha", float, above=0)
    if not target_modules or isinstance(target_modules, str):
        raise ConfigError(
            "lora.target_modules must be a list naming at least one module (e.g. [to_q,to_k,to_v,to_out.0])"
        )
    number(dropout, "lora.dropout", float, at_least=0, below=1)


def add_lora(
    transformer: torch.nn.Module,
    rank: int,
    alpha: float,
    target_modules,
    dropout: float = 0.0,
    init: bool | str = True,
) -> int:
    """Freeze the transformer, attach a LoRA adapter and keep its parameters in fp32 (even when
    the base runs in bf16). Returns the number of trainable parameters."""
    from peft import LoraConfig

    validate_lora_config(rank, alpha, target_modules, dropout)
    transformer.requires_grad_(False)
    names = [name for name, _ in transformer.named_modules()]
    unknown = [m for m in target_modules if not any(n == m or n.endswith("." + m) for n in names)]
    if unknown:
        from src.utils.cli import ConfigError

        raise ConfigError(f"lora.target_modules {unknown} match no module of the transformer")
    config = LoraConfig(
        r=int(rank),
        lora_alpha=float(alpha),
        lora_dropout=float(dropout),
        target_modules=list(target_modules),
        init_lora_weights=init,
    )
    transformer.add_adapter(config)
    trainable = 0
    for name, parameter in transformer.named_parameters():
        if "lora_" in name:
            parameter.data = parameter.data.float()
            parameter.requires_grad_(True)
            trainable += parameter.numel()
    return trainable


def train_all_parameters(transformer: torch.nn.Module) -> int:
    """Full fine-tuning (lora=none): every transformer parameter trainable and in fp32 (even when
    the base runs in bf16). Returns the number of trainable parameters."""
    trainable = 0
    for parameter in transformer.parameters():
        parameter.data = parameter.data.float()
        parameter.requires_grad_(True)
        trainable += parameter.numel()
    return trainable


def lora_state_dict(transformer: torch.nn.Module) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    return get_peft_model_state_dict(transformer)


def full_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """FSDP2 shards (DTensors) made whole: a collective, so every rank calls it."""
    return {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in state.items()}


def export_lora(
    transformer: torch.nn.Module,
    directory: Path,
    rank: int,
    alpha: float,
    target_modules,
    extra: dict | None = None,
    pipeline_class=None,
    state_dict: dict | None = None,
) -> Path:
    """Diffusers-format LoRA (``pytorch_lora_weights.safetensors`` with adapter metadata) that the
    family's ``pipeline_class.load_lora_weights`` reads (CogVideoXImageToVideoPipeline when not
    given; a family passes its own); rank/alpha also in lora_config.json. ``state_dict``: the
    LoRA tensors already gathered (sharded runs: :func:`full_tensors` on every rank first)."""
    from src.utils.io import atomic_path

    if pipeline_class is None:
        from diffusers import CogVideoXImageToVideoPipeline as pipeline_class

    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"r": int(rank), "lora_alpha": float(alpha), "target_modules": list(target_modules)}
    with atomic_path(final) as directory:  # a crash never leaves a half export that looks complete
        directory.mkdir()
        pipeline_class.save_lora_weights(
            directory,
            transformer_lora_layers={
                k: v.detach().float().cpu()
                for k, v in (state_dict if state_dict is not None else lora_state_dict(transformer)).items()
            },
            transformer_lora_adapter_metadata=metadata,
        )
        (directory / "lora_config.json").write_text(
            json.dumps({**metadata, **(extra or {})}, indent=2) + "\n"
        )
    return final


LORA_WEIGHTS_NAME = "pytorch_lora_weights.safetensors"  # diffusers' save_lora_weights default


def check_safetensors(path: Path) -> None:
    """A readable, complete safetensors file holding LoRA tensors, or one CheckpointError naming
    it (a truncated file otherwise ends in three chained tracebacks inside diffusers). Reads the
    header only: ``safe_open`` refuses a file shorter than its header's tensor offsets."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: the LoRA export is incomplete; export it again")
    try:
        with safe_open(str(path), framework="pt") as handle:
            names = list(handle.keys())
    except Exception as err:  # noqa: BLE001 - any failure to parse an untrusted file
        raise CheckpointError(
            f"{path} cannot be read ({type(err).__name__}): the LoRA weights are truncated or damaged; "
            "export them again, or pass the run's checkpoints/last.ckpt as ckpt= instead"
        ) from None
    if not any("lora" in name for name in names):
        raise CheckpointError(f"{path} holds no LoRA tensors: it is not a LoRA export of this platform")


def count_parameters(module: torch.nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable


def load_exported_lora(pipeline, directory: Path, adapter_name: str = "progrestore") -> dict:
    """Load an :func:`export_lora` directory into a diffusers pipeline with plain
    ``load_lora_weights``, the adapter at scale 1 (alpha/rank comes from the file's metadata).
    Returns the export's lora_config.json; the family applies its positional-embedding choice
    (:meth:`src.models.family.Backbone.load_lora`)."""
    directory = Path(directory)
    config_file = directory / "lora_config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{directory} is not a LoRA export of this platform (no lora_config.json)")
    config = read_json_file(config_file, "the LoRA export's settings")
    check_safetensors(directory / LORA_WEIGHTS_NAME)
    pipeline.load_lora_weights(str(directory), adapter_name=adapter_name)
    pipeline.set_adapters([adapter_name], [1.0])
    return config


# -- full fine-tuning (lora=none): the whole transformer ------------------------------------------
FINETUNE_CONFIG_NAME = "finetune_config.json"  # beside the transformer's config.json and weights


def export_transformer(
    transformer: torch.nn.Module, directory: Path, extra: dict | None = None, state_dict: dict | None = None
) -> Path:
    """The fine-tuned transformer as diffusers ``save_pretrained`` writes it (config.json and
    safetensors weights, which ``<TransformerClass>.from_pretrained`` reads), plus
    finetune_config.json: ``{"full": true}`` and ``extra`` (model, geometry, task, prompt, seed)."""
    from src.utils.io import atomic_path

    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(final) as directory:  # a crash never leaves a half export that looks complete
        if state_dict is None:
            transformer.save_pretrained(str(directory), safe_serialization=True)
        else:  # the whole weights gathered from FSDP shards: the same files save_pretrained writes
            from diffusers.utils import SAFETENSORS_WEIGHTS_NAME
            from safetensors.torch import save_file

            directory.mkdir()
            transformer.save_config(str(directory))
            config_path = directory / "config.json"  # the model's class, not FSDP2's wrapper subclass
            config = json.loads(config_path.read_text())
            base = next(c for c in type(transformer).__mro__ if not c.__name__.startswith("FSDP"))
            config_path.write_text(json.dumps({**config, "_class_name": base.__name__}, indent=2) + "\n")
            save_file(
                {k: v.detach().contiguous().cpu() for k, v in state_dict.items()},
                str(directory / SAFETENSORS_WEIGHTS_NAME),
            )
        (directory / FINETUNE_CONFIG_NAME).write_text(
            json.dumps({"full": True, **(extra or {})}, indent=2) + "\n"
        )
    return final


def _transformer_weight_files(directory: Path) -> list[Path]:
    return sorted(Path(directory).glob("*.safetensors"))  # one file, or the shards of a large model


def check_transformer_export(directory: Path) -> None:
    """An :func:`export_transformer` directory whose weight files are readable and complete
    (headers only), or one CheckpointError naming it, before any model loads."""
    from safetensors import safe_open

    directory = Path(directory)
    files = _transformer_weight_files(directory)
    if not files:
        raise CheckpointError(
            f"{directory} holds no *.safetensors weights: the transformer export is incomplete; export it "
            "again, or pass the run's checkpoints/last.ckpt as ckpt= instead"
        )
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        except Exception as err:  # noqa: BLE001 - any failure to parse an untrusted file
            raise CheckpointError(
                f"{path} cannot be read ({type(err).__name__}): the transformer weights are truncated or "
                "damaged; export them again, or pass the run's checkpoints/last.ckpt as ckpt= instead"
            ) from None


def load_transformer_state(transformer: torch.nn.Module, state: dict, source) -> None:
    """Every tensor of a fine-tuned transformer's ``state`` into ``transformer`` (cast to its
    dtype), or one CheckpointError naming ``source`` when they do not fit."""
    try:
        missing, unexpected = transformer.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise CheckpointError(
            f"{source} does not fit this model ({str(err).splitlines()[-1].strip()[:200]})"
        ) from None
    if unexpected:
        raise CheckpointError(
            f"{source} does not fit this model: unexpected tensors {sorted(unexpected)[:3]}"
        )
    if missing:
        raise CheckpointError(f"{source} lacks transformer tensors {sorted(missing)[:3]} of this model")


def load_exported_transformer(transformer: torch.nn.Module, directory: Path) -> dict:
    """The weights of an :func:`export_transformer` directory into ``transformer`` (the base's,
    replaced entirely). Returns the export's finetune_config.json."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config_file = directory / FINETUNE_CONFIG_NAME
    if not config_file.is_file():
        raise CheckpointError(
            f"{directory} is not a full fine-tuning export of this platform (no {FINETUNE_CONFIG_NAME})"
        )
    config = read_json_file(config_file, "the transformer export's settings")
    check_transformer_export(directory)
    state: dict[str, torch.Tensor] = {}
    for path in _transformer_weight_files(directory):
        state.update(load_file(str(path)))
    load_transformer_state(transformer, state, directory)
    return config
