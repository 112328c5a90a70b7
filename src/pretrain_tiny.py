"""python -m src.pretrain_tiny [--model tiny|tiny_wan] [--autoencoder codec|learned] [--init-from FILE] [--transformer-steps N] [--out FILE]

Pretrains the embedded tiny CogVideoX I2V base (``--model tiny``) or the tiny Wan2.2 TI2V base
(``--model tiny_wan``), the stand-in for the video pretraining the real
model had, on identity-preserving clips of still photographs (:func:`src.data.motion.pretraining_clip`:
static or gently moving camera, exposure ramps with fading grain, focus pulls, each described in
words) of the bundled scikit-image photos, tinted grayscale photos and the McMaster photographs
(``--photos-dir``; Set5 and the bundled ``VAL_HOLDOUT`` photos are never used). Three stages:

1. ``vae``: with ``--autoencoder codec`` (the default), the linear latent codec's fit
   (:mod:`src.models.codec`; seconds, ``--fit-clips`` pretraining and progression clips); with
   ``--autoencoder learned``, the VAE on random ``--vae-crop`` crops of those clips (a conv net:
   small crops train it fast and transfer to full frames), L1 + MSE + a frame-difference L1 (so
   it codes changes inside a 4-frame latent group) + a tiny KL;
2. ``bank``: encodes ``--bank-clips`` full-size clips once (posterior mean/logvar of the video and
   of the noise-augmented first frame; prompts) and sets the VAE's ``scaling_factor`` to 1/std of
   the latents (as CogVideoX's 1.15258426 was chosen). The VAE encode dominates a training step,
   so stage 3 never runs it;
3. ``transformer``: the transformer *and the text encoder* with the loss the LoRA fine-tuning
   uses (CogVideoX: I2V v-prediction; Wan: flow matching with latent frame 0 replaced by the
   clean image latent), 10 % empty prompts (so classifier-free guidance works), on the bank.

The two families differ only where their recipes do (:class:`CogVideoXPretraining`,
:class:`WanPretraining`): the first-frame latents of the bank (CogVideoX: a noise-augmented
posterior; Wan: the clean posterior mode), the latent statistics set after the VAE stage
(CogVideoX: one ``scaling_factor``; Wan: per-channel ``latents_mean`` / ``latents_std``), the
prompt embeddings and the loss.

Resumable: the whole state (weights, optimizer, step, histories) is saved every
``--checkpoint-minutes`` under ``--state-dir``; rerunning the same command continues where it
stopped, so a long pretraining can run in several pieces. Every random draw is a function of
(``--seed``, stage, step), so a resumed run equals an uninterrupted one. Writes the safetensors
file (fp16, < 25 MB) and a record of the run (data, settings, losses, held-out reconstruction
PSNR, identity PSNR of sampled clips, minutes) to ``--record``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from src.data.images import BUNDLED_PHOTOS, Source, list_sources, load_image, to_rgb_uint8
from src.data.latent_cache import file_hash
from src.data.motion import STATIC_PHRASES, pretraining_clip
from src.models import recipe
from src.models.codec import is_codec_config
from src.models.tiny import (
    DEFAULT_WEIGHTS,
    TINY_ARCHITECTURE,
    TINY_LEARNED_VAE_ARCHITECTURE,
    build_tiny_components,
    load_tiny,
    save_tiny,
)
from src.utils.cli import ArgumentParser, ConfigError, MissingFileError, exit_on_user_error
from src.utils.config import PROJECT_ROOT, shared_dir
from src.utils.frames import to_float_tensor
from src.utils.seeding import stable_seed

# Never used for pretraining or LoRA training: the platform's fallback validation photographs.
VAL_HOLDOUT = ("coffee", "chelsea")
# Grayscale photographs and textures bundled with scikit-image (each gets a random tint per clip).
GRAY_PHOTOS = ("camera", "moon", "coins", "clock", "brick", "grass", "gravel", "page", "text", "cell")
STAGES = ("vae", "bank", "transformer")
# Settings that change the result; a resumed run must have the same ones.
RESULT_ARGS = (
    "autoencoder",
    "fit_clips",
    "vae_steps",
    "vae_batch",
    "vae_lr",
    "vae_crop",
    "temporal_weight",
    "bank_clips",
    "transformer_steps",
    "transformer_batch",
    "transformer_lr",
    "text_lr",
    "seed",
    "model",
)
# what the bank stage sets on the VAE config (and the state and the weights file record)
VAE_STAT_KEYS = ("scaling_factor", "latents_mean", "latents_std")


def default_photos_dir() -> Path:
    return shared_dir() / "data" / "mcmaster"


def set5_dir() -> Path:
    """The held-out validation photographs: measured on, never trained on."""
    return shared_dir() / "data" / "set5"


def training_photos(photos_dir: Path | None) -> dict[str, np.ndarray]:
    """Colour photographs of pretraining: the bundled ones minus ``VAL_HOLDOUT``, plus every
    image in ``photos_dir`` (None = none)."""
    photos = {key: load_image(Source(key)) for key in BUNDLED_PHOTOS if key not in VAL_HOLDOUT}
    if photos_dir is not None:
        resolved, set5 = photos_dir.resolve(), set5_dir().resolve()
        if resolved == set5 or set5 in resolved.parents or resolved in set5.parents:
            raise ConfigError(
                f"--photos-dir {photos_dir}: Set5 is the held-out validation set, never train on it"
            )
        sources, _ = list_sources(photos_dir)
        photos.update({f"{photos_dir.name}/{s.key}": load_image(s) for s in sources})
    return photos


def gray_photos() -> dict[str, np.ndarray]:
    import skimage.data

    return {key: to_rgb_uint8(getattr(skimage.data, key)()) for key in GRAY_PHOTOS}


def tinted(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gains = rng.uniform(0.6, 1.0, size=3)
    return np.clip(image.astype(np.float32) * gains, 0, 255).astype(np.uint8)


def clip_batch(
    photos: dict, rng: np.random.Generator, batch: int, arch: dict
) -> tuple[torch.Tensor, list[str]]:
    """(B, F, C, H, W) float in [0, 1] pretraining clips and their prompts (10 % empty)."""
    keys = sorted(photos)
    clips, prompts = [], []
    for _ in range(batch):
        key = keys[rng.integers(len(keys))]
        image = tinted(photos[key], rng) if key in GRAY_PHOTOS else photos[key]
        frames, description, _ = pretraining_clip(image, rng, arch["frames"], arch["height"], arch["width"])
        clips.append(to_float_tensor(frames))
        if key in BUNDLED_PHOTOS and rng.random() < 0.5:
            caption = BUNDLED_PHOTOS[key]
            description = f"{caption[0].upper()}{caption[1:]}. {description}"
        prompts.append("" if rng.random() < 0.1 else description)
    return torch.stack(clips), prompts


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).item()
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def step_rng(seed: int, stage: str, step: int) -> tuple[np.random.Generator, torch.Generator]:
    """The random streams of one step: a pure function of (seed, stage, step), so resuming replays."""
    value = stable_seed(seed, "pretrain", stage, step)
    return np.random.default_rng(value), torch.Generator().manual_seed(value)


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


# -- stage 1: VAE --------------------------------------------------------------------------------
def train_vae(components, state, photos, arch, args) -> dict:
    vae = components.vae
    crop = args.vae_crop

    def loss_fn(step):
        rng, generator = step_rng(args.seed, "vae", step)
        clips, _ = clip_batch(photos, rng, args.vae_batch, arch)
        top = int(rng.integers(0, arch["height"] - crop + 1))
        left = int(rng.integers(0, arch["width"] - crop + 1))
        video = recipe.to_vae_video(clips[..., top : top + crop, left : left + crop])
        posterior = vae.encode(video).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=generator)).sample
        error = reconstruction - video
        temporal = (reconstruction.diff(dim=2) - video.diff(dim=2)).abs().mean()
        return (
            error.abs().mean()
            + 0.5 * (error**2).mean()
            + args.temporal_weight * temporal
            + 1e-6 * posterior.kl().mean()
        )

    vae.requires_grad_(True)
    history = optimize(
        components,
        state,
        "vae",
        [{"params": list(vae.parameters()), "lr": args.vae_lr, "weight_decay": 0.0}],
        args.vae_steps,
        50,
        loss_fn,
        [vae],
    )
    vae.requires_grad_(False)
    return {
        "loss_first_last": [float(np.mean(history[:20])), float(np.mean(history[-20:]))],
        "loss_curve_per_100": curve(history, 100),
    }


@torch.no_grad()
def vae_reconstruction_psnr(vae, photos, arch, seed: int, clips: int = 8) -> float:
    """PSNR of VAE(mean) reconstructions of full-size pretraining clips of ``photos``."""
    rng = np.random.default_rng(stable_seed(seed, "pretrain", "vae-eval"))
    values = []
    for _ in range(clips // 4):
        batch, _ = clip_batch(photos, rng, 4, arch)
        mean, _ = recipe.encode_posterior(vae, recipe.to_vae_video(batch))
        values.append(psnr(recipe.from_vae_video(vae.decode(mean).sample), batch))
    return float(np.mean(values))


# -- stage 1 with the linear codec: the fit ----------------------------------------------------------
def progression_batch(photos: dict, rng: np.random.Generator, batch: int, arch: dict) -> torch.Tensor:
    """(B, F, C, H, W) in [0, 1]: restoration progression clips (sr, deblur, lowlight at the
    paper's schedules) of random crops of ``photos``, as the fine-tuning will show the codec."""
    from src.data.datamodule import random_crop
    from src.data.degradations import TASKS, DegradationPreset, make_clip
    from src.data.images import fit_to_output

    keys, clips = sorted(photos), []
    for _ in range(batch):
        key = keys[rng.integers(len(keys))]
        crop = random_crop(photos[key], rng, (0.3, 1.0), arch["height"], arch["width"])
        clean, _ = fit_to_output(crop, arch["height"], arch["width"])
        frames, _ = make_clip(
            clean, TASKS[rng.integers(len(TASKS))], rng, DegradationPreset(), arch["frames"]
        )
        clips.append(to_float_tensor(frames))
    return torch.stack(clips)


def codec_fit_clips(photos: dict, all_photos: dict, arch: dict, seed: int, count: int, chunk: int = 16):
    """The codec's fitting clips, (B, C, F, H, W) in [-1, 1] chunks: half pretraining clips of
    every pretraining photo, half progression clips of the colour ones; chunk k is a function of
    (seed, k)."""
    for k, start in enumerate(range(0, count, chunk)):
        rng, _ = step_rng(seed, "codec-fit", k)
        size = min(chunk, count - start)
        if k % 2 == 0:
            clips, _ = clip_batch(all_photos, rng, size, arch)
        else:
            clips = progression_batch(photos, rng, size, arch)
        yield recipe.to_vae_video(clips)


def fit_codec(components, photos, all_photos, arch, args) -> dict:
    """Stage 1 for the codec: its bases from ``--fit-clips`` clips (seconds, deterministic)."""
    clips = codec_fit_clips(photos, all_photos, arch, args.seed, args.fit_clips)
    total = (args.fit_clips + 15) // 16
    fit = components.vae.fit(
        tqdm(clips, total=total, desc="codec fit", unit="chunk", dynamic_ncols=True),
        {
            "seed": args.seed,
            "stream": "pretrain/codec-fit/<chunk>",
            "sources": "pretraining + progression clips",
        },
    )
    return {"fit": fit}


@torch.no_grad()
def codec_progression_psnr(vae, images: dict, arch, seed: int) -> dict:
    """Round-trip PSNR of progression clips (each task, at the paper's schedules) of whole
    ``images``: frames 2-9, frame 1 and the last frame, and the largest per-frame mean-colour
    error (8-bit levels)."""
    from src.data.degradations import TASKS, DegradationPreset, make_clip
    from src.data.images import fit_to_output
    from src.models.codec import mean_colour_error

    clips = []
    for task in TASKS:
        for key in sorted(images):
            clean, _ = fit_to_output(images[key], arch["height"], arch["width"])
            rng = np.random.default_rng(stable_seed(seed, "codec-eval", task, key))
            clips.append(to_float_tensor(make_clip(clean, task, rng, DegradationPreset(), arch["frames"])[0]))
    batch = torch.stack(clips)
    rec = recipe.from_vae_video(vae.decode(vae.encode(recipe.to_vae_video(batch)).latent_dist.mode()).sample)
    return {  # plain floats: the record goes into the resumable state (weights-only unpickling)
        "clips": len(clips),
        "frames_2_to_9": float(psnr(rec[:, 1:], batch[:, 1:])),
        "frame_1": float(psnr(rec[:, 0], batch[:, 0])),
        "last_frame": float(psnr(rec[:, -1], batch[:, -1])),
        "worst_clip_frames_2_to_9": float(min(psnr(rec[i, 1:], batch[i, 1:]) for i in range(len(batch)))),
        "mean_colour_error_max": float(mean_colour_error(rec, batch)),
    }


# -- stage 2: latent bank -------------------------------------------------------------------------
def bank_path(state: State) -> Path:
    return state.directory / "bank.pt"


@torch.no_grad()
def build_bank(components, state, photos, arch, args) -> dict:
    """Posteriors of ``bank_clips`` clips (video, and first frame with its noise augmentation)."""
    path = bank_path(state)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    vae, chunk = components.vae, 16
    parts: dict[str, list] = {"mean": [], "logvar": [], "image_mean": [], "image_logvar": [], "prompts": []}
    for start in tqdm(range(0, args.bank_clips, chunk), desc="bank", unit="chunk", dynamic_ncols=True):
        rng, generator = step_rng(args.seed, "bank", start)
        count = min(chunk, args.bank_clips - start)
        clips, prompts = clip_batch(photos, rng, count, arch)
        video = recipe.to_vae_video(clips)
        mean, logvar = recipe.encode_posterior(vae, video)
        image_mean, image_logvar = FAMILY[args.model].first_frame_posterior(vae, video, count, generator)
        for key, value in (
            ("mean", mean),
            ("logvar", logvar),
            ("image_mean", image_mean),
            ("image_logvar", image_logvar),
        ):
            parts[key].append(value.to(torch.float16))
        parts["prompts"] += prompts
    bank = {key: torch.cat(value) if key != "prompts" else value for key, value in parts.items()}
    samples = recipe.sample_posterior(
        bank["mean"][:256].float(), bank["logvar"][:256].float(), torch.Generator().manual_seed(args.seed)
    )
    bank["vae_stats"] = FAMILY[args.model].latent_statistics(samples)
    path.parent.mkdir(parents=True, exist_ok=True)  # (with --init-from no earlier stage made it)
    temp = path.with_suffix(".tmp")
    torch.save(bank, temp)
    os.replace(temp, path)
    return bank


# -- stage 3: transformer + text encoder ----------------------------------------------------------
def t5_embeddings(components, token_ids: torch.Tensor) -> torch.Tensor:
    """The text encoder's embeddings as the diffusers pipeline computes them (padded ids in, last
    hidden state out), with gradients."""
    return components.text_encoder(token_ids)[0]


def tokenize(components, prompts: list[str]) -> torch.Tensor:
    return components.tokenizer(
        prompts,
        padding="max_length",
        max_length=components.max_sequence_length,
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    ).input_ids


def train_transformer(components, state, bank, arch, args) -> dict:
    token_ids = tokenize(components, bank["prompts"])
    count = len(bank["prompts"])
    step_loss = FAMILY[args.model].loss(components, arch)

    def loss_fn(step):
        rng, generator = step_rng(args.seed, "transformer", step)
        index = torch.from_numpy(rng.integers(0, count, size=args.transformer_batch))
        return step_loss(bank, index, token_ids, generator)

    components.transformer.requires_grad_(True)
    components.text_encoder.requires_grad_(True)
    history = optimize(
        components,
        state,
        "transformer",
        [
            {
                "params": list(components.transformer.parameters()),
                "lr": args.transformer_lr,
                "weight_decay": 0.01,
            },
            {"params": list(components.text_encoder.parameters()), "lr": args.text_lr, "weight_decay": 0.01},
        ],
        args.transformer_steps,
        100,
        loss_fn,
        [components.transformer],  # T5 stays in eval mode: no dropout, as in fine-tuning
    )
    components.transformer.requires_grad_(False)
    components.text_encoder.requires_grad_(False)
    return {
        "loss_first_last": [float(np.mean(history[:50])), float(np.mean(history[-200:]))],
        "loss_curve_per_500": curve(history, 500),
    }


@torch.no_grad()
def identity_trajectories(
    components, photos, arch, seed: int, steps: int = 25, model: str = "tiny"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sampled (B, F, C, H, W), still frames (B, C, H, W)), both in [0, 1]: trajectories from
    each of ``photos`` with the prompt "The camera holds still.", generator i seeded by
    (seed, "identity", i)."""
    from src.data.images import fit_to_output

    frames = to_float_tensor(
        np.stack([fit_to_output(image, arch["height"], arch["width"])[0] for image in photos.values()])
    )
    generators = [torch.Generator().manual_seed(stable_seed(seed, "identity", i)) for i in range(len(frames))]
    family = FAMILY[model]
    video = family.generate_trajectory(
        family.pipeline(components),
        frames,
        [STATIC_PHRASES[0]] * len(frames),
        generators,
        arch["height"],
        arch["width"],
        arch["frames"],
        steps,
        1.0,
        components.max_sequence_length,
    )
    return video, frames


def identity_psnr(components, photos, arch, seed: int, steps: int = 25, model: str = "tiny") -> list[float]:
    """Per-frame PSNR of sampled trajectories against static clips of held-out ``photos``
    (prompt: the camera holds still): how well the base keeps the scene of frame 1."""
    video, frames = identity_trajectories(components, photos, arch, seed, steps, model)
    return [psnr(video[:, f], frames) for f in range(video.shape[1])]


class FamilyFiles:
    """Where a family's base, record and resumable state live; the learned-VAE variant's names
    carry ``learned_vae``: the weights file (src/models/pretrained/<file_stem>[_learned_vae]),
    the record (experiments/<record_stem>[_learned_vae]_pretrain.json), the state dir name."""

    file_stem: str
    record_stem: str
    state_prefix: str

    @staticmethod
    def _suffix(autoencoder: str) -> str:
        return "" if autoencoder == "codec" else "_learned_vae"

    def weights(self, autoencoder: str = "codec") -> Path:
        return DEFAULT_WEIGHTS.parent / f"{self.file_stem}{self._suffix(autoencoder)}.safetensors"

    def record(self, autoencoder: str = "codec") -> Path:
        return PROJECT_ROOT / "experiments" / f"{self.record_stem}{self._suffix(autoencoder)}_pretrain.json"

    def state_name(self, seed: int, autoencoder: str = "codec") -> str:
        return f"{self.state_prefix}{'' if autoencoder == 'codec' else 'learned_vae_'}seed{seed}"


class CogVideoXPretraining(FamilyFiles):
    """The tiny CogVideoX's pieces of the pretraining (``--model tiny``)."""

    @staticmethod
    def architecture(autoencoder: str = "codec") -> dict:
        return TINY_ARCHITECTURE if autoencoder == "codec" else TINY_LEARNED_VAE_ARCHITECTURE

    file_stem, record_stem, state_prefix = DEFAULT_WEIGHTS.stem, "tiny", ""
    load_build = None  # load_tiny's default: the tiny CogVideoX
    transformer_steps = 4500  # the shipped base's

    @staticmethod
    def build(arch):
        return build_tiny_components(arch)

    @staticmethod
    def first_frame_posterior(vae, video_bcfhw, count, generator):
        """Posterior of the noise-augmented first frame (the CogVideoX I2V recipe's condition)."""
        sigma = recipe.sample_noise_augmentation(count, generator)
        first = video_bcfhw[:, :, :1]
        first = first + sigma.view(-1, 1, 1, 1, 1) * torch.randn(first.shape, generator=generator)
        return recipe.encode_posterior(vae, first)

    @staticmethod
    def latent_statistics(samples) -> dict:
        return {"scaling_factor": float(1.0 / samples.std())}  # as CogVideoX's 1.15258426

    @staticmethod
    def pipeline(components):
        return recipe.i2v_pipeline(components)

    generate_trajectory = staticmethod(recipe.generate_trajectory)

    @staticmethod
    def loss(components, arch):
        scaling = components.vae.config.scaling_factor
        latent_frames = recipe.latent_frame_count(arch["frames"])
        rotary = recipe.rotary_embeddings(
            recipe.i2v_pipeline(components), arch["height"], arch["width"], latent_frames, torch.device("cpu")
        )

        def step_loss(bank, index, token_ids, generator):
            latents = recipe.video_latents(
                bank["mean"][index].float(), bank["logvar"][index].float(), scaling, generator
            )
            image = recipe.sample_posterior(
                bank["image_mean"][index].float(), bank["image_logvar"][index].float(), generator
            )
            image = image * recipe.image_latent_scale(components.vae.config)
            condition = recipe.pad_image_latents(image.permute(0, 2, 1, 3, 4), latent_frames)
            embeds = t5_embeddings(components, token_ids[index])
            timesteps = recipe.sample_timesteps(
                len(index), components.scheduler.config.num_train_timesteps, generator
            )
            noise = torch.randn(latents.shape, generator=generator)
            return recipe.i2v_loss(
                components.transformer,
                components.scheduler,
                latents,
                condition,
                embeds,
                timesteps,
                noise,
                rotary,
            )

        return step_loss


class WanPretraining(FamilyFiles):
    """The tiny Wan2.2's pieces of the pretraining (``--model tiny_wan``)."""

    @staticmethod
    def architecture(autoencoder: str = "codec") -> dict:
        from src.models.wan import TINY_WAN_ARCHITECTURE, TINY_WAN_LEARNED_VAE_ARCHITECTURE

        return TINY_WAN_ARCHITECTURE if autoencoder == "codec" else TINY_WAN_LEARNED_VAE_ARCHITECTURE

    file_stem, record_stem, state_prefix = "tiny_wan_ti2v", "tiny_wan", "tiny_wan_"
    transformer_steps = 6000  # the shipped base's

    @staticmethod
    def load_build(arch):
        from src.models.wan import build_tiny_wan_components

        return build_tiny_wan_components(arch)

    @staticmethod
    def build(arch):
        from src.models.wan import build_tiny_wan_components

        return build_tiny_wan_components(arch)

    @staticmethod
    def first_frame_posterior(vae, video_bcfhw, count, generator):
        """Posterior of the clean first frame alone (its mode is Wan's condition latent)."""
        return recipe.encode_posterior(vae, video_bcfhw[:, :, :1])

    @staticmethod
    def latent_statistics(samples) -> dict:
        """Per-channel mean and std of the latents (what Wan2.2's VAE config lists)."""
        flat = samples.transpose(0, 1).reshape(samples.shape[1], -1)
        return {"latents_mean": flat.mean(1).tolist(), "latents_std": flat.std(1).tolist()}

    @staticmethod
    def pipeline(components):
        from src.models.wan import wan_pipeline

        return wan_pipeline(components)

    @staticmethod
    def generate_trajectory(*args, **kwargs):
        from src.models.wan import generate_trajectory

        return generate_trajectory(*args, **kwargs)

    @staticmethod
    def loss(components, arch):
        from src.models import wan

        vae_config = components.vae.config
        shift = float(components.scheduler.config.flow_shift)

        def step_loss(bank, index, token_ids, generator):
            latents = wan.video_latents(
                bank["mean"][index].float(), bank["logvar"][index].float(), vae_config, generator
            )
            condition = wan.normalize_latents(bank["image_mean"][index].float(), vae_config)  # the mode
            embeds = umt5_embeddings(components, token_ids[index])
            sigmas = wan.shifted_sigmas(len(index), generator, shift)
            noise = torch.randn(latents.shape, generator=generator)
            return wan.flow_matching_loss(
                components.transformer,
                latents,
                condition,
                wan.first_frame_mask(latents),
                embeds,
                sigmas,
                noise,
                num_train_timesteps=int(components.scheduler.config.num_train_timesteps),
            )

        return step_loss


def umt5_embeddings(components, token_ids: torch.Tensor) -> torch.Tensor:
    """UMT5 embeddings as the Wan pipeline computes them (attention mask from the padding, the
    positions past each prompt zeroed), with gradients."""
    mask = (token_ids != components.tokenizer.pad_token_id).long()
    embeds = components.text_encoder(token_ids, mask).last_hidden_state
    return embeds * mask.unsqueeze(-1).to(embeds.dtype)


FAMILY = {"tiny": CogVideoXPretraining(), "tiny_wan": WanPretraining()}


def relative(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--autoencoder",
        choices=("codec", "learned"),
        default="codec",
        help="the linear latent codec (fitted in seconds; the default models) or a learned tiny VAE",
    )
    parser.add_argument("--fit-clips", type=int, default=640, help="clips the codec is fitted on")
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="continue from a tiny-model file of the same architecture (its autoencoder is kept, "
        "its transformer and text encoder train on): more pretraining compute adds to a shipped base",
    )
    parser.add_argument(
        "--deblock",
        type=float,
        default=0.5,
        help="the codec's block-edge filter strength on the token grid, written into the file (0 = off; "
        "make bench-codec measures it); not a training setting: a finished run only rewrites the file",
    )
    parser.add_argument("--vae-steps", type=int, default=2500, help="learned VAE only")
    parser.add_argument("--vae-batch", type=int, default=4)
    parser.add_argument("--vae-lr", type=float, default=2e-3)
    parser.add_argument("--vae-crop", type=int, default=32, help="square training crops (multiple of 8)")
    parser.add_argument("--temporal-weight", type=float, default=1.0, help="frame-difference L1 weight")
    parser.add_argument("--bank-clips", type=int, default=4000, help="clips encoded once for stage 3")
    parser.add_argument(
        "--transformer-steps",
        type=int,
        default=None,
        help="default: the shipped base's (tiny 4500, tiny_wan 6000)",
    )
    parser.add_argument("--transformer-batch", type=int, default=8)
    parser.add_argument("--transformer-lr", type=float, default=1e-3)
    parser.add_argument("--text-lr", type=float, default=1e-3, help="text encoder (trained in stage 3)")
    parser.add_argument(
        "--photos-dir", default=str(default_photos_dir()), help="extra training photos ('none': bundled only)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="default outputs/pretrain_tiny/seed<seed>"
    )
    parser.add_argument("--fresh", action="store_true", help="discard a saved state and start over")
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="save and stop after this many minutes (rerun the same command to continue)",
    )
    parser.add_argument(
        "--stop-after", choices=STAGES, default=None, help="stop (resumably) after this stage"
    )
    parser.add_argument(
        "--model", choices=("tiny", "tiny_wan"), default="tiny", help="the tiny CogVideoX or the tiny Wan2.2"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default: the model's file in src/models/pretrained"
    )
    parser.add_argument(
        "--record", type=Path, default=None, help="default: experiments/<model>_pretrain.json"
    )
    args = parser.parse_args(argv)
    family = FAMILY[args.model]
    args.transformer_steps = args.transformer_steps or family.transformer_steps
    args.out = args.out or family.weights(args.autoencoder)
    args.record = args.record or family.record(args.autoencoder)
    height = family.architecture(args.autoencoder)["height"]
    if args.vae_crop % 8 or not 8 <= args.vae_crop <= height:
        parser.error(f"--vae-crop must be a multiple of 8 between 8 and {height}")
    if args.init_from is not None and not args.init_from.is_file():
        parser.error(f"--init-from {args.init_from}: no such file")
    for name in (
        "vae_steps",
        "transformer_steps",
        "bank_clips",
        "vae_batch",
        "transformer_batch",
        "fit_clips",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


# decode-side settings of the codec: they change no weight, so a state does not depend on them
DECODE_ONLY_KEYS = ("deblock", "deblock_grid")


def training_architecture(arch: dict) -> dict:
    """A copy of ``arch`` as the resumable state's fingerprint holds it (decode-only keys out)."""
    copy_ = json.loads(json.dumps(arch))
    for key in DECODE_ONLY_KEYS:
        copy_["vae"].pop(key, None)
    return copy_


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    photos_dir = None if args.photos_dir.lower() == "none" else Path(args.photos_dir).expanduser()
    if photos_dir is not None and not photos_dir.is_dir():
        raise MissingFileError(
            f"--photos-dir {photos_dir} does not exist: point it at the McMaster photographs "
            "(../shared/data/mcmaster or $PROGRESTORE_SHARED/data/mcmaster), or pass --photos-dir none"
        )
    photos = training_photos(photos_dir)
    all_photos = {**photos, **gray_photos()}
    family = FAMILY[args.model]
    arch = json.loads(json.dumps(family.architecture(args.autoencoder)))
    init = None
    if args.init_from is not None:  # its architecture (and fitted autoencoder) replace the default
        init, init_metadata = load_tiny(args.init_from, build=family.load_build)
        arch = json.loads(init_metadata["architecture"])
        if is_codec_config(arch["vae"]) != (args.autoencoder == "codec"):
            raise ConfigError(
                f"--init-from {args.init_from} has another autoencoder than --autoencoder {args.autoencoder}"
            )
    data_digest = hashlib.sha256()
    for key in sorted(all_photos):
        data_digest.update(key.encode() + all_photos[key].tobytes())
    fingerprint = {
        **{name: getattr(args, name) for name in RESULT_ARGS},
        "architecture": training_architecture(arch),
        "photos_sha256": data_digest.hexdigest(),
        "init_sha256": None if args.init_from is None else file_hash(args.init_from),
    }
    name = family.state_name(args.seed, args.autoencoder)
    if args.init_from is not None:
        name += f"_from_{fingerprint['init_sha256'][:12]}"
    state_dir = args.state_dir or PROJECT_ROOT / "outputs" / "pretrain_tiny" / name
    if args.fresh and state_dir.exists():
        shutil.rmtree(state_dir)
    state = State(state_dir, fingerprint, args.checkpoint_minutes, args.budget_minutes)
    # the initial weights come from the seed too (a fresh process's torch seed is random)
    with torch.random.fork_rng():
        torch.manual_seed(stable_seed(args.seed, "pretrain", "init"))
        components = family.build(arch)
    if init is not None:
        for name in ("vae", "transformer", "text_encoder"):
            getattr(components, name).load_state_dict(getattr(init, name).state_dict())
        components.vae.register_to_config(**vae_stats(init.vae))
        state.data["done"] = state.data["done"] or ["vae"]  # the autoencoder comes with the file
        state.data["record"].setdefault(
            "init_from", {"file": relative(args.init_from), "sha256": fingerprint["init_sha256"]}
        )
    if state.load():
        state.restore_models(components)
        print(
            f"resuming {state.path}: done {state.data['done']}, at {state.data.get('current') and {k: v for k, v in state.data['current'].items() if k in ('stage', 'step')}}",
            file=sys.stderr,
        )
    record = state.data["record"]
    held_out = {key: load_image(Source(key)) for key in VAL_HOLDOUT}
    try:
        run_stages(components, state, record, photos, all_photos, held_out, arch, args)
    except Paused as where:
        print(
            f"paused at {where} after {args.budget_minutes} min; state in {state.path}; "
            "rerun the same command to continue",
            file=sys.stderr,
        )
        return
    if args.stop_after and args.stop_after != STAGES[-1]:
        return
    finish(components, state, record, photos, all_photos, held_out, arch, fingerprint, args)


def run_stages(components, state, record, photos, all_photos, held_out, arch, args) -> None:
    for stage in STAGES:
        if stage in state.data["done"]:
            continue
        started, earlier = time.time(), state.stage_minutes(stage)
        if stage == "vae":
            codec = is_codec_config(arch["vae"])
            if codec:
                record["vae"] = fit_codec(components, photos, all_photos, arch, args)
            else:
                record["vae"] = train_vae(components, state, all_photos, arch, args)
            record["vae"].update(autoencoder_record(components.vae, photos, held_out, arch, args.seed, codec))
        elif stage == "bank":
            bank = build_bank(components, state, all_photos, arch, args)
            components.vae.register_to_config(**bank["vae_stats"])
            record["bank"] = {"clips": args.bank_clips, **bank["vae_stats"]}
        else:
            bank = build_bank(components, state, all_photos, arch, args)
            record["transformer"] = train_transformer(components, state, bank, arch, args)
        minutes = record.setdefault("stage_minutes", {})
        minutes[stage] = earlier + (time.time() - started) / 60
        state.data["done"].append(stage)
        state.save(components)
        print(f"stage {stage} done: {json.dumps(record.get(stage, {}))[:300]}", file=sys.stderr, flush=True)
        if args.stop_after == stage and stage != STAGES[-1]:
            print(f"stopped after {stage}; rerun the same command to continue", file=sys.stderr)
            return


def set5_images() -> dict | None:
    """The held-out Set5 photographs (measured on, never trained on), or None when absent."""
    if not set5_dir().is_dir():
        return None
    return {s.key: load_image(s) for s in list_sources(set5_dir())[0]}


def autoencoder_record(vae, photos, held_out, arch, seed: int, codec: bool) -> dict:
    """Reconstruction PSNR of pretraining clips (training photos, held-out photos, Set5 when
    here) and, for the codec, the round trip of progression clips of the held-out photos."""
    set5 = set5_images()
    images = {"train": photos, "held_out": held_out, **({"set5": set5} if set5 is not None else {})}
    record = {
        "reconstruction_psnr_db": {k: vae_reconstruction_psnr(vae, v, arch, seed) for k, v in images.items()}
    }
    if codec:
        record["progression_round_trip"] = {
            k: codec_progression_psnr(vae, v, arch, seed) for k, v in images.items() if k != "train"
        }
    return record


def identity_set5(components, arch, args) -> dict:
    """Identity PSNR of the held-out Set5 photographs (measured only), when they are here."""
    images = set5_images()
    if images is None:
        return {}
    return {
        "identity_psnr_db_per_frame_set5": identity_psnr(
            components, images, arch, args.seed, model=args.model
        )
    }


def finish(components, state, record, photos, all_photos, held_out, arch, fingerprint, args) -> None:
    arch["vae"].update(vae_stats(components.vae))
    if is_codec_config(arch["vae"]) and "fit" in record.get("vae", {}):
        arch["vae"]["fit"] = record["vae"]["fit"]
    if is_codec_config(arch["vae"]) and args.deblock is not None:
        arch["vae"]["deblock"] = args.deblock
        components.vae.register_to_config(deblock=args.deblock)
    record.update(
        {
            "seed": args.seed,
            "args": {k: relative(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "photos": {
                "colour": sorted(photos),
                "gray_tinted": list(GRAY_PHOTOS),
                "count": len(all_photos),
                "sha256": fingerprint["photos_sha256"],
            },
            "held_out": list(VAL_HOLDOUT),
            "identity_psnr_db_per_frame": identity_psnr(
                components, held_out, arch, args.seed, model=args.model
            ),
            **identity_set5(components, arch, args),
            "minutes": state.data.get("minutes_before", 0.0) + (time.time() - state.started) / 60,
            "torch": torch.__version__,
            "architecture": arch,
        }
    )
    save_tiny(components, args.out, arch, {"pretrain": json.dumps(record)})
    record["file"] = relative(args.out)
    record["megabytes"] = args.out.stat().st_size / 1e6
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.write_text(json.dumps(record, indent=2) + "\n")
    print(
        json.dumps({k: record[k] for k in ("minutes", "identity_psnr_db_per_frame", "megabytes")}, indent=2)
    )


if __name__ == "__main__":
    exit_on_user_error(main)
