"""The linear latent codec of the tiny models (src/models/codec.py): the VAE interface both
diffusers pipelines read, mean colour kept by a round trip, a deterministic fit, the shipped
codecs' reconstruction of held-out Set5 progression clips, block edges measured and mended."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from src.models import recipe
from src.models.codec import (
    CODEC_GEOMETRY,
    LinearVideoCodec,
    blockiness,
    build_codec,
    codec_config,
    deblock,
    mean_colour_error,
)
from src.models.tiny import DEFAULT_WEIGHTS, TINY_ARCHITECTURE, build_tiny_components, load_tiny, save_tiny

H, W, F = 64, 112, 9
FAMILIES = ("tiny", "tiny_wan")


def _smooth_clips(count: int, seed: int, frames: int = F) -> torch.Tensor:
    """(B, 3, F, H, W) in [-1, 1]: smooth random colour fields, gently changing over time."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 1, H // 8, W // 8, generator=g)
    base = torch.nn.functional.interpolate(coarse[:, :, 0], size=(H, W), mode="bicubic", align_corners=False)
    ramp = torch.linspace(0.6, 1.0, frames).view(1, 1, frames, 1, 1)
    detail = 0.05 * torch.rand(count, 3, 1, H, W, generator=g)
    return ((base.unsqueeze(2) * ramp + detail).clamp(0, 1)) * 2 - 1


def _fitted(family: str, seed: int = 0, **overrides) -> LinearVideoCodec:
    codec = build_codec(codec_config(**{**CODEC_GEOMETRY[family], **overrides}))
    codec.fit([_smooth_clips(8, seed + k) for k in range(3)], {"seed": seed})
    return codec


