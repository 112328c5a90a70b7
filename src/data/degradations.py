"""Degradation schedules that turn one clean image into a T-frame progression clip.

Paper (arXiv 2512.02273, section II.B): frame 1 is the most degraded, frame T the clean image, and
the degradation strength falls linearly in between. Each task has two pure functions:

* ``sample_<task>_params(rng, ranges, num_frames, height, width) -> dict``: every random draw of a
  clip, JSON-serialisable, so a clip can be re-rendered bit for bit from its metadata record;
* ``render_<task>(image, params) -> frames``: deterministic given ``params``.

Layouts: ``image`` is (H, W, C=3) uint8 RGB; ``frames`` is (F, H, W, C=3) uint8 RGB.
The V-Bridge construction (arXiv 2603.13089, section 3.2) lives in :func:`render_interpolate`.

This module is the entry point of clips (sampling, rendering, :func:`make_clip`); the presets live
in :mod:`src.data.degradation_presets` and each task's pair of functions in
:mod:`src.data.schedules`, both importable from here too.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from src.data.degradation_presets import (
    REFERENCE_HEIGHT,
    REFERENCE_WIDTH,
    TASKS,
    DeblurRanges,
    DegradationPreset,
    LowlightRanges,
    SrRanges,
    linear_strengths,
    size_factor,
)
from src.data.schedules import (
    NOISE_MARGIN,
    gaussian_noise,
    jpeg_quality_for_scale,
    linear_to_srgb,
    lowlight_noise_windows,
    motion_kernel,
    render_deblur,
    render_lowlight,
    render_lowlight_frame,
    render_sr,
    sample_deblur_params,
    sample_lowlight_params,
    sample_sr_params,
    srgb_to_linear,
)
from src.utils.cli import ConfigError, InputError

__all__ = [  # the clip API, and the presets and task functions it re-exports
    "REFERENCE_HEIGHT",
    "REFERENCE_WIDTH",
    "NOISE_MARGIN",
    "TASKS",
    "DeblurRanges",
    "DegradationPreset",
    "LowlightRanges",
    "SrRanges",
    "check_task",
    "frame_psnrs",
    "gaussian_noise",
    "interpolation_weights",
    "jpeg_quality_for_scale",
    "linear_strengths",
    "linear_to_srgb",
    "lowlight_noise_windows",
    "make_clip",
    "most_degraded_params",
    "motion_kernel",
    "psnr_uint8",
    "render_clip",
    "render_deblur",
    "render_degraded",
    "render_interpolate",
    "render_lowlight",
    "render_lowlight_frame",
    "render_sr",
    "sample_deblur_params",
    "sample_lowlight_params",
    "sample_params",
    "sample_sr_params",
    "size_factor",
    "srgb_to_linear",
]


# ----------------------------------------------------------------------------------------------
# Dispatch, and the V-Bridge interpolation
# ----------------------------------------------------------------------------------------------
_SAMPLERS = {"sr": sample_sr_params, "deblur": sample_deblur_params, "lowlight": sample_lowlight_params}
_RENDERERS = {"sr": render_sr, "deblur": render_deblur, "lowlight": render_lowlight}
_PER_FRAME_KEYS = {
    "sr": ("scales", "jpeg_quality", "low_res_sizes"),
    "deblur": ("kernel_lengths_px",),
    "lowlight": ("strengths",),
}


def check_task(task: str) -> str:
    if task == "allinone":
        raise ConfigError(
            "task=allinone has no progression schedule: it trains one model on LQ/HQ pairs "
            "(python -m src.train experiment=vbridge_tiny, or data=allinone / data=paired)"
        )
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return task


def _task_ranges(task: str, preset: DegradationPreset):
    return getattr(preset, task)


def interpolation_weights(num_frames: int) -> list[float]:
    """a_t = (t-1)/(T-1): the weight of the clean image in frame t."""
    return [float(a) for a in 1.0 - linear_strengths(num_frames)]


def render_interpolate(lq_image: np.ndarray, hq_image: np.ndarray, alphas: list[float]) -> np.ndarray:
    """I_t = (1 - a_t) I_LQ + a_t I_HQ (V-Bridge pseudo-temporal sequence), (F, H, W, 3) uint8."""
    if lq_image.shape != hq_image.shape:
        raise InputError(f"LQ image {lq_image.shape} and HQ image {hq_image.shape} must match")
    lq, hq = lq_image.astype(np.float32), hq_image.astype(np.float32)
    frames = [np.clip(np.rint((1.0 - a) * lq + a * hq), 0, 255).astype(np.uint8) for a in alphas]
    frames[-1] = hq_image.copy()
    return np.stack(frames)


def sample_params(
    task: str, rng: np.random.Generator, preset: DegradationPreset, num_frames: int, height: int, width: int
) -> dict:
    """All random draws of one clip as a JSON-serialisable dict (see :func:`render_clip`)."""
    check_task(task)
    task_params = _SAMPLERS[task](rng, _task_ranges(task, preset), num_frames, height, width)
    if preset.mode == "schedule":
        return {"task": task, "mode": "schedule", **task_params}
    # interpolate: I_LQ is the task's most degraded frame (frame 1 of its schedule).
    lq_params = most_degraded_params(task, task_params)
    return {"task": task, "mode": "interpolate", "alphas": interpolation_weights(num_frames), "lq": lq_params}


def most_degraded_params(task: str, params: dict) -> dict:
    """The parameters of a schedule's first (most degraded) frame alone: what a degraded video
    frame is rendered with (``render_degraded``); the interpolate mode's ``lq`` does the same."""
    check_task(task)
    params = params.get("lq", params)
    return {key: (value[:1] if key in _PER_FRAME_KEYS[task] else value) for key, value in params.items()}


