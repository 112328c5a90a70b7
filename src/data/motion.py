"""Natural-motion clips from still photographs (pans, zooms, crops, mild exposure drift): the
pretraining data of the tiny base model, standing in for the natural videos a real video model
is pretrained on. Frames are (F, H, W, 3) uint8.

Motion is gentle and often absent (``STATIC_PROBABILITY``): when the tiny T5 was random (before
issue 11) the base could not read the motion phrase, and with large unpredictable moves it learned to predict the
average of all moves, which sampling renders as a blocky mosaic in the later frames. Measured
on Set5 static clips: the old prior (pans of 8-20 % of the width, no extra static clips) gave
frame 9 at 14.5 dB where the VAE alone gives 22.6 dB.
"""

from __future__ import annotations

import cv2
import numpy as np

MOTION_PHRASES = {
    "pan_left": "The camera pans slowly to the left.",
    "pan_right": "The camera pans slowly to the right.",
    "tilt_up": "The camera tilts slowly upwards.",
    "tilt_down": "The camera tilts slowly downwards.",
    "zoom_in": "The camera slowly zooms in.",
    "zoom_out": "The camera slowly zooms out.",
    "static": "The camera holds still.",
}

STATIC_PROBABILITY = 0.4


def _crop_resize(
    image: np.ndarray, cx: float, cy: float, crop_w: float, out_h: int, out_w: int
) -> np.ndarray:
    """Crop centred at (cx, cy) with width crop_w and the output aspect, resized to (out_h, out_w)
    with an affine warp (sub-pixel motion, area-like prefilter when shrinking)."""
    scale = out_w / crop_w
    source = image
    if scale < 0.5:  # prefilter so bilinear sampling does not alias
        sigma = 0.5 / scale
        source = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    matrix = np.array(
        [[scale, 0.0, out_w / 2 - scale * cx], [0.0, scale, out_h / 2 - scale * cy]], dtype=np.float64
    )
    return cv2.warpAffine(
        source, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def natural_motion_clip(
    image: np.ndarray,
    rng: np.random.Generator,
    num_frames: int,
    height: int,
    width: int,
    camera_effects: bool = False,
    exposure_drift: bool = True,
    motion: str | None = None,
    move_scale: float = 1.0,
) -> tuple[np.ndarray, str]:
    """(frames (F, H, W, 3) uint8, motion phrase) of one random camera move over the photo.

    ``camera_effects`` adds strong exposure ramps and focus pulls (each with probability 0.35):
    changes *within* the 4-frame groups the VAE compresses into one latent frame, which a video
    VAE must reproduce frame by frame (used for the VAE only, not for the transformer's prior).
    ``exposure_drift`` adds, with probability 0.5, a mild undescribed exposure drift (gain 0.7-1.3
    at the last frame); :func:`pretraining_clip` turns it off, since its clips name every change.
    ``motion`` (a key of ``MOTION_PHRASES``) fixes the move instead of drawing it, and
    ``move_scale`` multiplies its extent (shift and zoom), e.g. for the longer synthetic videos of
    ``src.eval data=video``; the defaults draw exactly what pretraining drew.
    """
    img_h, img_w = image.shape[:2]
    max_crop_w = min(img_w, img_h * width / height)
    moving = [name for name in MOTION_PHRASES if name != "static"]
    if motion is None:
        motion = "static" if rng.random() < STATIC_PROBABILITY else moving[rng.integers(len(moving))]
    elif motion not in MOTION_PHRASES:
        raise ValueError(f"motion must be one of {', '.join(MOTION_PHRASES)}, got {motion!r}")
    crop_w0 = max_crop_w * rng.uniform(0.45, 0.92)
    zoom = {"zoom_in": rng.uniform(0.9, 0.97), "zoom_out": rng.uniform(1.03, 1.1)}.get(motion, 1.0)
    zoom = 1.0 + (zoom - 1.0) * move_scale
    crop_w1 = min(max_crop_w, crop_w0 * zoom)
    shift = rng.uniform(0.02, 0.08) * crop_w0 * move_scale
    dx = {"pan_left": -shift, "pan_right": shift}.get(motion, 0.0)
    dy = {"tilt_up": -shift, "tilt_down": shift}.get(motion, 0.0)

    def centre_range(crop_w, axis_len, is_x):
        half = (crop_w if is_x else crop_w * height / width) / 2
        return half, axis_len - half

    # Pick a start centre so that the whole path stays inside the photo.
    lo_x0, hi_x0 = centre_range(max(crop_w0, crop_w1), img_w, True)
    lo_y0, hi_y0 = centre_range(max(crop_w0, crop_w1), img_h, False)
    cx0 = rng.uniform(lo_x0 + max(0, -dx), max(lo_x0 + max(0, -dx), hi_x0 - max(0, dx)))
    cy0 = rng.uniform(lo_y0 + max(0, -dy), max(lo_y0 + max(0, -dy), hi_y0 - max(0, dy)))
    gain_end = rng.uniform(0.7, 1.3) if exposure_drift and rng.random() < 0.5 else 1.0
    blur_start = blur_end = 0.0
    if camera_effects:
        if rng.random() < 0.35:
            gain_end = rng.uniform(0.35, 1.7)
        if rng.random() < 0.35:
            blur_start, blur_end = sorted([0.0, rng.uniform(0.8, 3.0)], reverse=rng.random() < 0.5)
    frames = []
    for t in np.linspace(0.0, 1.0, num_frames):
        frame = _crop_resize(
            image, cx0 + dx * t, cy0 + dy * t, crop_w0 + (crop_w1 - crop_w0) * t, height, width
        )
        sigma = blur_start + (blur_end - blur_start) * t
        if sigma > 0.3:
            frame = cv2.GaussianBlur(frame, (0, 0), sigmaX=sigma)
        if gain_end != 1.0:
            frame = cv2.convertScaleAbs(frame, alpha=1.0 + (gain_end - 1.0) * t)
        frames.append(frame)
    return np.stack(frames), MOTION_PHRASES[motion]


# Phrases of the pretraining clips' effects. The tiny text encoder is trained on them (with the
# camera phrases), so a prompt that says "brightens" or "becomes sharp" means something to the
# base: the stand-in for the text understanding a real video model brings.
STATIC_PHRASES = ("The camera holds still.", "Nothing moves.", "Static image.")
EFFECT_PHRASES = {
    "brighten": "The scene gradually brightens.",
    "darken": "The scene gradually darkens.",
    "focus_in": "The image gradually becomes sharp and focused.",
    "focus_out": "The image gradually blurs out of focus.",
}
EFFECT_PROBABILITY = 0.3  # each of exposure and focus, independently


def _jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flip, saturation and brightness jitter (augmentation of the photos)."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = image.astype(np.float32)
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * rng.uniform(0.7, 1.3)
    image = image * rng.uniform(0.85, 1.15)
    return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))


