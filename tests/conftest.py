"""Shared fixtures. Tests that read ../shared/ run (never skip) when CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from src.utils.config import PROJECT_ROOT

SHARED_DIR = Path(os.environ.get("PROGRESTORE_SHARED", PROJECT_ROOT.parent / "shared"))

TASK_CFGS = {
    "sr": {
        "name": "sr",
        "uniform_prompt": "Sharper. Static image.",
        "adaptive_template": "{caption} sharpens.",
    },
    "deblur": {
        "name": "deblur",
        "uniform_prompt": "Unblur. Static.",
        "adaptive_template": "A blurred {caption} focuses.",
    },
    "lowlight": {
        "name": "lowlight",
        "uniform_prompt": "Brighter.",
        "adaptive_template": "A dark {caption} brightens.",
    },
}


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared folder {SHARED_DIR} is missing")
        pytest.skip(f"shared folder {SHARED_DIR} not present (set PROGRESTORE_SHARED)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def set5_images(shared_dir) -> dict[str, np.ndarray]:
    from src.data.images import Source, load_image

    folder = shared_dir / "data" / "set5"
    images = {p.stem: load_image(Source(p.stem, p)) for p in sorted(folder.glob("*.png"))}
    assert len(images) == 5, f"expected the five Set5 images in {folder}"
    return images


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photograph fitted to a small 16:9 frame (fast tests)."""
    import skimage.data

    from src.data.images import fit_to_output

    return fit_to_output(skimage.data.astronaut(), 144, 256)[0]
