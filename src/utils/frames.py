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


MIN_LABEL_PANEL = 24  # panels smaller than this (either side, px) are left unlabelled


def _load_font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: scalable
    except (TypeError, ImportError, OSError, AttributeError):
        return ImageFont.load_default()  # older Pillow / no FreeType: the fixed bitmap font


def label_patches(
    panel_height: int, panel_width: int, labels: list[str]
) -> list[tuple[int, int, np.ndarray]]:
    """Per label, ``(x, y, patch)``: the (h, w, 3) uint8 box (white text on black) drawn at
    ``(x, y)`` inside its panel, cropped to the panel. Empty when the panels are too small."""
    from PIL import Image, ImageDraw

    if panel_height < MIN_LABEL_PANEL or panel_width < MIN_LABEL_PANEL:
        return []
    margin, measure = 2, ImageDraw.Draw(Image.new("RGB", (1, 1)))
    patches = []
    for text in labels:
        size = max(9, min(32, round(panel_height / 14)))
        while True:  # shrink until the text fits the panel's width (down to 8 px)
            font = _load_font(size)
            left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
            pad = max(2, size // 4)
            box_w, box_h = right - left + 2 * pad, bottom - top + 2 * pad
            if box_w <= panel_width - 2 * margin or size <= 8:
                break
            size -= 1
        box = Image.new("RGB", (box_w, box_h), (0, 0, 0))
        ImageDraw.Draw(box).text((pad - left, pad - top), text, font=font, fill=(255, 255, 255))
        patch = np.asarray(box)[: panel_height - margin, : panel_width - margin]
        patches.append((margin, margin, patch))
    return patches


def label_panels(frames_fhwc: np.ndarray, labels: list[str]) -> np.ndarray:
    """A labelled copy of (F, H, W, 3) (or one (H, W, 3)) uint8 frames whose width holds
    ``len(labels)`` equal panels side by side: each label, white on a black box, at the top left
    of its panel, sized to the panel (about H/14 px, smaller if it would overflow the panel's
    width; never drawn past the panel). Same shape and dtype; only the label boxes change.

    Panels under ``MIN_LABEL_PANEL`` (24) px high or wide are too small for legible text: the
    input is then returned unchanged (the same array, not a copy)."""
    if frames_fhwc.dtype != np.uint8 or frames_fhwc.ndim not in (3, 4) or frames_fhwc.shape[-1] != 3:
        shape = f"{frames_fhwc.shape} {frames_fhwc.dtype}"
        raise ValueError(f"expected (F, H, W, 3) or (H, W, 3) uint8, got {shape}")
    if not labels:
        return frames_fhwc
    height, width = frames_fhwc.shape[-3:-1]
    count = len(labels)
    patches = label_patches(height, width // count, labels)
    if not patches:
        return frames_fhwc
    out = frames_fhwc.copy()
    for index, (x, y, patch) in enumerate(patches):
        x0 = index * width // count + x
        out[..., y : y + patch.shape[0], x0 : x0 + patch.shape[1], :] = patch
    return out


def write_gif(frames_fhwc: np.ndarray, path, fps: float = 5.0):
    """(F, H, W, 3) uint8 frames as a looping GIF at ``fps``, written atomically; returns ``path``."""
    from PIL import Image

    from src.utils.io import atomic_path

    if not fps > 0:
        from src.utils.cli import ConfigError

        raise ConfigError(f"fps must be > 0, got {fps}")
    images = [Image.fromarray(frame) for frame in frames_fhwc]
    with atomic_path(path) as temp:
        images[0].save(
            temp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
        )
    return path