def render_degraded(task: str, image: np.ndarray, params: dict) -> np.ndarray:
    """The (H, W, 3) uint8 most degraded rendition of a clean image (frame 1 of its schedule)
    under ``most_degraded_params`` (or a full schedule's parameters)."""
    check_task(task)
    return _RENDERERS[task](image, most_degraded_params(task, params))[0]


def render_clip(task: str, image: np.ndarray, params: dict, lq_image: np.ndarray | None = None) -> np.ndarray:
    """Deterministically render (F, H, W, 3) uint8 frames from the clean (H, W, 3) uint8 image."""
    check_task(task)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if params.get("mode", "schedule") == "schedule":
        return _RENDERERS[task](image, params)
    if lq_image is None:
        lq_image = _RENDERERS[task](image, params["lq"])[0]
    return render_interpolate(lq_image, image, params["alphas"])


def make_clip(
    image: np.ndarray,
    task: str,
    seed: int | np.random.Generator,
    preset: DegradationPreset | None = None,
    num_frames: int = 9,
    lq_image: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """In-memory progression clip at the image's own resolution: ``(frames (F,H,W,3) uint8, params)``.

    This is the streaming entry point (no disk): the DataModule calls it per sample.
    """
    preset = preset or DegradationPreset()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    height, width = image.shape[:2]
    params = sample_params(task, rng, preset, num_frames, height, width)
    if lq_image is not None:
        if preset.mode != "interpolate":
            raise ConfigError("an external LQ image needs the 'interpolate' degradation mode")
        params["lq"] = {"external": True}
    return render_clip(task, image, params, lq_image=lq_image), params


def psnr_uint8(frame: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB of two uint8 arrays of the same shape (inf when identical)."""
    if frame.shape != reference.shape:
        raise ValueError(f"shape mismatch {frame.shape} vs {reference.shape}")
    # cv2.norm sums squared differences of uint8 data exactly (integer accumulation), ~25x faster
    # than numpy in float64 on a 1360x768 frame.
    mse = cv2.norm(np.ascontiguousarray(frame), np.ascontiguousarray(reference), cv2.NORM_L2SQR) / frame.size
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def frame_psnrs(frames: np.ndarray) -> list[float | None]:
    """PSNR(I_t, I_T) for every frame; None for the last (identical to itself)."""
    values = [psnr_uint8(frame, frames[-1]) for frame in frames[:-1]]
    return [round(v, 4) if math.isfinite(v) else None for v in values] + [None]
