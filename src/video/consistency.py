"""Flicker-reducing post-processing of frame-by-frame restored videos: colour correction and a
flow-guided temporal blend.

Restoring each video frame independently (an image-to-video model run once per frame) makes the
colours and the fine texture of consecutive outputs disagree: the video flickers. Two streaming
operators, numpy/OpenCV only, RGB ``uint8`` (H, W, 3) in and out, one frame at a time in display
order, with O(1) frames of state (``reset()`` between videos):

- ``ColorCorrector``: per-frame colour fix towards a reference, ``"adain"`` (channel mean/std,
  ``adain_color``) or ``"wavelet"`` (low-frequency residual, ``wavelet_color``), the reference being
  the frame's own input (``reference="input"``) or a running average of the restored outputs
  (``reference="running"``);
- ``TemporalBlender``: recursive blend of each output with the previous blended output warped to it
  along the optical flow (``src.metrics.temporal.optical_flow``), only where the flow is trusted.

Measure the effect with ``src.metrics.temporal`` (warping error against the ground truth's
``reference_flows``, flicker) next to PSNR: both operators trade fidelity for consistency.
"""

from __future__ import annotations

import cv2
import numpy as np

from src.metrics.temporal import FLOW_METHODS, backward_warp, non_occlusion_mask, optical_flow

COLOR_MODES = ("none", "adain", "wavelet")
COLOR_REFERENCES = ("input", "running")

# Added to the variance (in [0, 1] units, as SeedVR/StableSR's ``calc_mean_std``: 1e-5) so a flat
# channel does not divide by zero; in [0, 255] units that is 1e-5 * 255^2.
ADAIN_EPS = 1e-5 * 255.0**2


def _check_rgb_u8(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{name}: expected an RGB image (H, W, 3), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name}: expected uint8, got dtype {image.dtype}")
    return image


def _to_u8(image_f: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image_f), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- adain


def _channel_stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, std) (3,) float64 on [0, 255]; std is the population one plus ``ADAIN_EPS``."""
    flat = image.reshape(-1, image.shape[-1]).astype(np.float64)
    return flat.mean(axis=0), np.sqrt(flat.var(axis=0) + ADAIN_EPS)


def _adain_to_stats(image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    own_mean, own_std = _channel_stats(image)
    out = (image.astype(np.float64) - own_mean) * (std / own_std) + mean
    return _to_u8(out)


def adain_color(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image`` with each channel's mean and standard deviation matched to ``reference``'s.

    The "adain" colour fix of StableSR / SeedVR: ``(x - mu_x) / sigma_x * sigma_r + mu_r`` per RGB
    channel, statistics over all pixels (``reference`` may have any size). uint8 (H, W, 3) in and out
    (clipped and rounded, so channels that clip lose a little of the matched statistics).
    """
    image = _check_rgb_u8(image, "image")
    reference = _check_rgb_u8(reference, "reference")
    return _adain_to_stats(image, *_channel_stats(reference))


# -------------------------------------------------------------------------------------------- wavelet


def _wavelet_blur(image_f: np.ndarray, radius: int) -> np.ndarray:
    """StableSR's ``wavelet_blur``: the 3x3 kernel [[1, 2, 1], [2, 4, 2], [1, 2, 1]] / 16 dilated by
    ``radius`` (taps at -radius, 0, +radius), replicated border. Separable: [1/4, 1/2, 1/4] per axis."""
    kernel = np.zeros(2 * radius + 1, dtype=np.float32)
    kernel[0], kernel[radius], kernel[-1] = 0.25, 0.5, 0.25
    return cv2.sepFilter2D(image_f, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REPLICATE)


def wavelet_low(image: np.ndarray, levels: int = 5) -> np.ndarray:
    """Low-frequency residual (H, W, 3) float32 on [0, 255] of the "a trous" decomposition:
    ``levels`` successive ``_wavelet_blur`` with radius 1, 2, 4, ... (StableSR's
    ``wavelet_decomposition``). The high-frequency part is ``image - wavelet_low(image)``: the sum of
    the band differences telescopes."""
    if int(levels) != levels or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels}")
    low = np.ascontiguousarray(image, dtype=np.float32)
    for i in range(int(levels)):
        low = _wavelet_blur(low, 2**i)
    return low


