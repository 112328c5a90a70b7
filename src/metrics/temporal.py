"""Temporal consistency of a trajectory of frames (F, H, W, 3): warping error and flicker.

Frames are RGB, ``uint8`` in [0, 255] (float frames in [0, 1] are accepted too).

Optical flow (``optical_flow``, ``FLOW_METHODS``), on the BT.601 grayscale (``cv2.COLOR_RGB2GRAY``)
8-bit frames, all deterministic (same frames, same flow) and weight-free:

- ``"dis"`` (default): OpenCV's DIS (``cv2.DISOpticalFlow``, preset MEDIUM);
- ``"farneback"``: OpenCV's Farneback polynomial-expansion flow (``FARNEBACK_PARAMS``);
- ``"tvl1"``: scikit-image's TV-L1 (``skimage.registration.optical_flow_tvl1``, default parameters,
  on [0, 1] float32 grey). The most accurate of the three and by far the slowest.

Warping errors are comparable only within one flow method (the flow decides both the warp and the
trusted-pixel mask): record the method with every number. Lai et al. used FlowNet2, so absolute
values are comparable between runs of this module, not with the numbers of their paper.

Reference flow. Scoring a restored video with its own flow rewards a video whose flow happens to
explain its flicker (and a blurry video gets a smooth, trusting flow). As Lai et al. 2018 and the
zero-shot video restoration paper (arXiv 2407.01960) do, compute the flow and the non-occlusion mask
once on the ground-truth video (``reference_flows``) and pass them to ``warping_error(..., flows=)``
for every restored version of it: all versions are then warped along the same true motion.
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


FLOW_METHODS = ("dis", "farneback", "tvl1")

# ``cv2.calcOpticalFlowFarneback`` parameters: pyramid of 5 levels (each half the size of the one
# below), 15x15 averaging window, 3 iterations per level, polynomial expansion over a 5x5
# neighbourhood with a Gaussian of sigma 1.1 (OpenCV's recommended pair for poly_n=5), no flags
# (box window, zero initial flow).
FARNEBACK_PARAMS = {
    "pyr_scale": 0.5,
    "levels": 5,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.1,
    "flags": 0,
}


def _check_method(method: str) -> None:
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown optical flow method {method!r}; choose one of {FLOW_METHODS}")


def _grey_u8(frame_hw3: np.ndarray) -> np.ndarray:
    frame = _as_uint8(np.asarray(frame_hw3))
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"expected an RGB frame (H, W, 3), got shape {frame.shape}")
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def optical_flow(src_hw3: np.ndarray, dst_hw3: np.ndarray, method: str = "dis") -> np.ndarray:
    """Flow (H, W, 2) float32 in pixels, (dx, dy), such that ``src(p) ~ dst(p + flow(p))``.

    RGB frames, uint8 (float in [0, 1] accepted); ``method`` one of ``FLOW_METHODS`` (module docstring).
    """
    _check_method(method)
    src, dst = _grey_u8(src_hw3), _grey_u8(dst_hw3)
    if src.shape != dst.shape:
        raise ValueError(f"frames differ in size: {src.shape} vs {dst.shape}")
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(src, dst, None)
    if method == "farneback":
        # OpenCV's convention: prev(y, x) ~ next(y + flow[..., 1], x + flow[..., 0]), i.e. this one.
        return cv2.calcOpticalFlowFarneback(src, dst, None, **FARNEBACK_PARAMS)
    from skimage.registration import optical_flow_tvl1

    # scikit-image returns (v, u) = (dy, dx), stacked on the first axis, with
    # reference(r, c) ~ moving(r + v, c + u): reference = src, moving = dst gives this convention.
    v, u = optical_flow_tvl1(src.astype(np.float32) / 255.0, dst.astype(np.float32) / 255.0)
    return np.ascontiguousarray(np.stack([u, v], axis=-1), dtype=np.float32)


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


def reference_flows(
    reference_frames: np.ndarray, method: str = "dis", motion_boundaries: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per consecutive pair (t, t+1) of the reference (ground-truth) video: (forward flow t -> t+1
    (H, W, 2) float32, non-occlusion mask of frame t (H, W) bool, ``non_occlusion_mask``).

    Compute once per ground-truth clip and pass to ``warping_error(..., flows=)`` for every restored
    version of it (F - 1 entries for F frames).
    """
    _check_method(method)
    frames_u8 = _as_uint8(_check_frames(reference_frames))
    out = []
    for t in range(frames_u8.shape[0] - 1):
        fw = optical_flow(frames_u8[t], frames_u8[t + 1], method=method)
        bw = optical_flow(frames_u8[t + 1], frames_u8[t], method=method)
        out.append((fw, non_occlusion_mask(fw, bw, motion_boundaries=motion_boundaries)))
    return out