@pytest.mark.parametrize("family", FAMILIES)
def test_vae_interface_the_pipelines_read(family):
    codec = _fitted(family)
    geometry = CODEC_GEOMETRY[family]
    p, c = geometry["patch_size"], geometry["latent_channels"]
    cfg = codec.config
    assert 2 ** (len(cfg.block_out_channels) - 1) == p  # CogVideoX pipeline's spatial factor
    assert cfg.scale_factor_spatial == p and cfg.scale_factor_temporal == cfg.temporal_compression_ratio == 4
    assert cfg.z_dim == c and len(cfg.latents_mean) == len(cfg.latents_std) == c
    assert cfg.invert_scale_latents is False and cfg.scaling_factor == 1.0
    video = _smooth_clips(2, 7)
    posterior = codec.encode(video).latent_dist
    assert posterior.mean.shape == (2, c, 3, H // p, W // p)
    assert torch.equal(posterior.sample(generator=torch.Generator().manual_seed(0)), posterior.mode())
    image = codec.encode(video[:, :, :1]).latent_dist.mode()  # the first frame alone, as I2V encodes it
    assert torch.allclose(image, posterior.mode()[:, :, :1], atol=1e-5)
    (decoded,) = codec.decode(posterior.mode(), return_dict=False)
    assert decoded.shape == video.shape
    assert torch.equal(decoded, codec.decode(posterior.mode()).sample)
    codec.enable_slicing(), codec.enable_tiling()  # no-ops: the same numbers
    assert torch.equal(codec.decode(posterior.mode()).sample, decoded)
    # whitened: unit variance per channel on the fitting distribution
    fit_like = codec.encode(_smooth_clips(8, 0)).latent_dist.mode()
    std = fit_like[:, :, 1:].transpose(0, 1).reshape(c, -1).std(1)
    assert std[:3].min() > 0.5 and std[:3].max() < 2.0
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        codec.encode(video[:, :, :4])
    with pytest.raises(ValueError, match="contradicts"):
        LinearVideoCodec(
            **{k: v for k, v in codec_config(4, 4, 16).items() if k != "_class_name"} | {"z_dim": 8}
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_keeps_each_frames_mean_colour(family):
    """Exact for the first frame and for any per-frame colour change linear within a group of
    four frames (fixed basis directions); colour stays within 0.5 levels on such clips."""
    codec = _fitted(family)
    g = torch.Generator().manual_seed(3)
    still = torch.rand(2, 3, 1, H, W, generator=g) * 1.6 - 0.8  # white noise: the hardest content
    gains = torch.linspace(0.3, 1.0, F).view(1, 1, F, 1, 1)  # an exposure ramp
    video = still * gains
    decoded = codec.decode(codec.encode(video).latent_dist.mode()).sample
    error = mean_colour_error((decoded + 1) / 2, (video + 1) / 2)  # unclamped: the code's own error
    assert error < 0.5
    # but the reconstruction itself is lossy on white noise: the test is not trivially satisfied
    assert (decoded - video).abs().mean() > 0.05


@pytest.mark.parametrize("family", FAMILIES)
def test_refit_with_the_same_seed_gives_the_same_basis(family):
    a, b, other = _fitted(family, seed=0), _fitted(family, seed=0), _fitted(family, seed=5)
    for name in ("first_basis", "group_basis", "first_scale", "group_scale", "group_mean"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a.group_basis[6:], other.group_basis[6:], atol=1e-3)
    rows = a.group_basis.double()
    torch.testing.assert_close(
        rows @ rows.T, torch.eye(rows.shape[0], dtype=torch.float64), atol=1e-5, rtol=0
    )
    assert a.config.fit["seed"] == 0 and a.config.fit["clips"] == 24


def test_both_pipelines_run_with_the_codec_unchanged():
    """The stock CogVideoXImageToVideoPipeline and WanImageToVideoPipeline sample through it."""
    from src.models.wan_architecture import build_tiny_wan_components, wan_pipeline

    torch.manual_seed(0)
    image = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(1))
    for components, pipeline in (
        (c := build_tiny_components(), recipe.i2v_pipeline(c)),
        (w := build_tiny_wan_components(), wan_pipeline(w)),
    ):
        assert isinstance(components.vae, LinearVideoCodec)
        frames = pipeline(
            image=image,
            prompt="a test",
            height=H,
            width=W,
            num_frames=F,
            num_inference_steps=2,
            guidance_scale=1.0,
            generator=torch.Generator().manual_seed(7),
            output_type="pt",
            max_sequence_length=components.max_sequence_length,
        ).frames
        assert frames.shape == (1, F, 3, H, W) and torch.isfinite(frames).all()


def test_fitted_codec_survives_the_tiny_model_file(tmp_path):
    components = build_tiny_components(copy.deepcopy(TINY_ARCHITECTURE))
    codec = _fitted("tiny")
    components.vae.load_state_dict(codec.state_dict())
    path = tmp_path / "tiny.safetensors"
    save_tiny(components, path, TINY_ARCHITECTURE)
    loaded, _ = load_tiny(path)
    for name, value in codec.state_dict().items():
        assert torch.equal(loaded.vae.state_dict()[name], value), name  # fp32 in the file: exact


def test_blockiness_and_deblock():
    smooth = torch.rand(1, 3, F, H, W, generator=torch.Generator().manual_seed(2)) * 0.2  # no grid
    assert blockiness(smooth, 4) == pytest.approx(1.0, abs=0.05)
    blocky = smooth + 0.3 * torch.rand(1, 3, F, H // 4, W // 4).repeat_interleave(4, 3).repeat_interleave(
        4, 4
    )
    assert blockiness(blocky, 4) > 1.5
    mended = deblock(blocky, 4, 0.5)
    assert blockiness(mended, 4) < blockiness(blocky, 4)
    assert (mended - smooth).pow(2).mean() < (blocky - smooth).pow(2).mean()
    # inside a patch, two pixels or more from its edges, nothing changes
    mended8 = deblock(blocky, 8, 0.5)
    assert torch.equal(mended8[..., 2:6, 2:6], blocky[..., 2:6, 2:6])
    assert not torch.equal(mended8[..., 6:10, :], blocky[..., 6:10, :])


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_codec_reconstructs_held_out_set5_progressions(family, set5_images):
    """The acceptance of the codec on photographs it never saw: frames 2-9 of Set5 progression
    clips (sr, deblur, lowlight at the paper's schedules) at least 30 dB; frame 1 keeps its mean
    colour (exact directions)."""
    from src.data.degradations import TASKS, DegradationPreset, make_clip
    from src.data.images import fit_to_output
    from src.utils.frames import to_float_tensor

    weights = DEFAULT_WEIGHTS if family == "tiny" else DEFAULT_WEIGHTS.parent / "tiny_wan_ti2v.safetensors"
    build = None
    if family == "tiny_wan":
        from src.models.wan_architecture import build_tiny_wan_components as build
    components, _ = load_tiny(weights, build=build)
    codec = components.vae
    assert isinstance(codec, LinearVideoCodec)
    clips = []
    for task in TASKS:
        for key in sorted(set5_images):
            clean, _ = fit_to_output(set5_images[key], H, W)
            frames, _ = make_clip(clean, task, np.random.default_rng(11), DegradationPreset(), F)
            clips.append(to_float_tensor(frames))
    batch = torch.stack(clips)
    with torch.no_grad():
        rec = recipe.from_vae_video(
            codec.decode(codec.encode(recipe.to_vae_video(batch)).latent_dist.mode()).sample
        )
    mse = (rec[:, 1:] - batch[:, 1:]).pow(2).mean()
    assert 10 * torch.log10(1 / mse) >= 30.0
    assert mean_colour_error(rec[:, :1], batch[:, :1]) < 0.5


def test_decode_deblocks_the_token_grid_when_asked():
    """``deblock`` > 0 smooths across the lines of ``deblock_grid`` (default: the transformer's
    token grid, twice the codec's patch) and leaves pixels away from them alone."""
    codec = _fitted("tiny")
    assert codec.config.deblock == 0.0 and codec.config.deblock_grid == 8
    z = torch.randn(1, 16, 3, H // 4, W // 4, generator=torch.Generator().manual_seed(4))
    plain = codec.decode(z).sample
    codec.register_to_config(deblock=0.5)
    mended = codec.decode(z).sample
    assert blockiness(mended, 8) < blockiness(plain, 8)
    changed = (mended != plain).any(dim=(0, 1, 2))  # (H, W)
    near = torch.tensor([6, 7, 0, 1])  # two pixels either side of a grid line
    rows = torch.isin(torch.arange(H) % 8, near).view(-1, 1)
    cols = torch.isin(torch.arange(W) % 8, near).view(1, -1)
    assert changed.any() and not (changed & ~(rows | cols)).any()


def test_first_frame_reference_keeps_a_still_scene_as_well_as_its_first_frame():
    """temporal_reference="first": groups are coded relative to the decoded first frame, so a
    still scene's later frames come back as well as frame 1 (the block-diagonal code, which
    spends its group channels on the frames themselves, does worse on them)."""
    still = _smooth_clips(2, 9)[:, :, :1].repeat(1, 1, F, 1, 1)
    scores = {}
    for reference in ("none", "first"):
        codec = _fitted("tiny", temporal_reference=reference)
        decoded = codec.decode(codec.encode(still).latent_dist.mode()).sample
        error = (decoded - still).pow(2).mean(dim=(0, 1, 3, 4))  # per frame
        scores[reference] = (error[0].item(), error[1:].max().item())
    first_error, rest_error = scores["first"]
    assert rest_error <= first_error * 1.05
    assert scores["none"][1] > 1.2 * rest_error
