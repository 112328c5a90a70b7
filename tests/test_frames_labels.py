"""Panel labels in the GIFs and strips: only the label boxes change, tiny panels stay as they are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.utils.frames import label_panels, label_patches, to_uint8_images


def random_frames(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    # values in [60, 200]: never the label's pure black box or white text
    return np.random.default_rng(seed).integers(60, 200, (frames, height, width, 3), dtype=np.uint8)


def box_mask(height: int, width: int, labels: list[str]) -> np.ndarray:
    """(H, W) True inside the label boxes, from the layout label_panels uses."""
    mask = np.zeros((height, width), bool)
    for index, (x, y, patch) in enumerate(label_patches(height, width // len(labels), labels)):
        x0 = index * width // len(labels) + x
        mask[y : y + patch.shape[0], x0 : x0 + patch.shape[1]] = True
    return mask


def test_labels_change_only_their_boxes_one_per_panel_at_its_top_left():
    labels = ["degraded", "generated", "target"]
    frames = random_frames(4, 96, 3 * 128)
    out = label_panels(frames, labels)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(frames, random_frames(4, 96, 3 * 128))  # the input is not modified
    mask = box_mask(96, 3 * 128, labels)
    changed = (out != frames).any(axis=(0, 3))
    assert not (changed & ~mask).any()  # identical outside the label boxes
    for panel in range(3):
        region = (slice(0, 96), slice(panel * 128, (panel + 1) * 128))
        ys, xs = np.nonzero(mask[region])
        assert len(ys) and ys.max() < 48 and xs.max() < 128  # top of its own panel
        assert changed[region][mask[region]].mean() > 0.9  # the box really is drawn
        inside = out[:, : ys.max() + 1, panel * 128 : panel * 128 + xs.max() + 1]
        assert (inside == 0).mean() > 0.3 and (inside.min(axis=-1) > 200).any()  # dark box, light text
    # the same label on every frame
    assert all(np.array_equal(out[0][mask], out[f][mask]) for f in range(4))


def test_text_scales_with_the_panel_and_stays_inside_narrow_panels():
    small = label_patches(48, 64, ["generated"])[0][2]
    large = label_patches(256, 256, ["generated"])[0][2]
    assert large.shape[0] > small.shape[0]
    narrow = label_patches(40, 30, ["a very long label indeed"])[0]
    assert narrow[0] + narrow[2].shape[1] <= 30 and narrow[1] + narrow[2].shape[0] <= 40


@pytest.mark.parametrize("shape", [(2, 16, 96, 3), (2, 64, 3 * 20, 3)])
def test_panels_too_small_for_text_are_returned_unchanged(shape):
    frames = random_frames(*shape[:3])
    assert label_panels(frames, ["degraded", "generated", "target"]) is frames


def test_one_image_and_no_labels():
    image = random_frames(1, 64, 128)[0]
    out = label_panels(image, ["left", "right"])
    assert out.shape == image.shape and (out != image).any()
    assert label_panels(image, []) is image
    with pytest.raises(ValueError):
        label_panels(image.astype(np.float32), ["x"])


def test_trajectory_strip_differs_from_the_plain_panels_only_in_the_label_boxes():
    from src.training.callbacks import trajectory_strip

    generator = torch.Generator().manual_seed(0)
    degraded = torch.rand(3, 3, 64, 80, generator=generator) * 0.5 + 0.25
    generated = torch.rand(3, 3, 64, 80, generator=generator) * 0.5 + 0.25
    strip = trajectory_strip(degraded, generated)
    plain = to_uint8_images(torch.cat([degraded, generated, degraded[-1:].expand_as(degraded)], dim=-1))
    assert strip.shape == (3, 64, 240, 3) and strip.dtype == np.uint8
    mask = box_mask(64, 240, ["degraded", "generated", "target"])
    changed = (strip != plain).any(axis=(0, 3))
    assert not (changed & ~mask).any()
    assert all(changed[:, p * 80 : (p + 1) * 80].any() for p in range(3))
    assert np.array_equal(strip, label_panels(plain, ["degraded", "generated", "target"]))


def test_strip_image_labels_each_frame_of_the_trajectory():
    from src.restoration.outputs import strip_image

    frames = random_frames(9, 64, 48)
    strip = strip_image(frames)
    plain = strip_image(frames, labels=[])
    assert strip.shape == plain.shape == (64, 9 * 48, 3)
    expected = ["frame 1 (input)", *(f"frame {k}" for k in range(2, 9)), "frame 9 (restored)"]
    assert np.array_equal(strip, label_panels(plain, expected))
    changed = (strip != plain).any(axis=-1)
    assert not (changed & ~box_mask(64, 9 * 48, expected)).any()
    assert all(changed[:, k * 48 : (k + 1) * 48].any() for k in range(9))
    custom = strip_image(frames[:3], labels=["degraded", "frame 1", "target"])
    assert not np.array_equal(custom, strip[:, : 3 * 48])
    with pytest.raises(ValueError):
        strip_image(frames, labels=["too", "few"])
