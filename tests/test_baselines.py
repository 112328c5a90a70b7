"""Classical baselines on real photographs degraded by the project's own frame-1 renderers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.data.degradations import DegradationPreset, make_clip, psnr_uint8
from src.evaluation.baselines import (
    BASELINE_NAMES,
    bicubic_upsample,
    estimate_noise_sigma,
    gamma_for_mean,
    luma,
    restore_baseline,
)


def frame1(image: np.ndarray, task: str, seed: int = 0, preset: DegradationPreset | None = None):
    """The most degraded frame I_1 of a paper-preset clip and the clip's params."""
    frames, params = make_clip(image, task, seed, preset)
    return frames[0], params


def check_output(restored: np.ndarray, shape: tuple[int, ...]) -> None:
    assert restored.shape == shape and restored.dtype == np.uint8


# ----------------------------------------------------------------------------------------------
# deblur
# ----------------------------------------------------------------------------------------------
def assert_deblur_gains(images: dict[str, np.ndarray], min_gain_db: float) -> dict[str, float]:
    gains = {}
    for index, (name, clean) in enumerate(images.items()):
        blurred, params = frame1(clean, "deblur", seed=index)
        restored, baseline = restore_baseline("deblur", blurred, params)
        assert baseline == "richardson_lucy"
        check_output(restored, clean.shape)
        gains[name] = psnr_uint8(restored, clean) - psnr_uint8(blurred, clean)
    # Measured: +4.5 dB (astronaut), +2.4 (head) to +4.0 dB (bird) on Set5 at these seeds.
    assert min(gains.values()) > min_gain_db, gains
    return gains


def test_richardson_lucy_with_the_known_kernel_beats_the_blurred_photo(photo):
    assert_deblur_gains({"astronaut": photo}, min_gain_db=1.0)


def test_richardson_lucy_beats_the_blurred_input_on_set5(set5_images):
    assert_deblur_gains(set5_images, min_gain_db=1.0)


def test_a_wrong_kernel_does_worse_than_the_right_one(photo):
    blurred, params = frame1(photo, "deblur", seed=3)
    right, _ = restore_baseline("deblur", blurred, params)
    wrong_params = {**params, "angle_deg": (params["angle_deg"] + 90.0) % 360.0}
    wrong, _ = restore_baseline("deblur", blurred, wrong_params)
    assert psnr_uint8(right, photo) > psnr_uint8(wrong, photo) + 1.0


def test_deblur_kernel_is_found_in_every_params_layout(photo):
    blurred, params = frame1(photo, "deblur", seed=1)
    reference, _ = restore_baseline("deblur", blurred, params)
    # the interpolate mode keeps frame 1's draws under "lq"; I_1 is exactly the task's frame 1 there
    frames, interp_params = make_clip(photo, "deblur", 1, DegradationPreset(name="i", mode="interpolate"))
    assert np.array_equal(frames[0], blurred)
    via_lq, name = restore_baseline("deblur", frames[0], interp_params)
    assert name == "richardson_lucy" and np.array_equal(via_lq, reference)
    explicit, name = restore_baseline(
        "deblur", blurred, {"length": params["kernel_lengths_px"][0], "angle_deg": params["angle_deg"]}
    )
    assert name == "richardson_lucy" and np.array_equal(explicit, reference)


def test_without_a_kernel_deblur_falls_back_to_unsharp_masking(photo):
    blurred, _ = frame1(photo, "deblur", seed=2)
    for params in (None, {}, {"lq": {"external": True}}):
        sharpened, name = restore_baseline("deblur", blurred, params)
        assert name == "unsharp" and name in BASELINE_NAMES["deblur"]
        check_output(sharpened, blurred.shape)

    # it sharpens: more high-frequency energy than the blurred input (not a deconvolution)
    def laplacian_energy(image):
        y = luma(image).astype(np.float64)
        return float(
            np.mean((4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]) ** 2)
        )

    assert laplacian_energy(sharpened) > 1.5 * laplacian_energy(blurred)


# ----------------------------------------------------------------------------------------------
# lowlight
# ----------------------------------------------------------------------------------------------
def assert_lowlight_gains(images: dict[str, np.ndarray], min_gain_db: float) -> dict[str, float]:
    gains = {}
    for index, (name, clean) in enumerate(images.items()):
        dark, params = frame1(clean, "lowlight", seed=index)
        input_psnr = psnr_uint8(dark, clean)
        for given in (params, None):  # known noise level, and fully blind
            restored, baseline = restore_baseline("lowlight", dark, given)
            assert baseline == "gamma+denoise"
            check_output(restored, clean.shape)
            gain = psnr_uint8(restored, clean) - input_psnr
            assert gain > min_gain_db, (name, given is not None, gain)
            gains[f"{name}{'' if given else ' (blind)'}"] = gain
    return gains


