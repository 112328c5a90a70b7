"""Temporal consistency with selectable optical flow and ground-truth reference flows
(src.metrics.temporal), and the flicker-reducing post-processing of src.video.consistency.

Fast (numpy/OpenCV/scikit-image on small frames of scikit-image's bundled photographs, no weights).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from src.metrics.image import psnr
from src.metrics.temporal import (
    FLOW_METHODS,
    flicker,
    optical_flow,
    reference_flows,
    warping_error,
)
from src.video.consistency import (
    COLOR_MODES,
    ColorCorrector,
    TemporalBlender,
    adain_color,
    wavelet_color,
    wavelet_low,
)

H, W = 128, 224
MARGIN = 16  # interior: away from the border, where the warped image is extrapolated


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """scikit-image's astronaut, 128x224 (H x W), uint8 RGB."""
    return cv2.resize(skimage.data.astronaut(), (W, H), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def big_photo() -> np.ndarray:
    return cv2.resize(skimage.data.astronaut(), (320, 320), interpolation=cv2.INTER_AREA)


def _affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``out(A p) = image(p)``: the true flow image -> out is ``A p - p``."""
    h, w = image.shape[:2]
    return cv2.warpAffine(
        image, np.float32(matrix), (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101
    )


def _pan(big: np.ndarray, frames: int, dx: float, dy: float, h: int = 96, w: int = 160) -> np.ndarray:
    """A camera pan over ``big``: frame t is the window at (40 + dx t, 60 + dy t), so content moves by
    (-dx, -dy) per frame."""
    return np.stack(
        [
            cv2.warpAffine(
                big, np.float32([[1, 0, -dx * t - 40], [0, 1, -dy * t - 60]]), (w, h), flags=cv2.INTER_CUBIC
            )
            for t in range(frames)
        ]
    )


# ------------------------------------------------------------------------------------------ flows


@pytest.mark.parametrize("method", FLOW_METHODS)
@pytest.mark.parametrize("dx, dy", [(3.0, -2.0), (1.5, -0.75)])
def test_each_flow_method_recovers_a_translation(photo, method, dx, dy):
    dst = _affine(photo, [[1, 0, dx], [0, 1, dy]])
    flow = optical_flow(photo, dst, method=method)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    inner = flow[MARGIN:-MARGIN, MARGIN:-MARGIN]
    # Measured: every method within 0.05 px of the truth (median), both displacements. A swapped
    # (dx, dy) or a sign error (e.g. scikit-image's (v, u) order, its reference/moving order) is off
    # by >= 2 px.
    assert np.median(inner[..., 0]) == pytest.approx(dx, abs=0.3)
    assert np.median(inner[..., 1]) == pytest.approx(dy, abs=0.3)
    # Deterministic.
    np.testing.assert_array_equal(optical_flow(photo, dst, method=method), flow)


# Mean endpoint error (px) in the interior for a 5% zoom about the centre (true flow up to 5.3 px,
# 2.3 px on average, so a zero or constant flow scores > 2). Measured: dis 0.11, farneback 0.24,
# tvl1 0.11; the thresholds are about twice that (Farneback's 15x15 window fits one affine motion per
# window and is the least precise under a flow gradient).
ZOOM_EPE = {"dis": 0.25, "farneback": 0.5, "tvl1": 0.25}


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_each_flow_method_follows_a_zoom(photo, method):
    s, cx, cy = 1.05, (W - 1) / 2, (H - 1) / 2
    dst = _affine(photo, [[s, 0, (1 - s) * cx], [0, s, (1 - s) * cy]])
    gx, gy = np.meshgrid(np.arange(W), np.arange(H))
    true = np.stack([(s - 1) * (gx - cx), (s - 1) * (gy - cy)], axis=-1)
    flow = optical_flow(photo, dst, method=method)
    epe = np.linalg.norm(flow - true, axis=-1)[MARGIN:-MARGIN, MARGIN:-MARGIN]
    assert np.linalg.norm(true, axis=-1)[MARGIN:-MARGIN, MARGIN:-MARGIN].mean() > 2.0
    assert epe.mean() < ZOOM_EPE[method], (method, epe.mean())


def test_unknown_flow_method_names_the_choices(photo):
    with pytest.raises(ValueError, match="farneback"):
        optical_flow(photo, photo, method="raft")
    with pytest.raises(ValueError, match="tvl1"):
        warping_error(np.stack([photo] * 2), method="flownet2")
    with pytest.raises(ValueError, match="dis"):
        reference_flows(np.stack([photo] * 2), method="pwc")


# ------------------------------------------------------------------------ warping error, GT flows


@pytest.fixture(scope="module")
def gt_clip(big_photo) -> np.ndarray:
    """Integer pan (2, 1) px/frame, 6 frames of 96x160: the reference flow warps it almost exactly."""
    return _pan(big_photo, 6, 2.0, 1.0)


@pytest.fixture(scope="module")
def gt_flows(gt_clip):
    return reference_flows(gt_clip)


def test_reference_flows_shapes_and_equivalence(gt_clip, gt_flows):
    assert len(gt_flows) == len(gt_clip) - 1
    for fw, mask in gt_flows:
        assert fw.shape == (96, 160, 2) and mask.shape == (96, 160) and mask.dtype == bool
        # The content moves by (-2, -1): that is the flow t -> t+1; most pixels trusted.
        assert np.median(fw[..., 0]) == pytest.approx(-2.0, abs=0.1)
        assert np.median(fw[..., 1]) == pytest.approx(-1.0, abs=0.1)
        assert mask.mean() > 0.85
    # Scoring the ground truth with its own reference flows is the default computation.
    assert warping_error(gt_clip, flows=gt_flows) == warping_error(gt_clip)
    for method in ("farneback", "tvl1"):
        assert warping_error(gt_clip[:3], flows=reference_flows(gt_clip[:3], method=method)) == (
            warping_error(gt_clip[:3], method=method)
        )


def test_warping_error_against_ground_truth_flows(gt_clip, gt_flows):
    rng = np.random.default_rng(0)
    frames = gt_clip.astype(np.float64)
    exact, _ = warping_error(gt_clip, flows=gt_flows)
    noisy = np.clip(frames + rng.normal(0, 8, frames.shape), 0, 255).astype(np.uint8)
    noisy_err, _ = warping_error(noisy, flows=gt_flows)
    # Same +12 levels on R and -8 on B in every frame: temporally consistent.
    shifted = np.clip(frames + np.array([12.0, 0.0, -8.0]), 0, 255).astype(np.uint8)
    shift_err, _ = warping_error(shifted, flows=gt_flows)
    # Random per-frame brightness, 10..20 levels, alternating in sign.
    offsets = np.where(np.arange(len(frames)) % 2 == 1, 1.0, -1.0) * rng.uniform(10, 20, len(frames))
    flick = np.clip(frames + offsets[:, None, None, None], 0, 255).astype(np.uint8)
    flick_err, flick_pairs = warping_error(flick, flows=gt_flows)
    # Measured: exact ~3.5e-5 (cubic pan vs the flow's bilinear warp), noisy ~5e-3 (2 x 3 x (8/255)^2
    # = 5.9e-3 on unclipped pixels), constant shift ~4e-5, flicker ~5e-2.
    assert exact < 2e-4
    assert noisy_err > 10 * exact and noisy_err > 3e-3
    assert shift_err < 3 * exact + 1e-4
    assert flick_err > 100 * shift_err and flick_err > 1e-2
    assert len(flick_pairs) == len(frames) - 1


def test_warping_error_uses_the_given_flows(gt_clip):
    # Zero flow, every pixel trusted: the error is the plain frame difference, whatever the frames'
    # own motion (a broken implementation that recomputes the flow scores ~0 on this pan).
    h, w = gt_clip.shape[1:3]
    still = [(np.zeros((h, w, 2), np.float32), np.ones((h, w), bool))] * (len(gt_clip) - 1)
    f = gt_clip.astype(np.float64) / 255.0
    naive = np.sum((f[:-1] - f[1:]) ** 2, axis=-1).mean(axis=(1, 2))
    err, per_pair = warping_error(gt_clip, flows=still)
    np.testing.assert_allclose(per_pair, naive, rtol=1e-5)
    assert err > 100 * warping_error(gt_clip)[0]


def test_warping_error_rejects_mismatched_flows(gt_clip, gt_flows):
    with pytest.raises(ValueError, match="pairs"):
        warping_error(gt_clip[:4], flows=gt_flows)
    with pytest.raises(ValueError, match="do not match"):
        warping_error(gt_clip[:, :64, :64], flows=gt_flows)
    with pytest.raises(ValueError, match="do not match"):
        warping_error(gt_clip, flows=[(fw, mask[:-1]) for fw, mask in gt_flows])


# --------------------------------------------------------------------------------- colour fixes


def _stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = image.reshape(-1, 3).astype(np.float64)
    return flat.mean(0), flat.std(0)


def test_adain_matches_reference_statistics(photo):
    cat = cv2.resize(skimage.data.chelsea(), (100, 80), interpolation=cv2.INTER_AREA)  # another size
    # Colour-graded: warmer and flatter than the photo.
    reference = np.clip(cat * [0.7, 0.6, 0.4] + [70.0, 40.0, 10.0], 0, 255).astype(np.uint8)
    out = adain_color(photo, reference)
    assert out.shape == photo.shape and out.dtype == np.uint8
    (m_out, s_out), (m_ref, s_ref) = _stats(out), _stats(reference)
    # Measured: means within 0.05 levels, stds within 0.1 (uint8 rounding).
    np.testing.assert_allclose(m_out, m_ref, atol=1.0)
    np.testing.assert_allclose(s_out, s_ref, atol=1.0)
    # The test is not trivial: the photo's statistics are far from the reference's.
    assert np.abs(_stats(photo)[0] - m_ref).max() > 20 and np.abs(_stats(photo)[1] - s_ref).max() > 20
    # Spatial structure is the image's: per-channel affine map, so correlation ~1.
    for c in range(3):
        assert np.corrcoef(out[..., c].ravel(), photo[..., c].ravel())[0, 1] > 0.99


def test_wavelet_keeps_image_detail_and_reference_colour(photo):
    graded = np.clip(photo.astype(np.float32) * [0.8, 1.0, 1.2] + [20.0, -10.0, 5.0], 0, 255).astype(np.uint8)
    reference = cv2.resize(graded, (W // 2, H // 2), interpolation=cv2.INTER_AREA)  # a low-res input
    out = wavelet_color(photo, reference)
    assert out.shape == photo.shape and out.dtype == np.uint8
    ref_up = cv2.resize(reference, (W, H), interpolation=cv2.INTER_CUBIC)

    def low(x):
        return wavelet_low(x.astype(np.float32))

    def high(x):
        return x.astype(np.float32) - low(x)

    # Measured: low-pass of the output 1.1 levels from the reference's (14.3 for the image);
    # high-pass 1.3 levels from the image's (10.2 for the reference; |high| of the image ~44).
    # Not 0: the low-pass of the image's high bands and the high-pass of the reference's low band
    # do not vanish (the a trous bands are not orthogonal), and uint8 rounding/clipping.
    low_err = np.abs(low(out) - low(ref_up)).mean()
    high_err = np.abs(high(out) - high(photo)).mean()
    assert low_err < 3.0 and np.abs(low(photo) - low(ref_up)).mean() > 10.0
    assert high_err < 3.0 and np.abs(high(ref_up) - high(photo)).mean() > 7.0
    # A reference equal to the image is a no-op (up to float rounding).
    assert np.abs(wavelet_color(photo, photo).astype(int) - photo).max() <= 1


def _jittered_sequence(photo: np.ndarray, n: int = 20) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    base = photo.astype(np.float64) * 0.6 + 50.0  # [50, 203]: +-10 never clips
    return [np.clip(base + o, 0, 255).astype(np.uint8) for o in rng.uniform(-10, 10, n)]


@pytest.mark.parametrize("mode", ["adain", "wavelet"])
def test_running_reference_removes_brightness_jitter(photo, mode):
    frames = _jittered_sequence(photo)
    corrector = ColorCorrector(mode, "running")
    out = [corrector(f, None) for f in frames]
    np.testing.assert_array_equal(out[0], frames[0])
    jitter_in = np.abs(np.diff([f.mean() for f in frames])).mean()
    jitter_out = np.abs(np.diff([f.mean() for f in out])).mean()
    # Measured ratio: 0.11 for both modes (EMA with momentum 0.9).
    assert jitter_out < 0.25 * jitter_in, (jitter_out, jitter_in)
    # The texture is kept (frames are a brightness offset of one image; measured: identical up to an
    # offset, PSNR inf).
    offset = np.round(out[-1].mean() - frames[-1].mean())
    assert psnr(out[-1], np.clip(frames[-1] + offset, 0, 255).astype(np.uint8)) > 40
    # reset(): the next frame is again a first frame.
    corrector.reset()
    np.testing.assert_array_equal(corrector(frames[5], None), frames[5])


def test_color_corrector_modes_and_errors(photo):
    dark = (photo // 2).astype(np.uint8)
    np.testing.assert_array_equal(ColorCorrector("none")(photo, dark), photo)
    np.testing.assert_array_equal(ColorCorrector("adain", "input")(photo, dark), adain_color(photo, dark))
    np.testing.assert_array_equal(ColorCorrector("wavelet", "input")(photo, dark), wavelet_color(photo, dark))
    assert set(COLOR_MODES) == {"none", "adain", "wavelet"}
    with pytest.raises(ValueError, match="wavelet"):
        ColorCorrector("histogram")
    with pytest.raises(ValueError, match="running"):
        ColorCorrector("adain", "previous")
    with pytest.raises(ValueError, match="momentum"):
        ColorCorrector("adain", "running", momentum=1.0)
    with pytest.raises(ValueError, match="input frame"):
        ColorCorrector("adain", "input")(photo, None)


# ------------------------------------------------------------------------------- temporal blend


def test_temporal_blender_identity_and_errors(photo):
    blender = TemporalBlender(0.0)
    for frame in (photo, photo[::-1].copy(), photo[:, ::-1].copy()):
        assert blender(frame) is frame
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="strength"):
            TemporalBlender(bad)
    with pytest.raises(ValueError, match="farneback"):
        TemporalBlender(0.5, method="raft")
    # First frame unchanged at any strength; a static clip stays static.
    blender = TemporalBlender(0.5)
    np.testing.assert_array_equal(blender(photo), photo)
    np.testing.assert_array_equal(blender(photo), photo)
    with pytest.raises(ValueError, match="reset"):
        blender(photo[:64])
    blender.reset()
    np.testing.assert_array_equal(blender(photo[:64]), photo[:64])


def test_temporal_blender_keeps_the_current_frame_where_the_flow_fails(photo):
    # A scene cut: nothing of the previous frame is visible, the forward-backward check rejects
    # (almost) every pixel and the new frame comes through. Without the mask: a 50% ghost (14.5 dB).
    # Measured with dis: 0.9% of pixels blended, 41.4 dB (tvl1 similar; farneback leaks ~22%, and dis
    # ~11% on other cuts, e.g. to skimage's chelsea: call reset() at known cuts).
    cut = cv2.resize(skimage.data.coffee(), (W, H), interpolation=cv2.INTER_AREA)
    blender = TemporalBlender(0.5)
    blender(photo)
    out = blender(cut)
    assert np.mean(np.any(out != cut, axis=-1)) < 0.05
    assert psnr(out, cut) > 30


def test_temporal_blender_reduces_flicker_of_a_noisy_pan(big_photo):
    # Sub-pixel pan (1.5, 0.5) px/frame, independent Gaussian noise (sigma 8) per frame.
    clean = _pan(big_photo, 8, 1.5, 0.5)
    rng = np.random.default_rng(1)
    noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
    flows = reference_flows(clean)
    blender = TemporalBlender(0.5)
    blended = np.stack([blender(f) for f in noisy])
    err_noisy, _ = warping_error(noisy, flows=flows)
    err_blend, _ = warping_error(blended, flows=flows)
    psnr_noisy = np.mean([psnr(a, b) for a, b in zip(noisy, clean, strict=True)])
    psnr_blend = np.mean([psnr(a, b) for a, b in zip(blended, clean, strict=True)])
    # Measured: warping error 4.6e-3 -> 1.9e-3 (x0.41); PSNR 30.4 -> 33.1 dB (averaging independent
    # noise along the true motion outweighs the blur of the repeated bilinear warps).
    assert err_blend < 0.6 * err_noisy, (err_blend, err_noisy)
    assert psnr_blend >= psnr_noisy - 0.5, (psnr_blend, psnr_noisy)
    # Low-frequency flicker cannot grow.
    assert flicker(blended)[0] <= flicker(noisy)[0] + 0.05
