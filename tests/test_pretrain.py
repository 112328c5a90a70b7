"""The tiny base's pretraining data and script (the shipped weights are its output)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from src.data.images import Source, load_image
from src.data.motion import MOTION_PHRASES, natural_motion_clip
from tests.conftest import run_module


@pytest.fixture(scope="module")
def photo():
    return load_image(Source("astronaut"))


def test_motion_clips_are_gentle_and_often_static(photo):
    rng = np.random.default_rng(0)
    phrases = []
    for _ in range(60):
        frames, phrase = natural_motion_clip(photo, rng, 9, 64, 112)
        assert frames.shape == (9, 64, 112, 3) and frames.dtype == np.uint8
        phrases.append(phrase)
        if phrase == MOTION_PHRASES["static"]:
            # a static camera changes at most the exposure: frames stay aligned
            corr = np.corrcoef(frames[0].ravel().astype(float), frames[-1].ravel().astype(float))[0, 1]
            assert corr > 0.99
    assert 0.25 < phrases.count(MOTION_PHRASES["static"]) / len(phrases) < 0.6


def test_camera_effects_change_frames_inside_a_latent_group(photo):
    """Exposure ramps and focus pulls vary frames 2-5 and 6-9 (each one VAE latent frame)."""
    rng = np.random.default_rng(1)
    spreads = []
    for _ in range(40):
        frames, _ = natural_motion_clip(photo, rng, 9, 64, 112, camera_effects=True)
        means = frames.reshape(9, -1).mean(1)
        spreads.append(abs(means[4] - means[1]))
    assert max(spreads) > 20, "some clips brighten or darken strongly within a group"


def test_pretrain_script_writes_a_loadable_base(tmp_path):
    out = tmp_path / "tiny.safetensors"
    record = tmp_path / "record.json"
    result = run_module(
        "src.pretrain_tiny",
        "--vae-steps",
        "2",
        "--transformer-steps",
        "2",
        "--decoder-steps",
        "2",
        "--out",
        str(out),
        "--record",
        str(record),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    from src.models.tiny import load_tiny

    components, metadata = load_tiny(out)
    saved = json.loads(record.read_text())
    assert saved["held_out"] == ["coffee", "chelsea"] and not set(saved["photos"]) & set(saved["held_out"])
    assert json.loads(metadata["pretrain"])["seed"] == 0
    assert components.vae.config.scaling_factor == pytest.approx(saved["vae_scaling_factor"])
