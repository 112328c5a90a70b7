"""The pretraining's data: the photographs (bundled, tinted grayscale, McMaster; never Set5 nor
``VAL_HOLDOUT``), identity-preserving clips of them with their prompts, restoration progression
clips and the codec's fitting clips, and the random streams of every step (a pure function of
(seed, stage, step), so a resumed run replays them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from src.data.images import BUNDLED_PHOTOS, Source, list_sources, load_image, to_rgb_uint8
from src.data.motion import pretraining_clip
from src.models import recipe
from src.utils.cli import ConfigError
from src.utils.config import shared_dir
from src.utils.frames import to_float_tensor
from src.utils.seeding import stable_seed

# Never used for pretraining or LoRA training: the platform's fallback validation photographs.
VAL_HOLDOUT = ("coffee", "chelsea")
# Grayscale photographs and textures bundled with scikit-image (each gets a random tint per clip).
GRAY_PHOTOS = ("camera", "moon", "coins", "clock", "brick", "grass", "gravel", "page", "text", "cell")


def default_photos_dir() -> Path:
    return shared_dir() / "data" / "mcmaster"


def set5_dir() -> Path:
    """The held-out validation photographs: measured on, never trained on."""
    return shared_dir() / "data" / "set5"


def set5_images() -> dict | None:
    """The held-out Set5 photographs (measured on, never trained on), or None when absent."""
    if not set5_dir().is_dir():
        return None
    return {s.key: load_image(s) for s in list_sources(set5_dir())[0]}


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


def step_rng(seed: int, stage: str, step: int) -> tuple[np.random.Generator, torch.Generator]:
    """The random streams of one step: a pure function of (seed, stage, step), so resuming replays."""
    value = stable_seed(seed, "pretrain", stage, step)
    return np.random.default_rng(value), torch.Generator().manual_seed(value)


def progression_batch(photos: dict, rng: np.random.Generator, batch: int, arch: dict) -> torch.Tensor:
    """(B, F, C, H, W) in [0, 1]: restoration progression clips (sr, deblur, lowlight at the
    paper's schedules) of random crops of ``photos``, as the fine-tuning will show the codec."""
    from src.data.clips import random_crop
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