def _check_flows(flows, frames: np.ndarray) -> None:
    n, h, w = frames.shape[0] - 1, frames.shape[1], frames.shape[2]
    if len(flows) != n:
        raise ValueError(f"flows: need {n} (flow, mask) pairs for {n + 1} frames, got {len(flows)}")
    for t, pair in enumerate(flows):
        if len(pair) != 2:
            raise ValueError(f"flows[{t}]: expected a (flow, mask) pair")
        fw, mask = np.asarray(pair[0]), np.asarray(pair[1])
        if fw.shape != (h, w, 2) or mask.shape != (h, w):
            raise ValueError(
                f"flows[{t}]: flow {fw.shape} / mask {mask.shape} do not match frames of size {(h, w)}"
                f" (expected flow {(h, w, 2)} and mask {(h, w)})"
            )


def warping_error(
    frames: np.ndarray,
    motion_boundaries: bool = True,
    method: str = "dis",
    flows: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[float, list[float]]:
    """Warping error of Lai et al. 2018 ("Learning Blind Video Temporal Consistency"), (mean, per pair).

    For each consecutive pair (t, t+1): frame t+1 is backward-warped to frame t with the flow
    t -> t+1, and with M the non-occlusion mask of frame t (``non_occlusion_mask``)

        E_t = sum_p M(p) ||V_t(p) - warp(V_{t+1})(p)||_2^2 / sum_p M(p),

    with RGB values on [0, 1] and the squared norm summed over the 3 channels (the paper's formula;
    Lai et al.'s released script divides by the mask summed over channels too, i.e. its values are
    this one / 3). If no pixel is trusted, all pixels are used (as their script). The result is the
    mean of E_t over the F - 1 pairs; identical frames give 0.

    Flow and mask: by default the frames' own (``method``, ``motion_boundaries``); with ``flows``
    (from ``reference_flows`` of the ground-truth video, same size and frame count, else
    ``ValueError``) those are used instead and ``method``/``motion_boundaries`` are ignored.
    """
    frames = _check_frames(frames)
    if flows is None:
        _check_method(method)
    else:
        _check_flows(flows, frames)
    frames_u8 = _as_uint8(frames)
    frames_f = _as_unit_float(frames)
    per_pair = []
    for t in range(frames.shape[0] - 1):
        if flows is None:
            fw = optical_flow(frames_u8[t], frames_u8[t + 1], method=method)
            bw = optical_flow(frames_u8[t + 1], frames_u8[t], method=method)
            mask = non_occlusion_mask(fw, bw, motion_boundaries=motion_boundaries)
        else:
            fw, mask = np.asarray(flows[t][0], dtype=np.float32), np.asarray(flows[t][1], dtype=bool)
        warped = backward_warp(frames_f[t + 1], fw)
        sq = np.sum((frames_f[t].astype(np.float64) - warped) ** 2, axis=-1)
        if not mask.any():
            mask = np.ones_like(mask)
        per_pair.append(float(sq[mask].sum() / mask.sum()))
    return float(np.mean(per_pair)), per_pair


def flicker(
    frames: np.ndarray, sigma: float = 3.0, reference: np.ndarray | None = None
) -> tuple[float, list[float]]:
    """Low-frequency flicker, (mean, per pair), in 8-bit grey levels ([0, 255] scale).

    For each consecutive pair: the mean over pixels and channels of ``|G_sigma * (V_{t+1} - V_t)|``,
    where ``G_sigma`` is a Gaussian low-pass (``cv2.GaussianBlur``, sigma in pixels, reflected border).
    The low-pass keeps brightness/colour changes and discounts fine texture and noise (which a
    restoration trajectory is expected to change); motion also counts, so compare trajectories of the
    same content. Identical frames give 0; a uniform brightness step of d grey levels gives d.

    With ``reference`` (the ground-truth video, same shape) the change the reference itself makes
    is subtracted first, ``G_sigma * ((V_{t+1} - V_t) - (R_{t+1} - R_t))``: the flicker a restored
    video adds beyond the true motion (0 for a video equal to the reference, or offset from it by a
    constant).
    """
    frames = _check_frames(frames)
    frames_255 = _as_unit_float(frames).astype(np.float32) * 255.0
    reference_255 = None
    if reference is not None:
        reference = _check_frames(reference)
        if reference.shape != frames.shape:
            raise ValueError(f"reference {reference.shape} and frames {frames.shape} differ in shape")
        reference_255 = _as_unit_float(reference).astype(np.float32) * 255.0
    per_pair = []
    for t in range(frames.shape[0] - 1):
        diff = frames_255[t + 1] - frames_255[t]
        if reference_255 is not None:
            diff = diff - (reference_255[t + 1] - reference_255[t])
        low = cv2.GaussianBlur(diff, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
        per_pair.append(float(np.mean(np.abs(low))))
    return float(np.mean(per_pair)), per_pair
