"""Metrics: PSNR/SSIM conventions (vs scikit-image and plain numpy), LPIPS reference values, temporal
consistency, and the ``python -m src.metrics`` CLI."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from src.metrics.image import gaussian_window_1d, mean_colour_error, psnr, rgb_to_y, ssim
from src.metrics.temporal import flicker, non_occlusion_mask, optical_flow, warping_error

if TYPE_CHECKING:
    import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
TOL = 1e-4
# Published by the LPIPS authors' example (and verified in ../shared/README.md): LPIPS(alex, v0.1).
LPIPS_REF = {"ex_p0": 0.72188, "ex_p1": 0.13757}


def shared_file(*parts: str) -> Path:
    """A file of ../shared/; skip if absent, except under CI=true where its absence is a failure."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared file {path} is missing")
        pytest.skip(f"{path} not present (the shared/ folder is expected beside the repository root)")
    return path


def read_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def sk_ssim_255(a: np.ndarray, b: np.ndarray, channel_axis: int | None = -1) -> float:
    """scikit-image SSIM with the conventions of Wang et al. on [0, 255] float64 data."""
    return sk_ssim(
        a.astype(np.float64),
        b.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=channel_axis,
    )


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def degradations(img: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    noisy = np.clip(np.round(img + rng.normal(0, 12, img.shape)), 0, 255).astype(np.uint8)
    return {"blur": cv2.GaussianBlur(img, (7, 7), 1.6), "noise": noisy, "jpeg": jpeg(img, 20)}


# ---------------------------------------------------------------------------------------------- image


def test_psnr_ssim_match_skimage_on_set5_photos():
    folder = shared_file("data", "set5")
    paths = sorted(folder.glob("*.png"))
    assert len(paths) == 5, f"expected the five Set5 photos in {folder}"
    rng = np.random.default_rng(0)
    max_dp = max_ds = 0.0
    ssims = []
    for path in paths:
        ref = read_rgb(path)
        for name, deg in degradations(ref, rng).items():
            p, s = psnr(deg, ref), ssim(deg, ref)
            max_dp = max(max_dp, abs(p - sk_psnr(ref, deg, data_range=255)))
            max_ds = max(max_ds, abs(s - sk_ssim_255(deg, ref)))
            assert 15 < p < 45, (path.name, name, p)
            ssims.append(s)
    assert max_dp < TOL, max_dp
    assert max_ds < TOL, max_ds
    assert 0.3 < min(ssims) and max(ssims) < 1.0


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 48, 3), (29, 31)])
def test_psnr_ssim_match_skimage_on_random_images(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    axis = -1 if len(shape) == 3 else None
    assert abs(psnr(a, b) - sk_psnr(a, b, data_range=255)) < TOL
    assert abs(ssim(a, b) - sk_ssim_255(a, b, axis)) < TOL
    # Floats in [0, 1], not quantised: the same as skimage on x * 255.
    af, bf = rng.random(shape), rng.random(shape)
    assert abs(psnr(af, bf, quantize=False) - sk_psnr(af * 255, bf * 255, data_range=255)) < TOL
    assert abs(ssim(af, bf, quantize=False) - sk_ssim_255(af * 255, bf * 255, axis)) < TOL


def test_ssim_against_brute_force_windows():
    """Independent of the separable filtering: every valid 11x11 window, weighted statistics by hand."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (16, 14), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 61, a.shape), 0, 255).astype(np.uint8)
    x = np.arange(11) - 5
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    w = g / g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11].astype(float), b[i : i + 11, j : j + 11].astype(float)
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    assert len(vals) == 6 * 4
    assert abs(ssim(a, b) - float(np.mean(vals))) < 1e-9
    np.testing.assert_allclose(np.outer(gaussian_window_1d(), gaussian_window_1d()), w, atol=1e-15)


def _ref_y(img_u8: np.ndarray) -> np.ndarray:
    r, g, b = (img_u8[..., i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def test_y_channel_and_crop_border_conventions():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    # BT.601 studio range: black -> 16, white -> 235.
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.full((1, 1, 3), 255.0))[0, 0] == pytest.approx(235.0)
    np.testing.assert_allclose(rgb_to_y(a.astype(np.float64)), _ref_y(a), atol=1e-9)

    crop = 4
    ya, yb = _ref_y(a)[crop:-crop, crop:-crop], _ref_y(b)[crop:-crop, crop:-crop]
    ref_psnr = 10 * math.log10(255.0**2 / np.mean((ya - yb) ** 2))
    assert psnr(a, b, crop_border=crop, y_channel=True) == pytest.approx(ref_psnr, abs=1e-9)
    assert ssim(a, b, crop_border=crop, y_channel=True) == pytest.approx(sk_ssim_255(ya, yb, None), abs=TOL)
    # RGB with crop: the plain slice.
    ac, bc = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    ref_rgb = 10 * math.log10(255.0**2 / np.mean((ac.astype(float) - bc) ** 2))
    assert psnr(a, b, crop_border=crop) == pytest.approx(ref_rgb, abs=1e-9)
    # Differences only inside the cropped border do not count.
    c = a.copy()
    c[:crop] = 255 - c[:crop]
    c[:, -crop:] = 0
    assert psnr(a, c) < 30
    assert psnr(a, c, crop_border=crop) == math.inf
    assert ssim(a, c, crop_border=crop, y_channel=True) == pytest.approx(1.0)
    # Y differs from RGB on a colour-only change that keeps luma nearly constant.
    assert psnr(a, b, y_channel=True) != pytest.approx(psnr(a, b), abs=0.1)


def test_quantisation_and_input_types():
    rng = np.random.default_rng(11)
    a8 = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    b8 = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    # A float image off the 8-bit grid: quantize=True rounds it to the uint8 image.
    af = (a8 + rng.uniform(-0.4, 0.4, a8.shape)) / 255.0
    assert psnr(af, b8 / 255.0) == pytest.approx(psnr(a8, b8), abs=1e-12)
    assert ssim(af, b8 / 255.0) == pytest.approx(ssim(a8, b8), abs=1e-12)
    assert psnr(af, b8 / 255.0, quantize=False) != psnr(a8, b8)
    assert psnr(af.astype(np.float32), b8 / 255.0) == pytest.approx(psnr(a8, b8), abs=1e-12)
    assert psnr(a8, a8) == math.inf and ssim(a8, a8) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a8, a8[:-1])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a8, b8, crop_border=7)
    with pytest.raises(TypeError, match="uint8"):
        psnr(a8.astype(np.int32), b8.astype(np.int32))


def test_mean_colour_error_sees_a_cast_not_noise():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 48, 3)).astype(np.uint8)
    cast = image.astype(np.int64)
    cast[..., 0] += 10  # a red cast of 10 levels (clipped at 255 where it overflows)
    cast = np.clip(cast, 0, 255).astype(np.uint8)
    expected = float(cast[..., 0].astype(float).mean() - image[..., 0].astype(float).mean())
    assert mean_colour_error(cast, image) == pytest.approx(expected) and 9 < expected < 10
    # zero-mean noise moves the mean colour by far less than a level
    noisy = np.clip(image + rng.normal(0, 5, image.shape), 0, 255).round().astype(np.uint8)
    assert mean_colour_error(noisy, image) < 0.5
    # floats in [0, 1] are on the 8-bit scale
    assert mean_colour_error(image / 255.0, image) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="shapes differ"):
        mean_colour_error(image, image[:16])


def test_frame_psnr_ssim_still_available():
    import torch

    from src.metrics import frame_psnr_ssim

    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32)
    frames = torch.stack([target, (target + 0.1 * torch.randn_like(target)).clamp(0, 1)], dim=1)
    p, s = frame_psnr_ssim(frames, target)
    assert p.shape == (2, 2) and s.shape == (2, 2)
    assert torch.all(s[:, 0] > 0.999) and torch.all(s[:, 1] < 0.99)
    assert torch.all(p[:, 1] < 25) and torch.all(p[:, 0] > p[:, 1])


# ---------------------------------------------------------------------------------------------- LPIPS


def _examples() -> dict[str, torch.Tensor]:
    import torch

    out = {}
    for name in ("ex_ref", "ex_p0", "ex_p1"):
        img = read_rgb(shared_file("data", "lpips_examples", f"{name}.png"))
        assert img.shape == (64, 64, 3)
        out[name] = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    return out


@pytest.mark.parametrize("lin_source", ["shared", "package"])
def test_lpips_reference_values(lin_source, monkeypatch):
    import torch

    from src.metrics.lpips import LIN_ENV, default_lin_path, load_lpips

    alexnet = shared_file("weights", "lpips", "alexnet_features.pth")
    monkeypatch.delenv(LIN_ENV, raising=False)
    if lin_source == "shared":
        lin = shared_file("weights", "lpips", "lpips_v0.1_alex_lin.pth")
    else:
        lin = None  # default: the installed lpips package's weights/v0.1/alex.pth
        pkg = default_lin_path()
        if pkg is None or not pkg.is_file():
            if os.environ.get("CI") == "true":
                pytest.fail("CI=true but the lpips package (weights source) is not installed")
            pytest.skip("lpips package not installed (`pip install --no-deps lpips==0.1.4`)")
    model = load_lpips(alexnet, lin)
    assert model is not None
    ex = _examples()
    with torch.no_grad():
        for name, ref in LPIPS_REF.items():
            value = model(ex["ex_ref"], ex[name])
            assert value.shape == (1,)
            assert abs(float(value) - ref) < TOL, (name, float(value))
        batch = model(torch.cat([ex["ex_ref"]] * 2), torch.cat([ex["ex_p0"], ex["ex_p1"]]))
        np.testing.assert_allclose(batch.numpy(), list(LPIPS_REF.values()), atol=TOL)
        assert float(model(ex["ex_p1"], ex["ex_ref"])) == pytest.approx(LPIPS_REF["ex_p1"], abs=TOL)
        assert float(model(ex["ex_ref"], ex["ex_ref"])) == 0.0
    # Importing lpips would import torchvision, which cannot load here: neither may be imported.
    assert "lpips" not in sys.modules and "torchvision" not in sys.modules


def test_lpips_weights_from_env_and_torchvision_checkpoint(tmp_path, monkeypatch):
    import torch

    from src.metrics.lpips import ALEXNET_ENV, LIN_ENV, load_lpips

    alexnet = shared_file("weights", "lpips", "alexnet_features.pth")
    lin = shared_file("weights", "lpips", "lpips_v0.1_alex_lin.pth")
    # A full torchvision checkpoint also has the classifier: it must load as well (trunk only used).
    full = dict(torch.load(alexnet, weights_only=True))
    full["classifier.1.weight"] = torch.zeros(4096, 9216)
    full["classifier.1.bias"] = torch.zeros(4096)
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(full, hub / "alexnet-owt-7be5be79.pth")
    monkeypatch.delenv(ALEXNET_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PROGRESTORE_SHARED", str(tmp_path))  # no shared LPIPS trunk either
    monkeypatch.setenv(LIN_ENV, str(lin))
    model = load_lpips()
    assert model is not None
    ex = _examples()
    assert float(model(ex["ex_ref"], ex["ex_p0"])) == pytest.approx(LPIPS_REF["ex_p0"], abs=TOL)
    # Frozen metric: no gradients, stays in eval mode.
    model.train()
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_load_lpips_missing_files_warns_once(tmp_path, monkeypatch):
    from src.metrics.lpips import ALEXNET_ENV, LIN_ENV, load_lpips

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PROGRESTORE_SHARED", str(tmp_path))  # no shared LPIPS trunk either
    monkeypatch.delenv(ALEXNET_ENV, raising=False)
    monkeypatch.delenv(LIN_ENV, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_lpips() is None
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert str(tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in msg
    assert ALEXNET_ENV in msg

    missing_lin = tmp_path / "nope.pth"
    monkeypatch.setenv(LIN_ENV, str(missing_lin))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_lpips(alexnet_path=tmp_path / "alex.pth") is None
    assert len(caught) == 1
    assert str(missing_lin) in str(caught[0].message) and LIN_ENV in str(caught[0].message)


# ---------------------------------------------------------------------------------------------- temporal


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    """A real photograph (scikit-image's bundled astronaut), 128x128 for speed."""
    import skimage.data

    return cv2.resize(skimage.data.astronaut(), (128, 128), interpolation=cv2.INTER_AREA)


def test_static_video_is_perfectly_consistent(texture):
    video = np.stack([texture] * 4)
    err, per_pair = warping_error(video)
    fl, fl_pairs = flicker(video)
    assert err == 0.0 and per_pair == [0.0, 0.0, 0.0]
    assert fl == 0.0 and fl_pairs == [0.0, 0.0, 0.0]


def test_translation_is_compensated_by_the_flow(texture):
    video = np.stack([np.roll(texture, (2 * t, 3 * t), axis=(0, 1)) for t in range(4)])
    err, per_pair = warping_error(video)
    f = video.astype(np.float64) / 255.0
    naive = float(np.mean(np.sum((f[1:] - f[:-1]) ** 2, axis=-1)))
    assert len(per_pair) == 3
    assert naive > 0.05
    assert err < 0.02 * naive, (err, naive)
    # The flow finds the shift (dx=3, dy=2) and most pixels are trusted.
    fw, bw = optical_flow(video[0], video[1]), optical_flow(video[1], video[0])
    assert np.median(fw[..., 0]) == pytest.approx(3, abs=0.1)
    assert np.median(fw[..., 1]) == pytest.approx(2, abs=0.1)
    assert non_occlusion_mask(fw, bw).mean() > 0.8
    # Deterministic.
    assert warping_error(video) == (err, per_pair)
    # Brightness flicker on top of the motion is not compensated: larger error.
    flick = np.stack([np.clip(v.astype(int) + (25 if t % 2 else -25), 0, 255) for t, v in enumerate(video)])
    assert warping_error(flick.astype(np.uint8))[0] > 10 * err


def test_flicker_separates_random_flicker_from_a_smooth_ramp(texture):
    rng = np.random.default_rng(5)
    base = texture.astype(np.float64) * 0.6 + 40.5  # in [40, 194]: no clipping below
    ramp = np.stack([(base + (-20 + 5 * t)).astype(np.uint8) for t in range(9)])
    # Random per-frame brightness offsets, alternating in sign (each step moves at least 10 levels).
    offsets = np.where(np.arange(9) % 2 == 1, 1.0, -1.0) * rng.uniform(5, 20, 9)
    random_flicker = np.stack([np.clip(base + o, 0, 255).astype(np.uint8) for o in offsets])
    ramp_score, ramp_pairs = flicker(ramp)
    flick_score, _ = flicker(random_flicker)
    # A uniform brightness step of d grey levels scores d.
    assert ramp_score == pytest.approx(5.0, abs=1e-3)
    assert len(ramp_pairs) == 8
    assert flick_score > 1.5 * ramp_score
    with pytest.raises(ValueError, match="at least 2 frames"):
        flicker(ramp[:1])


# ---------------------------------------------------------------------------------------------- CLI


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "src.metrics", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_prints_json_with_lpips():
    ref = shared_file("data", "lpips_examples", "ex_ref.png")
    p0 = shared_file("data", "lpips_examples", "ex_p0.png")
    env = {
        "PROGRESTORE_ALEXNET_WEIGHTS": str(shared_file("weights", "lpips", "alexnet_features.pth")),
        "PROGRESTORE_LPIPS_LIN_WEIGHTS": str(shared_file("weights", "lpips", "lpips_v0.1_alex_lin.pth")),
    }
    res = run_cli(str(ref), str(p0), "--y-channel", env_extra=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out) >= {"psnr", "ssim", "lpips", "conventions"}
    a, b = read_rgb(ref), read_rgb(p0)
    assert out["lpips"] == pytest.approx(LPIPS_REF["ex_p0"], abs=TOL)
    assert out["psnr"] == pytest.approx(psnr(a, b, y_channel=True), abs=1e-9)
    assert out["ssim"] == pytest.approx(ssim(a, b, y_channel=True), abs=1e-9)
    assert out["conventions"]["channels"].startswith("Y") and out["conventions"]["crop_border"] == 0
    assert out["conventions"]["lpips"]["net"] == "alex" and out["conventions"]["lpips"]["version"] == "0.1"


def test_cli_crop_border_and_missing_lpips_weights(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    other = np.clip(img.astype(int) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(other).save(tmp_path / "b.png")
    env = {
        "TORCH_HOME": str(tmp_path),
        "PROGRESTORE_SHARED": str(tmp_path),  # no shared AlexNet trunk: the torch hub path is reported
        "PROGRESTORE_ALEXNET_WEIGHTS": "",
        "PROGRESTORE_LPIPS_LIN_WEIGHTS": str(tmp_path / "missing_lin.pth"),
    }
    res = run_cli(str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--crop-border", "3", env_extra=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["lpips"] is None
    assert out["psnr"] == pytest.approx(psnr(img, other, crop_border=3), abs=1e-9)
    assert out["ssim"] == pytest.approx(ssim(img, other, crop_border=3), abs=1e-9)
    assert out["psnr"] != pytest.approx(psnr(img, other), abs=1e-6)
    assert out["conventions"]["crop_border"] == 3
    # One warning line naming both missing files and how to provide them; no traceback.
    assert "alexnet-owt-7be5be79.pth" in res.stderr and "missing_lin.pth" in res.stderr
    assert "PROGRESTORE_ALEXNET_WEIGHTS" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("case", ["corrupt", "not_an_image", "missing", "size_mismatch"])
def test_cli_bad_input_exits_2_with_one_line(case, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    if case == "corrupt":
        bad.write_bytes(good.read_bytes()[:60])  # truncated PNG
        expected = "cannot read image"
    elif case == "not_an_image":
        bad.write_text("not an image\n")
        expected = "cannot read image"
    elif case == "missing":
        expected = "file not found"
    else:
        Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(bad)
        expected = "sizes differ"
    res = run_cli(str(bad), str(good))
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], res.stderr
    assert str(bad) in lines[0]


def test_frame_metrics_schema_has_one_owner(tmp_path):
    """make -> write -> read round-trips; frames and the with/without-frame-1 means are derived
    (never hand-written by a producer); malformed files name themselves."""
    from src.metrics import frame_metrics
    from src.utils.cli import InputError

    psnr, ssim, lpips = [10.0, 12.0, 14.0], [0.3, 0.4, 0.5], [0.6, 0.5, 0.4]
    data = frame_metrics.make("sr", "uniform", psnr, ssim, lpips, 2, global_step=7)
    assert data["frames"] == [1, 2, 3] and data["global_step"] == 7
    assert data["mean"] == {
        "psnr_f1_3": 12.0,
        "psnr_f2_3": 13.0,
        "ssim_f1_3": pytest.approx(0.4),
        "ssim_f2_3": pytest.approx(0.45),
        "lpips_f1_3": pytest.approx(0.5),
        "lpips_f2_3": pytest.approx(0.45),
    }
    assert "lpips_f1_3" not in frame_metrics.make("sr", "uniform", psnr, ssim, None, 2)["mean"]
    path = frame_metrics.write(tmp_path, data)
    assert path.name == frame_metrics.FILE_NAME and frame_metrics.read(path) == data
    with pytest.raises(ValueError):
        frame_metrics.make("sr", "uniform", psnr, ssim[:2], None, 2)
    path.write_text('{"psnr": [1, 2], "ssim": [1]}')
    with pytest.raises(InputError, match=f"malformed {path}.*'ssim' has 1 values"):
        frame_metrics.read(path)
