"""Clip formats round-trip through decord (the reader CogVideoX's trainers use)."""

from __future__ import annotations

import numpy as np
import pytest

from src.data.clip_io import EncoderSettings, clip_fps, read_clip, write_clip_atomic, write_mp4
from src.data.degradations import TASKS, make_clip, psnr_uint8
from src.data.images import fit_to_output


@pytest.mark.parametrize("task", TASKS)
def test_mp4_keeps_the_clean_target_above_45_db_at_full_size(tmp_path, set5_images, task):
    clean, _ = fit_to_output(set5_images["butterfly"], 768, 1360)
    frames, _ = make_clip(clean, task, 0)
    path = tmp_path / "clip.mp4"
    write_clip_atomic(frames, path, "mp4", 5, EncoderSettings())
    decoded = read_clip(path)
    assert decoded.shape == (9, 768, 1360, 3)
    assert clip_fps(path) == pytest.approx(5.0)
    assert psnr_uint8(decoded[-1], frames[-1]) >= 45.0
    # degraded frames survive too (the encoder must not add a degradation of its own)
    assert min(psnr_uint8(d, f) for d, f in zip(decoded[:-1], frames[:-1], strict=True)) >= 38.0


def test_png_frames_are_lossless(tmp_path, photo):
    frames, _ = make_clip(photo, "lowlight", 3)
    write_clip_atomic(frames, tmp_path / "frames" / "clip", "png", 5, EncoderSettings())
    assert np.array_equal(read_clip(tmp_path / "frames" / "clip"), frames)


def test_mp4_needs_even_sizes_and_leaves_no_temp_file(tmp_path):
    frames = np.zeros((9, 33, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="even"):
        write_clip_atomic(frames, tmp_path / "odd.mp4", "mp4", 5, EncoderSettings())
    assert list(tmp_path.iterdir()) == []


def test_encoding_is_deterministic(tmp_path, photo):
    frames, _ = make_clip(photo, "deblur", 1)
    write_mp4(frames, tmp_path / "a.mp4", 5)
    write_mp4(frames, tmp_path / "b.mp4", 5)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