def _resize_to(reference: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    if reference.shape[:2] == (h, w):
        return reference
    shrink = reference.shape[0] * reference.shape[1] > h * w
    return cv2.resize(reference, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def wavelet_color(image: np.ndarray, reference: np.ndarray, levels: int = 5) -> np.ndarray:
    """StableSR's wavelet colour fix: high-frequency bands of ``image`` + low-frequency residual of
    ``reference`` (``wavelet_low``, ``levels`` bands), float32 math.

    ``reference`` is resized to ``image``'s size first (``cv2.INTER_AREA`` when shrinking,
    ``cv2.INTER_CUBIC`` when enlarging, e.g. a low-resolution input for super-resolution).
    uint8 (H, W, 3) in and out (clipped and rounded).
    """
    image = _check_rgb_u8(image, "image")
    reference = _resize_to(_check_rgb_u8(reference, "reference"), image.shape)
    image_f = image.astype(np.float32)
    return _to_u8(image_f - wavelet_low(image_f, levels) + wavelet_low(reference, levels))


# ----------------------------------------------------------------------------------- ColorCorrector


class ColorCorrector:
    """Streaming colour correction of restored frames, one frame at a time, in order.

    ``mode``: one of ``COLOR_MODES`` (``"none"`` returns the output frame unchanged).
    ``reference``: one of ``COLOR_REFERENCES``:

    - ``"input"``: each output frame is corrected towards its own input (degraded) frame. Right when
      the input has the target colours (super-resolution, deblurring, denoising); wrong for low-light
      enhancement (the input is dark) and other colour-changing tasks.
    - ``"running"``: towards a temporal running reference of the restored frames (the input frame is
      not used). With ``s_t`` the statistic of restored output t before correction (``"adain"``: the
      per-channel mean and std; ``"wavelet"``: the low-frequency residual image) the reference is the
      EMA ``r_1 = s_1``, ``r_t = momentum * r_{t-1} + (1 - momentum) * s_t``, so frame 1 is returned
      unchanged and the colours then follow slow changes of the restored video but not per-frame
      jitter. The EMA is of the uncorrected outputs: an EMA of the corrected ones would stay at frame
      1's colours forever. The wavelet EMA is not motion-compensated (its low-pass is ~30 px wide at
      5 levels), so it lags behind fast motion of large coloured regions.

    State: one (3,) mean/std pair (adain) or one (H, W, 3) float32 image (wavelet); ``reset()``
    between videos.
    """

    def __init__(self, mode: str = "none", reference: str = "input", momentum: float = 0.9, levels: int = 5):
        if mode not in COLOR_MODES:
            raise ValueError(f"unknown colour mode {mode!r}; choose one of {COLOR_MODES}")
        if reference not in COLOR_REFERENCES:
            raise ValueError(f"unknown colour reference {reference!r}; choose one of {COLOR_REFERENCES}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if int(levels) != levels or levels < 1:
            raise ValueError(f"levels must be a positive integer, got {levels}")
        self.mode = mode
        self.reference = reference
        self.momentum = float(momentum)
        self.levels = int(levels)
        self._state: tuple[np.ndarray, np.ndarray] | np.ndarray | None = None

    def reset(self) -> None:
        self._state = None

    def __call__(self, output_frame: np.ndarray, input_frame: np.ndarray | None = None) -> np.ndarray:
        output_frame = _check_rgb_u8(output_frame, "output_frame")
        if self.mode == "none":
            return output_frame
        if self.reference == "input":
            if input_frame is None:
                raise ValueError('ColorCorrector(reference="input") needs the input frame')
            if self.mode == "adain":
                return adain_color(output_frame, input_frame)
            return wavelet_color(output_frame, input_frame, self.levels)
        m = self.momentum
        if self.mode == "adain":
            mean, std = _channel_stats(output_frame)
            if self._state is None:
                self._state = (mean, std)
                return output_frame.copy()
            ref_mean, ref_std = self._state
            self._state = (m * ref_mean + (1 - m) * mean, m * ref_std + (1 - m) * std)
            return _adain_to_stats(output_frame, *self._state)
        image_f = output_frame.astype(np.float32)
        low = wavelet_low(image_f, self.levels)
        if self._state is None:
            self._state = low
            return output_frame.copy()
        if self._state.shape != low.shape:
            raise ValueError(
                f"frame size changed from {self._state.shape[:2]} to {low.shape[:2]}: reset() between videos"
            )
        self._state = m * self._state + (1 - m) * low
        return _to_u8(image_f - low + self._state)


# ---------------------------------------------------------------------------------- TemporalBlender


class TemporalBlender:
    """Flow-guided recursive blend of consecutive restored frames, one frame at a time, in order.

    With ``P`` the previous *blended* output (uint8, as returned) and ``cur`` the current frame:
    flows ``cur -> P`` and ``P -> cur`` (``optical_flow``, ``method``), ``P`` backward-warped onto
    ``cur``, ``M`` the non-occlusion mask of ``cur`` (``non_occlusion_mask``: forward-backward check,
    motion boundaries, matches outside the frame), and

        out = (1 - s M) cur + s M warp(P),   s = ``strength``.

    Occluded/disoccluded pixels keep the current frame; the first frame (and every frame at
    ``strength=0``, where no flow is computed) is returned unchanged. Being recursive, a static
    region becomes an exponential average of all past frames (weight ``s`` on the past); each warp
    is bilinear, so under sub-pixel motion the carried past is slightly blurred every frame (a larger
    ``s`` smooths more texture). Two flows per frame: cost as ``optical_flow``'s ``method``.

    State: the previous output frame; ``reset()`` between videos.
    """

    def __init__(self, strength: float = 0.0, method: str = "dis"):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown optical flow method {method!r}; choose one of {FLOW_METHODS}")
        self.strength = float(strength)
        self.method = method
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        frame = _check_rgb_u8(frame, "frame")
        if self.strength == 0.0:
            return frame
        prev = self._prev
        if prev is None:
            self._prev = frame.copy()
            return frame
        if prev.shape != frame.shape:
            raise ValueError(
                f"frame size changed from {prev.shape[:2]} to {frame.shape[:2]}: reset() between videos"
            )
        fw = optical_flow(frame, prev, method=self.method)
        bw = optical_flow(prev, frame, method=self.method)
        weight = self.strength * non_occlusion_mask(fw, bw).astype(np.float32)[..., None]
        cur = frame.astype(np.float32)
        warped = backward_warp(prev.astype(np.float32), fw)
        out = _to_u8(cur + weight * (warped - cur))
        self._prev = out
        return out
