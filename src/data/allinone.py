"""Synthetic degradation *categories* for all-in-one restoration.

One model restores every category (V-Bridge, arXiv 2603.13089, all-in-one setting); the
categories follow FoundIR's (arXiv 2412.01427): single degradations and their mixtures. A
category is an ordered tuple of primitive ops (``conf/degradation/allinone.yaml``); each
primitive is a pair of pure functions, as in :mod:`src.data.degradations`:

* ``_sample_<op>(rng, ranges, height, width) -> dict``: every random draw, JSON-serialisable
  (noise fields are recorded as integer seeds, never as arrays);
* ``_render_<op>(image, params) -> image``: (H, W, 3) uint8 -> (H, W, 3) uint8, deterministic.

Pixel sizes (blur length, streak length and width, drop radii, blur sigmas) are recorded as
fractions of the short side of the image they are rendered on, so the same params look alike on
a 64 px and a 1024 px image (and a pair can be re-rendered at another size). The lowlight op's
ranges are those of :class:`~src.data.degradations.LowlightRanges` (its blur at 1360x768, as the
progression task samples it); its sampled sigma is stored as a short-side fraction too.

Primitives (what each ``_render_<op>`` does):

=========  =====================================================================================
blur       linear motion blur (``motion_kernel``, FFT convolution of ``render_deblur``), length
           fraction and angle.
noise      additive white Gaussian noise, sigma in [0, 1] units, from a recorded seed.
jpeg       PIL JPEG round trip (4:2:0 chroma) at quality q ~ U[lo, hi].
haze       atmospheric scattering I = J t + A (1 - t), t = exp(-beta d), d in [0.2, 1] a smooth
           depth proxy: a linear gradient at a random angle mixed with bicubically upsampled
           coarse noise (4 cells on the short side, recorded seed); A slightly coloured.
rain       sparse random points (recorded seed) widened by a Gaussian and smeared by a motion
           kernel at a near-vertical angle, screen-blended at a drawn brightness.
raindrop   elliptic drops (recorded centres, radii, aspects) showing a blurred, magnified and
           upward-shifted copy of the scene, feathered, with a bright rim.
lowlight   ``render_lowlight_frame`` at strength 1: exposure roll-off and white-balance drift in
           linear light, mild blur, sensor noise.
lowres     INTER_AREA downscale by s ~ U[lo, hi], INTER_CUBIC upscale back to the same size.
=========  =====================================================================================

Severity (measured; reproduce with
``python -m src.data.allinone /work/shared/data/mcmaster 64`` (and ``... 256``)): mean input PSNR
(RGB, ``src.metrics.image.psnr``) of the degraded vs the clean image over the 18 McMaster photos,
each fitted to size x size, 3 seeded draws per photo, with the default ranges below (= the yaml):

==============  ==========  ============
category        64x64 (dB)  256x256 (dB)
==============  ==========  ============
blur                 20.79         19.03
noise                17.83         17.90
jpeg                 19.57         22.05
haze                 13.94         13.80
rain                 16.83         18.37
raindrop             19.61         19.02
lowlight             11.48         11.37
lowres               19.07         22.72
blur_noise           15.56         14.89
blur_jpeg            18.00         17.83
noise_jpeg           18.85         20.94
haze_noise           11.71         11.63
rain_haze            11.43         12.01
lowlight_blur        10.82         10.58
==============  ==========  ============

At 64x64 every category lies in 10.8-20.8 dB (target: about 11-20); the ends are lowlight_blur (the
progression task's lowlight ranges, unchanged, after a motion blur) and blur. jpeg and lowres are milder at 256 px
than at 64 px: JPEG's 8x8 blocks and the few pixels of a 0.1x frame are pixel-grid effects that no
short-side fraction can scale.

Speed (measured, ``make_pair`` on a 64x96 McMaster photo, mean of 50, this 2-core Xeon): 0.04 ms
(lowres) to 1.1 ms (raindrop) per pair, 0.74 ms for the slowest mixture (lowlight_blur).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from src.data.degradations import (
    LowlightRanges,
    _jpeg_roundtrip,
    gaussian_noise,
    motion_kernel,
    render_deblur,
    render_lowlight_frame,
    sample_lowlight_params,
)
from src.utils.cli import ConfigError, number

PRIMITIVES = ("blur", "noise", "jpeg", "haze", "rain", "raindrop", "lowlight", "lowres")

# FoundIR-like categories: the 8 singles and 6 mixtures, ops in a physically sensible order
# (scene effects -> optics -> sensor -> compression). Must equal conf/degradation/allinone.yaml.
DEFAULT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "blur": ("blur",),
    "noise": ("noise",),
    "jpeg": ("jpeg",),
    "haze": ("haze",),
    "rain": ("rain",),
    "raindrop": ("raindrop",),
    "lowlight": ("lowlight",),
    "lowres": ("lowres",),
    "blur_noise": ("blur", "noise"),
    "blur_jpeg": ("blur", "jpeg"),
    "noise_jpeg": ("noise", "jpeg"),
    "haze_noise": ("haze", "noise"),
    "rain_haze": ("rain", "haze"),
    "lowlight_blur": ("blur", "lowlight"),
}

# Each op's settings: kind ("range" = [lo, hi], "float", "bool") and the allowed interval.
_INF = math.inf
_OP_SCHEMA: dict[str, dict[str, tuple[str, float, float]]] = {
    "blur": {"length": ("range", 0.0, 1.0), "angle_deg": ("range", -_INF, _INF)},
    "noise": {"sigma": ("range", 0.0, 1.0)},
    "jpeg": {"quality": ("range", 1.0, 100.0)},
    "haze": {
        "beta": ("range", 0.0, _INF),
        "airlight": ("range", 0.0, 1.0),
        "airlight_tint": ("float", 0.0, 0.5),
        "depth_noise": ("float", 0.0, 1.0),
    },
    "rain": {
        "density": ("range", 0.0, _INF),
        "length": ("range", 0.0, 1.0),
        "width": ("range", 0.0, 0.2),
        "angle_deg": ("range", -_INF, _INF),
        "brightness": ("range", 0.0, 1.0),
    },
    "raindrop": {
        "count": ("range", 0.0, 100.0),
        "radius": ("range", 0.0, 0.5),
        "aspect": ("range", 0.2, 5.0),
        "blur": ("range", 0.0, 0.2),
        "zoom": ("range", 0.05, 1.0),
        "rim": ("range", 0.0, 1.0),
    },
    "lowlight": {
        "noise": ("range", 0.0, 1.0),
        "exposure_stops": ("range", 0.0, 16.0),
        "wb_drift": ("float", 0.0, 1.0),
        "blur_sigma_px": ("range", 0.0, _INF),
        "signal_dependent": ("bool", 0.0, 0.0),
        "shot_factor": ("float", 0.0, _INF),
    },
    "lowres": {"scale": ("range", 0.01, 1.0)},
}

# Default ranges (= conf/degradation/allinone.yaml), calibrated for strong, FoundIR-like
# degradations (see the table in the module docstring). Fractions are of the short side.
_LOWLIGHT_DEFAULTS = LowlightRanges()
DEFAULT_OPS: dict[str, dict] = {
    "blur": {"length": (0.08, 0.2), "angle_deg": (0.0, 360.0)},
    "noise": {"sigma": (0.08, 0.2)},
    "jpeg": {"quality": (2.0, 8.0)},
    "haze": {"beta": (0.4, 1.2), "airlight": (0.75, 0.95), "airlight_tint": 0.05, "depth_noise": 0.3},
    "rain": {
        "density": (60.0, 180.0),
        "length": (0.1, 0.25),
        "width": (0.004, 0.008),
        "angle_deg": (75.0, 105.0),
        "brightness": (0.6, 0.9),
    },
    "raindrop": {
        "count": (8.0, 16.0),
        "radius": (0.07, 0.16),
        "aspect": (0.75, 1.3),
        "blur": (0.03, 0.06),
        "zoom": (0.5, 0.8),
        "rim": (0.3, 0.6),
    },
    "lowlight": {
        "noise": _LOWLIGHT_DEFAULTS.noise,
        "exposure_stops": _LOWLIGHT_DEFAULTS.exposure_stops,
        "wb_drift": _LOWLIGHT_DEFAULTS.wb_drift,
        "blur_sigma_px": _LOWLIGHT_DEFAULTS.blur_sigma_px,
        "signal_dependent": _LOWLIGHT_DEFAULTS.signal_dependent,
        "shot_factor": _LOWLIGHT_DEFAULTS.shot_factor,
    },
    "lowres": {"scale": (0.1, 0.25)},
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _choices(names) -> str:
    return ", ".join(names)


def _check_op_ranges(op: str, given: dict) -> dict:
    """``given`` settings of ``op`` over its defaults, validated; ranges as (lo, hi) tuples."""
    schema = _OP_SCHEMA[op]
    out = dict(DEFAULT_OPS[op])
    for key, value in given.items():
        where = f"degradation.ops.{op}.{key}"
        if key not in schema:
            raise ConfigError(f"{where}: unknown setting (choose from {_choices(schema)})")
        kind, low, high = schema[key]
        if kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}={value} must be true or false")
            out[key] = value
            continue
        if kind == "float":
            out[key] = number(value, where, float, at_least=low, at_most=high)
            continue
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ConfigError(f"{where} must be [low, high], got {value}")
        lo = number(value[0], where, float, at_least=low, at_most=high)
        hi = number(value[1], where, float, at_least=low, at_most=high)
        if lo > hi:
            raise ConfigError(f"{where} must be [low, high] with low <= high, got {list(value)}")
        out[key] = (lo, hi)
    return out


@dataclass(frozen=True)
class AllInOnePreset:
    """The categories (name -> primitive ops in application order) and each op's ranges."""

    categories: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    ops: dict[str, dict] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_OPS.items()})

    @classmethod
    def from_dict(cls, cfg: dict) -> AllInOnePreset:
        """Build from the whole ``degradation`` config (a plain dict): its ``categories`` (required)
        and ``ops`` (each op's settings; unset ones take the defaults of :data:`DEFAULT_OPS`)."""
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        # nested OmegaConf nodes (a dict() of a DictConfig) become plain containers too
        cfg = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in dict(cfg or {}).items()
        }
        raw_categories = cfg.get("categories")
        if not raw_categories or not isinstance(raw_categories, dict):
            raise ConfigError(
                "degradation.categories is missing or empty: use degradation=allinone "
                "(a mapping of category name -> [ops in order])"
            )
        categories: dict[str, tuple[str, ...]] = {}
        for name, ops in raw_categories.items():
            where = f"degradation.categories.{name}"
            if not isinstance(name, str) or not _NAME.match(name):
                raise ConfigError(f"{where}: a category name must be letters, digits, '_', '.' or '-'")
            if isinstance(ops, str):
                ops = [ops]
            if not isinstance(ops, list | tuple) or not ops:
                raise ConfigError(
                    f"{where} must be a non-empty list of ops (choose from {_choices(PRIMITIVES)})"
                )
            for op in ops:
                if op not in PRIMITIVES:
                    raise ConfigError(f"{where}: unknown op {op!r} (choose from {_choices(PRIMITIVES)})")
            categories[name] = tuple(ops)
        raw_ops = cfg.get("ops") or {}
        if not isinstance(raw_ops, dict):
            raise ConfigError(f"degradation.ops must be a mapping of op -> settings, got {raw_ops!r}")
        for op in raw_ops:
            if op not in PRIMITIVES:
                raise ConfigError(f"degradation.ops.{op}: unknown op (choose from {_choices(PRIMITIVES)})")
        ops = {}
        for op in PRIMITIVES:
            given = raw_ops.get(op) or {}
            if not isinstance(given, dict):
                raise ConfigError(f"degradation.ops.{op} must be a mapping of settings, got {given!r}")
            ops[op] = _check_op_ranges(op, given)
        return cls(categories=categories, ops=ops)


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
# Categories
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


