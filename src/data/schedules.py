"""The degradation schedules of the three progression tasks, each a pair of pure functions (see
:mod:`src.data.degradations`, which dispatches to them):

* ``sample_<task>_params(rng, ranges, num_frames, height, width) -> dict``: every random draw of a
  clip, JSON-serialisable;
* ``render_<task>(image, params) -> frames``: deterministic given ``params``.

sr: Resolution Progression; deblur: Blur-to-Sharp; lowlight: Low-Light Progression.
"""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
from PIL import Image
from scipy.special import ndtri

from src.data.degradation_presets import DeblurRanges, LowlightRanges, SrRanges, linear_strengths, size_factor


# ----------------------------------------------------------------------------------------------
# sr: Resolution Progression
# ----------------------------------------------------------------------------------------------
def jpeg_quality_for_scale(scale: float, ranges: SrRanges) -> int | None:
    """JPEG quality applied to the low-resolution frame at scale s (None = no JPEG)."""
    if not ranges.jpeg or scale >= 1.0:
        return None
    q = ranges.jpeg_quality_at_zero + (ranges.jpeg_quality_at_one - ranges.jpeg_quality_at_zero) * scale
    return int(np.clip(round(q), 1, 100))


def sample_sr_params(
    rng: np.random.Generator, ranges: SrRanges, num_frames: int, height: int, width: int
) -> dict:
    scale_min = float(rng.uniform(*ranges.scale_min))
    # s_t rises linearly from s_1 to s_T = 1 (the same as 1 - strength * (1 - s_1)).
    scales = [float(1.0 - st * (1.0 - scale_min)) for st in linear_strengths(num_frames)]
    scales[-1] = 1.0
    return {
        "scale_min": scale_min,
        "scales": scales,
        "jpeg_quality": [jpeg_quality_for_scale(s, ranges) for s in scales],
        "low_res_sizes": [_scaled_size(height, width, s) for s in scales],
    }


def _scaled_size(height: int, width: int, scale: float) -> list[int]:
    return [max(1, round(height * scale)), max(1, round(width * scale))]


