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

from src.data.allinone.ops import (
    HAZE_NEAREST_DEPTH,
    HAZE_NOISE_CELLS,
    RAINDROP_FEATHER,
    RAINDROP_RIM_AT,
    RAINDROP_RIM_WIDTH,
    RAINDROP_SHIFT,
    blur_kernel,
    haze_depth,
    lowlight_frame_params,
    rain_layer,
)
from src.data.allinone.pairs import input_psnr_table, make_pair, render_category, sample_category_params
from src.data.allinone.preset import DEFAULT_CATEGORIES, DEFAULT_OPS, PRIMITIVES, AllInOnePreset

__all__ = [
    "DEFAULT_CATEGORIES",
    "DEFAULT_OPS",
    "HAZE_NEAREST_DEPTH",
    "HAZE_NOISE_CELLS",
    "PRIMITIVES",
    "RAINDROP_FEATHER",
    "RAINDROP_RIM_AT",
    "RAINDROP_RIM_WIDTH",
    "RAINDROP_SHIFT",
    "AllInOnePreset",
    "blur_kernel",
    "haze_depth",
    "input_psnr_table",
    "lowlight_frame_params",
    "make_pair",
    "rain_layer",
    "render_category",
    "sample_category_params",
]
