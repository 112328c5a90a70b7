"""The primitive ops of the all-in-one categories, each a pair of pure functions (see
:mod:`src.data.allinone`): ``_sample_<op>(rng, ranges, height, width) -> dict`` draws every random
value (JSON-serialisable; noise fields as integer seeds), ``_render_<op>(image, params) -> image``
renders them deterministically. Pixel sizes are fractions of the image's short side."""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from src.data.degradation_presets import LowlightRanges
from src.data.schedules import (
    _jpeg_roundtrip,
    gaussian_noise,
    motion_kernel,
    render_deblur,
    render_lowlight_frame,
    sample_lowlight_params,
)


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def _uniform(rng: np.random.Generator, bounds) -> float:
    return float(rng.uniform(float(bounds[0]), float(bounds[1])))


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63 - 1))


def _short(image: np.ndarray) -> int:
    return min(image.shape[:2])


def _to_uint8(data: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(data), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# blur
# ----------------------------------------------------------------------------------------------
def _sample_blur(rng, ranges, height, width) -> dict:
    return {
        "length": _uniform(rng, ranges["length"]),
        "angle_deg": _uniform(rng, ranges["angle_deg"]) % 360.0,
    }


def blur_kernel(params: dict, height: int, width: int) -> np.ndarray:
    """The motion PSF of a blur op's params on an image of this size (also the baseline's)."""
    return motion_kernel(params["length"] * min(height, width), params["angle_deg"])


def _render_blur(image, params):
    length = params["length"] * _short(image)
    return render_deblur(image, {"angle_deg": params["angle_deg"], "kernel_lengths_px": [length]})[0]


# ----------------------------------------------------------------------------------------------
# noise
# ----------------------------------------------------------------------------------------------
def _sample_noise(rng, ranges, height, width) -> dict:
    return {"sigma": _uniform(rng, ranges["sigma"]), "seed": _seed(rng)}


def _render_noise(image, params):
    noise = gaussian_noise([params["seed"], 0], image.shape)
    return _to_uint8(image.astype(np.float32) + noise * np.float32(255.0 * params["sigma"]))


# ----------------------------------------------------------------------------------------------
# jpeg
# ----------------------------------------------------------------------------------------------
def _sample_jpeg(rng, ranges, height, width) -> dict:
    low, high = ranges["quality"]
    return {"quality": int(rng.integers(round(low), round(high) + 1))}


def _render_jpeg(image, params):
    return np.asarray(_jpeg_roundtrip(Image.fromarray(image), int(params["quality"])))


# ----------------------------------------------------------------------------------------------
# haze
# ----------------------------------------------------------------------------------------------
HAZE_NEAREST_DEPTH = 0.2  # d in [0.2, 1]: even the nearest point has some haze
HAZE_NOISE_CELLS = 4  # coarse depth-noise grid cells on the short side


def _sample_haze(rng, ranges, height, width) -> dict:
    airlight = _uniform(rng, ranges["airlight"])
    tint = float(ranges["airlight_tint"])
    colour = [float(min(1.0, airlight * (1.0 + rng.uniform(-tint, tint)))) for _ in range(3)]
    return {
        "beta": _uniform(rng, ranges["beta"]),
        "airlight": colour,
        "depth_angle_deg": float(rng.uniform(0.0, 360.0)),
        "depth_noise": float(ranges["depth_noise"]),
        "seed": _seed(rng),
    }


def haze_depth(params: dict, height: int, width: int) -> np.ndarray:
    """(H, W) float32 depth proxy in [HAZE_NEAREST_DEPTH, 1]: a linear gradient at the drawn
    angle mixed with smooth noise (a coarse grid upsampled bicubically), both size-independent."""
    short = min(height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = math.radians(params["depth_angle_deg"])
    ramp = (xs * math.cos(theta) + ys * math.sin(theta)) / short
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    cells = (
        max(2, round(HAZE_NOISE_CELLS * height / short)),
        max(2, round(HAZE_NOISE_CELLS * width / short)),
    )
    grid = np.random.default_rng([params["seed"], 1]).random(cells).astype(np.float32)
    smooth = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    smooth = (smooth - smooth.min()) / max(float(smooth.max() - smooth.min()), 1e-6)
    w = params["depth_noise"]
    mix = (1.0 - w) * ramp + w * smooth
    return (HAZE_NEAREST_DEPTH + (1.0 - HAZE_NEAREST_DEPTH) * mix).astype(np.float32)


def _render_haze(image, params):
    height, width = image.shape[:2]
    t = np.exp(-params["beta"] * haze_depth(params, height, width))[..., None]
    airlight = np.asarray(params["airlight"], np.float32) * np.float32(255.0)
    return _to_uint8(image.astype(np.float32) * t + airlight * (1.0 - t))


# ----------------------------------------------------------------------------------------------
# rain (streaks)
# ----------------------------------------------------------------------------------------------
def _sample_rain(rng, ranges, height, width) -> dict:
    return {
        "density": _uniform(rng, ranges["density"]),  # streaks per short-side square
        "length": _uniform(rng, ranges["length"]),
        "width": _uniform(rng, ranges["width"]),
        "angle_deg": _uniform(rng, ranges["angle_deg"]),
        "brightness": _uniform(rng, ranges["brightness"]),
        "seed": _seed(rng),
    }


def rain_layer(params: dict, height: int, width: int) -> np.ndarray:
    """(H, W) float32 streak map in [0, 1] (1 = the centre line of an isolated streak)."""
    short = min(height, width)
    length = max(1.0, params["length"] * short)
    # width = FWHM of the streak's cross-section. A streak thinner than a pixel is drawn 1 px wide
    # and dimmed by sqrt(width / 1 px): that keeps its squared error (what PSNR sees) about that of
    # the thin streak, so a 64 px and a 1024 px image are about equally degraded.
    fwhm = params["width"] * short
    coverage = math.sqrt(min(1.0, fwhm))
    sigma = max(fwhm, 1.0) / 2.355
    kernel = motion_kernel(length, params["angle_deg"]).astype(np.float32)
    pad = kernel.shape[0] // 2 + int(math.ceil(3 * sigma)) + 1
    canvas_h, canvas_w = height + 2 * pad, width + 2 * pad
    count = int(round(params["density"] * canvas_h * canvas_w / short**2))
    rng = np.random.default_rng([params["seed"], 2])
    rows = (rng.random(count) * canvas_h).astype(np.intp)
    cols = (rng.random(count) * canvas_w).astype(np.intp)
    weights = rng.uniform(0.5, 1.0, count).astype(np.float32)
    canvas = np.zeros((canvas_h, canvas_w), np.float32)
    np.add.at(canvas, (rows, cols), weights)
    canvas = cv2.GaussianBlur(canvas, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)
    canvas = cv2.filter2D(canvas, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    # the peak of one isolated unit point after both filters normalises the map
    probe = np.zeros((2 * pad + 1, 2 * pad + 1), np.float32)
    probe[pad, pad] = 1.0
    probe = cv2.filter2D(cv2.GaussianBlur(probe, (0, 0), sigmaX=sigma), -1, kernel)
    layer = canvas[pad : pad + height, pad : pad + width] * np.float32(
        coverage / max(float(probe.max()), 1e-8)
    )
    return np.clip(layer, 0.0, 1.0)


def _render_rain(image, params):
    height, width = image.shape[:2]
    streaks = (rain_layer(params, height, width) * np.float32(params["brightness"]))[..., None]
    data = image.astype(np.float32)
    return _to_uint8(255.0 - (255.0 - data) * (1.0 - streaks))  # screen blend


# ----------------------------------------------------------------------------------------------
# raindrop (drops on the lens)
# ----------------------------------------------------------------------------------------------
RAINDROP_FEATHER = 0.15  # soft edge, as a fraction of the drop radius
RAINDROP_RIM_AT, RAINDROP_RIM_WIDTH = 0.88, 0.08  # bright ring: centre and width, in radii
RAINDROP_SHIFT = 0.4  # the drop shows the scene this many radii above it


def _sample_raindrop(rng, ranges, height, width) -> dict:
    low, high = ranges["count"]
    count = int(rng.integers(round(low), round(high) + 1))
    drops = [
        [
            float(rng.random()),  # centre x, fraction of the width
            float(rng.random()),  # centre y, fraction of the height
            _uniform(rng, ranges["radius"]),  # vertical radius, fraction of the short side
            _uniform(rng, ranges["aspect"]),  # horizontal / vertical radius
        ]
        for _ in range(count)
    ]
    return {
        "drops": drops,
        "blur": _uniform(rng, ranges["blur"]),
        "zoom": _uniform(rng, ranges["zoom"]),
        "rim": _uniform(rng, ranges["rim"]),
    }


def _render_raindrop(image, params):
    height, width = image.shape[:2]
    short = _short(image)
    map_x, map_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    alpha = np.zeros((height, width), np.float32)
    rim = np.zeros((height, width), np.float32)
    zoom = params["zoom"]
    for cx_frac, cy_frac, r_frac, aspect in params["drops"]:
        cx, cy = cx_frac * (width - 1), cy_frac * (height - 1)
        ry = max(1.0, r_frac * short)
        rx = max(1.0, ry * aspect)
        top, bottom = max(0, int(cy - ry) - 1), min(height, int(math.ceil(cy + ry)) + 2)
        left, right = max(0, int(cx - rx) - 1), min(width, int(math.ceil(cx + rx)) + 2)
        if top >= bottom or left >= right:
            continue
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
        dx, dy = (xs - cx) / rx, (ys - cy) / ry
        rho = np.sqrt(dx * dx + dy * dy)
        inside = rho < 1.0
        drop_alpha = np.clip((1.0 - rho) / RAINDROP_FEATHER, 0.0, 1.0)
        box = (slice(top, bottom), slice(left, right))
        # a later drop lies over an earlier one (its view replaces the earlier one's)
        map_x[box] = np.where(inside, cx + (xs - cx) * zoom, map_x[box])
        map_y[box] = np.where(inside, cy + (ys - cy) * zoom - RAINDROP_SHIFT * ry, map_y[box])
        alpha[box] = np.where(inside, drop_alpha + alpha[box] * (1.0 - drop_alpha), alpha[box])
        ring = np.exp(-(((rho - RAINDROP_RIM_AT) / RAINDROP_RIM_WIDTH) ** 2)) * (
            0.6 + 0.4 * np.clip(-dy, 0, 1)
        )
        rim[box] = np.maximum(rim[box], np.where(rho < 1.1, ring, 0.0))
    sigma = max(0.5, params["blur"] * short)
    data = image.astype(np.float32)
    blurred = cv2.GaussianBlur(data, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT_101)
    inside_view = cv2.remap(blurred, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    a = alpha[..., None]
    out = data * (1.0 - a) + inside_view * a
    bright = (rim * np.float32(params["rim"]))[..., None]
    return _to_uint8(255.0 - (255.0 - out) * (1.0 - bright))


# ----------------------------------------------------------------------------------------------
# lowlight (the progression task's renderer at strength 1)
# ----------------------------------------------------------------------------------------------
def _sample_lowlight(rng, ranges, height, width) -> dict:
    params = sample_lowlight_params(rng, LowlightRanges(**ranges), 2, height, width)
    params.pop("strengths")
    # the sampled sigma (px at this size) as a short-side fraction, like every other pixel size
    params["blur_sigma"] = params.pop("blur_sigma_px") / min(height, width)
    return params


def lowlight_frame_params(params: dict, height: int, width: int) -> dict:
    """A lowlight op's params as ``render_lowlight_frame`` takes them, on an image of this size."""
    return {**params, "blur_sigma_px": params["blur_sigma"] * min(height, width)}


def _render_lowlight(image, params):
    height, width = image.shape[:2]
    noise = gaussian_noise([params["noise_seed"], 0], image.shape)
    return render_lowlight_frame(image, 1.0, lowlight_frame_params(params, height, width), noise)


# ----------------------------------------------------------------------------------------------
# lowres
# ----------------------------------------------------------------------------------------------
def _sample_lowres(rng, ranges, height, width) -> dict:
    return {"scale": _uniform(rng, ranges["scale"])}


def _render_lowres(image, params):
    height, width = image.shape[:2]
    small_w, small_h = max(1, round(width * params["scale"])), max(1, round(height * params["scale"]))
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


# ----------------------------------------------------------------------------------------------
# The ops by name (src/data/allinone/pairs.py applies a category's ops in order)
# ----------------------------------------------------------------------------------------------
_SAMPLERS = {
    "blur": _sample_blur,
    "noise": _sample_noise,
    "jpeg": _sample_jpeg,
    "haze": _sample_haze,
    "rain": _sample_rain,
    "raindrop": _sample_raindrop,
    "lowlight": _sample_lowlight,
    "lowres": _sample_lowres,
}
_RENDERERS = {
    "blur": _render_blur,
    "noise": _render_noise,
    "jpeg": _render_jpeg,
    "haze": _render_haze,
    "rain": _render_rain,
    "raindrop": _render_raindrop,
    "lowlight": _render_lowlight,
    "lowres": _render_lowres,
}
