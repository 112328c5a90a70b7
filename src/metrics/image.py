"""PSNR and SSIM of one image pair with explicit conventions (those of BasicSR's ``calculate_psnr`` /
``calculate_ssim``, the usual ones of restoration papers).

Inputs are numpy arrays (H, W, 3) RGB (or (H, W) grayscale), either ``uint8`` in [0, 255] or float in
[0, 1]. Every computation is in float64 on the [0, 255] scale:

1. Scaling: ``uint8`` is used as is. Floats are clipped to [0, 1] and multiplied by 255; with
   ``quantize=True`` (default) they are then rounded to integers (round half to even), i.e. the 8-bit
   image one would save, as BasicSR's ``tensor2img`` does before its metrics.
2. ``crop_border=N`` removes N pixels on each side (before the colour conversion, as BasicSR).
3. ``y_channel=True`` keeps only the ITU-R BT.601 luma of MATLAB's ``rgb2ycbcr`` (studio range):
   ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in [0, 255], so Y in [16, 235];
   not rounded (BasicSR's ``to_y_channel`` does not round either).
4. PSNR = 10 log10(255^2 / MSE), MSE over all pixels and channels; ``inf`` for identical images.
5. SSIM (Wang et al. 2004): 11x11 Gaussian window with sigma 1.5 (normalised to sum 1), population
   (co)variances, C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2; the SSIM map is only taken where the
   window fits inside the image ("valid" filtering, the map is (H - 10, W - 10)), averaged over the
   map, then over channels.

Within these conventions the values equal scikit-image's ``peak_signal_noise_ratio(data_range=255)``
and ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255, channel_axis=-1)`` on the same [0, 255] arrays (skimage filters the whole image and
then drops a 5-pixel border, which leaves exactly the valid region).
"""

from __future__ import annotations

import math

import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
DATA_RANGE = 255.0
# MATLAB rgb2ycbcr / BT.601 luma weights applied to [0, 1] RGB (output in [0, 255] units).
Y_WEIGHTS = np.array([65.481, 128.553, 24.966])
Y_OFFSET = 16.0


def to_255(img: np.ndarray, quantize: bool = True) -> np.ndarray:
    """An image as float64 on [0, 255] (convention 1 of the module docstring)."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"expected uint8 in [0, 255] or float in [0, 1], got dtype {img.dtype}")
    out = np.clip(img.astype(np.float64), 0.0, 1.0) * DATA_RANGE
    return np.round(out) if quantize else out


def rgb_to_y(img_255: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma (H, W) of an RGB image (H, W, 3) on [0, 255]; result in [16, 235]."""
    if img_255.ndim != 3 or img_255.shape[-1] != 3:
        raise ValueError(f"the Y channel needs an RGB image (H, W, 3), got shape {img_255.shape}")
    return Y_OFFSET + (img_255 / DATA_RANGE) @ Y_WEIGHTS


def _prepare(a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool, quantize: bool):
    """Both images as float64 (H, W, C) on [0, 255] after scaling, crop and optional luma."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or (H, W, C), got shape {a.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    a, b = to_255(a, quantize), to_255(b, quantize)
    if crop_border:
        if min(a.shape[:2]) <= 2 * crop_border:
            raise ValueError(f"crop_border={crop_border} leaves nothing of a {a.shape[:2]} image")
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    return a, b


def psnr(
    a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = False, quantize: bool = True
) -> float:
    """PSNR in dB with peak 255 (see the module docstring for the conventions); ``inf`` if identical."""
    a, b = _prepare(a, b, crop_border, y_channel, quantize)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def gaussian_window_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian taps (the 2-D window is their outer product, as cv2.getGaussianKernel)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    w = np.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _filter_valid(img_hw: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable correlation of (H, W) with ``taps`` along both axes, only where the window fits."""
    k = len(taps)
    h, w = img_hw.shape
    rows = sum(taps[i] * img_hw[i : h - k + 1 + i, :] for i in range(k))
    return sum(taps[i] * rows[:, i : w - k + 1 + i] for i in range(k))


def _ssim_channel(x: np.ndarray, y: np.ndarray, taps: np.ndarray) -> float:
    return float(_ssim_channel_map(x, y, taps).mean())


