"""The two conversions between uint8 images and [0, 1] float tensors used everywhere (data,
validation, inference, metrics). Kept free of heavy imports so the small CLIs stay fast."""

from __future__ import annotations

import numpy as np
import torch


def to_float_tensor(images_nhwc: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1] (N = frames or batch)."""
    return torch.from_numpy(np.ascontiguousarray(images_nhwc)).permute(0, 3, 1, 2).float().div(255.0)


def to_uint8_images(images_nchw: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) float in [0, 1] -> (..., H, W, 3) uint8 (clamped, rounded), on the CPU."""
    scaled = (images_nchw.detach().clamp(0, 1) * 255).round().byte().cpu()
    return scaled.movedim(-3, -1).numpy()