def sample_category_params(
    category: str, rng: np.random.Generator, height: int, width: int, preset: AllInOnePreset
) -> dict:
    """Every random draw of one degraded image of ``category``:
    ``{"category": name, "ops": [{"op": "blur", ...draws...}, ...]}``, JSON-serialisable."""
    if category not in preset.categories:
        raise ConfigError(
            f"unknown degradation category {category!r} (choose from {_choices(preset.categories)})"
        )
    ops = []
    for op in preset.categories[category]:
        ops.append({"op": op, **_SAMPLERS[op](rng, preset.ops[op], height, width)})
    return {"category": category, "ops": ops}


def render_category(image: np.ndarray, params: dict) -> np.ndarray:
    """Clean (H, W, 3) uint8 -> degraded (H, W, 3) uint8, the ops of ``params`` in order;
    deterministic given ``params`` (pixel sizes follow this image's short side)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    out = np.ascontiguousarray(image)
    for op_params in params["ops"]:
        out = np.ascontiguousarray(_RENDERERS[op_params["op"]](out, op_params))
    return out


def make_pair(
    image: np.ndarray, category: str, rng: np.random.Generator, preset: AllInOnePreset
) -> tuple[np.ndarray, dict]:
    """(degraded uint8 at the image's own size, params) for one clean (H, W, 3) uint8 image."""
    height, width = image.shape[:2]
    params = sample_category_params(category, rng, height, width, preset)
    return render_category(image, params), params


# ----------------------------------------------------------------------------------------------
# Severity measurement (the table of the module docstring)
# ----------------------------------------------------------------------------------------------
def input_psnr_table(
    folder: str | Path, size: int, draws: int = 3, seed: int = 0, preset: AllInOnePreset | None = None
) -> dict[str, float]:
    """Mean PSNR (RGB, dB) of degraded vs clean per category, over every image of ``folder``
    fitted to size x size, ``draws`` seeded draws per image and category."""
    from src.data.images import fit_to_output, list_sources, load_image
    from src.metrics.image import psnr
    from src.utils.seeding import stable_seed

    preset = preset or AllInOnePreset()
    sources, _ = list_sources(folder)
    images = {s.key: fit_to_output(load_image(s), size, size)[0] for s in sources}
    table = {}
    for category in preset.categories:
        values = []
        for key, clean in images.items():
            for draw in range(draws):
                rng = np.random.default_rng(stable_seed(seed, "allinone-psnr", category, key, draw))
                degraded, _ = make_pair(clean, category, rng, preset)
                values.append(psnr(degraded, clean))
        table[category] = float(np.mean(values))
    return table


def _main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        print("usage: python -m src.data.allinone FOLDER SIZE [DRAWS]", file=sys.stderr)
        raise SystemExit(2)
    folder, size = argv[0], int(argv[1])
    draws = int(argv[2]) if len(argv) == 3 else 3
    for category, value in input_psnr_table(folder, size, draws).items():
        print(f"{category:<14s}  {value:6.2f}")


if __name__ == "__main__":
    _main(sys.argv[1:])