def _ssim_channel_map(x: np.ndarray, y: np.ndarray, taps: np.ndarray) -> np.ndarray:
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    mu_x, mu_y = _filter_valid(x, taps), _filter_valid(y, taps)
    var_x = _filter_valid(x * x, taps) - mu_x**2
    var_y = _filter_valid(y * y, taps) - mu_y**2
    cov = _filter_valid(x * y, taps) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(
    a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = False, quantize: bool = True
) -> float:
    """SSIM, per channel then averaged (see the module docstring); images need H, W >= 11 after crop."""
    a, b = _prepare(a, b, crop_border, y_channel, quantize)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {a.shape[:2]}")
    taps = gaussian_window_1d()
    return float(np.mean([_ssim_channel(a[..., c], b[..., c], taps) for c in range(a.shape[-1])]))


def ssim_map(a: np.ndarray, b: np.ndarray, y_channel: bool = False, quantize: bool = True) -> np.ndarray:
    """The SSIM map (H - 10, W - 10), averaged over channels: pixel (i, j) is the window centred
    on (i + 5, j + 5) of the input. ``ssim`` is its mean."""
    a, b = _prepare(a, b, 0, y_channel, quantize)
    taps = gaussian_window_1d()
    return np.mean([_ssim_channel_map(a[..., c], b[..., c], taps) for c in range(a.shape[-1])], axis=0)


def masked_psnr_ssim(
    a: np.ndarray, b: np.ndarray, mask_hw: np.ndarray, quantize: bool = True
) -> tuple[float, float]:
    """PSNR and SSIM weighted by a mask (H, W) in [0, 1] (ReLoBlur's local-blur regions): PSNR from
    the mask-weighted MSE over all channels; SSIM as the mask-weighted mean of the SSIM map, the
    mask cropped to the map's valid region. NaN when the mask is empty."""
    mask = np.asarray(mask_hw, np.float64)
    if mask.shape != np.asarray(a).shape[:2]:
        raise ValueError(f"mask shape {mask.shape} differs from the image's {np.asarray(a).shape[:2]}")
    total = mask.sum()
    if total <= 0:
        return math.nan, math.nan
    x, y = _prepare(a, b, 0, False, quantize)
    mse = float((((x - y) ** 2).mean(axis=-1) * mask).sum() / total)
    psnr_value = math.inf if mse == 0 else 10.0 * math.log10(DATA_RANGE**2 / mse)
    half = SSIM_WINDOW // 2
    inner = mask[half:-half, half:-half]
    if inner.sum() <= 0:
        return psnr_value, math.nan
    smap = ssim_map(a, b, quantize=quantize)
    return psnr_value, float((smap * inner).sum() / inner.sum())


def mean_colour_error(image: np.ndarray, reference: np.ndarray) -> float:
    """Largest per-channel difference of the mean colours of two (H, W, 3) images, in 8-bit
    levels (floats in [0, 1] are scaled by 255, not rounded): how far a trajectory's first
    frame drifts from the photo it starts from (a colour cast shows here, noise does not)."""
    a, b = to_255(image, quantize=False), to_255(reference, quantize=False)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    axes = tuple(range(a.ndim - 1)) if a.ndim == 3 else None
    return float(np.max(np.abs(a.mean(axis=axes) - b.mean(axis=axes))))


def conventions(crop_border: int = 0, y_channel: bool = False, quantize: bool = True) -> dict:
    """The conventions of ``psnr`` / ``ssim`` for a given call, as a JSON-able dict (for reports)."""
    return {
        "reference": "BasicSR calculate_psnr / calculate_ssim",
        "scale": "[0, 255]" + (", floats rounded to 8-bit" if quantize else ", floats not rounded"),
        "crop_border": crop_border,
        "channels": "Y (BT.601 studio range, 16..235)" if y_channel else "RGB",
        "psnr_peak": DATA_RANGE,
        "ssim": {
            "window": f"{SSIM_WINDOW}x{SSIM_WINDOW} gaussian",
            "sigma": SSIM_SIGMA,
            "K1": SSIM_K1,
            "K2": SSIM_K2,
            "filtering": "valid",
            "covariance": "population",
        },
    }
