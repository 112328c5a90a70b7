"""Temporal consistency of a trajectory of frames (F, H, W, 3): warping error and flicker.

Frames are RGB, ``uint8`` in [0, 255] (float frames in [0, 1] are accepted too).

Optical flow: OpenCV's DIS (``cv2.DISOpticalFlow``, preset MEDIUM) on the BT.601 grayscale
(``cv2.COLOR_RGB2GRAY``) 8-bit frames. It is deterministic (same frames, same flow) and needs no
weights; Lai et al. used FlowNet2, so absolute values are comparable between runs of this module,
not with the numbers of their paper.
"""

from __future__ import annotations

import cv2
import numpy as np

# Forward-backward consistency (Ruder et al. 2016, as in Lai et al. 2018's released code).
FB_ALPHA = 0.01
FB_BETA = 0.5
# Motion-boundary criterion of the same code: |grad flow|^2 > 0.01 |flow|^2 + 0.002.
MB_ALPHA = 0.01
MB_BETA = 0.002


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames (F, H, W, 3), got shape {frames.shape}")
    if frames.shape[0] < 2:
        raise ValueError(f"need at least 2 frames, got {frames.shape[0]}")
    return frames


def _as_uint8(frames: np.ndarray) -> np.ndarray:
    if frames.dtype == np.uint8:
        return frames
    if not np.issubdtype(frames.dtype, np.floating):
        raise TypeError(f"expected uint8 in [0, 255] or float in [0, 1] frames, got dtype {frames.dtype}")
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


def _as_unit_float(frames: np.ndarray) -> np.ndarray:
    """Frames as float32 on [0, 1]."""
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255.0
    return np.clip(frames.astype(np.float32), 0.0, 1.0)


