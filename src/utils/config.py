"""Hydra/OmegaConf helpers shared by every CLI."""

from __future__ import annotations

import os
import re
from pathlib import Path

from omegaconf import OmegaConf

from src.utils.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"


def container(node) -> dict:
    """A config node as plain, resolved Python data (``{}`` for a missing node)."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def shared_dir() -> Path:
    """The read-only shared folder (Set5, McMaster, LPIPS weights): $PROGRESTORE_SHARED, else
    ``../shared`` beside the repository; what ``paths.shared_dir`` resolves to for Hydra CLIs."""
    return Path(os.environ.get("PROGRESTORE_SHARED", PROJECT_ROOT.parent / "shared"))


def wandb_offline() -> bool:
    """W&B runs offline (no account needed) unless the user sets WANDB_MODE=online."""
    return os.environ.get("WANDB_MODE", "").lower() != "online"


def wandb_run_id(run_dir) -> str:
    """The W&B run id of a run dir: the same dir (a resumed or requeued run) logs into the same
    W&B run (with resume=allow); another dir, another run."""
    import hashlib

    return "r" + hashlib.sha256(str(Path(str(run_dir)).resolve()).encode()).hexdigest()[:15]


def slurm_tasks(devices) -> int:
    """``hydra/launcher=slurm``'s tasks (= GPUs) per node: ``trainer.devices``, which must be a
    number there (one SLURM task per GPU), not -1 or "auto"."""
    try:
        count = int(devices)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise ConfigError(
            f"hydra/launcher=slurm needs trainer.devices as a number of GPUs per node (got {devices!r}): "
            "e.g. trainer=ddp trainer.devices=4"
        )
    return count


def product(*numbers) -> int:
    """``${product:a,b}``: a x b (e.g. the FSDP mesh size: GPUs per node x nodes)."""
    result = 1
    for n in numbers:
        result *= int(n)
    return result


def lora_tag(rank, full=False) -> str:
    """The run-name part of a ``lora`` config: ``r<rank>`` (LoRA), ``full`` (lora=none)."""
    return "full" if full is True else f"r{rank}"


# a mandatory value of an option file, with its hint: ``stage1: ???   # <stage-1 run dir> (...)``
_MANDATORY_LINE = re.compile(r"^\s*([A-Za-z0-9_]+):\s*'?\?\?\?'?\s*(?:#\s*(.*?))?\s*$")
_PACKAGE_LINE = re.compile(r"^#\s*@package\s+(\S+)")


def _declared_mandatory(path: Path, seen: set[Path]) -> list[tuple[str, str]]:
    """(full key, hint) of every ``???`` value an option file declares, its own and those of the
    same-group options its defaults list extends (``- vbridge_tiny``); the hint is the comment on
    the ``???`` line, else ``...``."""
    import yaml

    if path in seen or not path.is_file():
        return []
    seen.add(path)
    text = path.read_text(encoding="utf-8")
    node = yaml.safe_load(text) or {}
    if not isinstance(node, dict):
        return []
    group = path.parent.relative_to(CONFIG_DIR).as_posix()
    package = next((m.group(1) for m in map(_PACKAGE_LINE.match, text.splitlines()) if m), "_group_")
    prefix = {"_global_": ""}.get(package, package.replace("_group_", group.replace("/", ".")))
    hints = {
        m.group(1): m.group(2) for m in map(_MANDATORY_LINE.match, text.splitlines()) if m and m.group(2)
    }
    found: list[tuple[str, str]] = []
    for parent in node.get("defaults") or []:
        if isinstance(parent, str) and parent != "_self_" and not parent.startswith("/"):
            found += _declared_mandatory(path.parent / f"{parent}.yaml", seen)

    def walk(value, key: str) -> None:
        if isinstance(value, dict):
            for child, inner in value.items():
                walk(inner, f"{key}.{child}" if key else str(child))
        elif value == "???":
            found.append((key, hints.get(key.rsplit(".", 1)[-1], "...")))

    walk({k: v for k, v in node.items() if k != "defaults"}, prefix.strip("."))
    return found


def check_mandatory_values(cfg, choices) -> None:
    """One :class:`ConfigError` naming, as the user types it, a mandatory value (``???``) that a
    chosen option file (a preset: ``experiment=vbridge_tiny_drift``) declares and the command line
    did not set: ``experiment=vbridge_tiny_drift needs drift.stage1=<stage-1 run dir> (...)``.
    Checked before any value derived from it is used: a ``???`` merged over the primary config's
    ``null`` stays ``null`` (OmegaConf never lets a missing value override), so
    ``data.root: ${drift.stage1}/drift/pairs`` became ``None/drift/pairs``. ``choices`` is
    ``hydra.runtime.choices``; the primary config's own ``???`` values are reported where they
    are read (``ckpt= is required``)."""
    from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

    for group, option in (choices or {}).items():
        if not isinstance(option, str) or str(group).startswith("hydra"):
            continue
        for key, hint in _declared_mandatory(CONFIG_DIR / str(group) / f"{option}.yaml", set()):
            try:
                value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
            except (MissingMandatoryValue, InterpolationToMissingValueError):
                value = None
            if value is None or str(value) in ("", "???"):
                raise ConfigError(f"{group}={option} needs {key}={hint}")


def register_resolvers() -> None:
    """``${project_root:}`` -> the repository root, so outputs land in <repo>/outputs from any cwd;
    ``${wandb_offline:}`` -> see :func:`wandb_offline`; ``${lora_tag:rank,full}`` -> see
    :func:`lora_tag`."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)
    if not OmegaConf.has_resolver("wandb_run_id"):
        OmegaConf.register_new_resolver("wandb_run_id", wandb_run_id)
    if not OmegaConf.has_resolver("slurm_tasks"):
        OmegaConf.register_new_resolver("slurm_tasks", slurm_tasks)
    if not OmegaConf.has_resolver("product"):
        OmegaConf.register_new_resolver("product", product)
    if not OmegaConf.has_resolver("lora_tag"):
        OmegaConf.register_new_resolver("lora_tag", lora_tag)


register_resolvers()
