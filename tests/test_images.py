"""Source images: every awkward file a DIV2K-style folder can hold."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.data.images import (
    BUNDLED_PHOTOS,
    Source,
    SourceError,
    bundled_sources,
    center_crop_box,
    fit_to_output,
    list_sources,
    load_image,
)


def test_bundled_photographs_load_without_network():
    sources = bundled_sources()
    assert [s.key for s in sources] == list(BUNDLED_PHOTOS)
    for source in sources:
        image = load_image(source)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


def test_modes_are_converted_not_mangled(tmp_path):
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (32, 1))
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, 16:, 3] = 255  # left half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    deep = (np.linspace(0, 65535, 64 * 32).reshape(32, 64)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep16.png")

    g = load_image(Source("gray", tmp_path / "gray.png"))
    assert g.shape == (32, 64, 3) and np.array_equal(g[..., 0], gray) and np.array_equal(g[..., 2], gray)
    a = load_image(Source("rgba", tmp_path / "rgba.png"))
    assert (a[:, :16] == 255).all(), "transparent pixels are composited over white"
    assert (a[:, 16:] == [255, 0, 0]).all()
    d = load_image(Source("deep16", tmp_path / "deep16.png"))
    assert d.dtype == np.uint8 and d.min() == 0 and d.max() == 255, "16-bit is rescaled, not clipped"


def test_broken_files_raise_source_errors(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="not a readable image"):
        load_image(Source("text", tmp_path / "text.jpg"))
    with pytest.raises(SourceError, match="truncated|corrupt"):
        load_image(Source("truncated", tmp_path / "truncated.png"))


def test_listing_sources(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        list_sources(tmp_path / "missing")
    with pytest.raises(SourceError, match="holds no images"):
        list_sources(tmp_path)
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.png"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name, format="PNG")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.png").write_text("x")
    sources, ignored = list_sources(tmp_path)
    assert [s.key for s in sources] == ["a", "b", "sub/c"]
    assert sources[2].clip_stem == "sub__c"
    assert ignored == [("notes.txt", "not an image file extension (.txt)")]


def test_fit_centre_crops_to_the_output_aspect():
    assert center_crop_box(1356, 2040, 768, 1360) == (102, 0, 1152, 2040)
    assert center_crop_box(1000, 1000, 768, 1360) == (217, 0, 565, 1000)
    image = np.zeros((100, 400, 3), np.uint8)
    image[:, 150:250] = 255  # a bright centre band must stay centred
    fitted, info = fit_to_output(image, 36, 64)
    assert fitted.shape == (36, 64, 3)
    assert info["crop_box"] == [111, 0, 178, 100] and info["upscaled"] is False
    assert fitted[:, 32].mean() > 200 and fitted[:, 0].mean() < 10
    small, info = fit_to_output(np.zeros((20, 30, 3), np.uint8), 36, 64)
    assert small.shape == (36, 64, 3) and info["upscaled"] is True
