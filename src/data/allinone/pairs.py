"""Degraded images of the all-in-one categories: every random draw of one image
(:func:`sample_category_params`), its rendering (:func:`render_category`), both at once
(:func:`make_pair`) and the severity table of :mod:`src.data.allinone`'s docstring."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.data.allinone.ops import _RENDERERS, _SAMPLERS
from src.data.allinone.preset import AllInOnePreset, _choices
from src.utils.cli import ConfigError


def sample_category_params(
    category: str, rng: np.random.Generator, height: int, width: int, preset: AllInOnePreset
) -> dict:
    """Every random draw of one degraded image of ``category``:
    ``{"category": name, "ops": [{"op": "blur", ...draws...}, ...]}``, JSON-serialisable."""
    if category not in preset.categories:
        raise ConfigError(
            f"unknown degradation category {category!r} (choose from {_choices(preset.categories)})"
        )
    ops = []
    for op in preset.categories[category]:
        ops.append({"op": op, **_SAMPLERS[op](rng, preset.ops[op], height, width)})
    return {"category": category, "ops": ops}


def render_category(image: np.ndarray, params: dict) -> np.ndarray:
    """Clean (H, W, 3) uint8 -> degraded (H, W, 3) uint8, the ops of ``params`` in order;
    deterministic given ``params`` (pixel sizes follow this image's short side)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    out = np.ascontiguousarray(image)
    for op_params in params["ops"]:
        out = np.ascontiguousarray(_RENDERERS[op_params["op"]](out, op_params))
    return out


def make_pair(
    image: np.ndarray, category: str, rng: np.random.Generator, preset: AllInOnePreset
) -> tuple[np.ndarray, dict]:
    """(degraded uint8 at the image's own size, params) for one clean (H, W, 3) uint8 image."""
    height, width = image.shape[:2]
    params = sample_category_params(category, rng, height, width, preset)
    return render_category(image, params), params


# ----------------------------------------------------------------------------------------------
# Severity measurement (the table of the module docstring)
# ----------------------------------------------------------------------------------------------
def input_psnr_table(
    folder: str | Path, size: int, draws: int = 3, seed: int = 0, preset: AllInOnePreset | None = None
) -> dict[str, float]:
    """Mean PSNR (RGB, dB) of degraded vs clean per category, over every image of ``folder``
    fitted to size x size, ``draws`` seeded draws per image and category."""
    from src.data.images import fit_to_output, list_sources, load_image
    from src.metrics.image import psnr
    from src.utils.seeding import stable_seed

    preset = preset or AllInOnePreset()
    sources, _ = list_sources(folder)
    images = {s.key: fit_to_output(load_image(s), size, size)[0] for s in sources}
    table = {}
    for category in preset.categories:
        values = []
        for key, clean in images.items():
            for draw in range(draws):
                rng = np.random.default_rng(stable_seed(seed, "allinone-psnr", category, key, draw))
                degraded, _ = make_pair(clean, category, rng, preset)
                values.append(psnr(degraded, clean))
        table[category] = float(np.mean(values))
    return table
