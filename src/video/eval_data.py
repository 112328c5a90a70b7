"""The videos of ``python -m src.eval data=video``: degraded videos with ground truth, either
synthetic (held-out photographs moved by a known camera path, degraded by the checkpoint's task)
or the user's (``data.pairs_dir``); see :mod:`src.video.evaluate`. Each loader reads one video
when called."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from src.utils.cli import ConfigError, InputError, number

DEGRADATION_IN_TIME = ("constant", "per_frame")
MOTION_CHOICES = ("pan", "tilt", "zoom", "static")  # pan/tilt/zoom pick their direction per video


@dataclass
class VideoItem:
    name: str
    degraded: np.ndarray  # (F, H, W, 3) uint8
    clean: np.ndarray
    caption: str | None = None
    motion: str | None = None
    params: list = field(default_factory=list)  # per-frame degradation parameters (synthetic)
    fps: Fraction = Fraction(24)


def _motion_key(choice: str, rng: np.random.Generator) -> str:
    from src.data.motion import MOTION_PHRASES

    directions = {
        "pan": ("pan_left", "pan_right"),
        "tilt": ("tilt_up", "tilt_down"),
        "zoom": ("zoom_in", "zoom_out"),
    }
    if choice in directions:
        return directions[choice][int(rng.integers(2))]
    if choice in MOTION_PHRASES:
        return choice
    raise ConfigError(
        f"data.motions: {choice!r} is not one of {', '.join(MOTION_CHOICES)} or {', '.join(MOTION_PHRASES)}"
    )


def synthetic_videos(
    data_cfg: dict, degradation: dict, task: str, height: int, width: int, seed: int
) -> list:
    """Loaders of synthetic degraded videos with ground truth (see the module docstring)."""
    from src.data.degradations import DegradationPreset, render_degraded, sample_params
    from src.data.images import BUNDLED_PHOTOS, load_image
    from src.data.motion import natural_motion_clip
    from src.evaluation.readers import captions_of, held_out_sources
    from src.utils.seeding import stable_seed

    frames = number(data_cfg.get("frames", 16), "data.frames", at_least=2)
    in_time = data_cfg.get("degradation_in_time", "constant")
    if in_time not in DEGRADATION_IN_TIME:
        raise ConfigError(
            f"data.degradation_in_time must be one of {', '.join(DEGRADATION_IN_TIME)}, got {in_time}"
        )
    motions = list(data_cfg.get("motions") or ["pan", "zoom", "static"])
    for choice in motions:
        _motion_key(choice, np.random.default_rng(0))  # a bad name fails before the model loads
    move_scale = number(data_cfg.get("move_scale", 1.0), "data.move_scale", float, above=0)
    per_image = number(data_cfg.get("videos_per_image", 1), "data.videos_per_image", at_least=1)
    fps = Fraction(str(data_cfg.get("fps", 24)))
    preset = DegradationPreset.from_dict(degradation)
    captions = captions_of(data_cfg)
    sources = held_out_sources(data_cfg)
    if all(s.path is None for s in sources):
        captions = {**{s.key: BUNDLED_PHOTOS[s.key] for s in sources}, **captions}

    def load(source, video: int, choice: str) -> VideoItem:
        rng = np.random.default_rng(stable_seed(seed, "video", task, source.key, video))
        motion = _motion_key(choice, rng)
        clean, phrase = natural_motion_clip(
            load_image(source),
            rng,
            frames,
            height,
            width,
            exposure_drift=False,
            motion=motion,
            move_scale=move_scale,
        )
        params = sample_params(task, rng, preset, 9, height, width)
        degraded, used = [], []
        for t, frame in enumerate(clean):
            if in_time == "per_frame" and t > 0:
                params = sample_params(task, rng, preset, 9, height, width)
            frame_params = dict(params)
            if task == "lowlight":  # sensor noise is fresh in every frame of real footage
                frame_params["noise_seed"] = stable_seed(seed, "video-noise", source.key, video, t)
            degraded.append(render_degraded(task, frame, frame_params))
            used.append(frame_params)
        caption = captions.get(source.key) or (source.path and captions.get(source.path.name))
        name = source.key if per_image == 1 else f"{source.key}#{video}"
        return VideoItem(name.replace("/", "__"), np.stack(degraded), clean, caption, phrase, used, fps)

    loaders = []
    for index, source in enumerate(sources):
        for video in range(per_image):
            choice = motions[(index * per_image + video) % len(motions)]
            loaders.append(functools.partial(load, source, video, choice))
    return loaders


def pair_videos(data_cfg: dict) -> list:
    """Loaders of a user folder of (degraded, clean) video pairs, matched by name."""
    from src.video.io import VIDEO_SUFFIXES, probe_video, read_all_frames

    root = Path(str(data_cfg["pairs_dir"])).expanduser()
    degraded_dir, clean_dir = root / "degraded", root / "clean"
    for folder in (degraded_dir, clean_dir):
        if not folder.is_dir():
            raise InputError(f"data.pairs_dir={root} needs degraded/ and clean/ folders; {folder} is missing")

    def entries(folder: Path) -> dict[str, Path]:
        return {
            p.stem: p
            for p in sorted(folder.iterdir())
            if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES)
        }

    degraded, clean = entries(degraded_dir), entries(clean_dir)
    names = sorted(set(degraded) & set(clean))
    if not names:
        raise InputError(f"no video in {degraded_dir} has a namesake in {clean_dir}")
    fps_setting = data_cfg.get("fps")

    def load(name: str) -> VideoItem:
        info = probe_video(degraded[name], fps=fps_setting)
        low, high = (
            read_all_frames(degraded[name], fps=fps_setting),
            read_all_frames(clean[name], fps=fps_setting),
        )
        if low.shape != high.shape:
            raise InputError(
                f"{name}: degraded {low.shape[:3]} and clean {high.shape[:3]} differ (frames, H, W)"
            )
        return VideoItem(name, low, high, fps=info.fps)

    loaders = [functools.partial(load, n) for n in names]
    for loader, name in zip(loaders, names, strict=True):
        loader.name = name
    return loaders
