"""Shared fixtures. Tests that read ../shared/ run (never skip) when CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from src.utils.config import CONFIG_DIR, PROJECT_ROOT, shared_dir

SHARED_DIR = shared_dir()

TASK_CFGS = {
    "sr": {
        "name": "sr",
        "uniform_prompt": "Sharper. Static image.",
        "adaptive_template": "{caption} sharpens.",
    },
    "deblur": {
        "name": "deblur",
        "uniform_prompt": "Unblur. Static.",
        "adaptive_template": "A blurred {caption} focuses.",
    },
    "lowlight": {
        "name": "lowlight",
        "uniform_prompt": "Brighter.",
        "adaptive_template": "A dark {caption} brightens.",
    },
}


def run_module(module: str, *args: str, timeout: int = 300, env_extra: dict | None = None):
    """``python -m <module> args...`` from the repository root, output captured."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "WANDB_SILENT": "true", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def group_options(group: str) -> list[str]:
    """The options of a Hydra config group (its yaml files)."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def datamodule_kwargs(task: str, prompt_mode: str, **overrides) -> dict:
    """ProgressionDataModule arguments at the tiny model's geometry (64x112, 9 frames)."""
    return dict(
        task=task,
        prompt_mode=prompt_mode,
        task_prompts=TASK_CFGS[task],
        degradation={},
        height=64,
        width=112,
        frames=9,
        **overrides,
    )


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared folder {SHARED_DIR} is missing")
        pytest.skip(f"shared folder {SHARED_DIR} not present (set PROGRESTORE_SHARED)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def set5_images(shared_dir) -> dict[str, np.ndarray]:
    from src.data.images import Source, load_image

    folder = shared_dir / "data" / "set5"
    images = {p.stem: load_image(Source(p.stem, p)) for p in sorted(folder.glob("*.png"))}
    assert len(images) == 5, f"expected the five Set5 images in {folder}"
    return images


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photograph fitted to a small 16:9 frame (fast tests)."""
    import skimage.data

    from src.data.images import fit_to_output

    return fit_to_output(skimage.data.astronaut(), 144, 256)[0]


def model_config(name: str, *overrides: str) -> dict:
    """The resolved ``model`` node of ``conf/model/<name>.yaml`` (with ``model.*`` overrides), as
    the CLIs build it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={name}", "paths.run_dir=/tmp/unused", *overrides])
    return OmegaConf.to_container(cfg.model, resolve=True)


def backbone(name: str, *overrides: str):
    """The family object of ``conf/model/<name>.yaml`` (nothing loaded)."""
    from src.models.family import build_backbone

    return build_backbone(model_config(name, *overrides))


def transformer_inputs(transformer):
    """(calls, handle): a forward pre-hook recording the keyword arguments of every call to
    ``transformer`` (tensors cloned: the pipeline updates its latents in place); remove ``handle``
    when done."""
    import torch

    calls: list[dict] = []

    def hook(_module, _args, kwargs):
        calls.append({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})

    return calls, transformer.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A 4-step lowlight run (adapter export, Lightning checkpoints, Hydra config), shared by the
    restore, eval and video tests."""
    from .test_train import FAST

    run = tmp_path_factory.mktemp("trained") / "run"
    result = run_module("src.train", *FAST, "logger=none", "validate=false", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run
