"""Degradation schedules: monotonic quality, exact clean target, ranges, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from src.data.degradations import (
    TASKS,
    DegradationPreset,
    frame_psnrs,
    gaussian_noise,
    interpolation_weights,
    linear_strengths,
    make_clip,
    motion_kernel,
    psnr_uint8,
    render_clip,
    render_deblur,
    sample_params,
)


def shipped_preset(name: str) -> DegradationPreset:
    """The preset a run gets with ``degradation=<name>``: conf/degradation/<name>.yaml composed
    through Hydra (its defaults list included), not a hand-written copy."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from src.utils.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"degradation={name}"])
    return DegradationPreset.from_dict(OmegaConf.to_container(cfg.degradation, resolve=True))


PRESETS = {name: shipped_preset(name) for name in ("paper", "mild", "severe", "interpolate")}


def test_the_shipped_presets_are_what_the_tests_exercise():
    assert PRESETS["paper"] == DegradationPreset(), "paper.yaml is the code's default preset"
    mild, severe = PRESETS["mild"], PRESETS["severe"]
    assert (mild.name, severe.name, PRESETS["interpolate"].mode) == ("mild", "severe", "interpolate")
    assert tuple(mild.sr.scale_min) == (0.25, 0.5) and tuple(severe.sr.scale_min) == (0.03, 0.1)
    assert tuple(severe.deblur.kernel_max_px) == (120, 300) and severe.lowlight.signal_dependent
    assert mild.lowlight.wb_drift == 0.08 and severe.lowlight.wb_drift == 0.3
    # each shipped preset is milder / harsher than the paper's in every task
    paper = PRESETS["paper"]
    assert mild.sr.scale_min[0] > paper.sr.scale_min[0] > severe.sr.scale_min[0]
    assert mild.deblur.kernel_max_px[1] < paper.deblur.kernel_max_px[1] < severe.deblur.kernel_max_px[1]
    assert mild.lowlight.noise[1] < paper.lowlight.noise[1] < severe.lowlight.noise[1]


def strictly_increasing(values) -> bool:
    return all(b > a for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("preset_name", list(PRESETS))
@pytest.mark.parametrize("task", TASKS)
def test_every_clip_improves_strictly_and_ends_clean(photo, task, preset_name):
    for seed in range(4):
        frames, params = make_clip(photo, task, seed, PRESETS[preset_name])
        assert frames.shape == (9, *photo.shape) and frames.dtype == np.uint8
        assert np.array_equal(frames[-1], photo), "frame 9 must be the clean image, bit for bit"
        psnrs = frame_psnrs(frames)
        assert psnrs[-1] is None and all(p is not None for p in psnrs[:-1])
        assert strictly_increasing(psnrs[:-1]), (task, preset_name, seed, psnrs)
        json.dumps(params)  # every sampled parameter is recordable


@pytest.mark.parametrize("task", TASKS)
def test_monotonic_on_real_photographs_at_full_size(set5_images, task):
    from src.data.images import fit_to_output

    for index, (name, image) in enumerate(set5_images.items()):
        clean, _ = fit_to_output(image, 768, 1360)
        frames, _ = make_clip(clean, task, index)
        psnrs = frame_psnrs(frames)[:-1]
        assert strictly_increasing(psnrs), (name, psnrs)


@pytest.mark.parametrize("task", TASKS)
def test_rendering_from_recorded_params_is_bit_exact(photo, task):
    frames, params = make_clip(photo, task, 123)
    again = render_clip(task, photo, json.loads(json.dumps(params)))  # through JSON, as from metadata
    assert np.array_equal(frames, again)
    assert np.array_equal(make_clip(photo, task, 123)[0], frames)
    assert not np.array_equal(make_clip(photo, task, 124)[0], frames)


def test_parameter_ranges_follow_the_paper():
    preset = DegradationPreset()
    rng = np.random.default_rng(0)
    for _ in range(200):
        sr = sample_params("sr", rng, preset, 9, 768, 1360)
        assert 0.05 <= sr["scale_min"] <= 0.25
        assert np.allclose(sr["scales"], np.linspace(sr["scale_min"], 1.0, 9))
        qualities = sr["jpeg_quality"]
        assert qualities[-1] is None and all(q is not None for q in qualities[:-1])
        assert qualities[:-1] == sorted(qualities[:-1]), "JPEG quality rises with scale"

        deblur = sample_params("deblur", rng, preset, 9, 768, 1360)
        assert 0 <= deblur["angle_deg"] < 360
        assert 40 <= deblur["kernel_max_px"] <= 200
        expected = [deblur["kernel_max_px"] * (1 - (t - 1) / 8) for t in range(1, 10)]
        assert np.allclose(deblur["kernel_lengths_px"], expected) and deblur["kernel_lengths_px"][-1] == 0

        low = sample_params("lowlight", rng, preset, 9, 768, 1360)
        assert 0.02 <= low["noise"] <= 0.08
        assert np.allclose(low["strengths"], [1 - (t - 1) / 8 for t in range(1, 10)])
    # kernel lengths scale with the output size (sqrt of the area ratio)
    half = sample_params("deblur", np.random.default_rng(1), preset, 9, 384, 680)
    full = sample_params("deblur", np.random.default_rng(1), preset, 9, 768, 1360)
    assert half["kernel_max_px"] == pytest.approx(full["kernel_max_px"] / 2)


def test_frame_count_is_configurable():
    assert np.allclose(linear_strengths(5), [1, 0.75, 0.5, 0.25, 0])
    assert interpolation_weights(3) == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="at least 2 frames"):
        linear_strengths(1)