def optical_flow(src_hw3: np.ndarray, dst_hw3: np.ndarray) -> np.ndarray:
    """DIS flow (H, W, 2) in pixels, (dx, dy), such that ``src(p) ~ dst(p + flow(p))``. uint8 RGB inputs."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    src = cv2.cvtColor(np.ascontiguousarray(src_hw3), cv2.COLOR_RGB2GRAY)
    dst = cv2.cvtColor(np.ascontiguousarray(dst_hw3), cv2.COLOR_RGB2GRAY)
    return dis.calc(src, dst, None)


def backward_warp(img: np.ndarray, flow_hw2: np.ndarray) -> np.ndarray:
    """``out(p) = img(p + flow(p))``, bilinear, coordinates clamped at the border. img (H, W[, C]) float."""
    h, w = flow_hw2.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = grid_x + flow_hw2[..., 0].astype(np.float32)
    map_y = grid_y + flow_hw2[..., 1].astype(np.float32)
    return cv2.remap(
        np.ascontiguousarray(img, dtype=np.float32),
        map_x,
        map_y,
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _sq_norm(flow_hw2: np.ndarray) -> np.ndarray:
    return flow_hw2[..., 0] ** 2 + flow_hw2[..., 1] ** 2


def non_occlusion_mask(fw_hw2: np.ndarray, bw_hw2: np.ndarray, motion_boundaries: bool = True) -> np.ndarray:
    """Pixels of frame t (H, W) bool whose forward flow t -> t+1 is trusted.

    ``fw``: flow t -> t+1 and ``bw``: flow t+1 -> t. A pixel is dropped if
    (1) forward-backward inconsistent: ``|fw + bw(p + fw)|^2 > 0.01 (|fw|^2 + |bw(p + fw)|^2) + 0.5``;
    (2) on a motion boundary (``motion_boundaries``): ``|d fw_x|^2 + |d fw_y|^2 > 0.01 |fw|^2 + 0.002``
    with forward differences along x and y (zero on the last row/column), as Lai et al.'s code;
    (3) its match ``p + fw`` falls outside frame t+1 (nothing to compare it with).
    """
    h, w = fw_hw2.shape[:2]
    bw_warped = backward_warp(bw_hw2, fw_hw2)
    inconsistent = (
        _sq_norm(fw_hw2 + bw_warped) > FB_ALPHA * (_sq_norm(fw_hw2) + _sq_norm(bw_warped)) + FB_BETA
    )
    occluded = inconsistent
    if motion_boundaries:
        grad = np.zeros((h, w), dtype=np.float64)
        for c in range(2):
            d_x = np.zeros((h, w))
            d_y = np.zeros((h, w))
            d_x[:, :-1] = fw_hw2[:, :-1, c] - fw_hw2[:, 1:, c]
            d_y[:-1, :] = fw_hw2[:-1, :, c] - fw_hw2[1:, :, c]
            grad += d_x**2 + d_y**2
        occluded = occluded | (grad > MB_ALPHA * _sq_norm(fw_hw2) + MB_BETA)
    grid_x, grid_y = np.meshgrid(np.arange(w), np.arange(h))
    tx, ty = grid_x + fw_hw2[..., 0], grid_y + fw_hw2[..., 1]
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    return ~(occluded | outside)


def warping_error(frames: np.ndarray, motion_boundaries: bool = True) -> tuple[float, list[float]]:
    """Warping error of Lai et al. 2018 ("Learning Blind Video Temporal Consistency"), (mean, per pair).

    For each consecutive pair (t, t+1): frame t+1 is backward-warped to frame t with the DIS flow
    t -> t+1, and with M the non-occlusion mask of frame t (``non_occlusion_mask``)

        E_t = sum_p M(p) ||V_t(p) - warp(V_{t+1})(p)||_2^2 / sum_p M(p),

    with RGB values on [0, 1] and the squared norm summed over the 3 channels (the paper's formula;
    Lai et al.'s released script divides by the mask summed over channels too, i.e. its values are
    this one / 3). If no pixel is trusted, all pixels are used (as their script). The result is the
    mean of E_t over the F - 1 pairs; identical frames give 0.
    """
    frames = _check_frames(frames)
    frames_u8 = _as_uint8(frames)
    frames_f = _as_unit_float(frames)
    per_pair = []
    for t in range(frames.shape[0] - 1):
        fw = optical_flow(frames_u8[t], frames_u8[t + 1])
        bw = optical_flow(frames_u8[t + 1], frames_u8[t])
        mask = non_occlusion_mask(fw, bw, motion_boundaries=motion_boundaries)
        warped = backward_warp(frames_f[t + 1], fw)
        sq = np.sum((frames_f[t].astype(np.float64) - warped) ** 2, axis=-1)
        if not mask.any():
            mask = np.ones_like(mask)
        per_pair.append(float(sq[mask].sum() / mask.sum()))
    return float(np.mean(per_pair)), per_pair


def flicker(frames: np.ndarray, sigma: float = 3.0) -> tuple[float, list[float]]:
    """Low-frequency flicker, (mean, per pair), in 8-bit grey levels ([0, 255] scale).

    For each consecutive pair: the mean over pixels and channels of ``|G_sigma * (V_{t+1} - V_t)|``,
    where ``G_sigma`` is a Gaussian low-pass (``cv2.GaussianBlur``, sigma in pixels, reflected border).
    The low-pass keeps brightness/colour changes and discounts fine texture and noise (which a
    restoration trajectory is expected to change); motion also counts, so compare trajectories of the
    same content. Identical frames give 0; a uniform brightness step of d grey levels gives d.
    """
    frames = _check_frames(frames)
    frames_255 = _as_unit_float(frames).astype(np.float32) * 255.0
    per_pair = []
    for t in range(frames.shape[0] - 1):
        diff = frames_255[t + 1] - frames_255[t]
        low = cv2.GaussianBlur(diff, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
        per_pair.append(float(np.mean(np.abs(low))))
    return float(np.mean(per_pair)), per_pair