def _jpeg_roundtrip(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def render_sr(image: np.ndarray, params: dict) -> np.ndarray:
    """I_t = Resize(JPEG_q(Resize(I, s_t)), 1/s_t): bicubic down with antialiasing (PIL, like
    MATLAB's imresize, so small scales do not alias), JPEG on the small frame, bicubic back up."""
    height, width = image.shape[:2]
    clean = Image.fromarray(image)
    frames = []
    for scale, quality, (low_h, low_w) in zip(
        params["scales"], params["jpeg_quality"], params["low_res_sizes"], strict=True
    ):
        if scale >= 1.0:
            frames.append(image.copy())
            continue
        small = clean.resize((low_w, low_h), Image.Resampling.BICUBIC)
        if quality is not None:
            small = _jpeg_roundtrip(small, quality)
        # Upsampling needs no antialiasing; OpenCV's bicubic is ~10x faster than PIL's here.
        frames.append(cv2.resize(np.asarray(small), (width, height), interpolation=cv2.INTER_CUBIC))
    return np.stack(frames)


# ----------------------------------------------------------------------------------------------
# deblur: Blur-to-Sharp
# ----------------------------------------------------------------------------------------------
def sample_deblur_params(
    rng: np.random.Generator, ranges: DeblurRanges, num_frames: int, height: int, width: int
) -> dict:
    angle = float(rng.uniform(*ranges.angle_deg)) % 360.0
    kernel_max_reference = float(rng.uniform(*ranges.kernel_max_px))
    kernel_max = kernel_max_reference * size_factor(height, width)
    lengths = [float(kernel_max * st) for st in linear_strengths(num_frames)]  # k_t = k_max(1-(t-1)/8)
    return {
        "angle_deg": angle,
        "kernel_max_px_at_1360x768": kernel_max_reference,
        "kernel_max_px": kernel_max,
        "kernel_lengths_px": lengths,
    }


def motion_kernel(length: float, angle_deg: float, oversample: int = 4) -> np.ndarray:
    """Normalised, anti-aliased linear motion kernel (K, K) float64, K odd, centred.

    The segment of length ``length`` through the kernel centre is sampled ``oversample`` times
    per pixel and each sample is splatted bilinearly, so fractional lengths and any angle give a
    smooth kernel; the kernel is point-symmetric, so blurring does not shift the image.
    """
    if length <= 1e-6:
        return np.ones((1, 1))
    radius = int(math.ceil(length / 2.0)) + 1
    size = 2 * radius + 1
    n_samples = max(2, int(math.ceil(length * oversample)) + 1)
    offsets = np.linspace(-length / 2.0, length / 2.0, n_samples)
    theta = math.radians(angle_deg)
    xs = radius + offsets * math.cos(theta)
    ys = radius - offsets * math.sin(theta)  # image rows grow downwards
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    kernel = np.zeros((size, size))
    for dy, dx, weight in (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(kernel, (y0 + dy, x0 + dx), weight)
    return kernel / kernel.sum()


def _wrapped_kernel(kernel: np.ndarray, fft_h: int, fft_w: int) -> np.ndarray:
    """(fft_h, fft_w) float32 with the kernel centre at (0, 0), wrapped around the edges, so a
    circular convolution with it does not shift the image."""
    radius = kernel.shape[0] // 2
    offsets = np.arange(-radius, radius + 1)
    full = np.zeros((fft_h, fft_w), np.float32)
    full[np.ix_(offsets % fft_h, offsets % fft_w)] = kernel
    return full


def render_deblur(image: np.ndarray, params: dict) -> np.ndarray:
    """I_t = MotionBlur(I, k_t, angle), by FFT convolution on a reflect-padded frame.

    A 200-px kernel by direct convolution costs ~40k multiply-adds per pixel; instead each colour
    plane of the padded image is transformed once per clip (OpenCV's packed real DFT, ~2x faster
    than scipy's here) and each frame costs one kernel DFT and one inverse DFT per plane.
    Reflect padding (not zeros) keeps the borders from darkening.
    """
    lengths = params["kernel_lengths_px"]
    height, width = image.shape[:2]
    # Pad each axis by the streak's extent along it (+1 for the bilinear footprint): a near-
    # horizontal streak needs almost no rows of padding, which shrinks every transform.
    theta = math.radians(params["angle_deg"])
    half = max(lengths) / 2.0
    pad_y = int(math.ceil(half * abs(math.sin(theta)))) + 1
    pad_x = int(math.ceil(half * abs(math.cos(theta)))) + 1
    fft_h = cv2.getOptimalDFTSize(height + 2 * pad_y)
    fft_w = cv2.getOptimalDFTSize(width + 2 * pad_x)
    padded = cv2.copyMakeBorder(image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REFLECT_101)
    plane_spectra = []
    for channel in range(3):
        plane = np.zeros((fft_h, fft_w), np.float32)
        plane[: padded.shape[0], : padded.shape[1]] = padded[..., channel]
        plane_spectra.append(cv2.dft(plane))  # CCS-packed spectrum of a real plane
    frames = []
    for length in lengths:
        if length <= 1e-6:
            frames.append(image.copy())
            continue
        kernel_spectrum = cv2.dft(_wrapped_kernel(motion_kernel(length, params["angle_deg"]), fft_h, fft_w))
        planes = []
        for spectrum in plane_spectra:
            blurred = cv2.idft(
                cv2.mulSpectrums(spectrum, kernel_spectrum, 0), flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE
            )
            # Round-to-nearest with saturation; abs only touches FFT round-off (|x| < 1e-3).
            planes.append(cv2.convertScaleAbs(blurred[pad_y : pad_y + height, pad_x : pad_x + width]))
        frame = cv2.merge(planes)
        frames.append(frame)
    return np.stack(frames)


# ----------------------------------------------------------------------------------------------
# lowlight: Low-Light Progression
# ----------------------------------------------------------------------------------------------
def sample_lowlight_params(
    rng: np.random.Generator, ranges: LowlightRanges, num_frames: int, height: int, width: int
) -> dict:
    return {
        "strengths": [float(s) for s in linear_strengths(num_frames)],  # s_t = 1 - (t-1)/8
        "exposure_stops": float(rng.uniform(*ranges.exposure_stops)),
        "wb_gains_red_blue": [float(1.0 + rng.uniform(-1, 1) * ranges.wb_drift) for _ in range(2)],
        "noise": float(rng.uniform(*ranges.noise)),
        "blur_sigma_px": float(rng.uniform(*ranges.blur_sigma_px) * size_factor(height, width)),
        "signal_dependent": bool(ranges.signal_dependent),
        "shot_factor": float(ranges.shot_factor),
        # The clip's noise field and each frame's window offset derive from this seed alone.
        "noise_seed": int(rng.integers(0, 2**63 - 1)),
    }


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def _lowlight_tone_lut(strength: float, params: dict) -> np.ndarray:
    """(256, 3) float32: the exposure roll-off and white-balance drift of one frame as a lookup
    table from the clean uint8 value to the darkened sRGB value in [0, 255].

    Both act per channel in linear light, so each output channel is a function of the same input
    channel alone: a 256-entry table is exact and ~16x faster than converting every pixel (1360x768).
    """
    red_gain, blue_gain = params["wb_gains_red_blue"]
    gain = 2.0 ** (-params["exposure_stops"] * strength)
    channel_gains = np.array([1.0 + (red_gain - 1.0) * strength, 1.0, 1.0 + (blue_gain - 1.0) * strength])
    levels_linear = srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0)
    return (255.0 * linear_to_srgb(levels_linear[:, None] * gain * channel_gains[None, :])).astype(np.float32)


# Inverse-CDF table of the standard normal at 2**16 evenly spaced quantiles: indexing it with
# random uint16 draws gives Gaussian noise (tails cut at +-4.2 sigma, variance 0.9997) about 2.5x
# faster than Generator.standard_normal, which dominated the low-light clip's cost.
_GAUSSIAN_TABLE = ndtri((np.arange(2**16, dtype=np.float64) + 0.5) / 2**16).astype(np.float32)


def gaussian_noise(seed: list[int], shape: tuple[int, ...]) -> np.ndarray:
    """Standard-normal float32 field, a pure function of ``seed`` and ``shape``."""
    count = int(np.prod(shape))
    indices = np.frombuffer(np.random.default_rng(seed).bytes(2 * count), dtype="<u2")
    return _GAUSSIAN_TABLE[indices].reshape(shape)


NOISE_MARGIN = 32  # the clip's noise field is this much larger than a frame on each axis


def lowlight_noise_windows(params: dict, num_frames: int) -> list[tuple[int, int]]:
    """Distinct (row, col) offsets of each frame's window into the clip's noise field."""
    rng = np.random.default_rng([params["noise_seed"], 1])
    flat = rng.choice(NOISE_MARGIN * NOISE_MARGIN, size=num_frames, replace=False)
    return [(int(i) // NOISE_MARGIN, int(i) % NOISE_MARGIN) for i in flat]


def render_lowlight_frame(image: np.ndarray, strength: float, params: dict, noise: np.ndarray) -> np.ndarray:
    """L(I, s_t, n_t) for one frame of the clean (H, W, 3) uint8 image; ``noise`` is an (H, W, 3)
    standard-normal field.

    Order follows a camera: exposure roll-off and white-balance drift in linear light, sRGB
    encoding, a mild optical blur, then sensor noise in display units (so n is the noise std of
    the stored frame, as in the paper's n_t in [0.02, 0.08]).
    """
    lut = _lowlight_tone_lut(strength, params)  # (256, 3)
    frame = cv2.LUT(image, np.ascontiguousarray(lut.reshape(256, 1, 3)))  # (H, W, 3) float32 in [0, 255]
    sigma_blur = params["blur_sigma_px"] * strength
    if sigma_blur > 0.05:
        frame = cv2.GaussianBlur(frame, (0, 0), sigmaX=sigma_blur, borderType=cv2.BORDER_REFLECT_101)
    sigma_noise = params["noise"] * strength  # in [0, 1] units
    if params["signal_dependent"]:
        signal = np.clip(frame, 0.0, 255.0) / np.float32(255.0)
        std = np.sqrt(sigma_noise**2 + params["shot_factor"] * sigma_noise * signal)
        frame += noise * (std * np.float32(255.0))
    else:
        frame += noise * np.float32(255.0 * sigma_noise)
    # Clamp negatives, then round-to-nearest with saturation at 255 (abs is a no-op after max).
    return cv2.convertScaleAbs(cv2.max(frame, 0.0))


def render_lowlight(image: np.ndarray, params: dict) -> np.ndarray:
    """Each frame's noise is a window, at its own distinct offset, of one white Gaussian field per
    clip: every frame gets i.i.d. N(0, 1) samples and different frames' noise is uncorrelated,
    at the cost of one field instead of one per frame (the field was most of this task's time)."""
    height, width = image.shape[:2]
    strengths = params["strengths"]
    field = gaussian_noise([params["noise_seed"], 0], (height + NOISE_MARGIN, width + NOISE_MARGIN, 3))
    windows = lowlight_noise_windows(params, len(strengths))
    frames = []
    for strength, (row, col) in zip(strengths, windows, strict=True):
        if strength <= 0.0:
            frames.append(image.copy())
        else:
            noise = field[row : row + height, col : col + width]
            frames.append(render_lowlight_frame(image, strength, params, noise))
    return np.stack(frames)