def test_motion_kernel_is_normalised_centred_and_antialiased():
    for length, angle in [(0.5, 10), (7.3, 33), (40, 0), (200, 137.5)]:
        kernel = motion_kernel(length, angle)
        assert kernel.shape[0] % 2 == 1 and kernel.shape[0] == kernel.shape[1]
        assert kernel.sum() == pytest.approx(1.0)
        assert np.allclose(kernel, kernel[::-1, ::-1]), "point-symmetric: blurring does not shift"
    # fractional lengths change the kernel smoothly (no jump at integer lengths)
    a, b = motion_kernel(10.2, 20), motion_kernel(10.3, 20)
    assert a.shape == b.shape and 0 < np.abs(a - b).sum() < 0.1
    horizontal = motion_kernel(9, 0)
    assert np.count_nonzero(horizontal.sum(axis=1) > 1e-9) == 1, "0 degrees is a horizontal streak"


def test_huge_blur_keeps_borders_bright_and_matches_direct_convolution():
    import cv2

    flat = np.full((120, 200, 3), 200, np.uint8)
    params = {"angle_deg": 30.0, "kernel_lengths_px": [200.0, 100.0, 0.0]}
    blurred = render_deblur(flat, params)
    assert np.array_equal(blurred, np.broadcast_to(flat, blurred.shape)), "borders must not darken"

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    for angle in (0.0, 63.0, 90.0, 137.0, 181.0, 300.0):
        params = {"angle_deg": angle, "kernel_lengths_px": [21.5, 0.0]}
        kernel = motion_kernel(21.5, angle).astype(np.float32)
        direct = cv2.filter2D(
            image.astype(np.float32), -1, kernel[::-1, ::-1], borderType=cv2.BORDER_REFLECT_101
        )
        fft = render_deblur(image, params)[0].astype(np.float32)
        assert np.abs(fft - np.rint(direct)).max() <= 1.0, angle


def test_interpolate_uses_most_degraded_frame_or_external_lq(photo):
    preset = PRESETS["interpolate"]
    frames, params = make_clip(photo, "deblur", 5, preset)
    schedule, _ = make_clip(photo, "deblur", 5, DegradationPreset())
    assert np.array_equal(frames[0], schedule[0]), "I_LQ is the task's most degraded frame"
    assert params["alphas"] == pytest.approx([t / 8 for t in range(9)])
    expected_mid = np.rint(0.5 * frames[0].astype(np.float32) + 0.5 * photo.astype(np.float32))
    assert np.abs(frames[4].astype(np.float32) - expected_mid).max() <= 1

    lq = np.zeros_like(photo)
    frames, params = make_clip(photo, "sr", 0, preset, lq_image=lq)
    assert np.array_equal(frames[0], lq) and np.array_equal(frames[-1], photo)
    assert params["lq"] == {"external": True}
    with pytest.raises(ValueError, match="interpolate"):
        make_clip(photo, "sr", 0, DegradationPreset(), lq_image=lq)


def test_lowlight_noise_differs_between_frames():
    from src.data.degradations import lowlight_noise_windows, render_lowlight

    params = {"noise_seed": 11}
    windows = lowlight_noise_windows(params, 9)
    assert len(set(windows)) == 9, "each frame has its own window of the noise field"
    gray = np.full((64, 80, 3), 128, np.uint8)
    params = {
        "strengths": [1.0, 1.0, 0.0],
        "exposure_stops": 0.0,
        "wb_gains_red_blue": [1.0, 1.0],
        "noise": 0.05,
        "blur_sigma_px": 0.0,
        "signal_dependent": False,
        "shot_factor": 0.5,
        "noise_seed": 3,
    }
    frames = render_lowlight(gray, params).astype(np.float32) - 128
    assert 0.04 < frames[0].std() / 255 < 0.06
    correlation = np.corrcoef(frames[0].ravel(), frames[1].ravel())[0, 1]
    assert abs(correlation) < 0.05, "same strength, independent-looking noise"


def test_gaussian_noise_is_standard_normal_and_seeded():
    noise = gaussian_noise([7, 1], (400_000,))
    assert abs(float(noise.mean())) < 0.01 and abs(float(noise.std()) - 1) < 0.01
    assert np.array_equal(noise, gaussian_noise([7, 1], (400_000,)))
    assert not np.array_equal(noise, gaussian_noise([7, 2], (400_000,)))


def test_bad_arguments_fail_clearly(photo):
    with pytest.raises(ValueError, match="unknown task"):
        make_clip(photo, "denoise", 0)
    with pytest.raises(ValueError, match="uint8"):
        render_clip("sr", photo.astype(np.float32), {"mode": "schedule"})
    with pytest.raises(ValueError, match="scale_min"):
        DegradationPreset.from_dict({"sr": {"scale_min": [0.5, 0.2]}})
    with pytest.raises(ValueError, match="unexpected keyword|degradation.deblur"):
        DegradationPreset.from_dict({"deblur": {"kernel_length": [1, 2]}})
    assert psnr_uint8(photo, photo) == float("inf")