def pretraining_clip(
    image: np.ndarray, rng: np.random.Generator, num_frames: int, height: int, width: int
) -> tuple[np.ndarray, str, dict]:
    """(frames (F, H, W, 3) uint8, description, what was drawn) of one pretraining clip of the
    tiny base: a gentle camera move or none (:func:`natural_motion_clip`), with, each with
    probability ``EFFECT_PROBABILITY``, an exposure ramp (dark to normal with fading sensor
    grain, or the reverse) and a focus pull (either way). Effects change linearly over the clip
    and end (or start) at the untouched frame, so every clip is an identity-preserving
    trajectory: frame 1's content stays, only the named change happens."""
    frames, camera = natural_motion_clip(
        _jitter(image, rng), rng, num_frames, height, width, exposure_drift=False
    )
    if camera == MOTION_PHRASES["static"]:
        camera = STATIC_PHRASES[rng.integers(len(STATIC_PHRASES))]
    phrases, drawn = [camera], {"camera": camera}
    t = np.linspace(0.0, 1.0, num_frames)
    work = frames.astype(np.float32)
    if rng.random() < EFFECT_PROBABILITY:
        brighten = rng.random() < 0.5
        dark_gain = rng.uniform(0.15, 0.7)
        grain = rng.uniform(0.0, 12.0) if rng.random() < 0.5 else 0.0
        ramp = 1 - t if brighten else t  # 1 at the dark end
        gains = 1.0 + (dark_gain - 1.0) * ramp
        noise = rng.standard_normal(work.shape).astype(np.float32)
        work = work * gains[:, None, None, None] + grain * ramp[:, None, None, None] * noise
        phrases.append(EFFECT_PHRASES["brighten" if brighten else "darken"])
        drawn.update(exposure="brighten" if brighten else "darken", dark_gain=dark_gain, grain=grain)
    if rng.random() < EFFECT_PROBABILITY:
        focus_in = rng.random() < 0.5
        sigma_max = rng.uniform(0.8, 3.0)
        sigmas = sigma_max * ((1 - t) if focus_in else t)
        for index, sigma in enumerate(sigmas):
            if sigma > 0.3:
                work[index] = cv2.GaussianBlur(work[index], (0, 0), sigmaX=float(sigma))
        phrases.append(EFFECT_PHRASES["focus_in" if focus_in else "focus_out"])
        drawn.update(focus="in" if focus_in else "out", sigma_max=sigma_max)
    frames = np.clip(np.rint(work), 0, 255).astype(np.uint8)
    return frames, " ".join(phrases), drawn