def test_gamma_denoise_beats_the_dark_photo(photo):
    assert_lowlight_gains({"astronaut": photo}, min_gain_db=3.0)  # measured +7.1 dB


def test_gamma_denoise_beats_the_dark_input_on_set5(set5_images):
    # Measured +2.4 (head: its clean mean luma is 0.28, below the gamma's 0.40 target) to +7.7 dB
    # (woman), with the known noise level or blind.
    assert_lowlight_gains(set5_images, min_gain_db=1.0)


def test_gamma_reaches_the_target_mean_and_never_darkens():
    rng = np.random.default_rng(0)
    dark = rng.integers(5, 60, size=(64, 64, 3), dtype=np.uint8)
    gamma = gamma_for_mean(dark, 0.45)
    assert 0.2 < gamma < 1.0
    assert np.mean(np.clip(luma(dark), 1e-4, 1) ** gamma) == pytest.approx(0.45, abs=0.01)
    bright = rng.integers(150, 255, size=(64, 64, 3), dtype=np.uint8)
    assert gamma_for_mean(bright, 0.45) == 1.0
    assert gamma_for_mean(np.zeros((8, 8, 3), np.uint8), 0.45) == 0.2


def test_blind_noise_estimate_matches_the_rendered_noise(photo):
    flat = np.full((128, 128, 3), 128, np.float32)
    noisy = np.clip(np.rint(flat + np.random.default_rng(0).normal(0, 10, flat.shape)), 0, 255).astype(
        np.uint8
    )
    assert estimate_noise_sigma(noisy) == pytest.approx(10.0, rel=0.1)
    dark, params = frame1(photo, "lowlight", seed=1)
    assert estimate_noise_sigma(dark) == pytest.approx(params["noise"] * 255.0, rel=0.3)


# ----------------------------------------------------------------------------------------------
# sr
# ----------------------------------------------------------------------------------------------
def test_bicubic_upsamples_a_quarter_size_input_better_than_nearest(photo):
    height, width = photo.shape[:2]
    assert height % 4 == 0 and width % 4 == 0
    # the degradation's own downsampler: PIL bicubic with antialiasing
    low = np.asarray(Image.fromarray(photo).resize((width // 4, height // 4), Image.Resampling.BICUBIC))
    upsampled = bicubic_upsample(low, scale=4)
    check_output(upsampled, photo.shape)
    nearest = np.asarray(Image.fromarray(low).resize((width, height), Image.Resampling.NEAREST))
    assert psnr_uint8(upsampled, photo) > psnr_uint8(nearest, photo) + 0.5
    restored, name = restore_baseline("sr", low, {"size": (height, width)})
    assert name == "bicubic" and np.array_equal(restored, upsampled)
    assert np.array_equal(restore_baseline("sr", low, {"scale": 4})[0], upsampled)


def test_bicubic_takes_the_target_size_from_clip_params_and_leaves_i1_unchanged(photo):
    degraded, params = frame1(photo, "sr", seed=0)
    # our synthetic I_1 is already the bicubic upsampling: the baseline is the input itself
    same, name = restore_baseline("sr", degraded, params)
    assert name == "bicubic" and np.array_equal(same, degraded) and same is not degraded
    low_h, low_w = params["low_res_sizes"][0]
    low = np.asarray(Image.fromarray(photo).resize((low_w, low_h), Image.Resampling.BICUBIC))
    restored, _ = restore_baseline("sr", low, params)
    check_output(restored, photo.shape)
    assert psnr_uint8(restored, photo) > psnr_uint8(degraded, photo)  # I_1 also went through JPEG
    # interpolate mode keeps only frame 1's sizes under "lq": never mistaken for a target size
    frames, interp = make_clip(photo, "sr", 0, DegradationPreset(name="i", mode="interpolate"))
    for given in (interp, interp["lq"]):
        assert np.array_equal(restore_baseline("sr", frames[0], given)[0], frames[0])


def test_bad_inputs_are_rejected(photo):
    with pytest.raises(ValueError, match="unknown task"):
        restore_baseline("denoise", photo)
    with pytest.raises(ValueError, match="uint8"):
        restore_baseline("deblur", photo.astype(np.float32))
    with pytest.raises(ValueError, match="scale"):
        bicubic_upsample(photo, scale=0)
    assert set(BASELINE_NAMES) == {"sr", "deblur", "lowlight"}
