"""The resumable state of a pretraining (weights, optimizer, step, histories in one file written
atomically), the optimisation loop that checkpoints into it and pauses at ``--budget-minutes``,
and the fingerprint a resumed run must match."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from src.models import recipe
from src.utils.cli import ConfigError

# what the bank stage sets on the VAE config (and the state and the weights file record)
VAE_STAT_KEYS = ("scaling_factor", "latents_mean", "latents_std")
# decode-side settings of the codec: they change no weight, so a state does not depend on them
DECODE_ONLY_KEYS = ("deblock", "deblock_grid")


# -- resumable state -------------------------------------------------------------------------
class Paused(Exception):
    """This piece of the pretraining used its ``--budget-minutes``; the state is saved."""


class State:
    """Everything a resumed run needs, in one file written atomically."""

    def __init__(
        self,
        directory: Path,
        fingerprint: dict,
        checkpoint_minutes: float,
        budget_minutes: float | None = None,
    ):
        self.directory, self.fingerprint = directory, fingerprint
        self.budget = None if budget_minutes is None else budget_minutes * 60
        self.path = directory / "state.pt"
        self.every = checkpoint_minutes * 60
        self.data: dict = {"fingerprint": fingerprint, "done": [], "record": {}, "minutes": 0.0}
        self.last_save = time.time()
        self.started = time.time()

    def load(self) -> bool:
        if not self.path.is_file():
            return False
        data = torch.load(self.path, map_location="cpu", weights_only=True)
        if data["fingerprint"] != self.fingerprint:
            diff = {
                k: (data["fingerprint"].get(k), v)
                for k, v in self.fingerprint.items()
                if data["fingerprint"].get(k) != v
            }
            raise ConfigError(
                f"{self.path} is a pretraining with other settings {diff} (saved, now); rerun with those "
                "settings to continue it, or pass --fresh (or another --state-dir) to start over"
            )
        self.data = data
        return True

    def save(self, components, stage: str | None = None, progress: dict | None = None) -> None:
        self.data["models"] = {
            name: getattr(components, name).state_dict() for name in ("vae", "transformer", "text_encoder")
        }
        self.data["vae_stats"] = vae_stats(components.vae)
        self.data["current"] = {"stage": stage, **(progress or {})} if stage else None
        self.data["minutes"] = self.data.get("minutes_before", 0.0) + (time.time() - self.started) / 60
        self.directory.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        torch.save(self.data, temp)
        os.replace(temp, self.path)
        self.last_save = time.time()

    def stage_minutes(self, stage: str) -> float:
        """Minutes earlier pieces of this run spent in ``stage`` (0 when it starts here)."""
        current = self.data.get("current") or {}
        return current.get("minutes", 0.0) if current.get("stage") == stage else 0.0

    def due(self) -> bool:
        return time.time() - self.last_save >= self.every

    def out_of_budget(self) -> bool:
        return self.budget is not None and time.time() - self.started >= self.budget

    def restore_models(self, components) -> None:
        for name, state in self.data.get("models", {}).items():
            getattr(components, name).load_state_dict(state)
        if self.data.get("vae_stats"):
            components.vae.register_to_config(**self.data["vae_stats"])
        self.data["minutes_before"] = self.data.get("minutes", 0.0)


def vae_stats(vae) -> dict:
    """The latent statistics of a VAE config (scaling factor or per-channel mean/std)."""
    return {key: vae.config[key] for key in VAE_STAT_KEYS if vae.config.get(key) is not None}


def optimize(
    components,
    state: State,
    stage: str,
    parameter_groups: list[dict],
    steps: int,
    warmup: int,
    loss_fn,
    train_modules,
) -> list[float]:
    """AdamW, warmup + cosine decay, gradient clipping; ``loss_fn(step)`` draws its own batch from
    :func:`step_rng`. Resumes from ``state`` mid-stage and checkpoints into it."""
    parameters = [p for group in parameter_groups for p in group["params"]]
    optimizer = torch.optim.AdamW(parameter_groups)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    current = state.data.get("current") or {}
    start, history, piece_started = 0, [], time.time()
    earlier_minutes = state.stage_minutes(stage)
    if current.get("stage") == stage:
        optimizer.load_state_dict(current["optimizer"])
        start, history = current["step"], list(current["history"])
    for module in train_modules:
        module.train()
    bar = tqdm(range(start, steps), desc=stage, unit="step", initial=start, total=steps, dynamic_ncols=True)
    for step in bar:
        for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = lr * recipe.cosine_lr(step, steps, warmup=warmup)
        loss = loss_fn(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        history.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(history[-50:]):.4f}")
        pause = state.out_of_budget()
        if (state.due() or pause) and step + 1 < steps:
            for module in train_modules:
                module.eval()
            state.save(
                components,
                stage,
                {
                    "step": step + 1,
                    "optimizer": optimizer.state_dict(),
                    "history": history,
                    "minutes": earlier_minutes + (time.time() - piece_started) / 60,
                },
            )
            if pause:
                bar.close()
                raise Paused(f"{stage} step {step + 1}/{steps}")
            for module in train_modules:
                module.train()
    for module in train_modules:
        module.eval()
    return history


def curve(history: list[float], every: int) -> list[float]:
    """Mean loss per ``every`` steps (the record's loss curve)."""
    return [float(np.mean(history[i : i + every])) for i in range(0, len(history), every)]


def training_architecture(arch: dict) -> dict:
    """A copy of ``arch`` as the resumable state's fingerprint holds it (decode-only keys out)."""
    copy_ = json.loads(json.dumps(arch))
    for key in DECODE_ONLY_KEYS:
        copy_["vae"].pop(key, None)
    return copy_
