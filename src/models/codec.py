"""A linear latent codec for the tiny models: the frozen autoencoder of the tiny CogVideoX and the
tiny Wan2.2, in place of their learned tiny VAEs.

Why. The VAE is frozen in every run of the method, so the platform's CPU instrument needs a good
frozen autoencoder with the family's latent geometry, not a learned one. The learned tiny VAEs
reconstructed Set5 at 23.7 dB (tiny CogVideoX) and 17.9 dB (tiny Wan) after 20-23 minutes of
training, below the degraded inputs the models must beat; a linear codec fitted in seconds codes
the same clips at over 30 dB (``experiments/codec.json``, ``make bench-codec``).

What. The Karhunen-Loeve transform (principal components, the optimal linear code in MSE) of
non-overlapping spatio-temporal patches, in the causal layout of the real video VAEs: the first
frame alone (p x p pixels x 3 colours -> C channels), then groups of 4 frames (p x p x 4 x 3 ->
C). Geometry: tiny CogVideoX p = 4, C = 16; tiny Wan p = 8, C = 48 (its VAE's 2x2 patchify and
two down stages make the same 8x). Some directions of each basis are fixed: for the first frame,
the patch's mean colour (3); for a group, the mean colour and its linear change over the 4
frames (6, ``temporal_mean_order`` 1). A round trip therefore keeps each patch's mean colour, and
each frame's whenever the colour changes linearly inside a group (static scenes, exposure
ramps), exactly; the other directions are the leading principal components of what the fixed
ones leave. Measured while choosing (45 Set5 progression clips, a 320-clip fit): order 0 let per-frame mean
colours drift by up to 5.2 levels; order 1 keeps them within 1.2 levels at 0.6 dB of PSNR (tiny
CogVideoX; none for the tiny Wan); order 3 (all 12 per-frame colour means fixed) is exact but
leaves the 16-channel code 2.6 dB lower, below 30 dB.

Channels are whitened: coefficient k is divided by its standard deviation on the fitting clips,
so every latent channel has unit variance. The diffusion schedules of both families were designed
for latents of roughly unit variance per channel (CogVideoX's ``scaling_factor``, Wan's
per-channel ``latents_std``); unwhitened principal coefficients span about three orders of
magnitude in std, so at any noise level the fine-detail channels would be pure noise while the
mean-colour channels were still almost clean. Whitened, every channel has the same signal-to-noise
ratio at each timestep, and the noise the sampler adds has the spectrum of the data.

Interface: exactly what ``CogVideoXImageToVideoPipeline`` and ``WanImageToVideoPipeline`` read
from their VAE. ``encode(x)`` with x (B, 3, F, H, W) in [-1, 1], F = 1 + 4k, returns an object
with ``latent_dist`` (a deterministic diagonal Gaussian: ``sample()`` = ``mode()`` = the code,
logvar -30); ``decode(z)`` returns ``.sample`` (or a tuple with ``return_dict=False``); the
config carries ``block_out_channels`` (its length gives CogVideoX's 4x), ``temporal_compression_ratio``,
``scaling_factor`` / ``invert_scale_latents`` (CogVideoX), ``z_dim`` / ``latents_mean`` /
``latents_std`` / ``scale_factor_spatial`` / ``scale_factor_temporal`` (Wan); slicing and tiling
are no-ops (the codec is patch-local: tiles would give the same result).

Decoding each latent through a patch-local linear map shows a grid as block edges once the
latents come from a sampler rather than an encoder, strongest on the transformer's token grid
(its 2x2 latent patches: 8 px for the tiny CogVideoX, 16 px for the tiny Wan), where each token's
output projection makes its own errors. :func:`blockiness` measures them; the ``deblock`` filter
(a fixed smoothing across the lines of ``deblock_grid``, default the token grid, strength
``deblock``; 0 = off) mends them. Measured on the default runs' Set5 evaluations (tiny CogVideoX,
``experiments/benchmarks/deblock_default_runs.md``): strength 0.5 on the 8 px grid raised the last frame's PSNR
by 0.26-0.33 dB and lowered its LPIPS in all three tasks; on the 4 px codec grid, or both grids,
it helped less or cost sr's LPIPS.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin

CODEC_CLASS_NAME = "LinearVideoCodec"

# The geometries of the two tiny families (latent channels, spatial patch, temporal patch).
# temporal_reference "first" codes groups relative to the decoded first frame (a still scene's
# groups code to ~0). Chosen per family by measurement (experiments/benchmarks/codec.md): it kept
# still scenes better for both, and restored better for the tiny Wan (sr, deblur); for the tiny
# CogVideoX its default runs restored worse (deblur 19.5 vs 21.1 dB, lowlight 16.2 vs 19.4 dB).
CODEC_GEOMETRY = {
    "tiny": {"patch_size": 4, "temporal_patch": 4, "latent_channels": 16, "temporal_reference": "none"},
    "tiny_wan": {"patch_size": 8, "temporal_patch": 4, "latent_channels": 48, "temporal_reference": "first"},
}


def codec_config(patch_size: int, temporal_patch: int, latent_channels: int, **extra) -> dict:
    """The config of a :class:`LinearVideoCodec` (the ``vae`` entry of a tiny architecture):
    the codec's own keys plus the keys each family's pipeline reads, consistent with them."""
    if patch_size < 1 or patch_size & (patch_size - 1):
        raise ValueError(f"patch_size must be a power of 2, got {patch_size}")
    levels = int(math.log2(patch_size))
    return {
        "_class_name": CODEC_CLASS_NAME,
        "patch_size": patch_size,
        "temporal_patch": temporal_patch,
        "latent_channels": latent_channels,
        # CogVideoX pipeline: vae_scale_factor_spatial = 2 ** (len(block_out_channels) - 1)
        "block_out_channels": [latent_channels] * (levels + 1),
        "temporal_compression_ratio": temporal_patch,
        "scaling_factor": 1.0,
        "invert_scale_latents": False,
        # Wan pipeline
        "scale_factor_spatial": patch_size,
        "scale_factor_temporal": temporal_patch,
        "z_dim": latent_channels,
        "latents_mean": [0.0] * latent_channels,
        "latents_std": [1.0] * latent_channels,
        "deblock": 0.0,
        "deblock_grid": 2 * patch_size,
        "temporal_mean_order": 1,
        **extra,
    }


def is_codec_config(vae_config) -> bool:
    return dict(vae_config).get("_class_name") == CODEC_CLASS_NAME


class LinearVideoCodec(ModelMixin, ConfigMixin):
    """Patch-local linear encoder/decoder with a causal first frame (see the module docstring).

    Buffers (all in the state dict, so a tiny-model file carries the fitted basis):
    ``first_basis`` (C, 3p^2), ``first_mean`` (3p^2), ``first_scale`` (C) and the same three for
    groups of ``temporal_patch`` frames (``group_*``, vectors of 3 T p^2). Patch vectors are
    flattened in (colour, frame, row, column) order. Encoding: ``z = basis (x - mean) / scale``;
    decoding: ``x = mean + basis^T (z * scale)``.
    """

    config_name = "config.json"
    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        patch_size: int = 4,
        temporal_patch: int = 4,
        latent_channels: int = 16,
        block_out_channels: tuple = (16, 16, 16),
        temporal_compression_ratio: int = 4,
        scaling_factor: float = 1.0,
        invert_scale_latents: bool = False,
        scale_factor_spatial: int = 4,
        scale_factor_temporal: int = 4,
        z_dim: int = 16,
        latents_mean: tuple | None = None,
        latents_std: tuple | None = None,
        deblock: float = 0.0,
        deblock_grid: int | None = None,
        temporal_mean_order: int = 1,
        temporal_reference: str = "none",
        fit: dict | None = None,
    ):
        super().__init__()
        p, t, c = patch_size, temporal_patch, latent_channels
        expected = codec_config(p, t, c)
        for key in (
            "block_out_channels",
            "temporal_compression_ratio",
            "scale_factor_spatial",
            "scale_factor_temporal",
            "z_dim",
        ):
            value = locals()[key]
            value = list(value) if isinstance(value, (list, tuple)) else value
            if value != expected[key]:
                raise ValueError(
                    f"codec config: {key}={value} contradicts patch_size={p}, temporal_patch={t}, latent_channels={c} (expected {expected[key]})"
                )
        first_dim, group_dim = 3 * p * p, 3 * t * p * p
        if temporal_reference not in ("none", "first"):
            raise ValueError(
                f"codec: temporal_reference must be 'none' or 'first', got {temporal_reference!r}"
            )
        fixed = 3 * (min(temporal_mean_order, t - 1) + 1)
        if temporal_mean_order < 0 or c <= fixed or c > first_dim:
            raise ValueError(
                f"codec: latent_channels must be in ({fixed}, {first_dim}] and temporal_mean_order >= 0, "
                f"got {c} and {temporal_mean_order}"
            )
        # an unfitted codec: mean-colour channels then the first remaining coordinates (fit() replaces it)
        order = temporal_mean_order
        self.register_buffer("first_basis", _default_basis(first_dim, c, 1, p, order))
        self.register_buffer("first_mean", torch.zeros(first_dim))
        self.register_buffer("first_scale", torch.ones(c))
        self.register_buffer("group_basis", _default_basis(group_dim, c, t, p, order))
        self.register_buffer("group_mean", torch.zeros(group_dim))
        self.register_buffer("group_scale", torch.ones(c))
        self.use_slicing = False
        self.use_tiling = False

    # -- no-ops the pipelines and the project may call ------------------------------------------
    def enable_slicing(self) -> None:
        self.use_slicing = True  # patch-local: one sample at a time changes nothing

    def disable_slicing(self) -> None:
        self.use_slicing = False

    def enable_tiling(self, *args, **kwargs) -> None:
        self.use_tiling = True  # patch-local: tiles aligned to patches give the same result

    def disable_tiling(self) -> None:
        self.use_tiling = False

    # -- patches ----------------------------------------------------------------------------------
    def _patches(self, video_bcfhw: torch.Tensor, frames: int) -> torch.Tensor:
        """(B, 3, G*frames, H, W) -> (B, G, h, w, 3*frames*p*p) patch vectors."""
        b, ch, f, height, width = video_bcfhw.shape
        p = self.config.patch_size
        if height % p or width % p:
            raise ValueError(f"codec: frame size {height}x{width} is not a multiple of the patch size {p}")
        g = f // frames
        x = video_bcfhw.reshape(b, ch, g, frames, height // p, p, width // p, p)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, G, h, w, colour, frame, row, col)
        return x.reshape(b, g, height // p, width // p, ch * frames * p * p)

    def _unpatch(self, vectors: torch.Tensor, frames: int) -> torch.Tensor:
        """(B, G, h, w, 3*frames*p*p) -> (B, 3, G*frames, H, W)."""
        b, g, h, w, _ = vectors.shape
        p = self.config.patch_size
        x = vectors.reshape(b, g, h, w, 3, frames, p, p).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return x.reshape(b, 3, g * frames, h * p, w * p)

    @staticmethod
    def _code(vectors, basis, mean, scale):
        return torch.einsum("bghwd,cd->bcghw", vectors - mean, basis) / scale.view(1, -1, 1, 1, 1)

    @staticmethod
    def _uncode(z_bcghw, basis, mean, scale):
        return torch.einsum("bcghw,cd->bghwd", z_bcghw * scale.view(1, -1, 1, 1, 1), basis) + mean

    def check_frames(self, frames: int) -> None:
        t = self.config.temporal_patch
        if frames < 1 or (frames - 1) % t:
            raise ValueError(f"codec: frames must be 1 + {t}k, got {frames}")

    # -- the VAE interface -----------------------------------------------------------------------
    def _reference(self, first_bcfhw: torch.Tensor) -> torch.Tensor | float:
        """What the groups are coded relative to: 0, or (``temporal_reference="first"``) the
        decoded first frame (B, 3, 1, H, W), broadcast over the group's frames."""
        return first_bcfhw if self.config.temporal_reference == "first" else 0.0

    def latents(self, video_bcfhw: torch.Tensor) -> torch.Tensor:
        """The code (B, C, F', h, w) of a video (B, 3, F, H, W) in [-1, 1], F = 1 + 4k."""
        t = self.config.temporal_patch
        self.check_frames(video_bcfhw.shape[2])
        video = video_bcfhw.to(self.first_basis.dtype)
        first = self._code(
            self._patches(video[:, :, :1], 1), self.first_basis, self.first_mean, self.first_scale
        )
        if video.shape[2] == 1:
            return first
        # closed loop: the reference is the first frame as decode() will rebuild it
        reference = self._reference(self._decode_first(first))
        rest = self._code(
            self._patches(video[:, :, 1:] - reference, t), self.group_basis, self.group_mean, self.group_scale
        )
        return torch.cat([first, rest], dim=2)

    def _decode_first(self, z_first: torch.Tensor) -> torch.Tensor:
        return self._unpatch(self._uncode(z_first, self.first_basis, self.first_mean, self.first_scale), 1)

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        z = self.latents(x)
        parameters = torch.cat([z, torch.full_like(z, -30.0)], dim=1)  # (mean, logvar)
        posterior = DiagonalGaussianDistribution(parameters, deterministic=True)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, generator=None):
        t = self.config.temporal_patch
        z = z.to(self.first_basis.dtype)
        first = self._decode_first(z[:, :, :1])
        parts = [first]
        if z.shape[2] > 1:
            parts.append(
                self._unpatch(
                    self._uncode(z[:, :, 1:], self.group_basis, self.group_mean, self.group_scale), t
                )
                + self._reference(first)
            )
        video = torch.cat(parts, dim=2)
        if self.config.deblock > 0:
            grid = int(self.config.deblock_grid or 2 * self.config.patch_size)
            video = deblock(video, grid, float(self.config.deblock))
        return DecoderOutput(sample=video) if return_dict else (video,)

    def forward(self, sample: torch.Tensor, return_dict: bool = True):
        return self.decode(self.latents(sample), return_dict=return_dict)

    # -- fitting ----------------------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, clips_bcfhw, record: dict | None = None) -> dict:
        """Fit both bases on an iterable of (B, 3, F, H, W) clips in [-1, 1] (F = 1 + 4k): mean,
        covariance (float64 sums, deterministic for the same clips), the fixed mean-colour
        directions, then the leading eigenvectors of what they leave, signs fixed (largest
        entry positive), and each channel's std. Returns the fit's record (also kept in the
        config as ``fit``)."""
        p, t, c = self.config.patch_size, self.config.temporal_patch, self.config.latent_channels
        first = _Moments(3 * p * p)
        group = _Moments(3 * t * p * p)
        clips = 0
        for video in clips_bcfhw:
            self.check_frames(video.shape[2])
            video = video.to(torch.float64)
            first.add(self._patches(video[:, :, :1], 1).reshape(-1, first.dim))
            if video.shape[2] > 1:  # (open loop: the true first frame as the reference)
                rest = video[:, :, 1:] - self._reference(video[:, :, :1])
                group.add(self._patches(rest, t).reshape(-1, group.dim))
            clips += video.shape[0]
        energy = {}
        for name, moments, frames in (("first", first, 1), ("group", group, t)):
            mean, cov = moments.mean_cov()
            basis, kept = _constrained_basis(cov, c, frames, p, self.config.temporal_mean_order)
            scale = torch.sqrt(torch.einsum("cd,de,ce->c", basis, cov, basis)).clamp_min(1e-6)
            getattr(self, f"{name}_basis").copy_(basis.to(self.first_basis.dtype))
            getattr(self, f"{name}_mean").copy_(mean.to(self.first_basis.dtype))
            getattr(self, f"{name}_scale").copy_(scale.to(self.first_basis.dtype))
            energy[name] = kept
        fit = {
            **(record or {}),
            "clips": clips,
            "patches": {"first": first.count, "group": group.count},
            "energy_kept": energy,
        }
        self.register_to_config(fit=fit)
        return fit


class _Moments:
    """Running float64 sums of patch vectors for a mean and covariance."""

    def __init__(self, dim: int):
        self.dim, self.count = dim, 0
        self.total = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)

    def add(self, vectors: torch.Tensor) -> None:
        self.count += vectors.shape[0]
        self.total += vectors.sum(0)
        self.outer += vectors.T @ vectors

    def mean_cov(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.count < 2:
            raise ValueError("codec fit: no patches (give it clips)")
        mean = self.total / self.count
        cov = self.outer / self.count - torch.outer(mean, mean)
        return mean, (cov + cov.T) / 2


def _mean_colour_directions(frames: int, p: int, order: int) -> torch.Tensor:
    """(3 (order' + 1), 3*frames*p*p) orthonormal rows, order' = min(order, frames - 1): for each
    colour, its mean over the patch's pixels, as a polynomial of degree order' over the frames
    (order 0: the patch's mean colour; 1: and its linear change from frame to frame)."""
    per_colour = frames * p * p
    order = min(order, frames - 1)
    t = torch.arange(frames, dtype=torch.float64)
    polys = torch.stack([t**k for k in range(order + 1)])  # (order+1, frames)
    q, _ = torch.linalg.qr(polys.T)
    q = q.T * torch.sign(q.T[:, -1:])
    u = torch.zeros(3 * (order + 1), 3 * per_colour, dtype=torch.float64)
    for k in range(order + 1):
        for colour in range(3):
            block = q[k].repeat_interleave(p * p) / math.sqrt(p * p)
            u[k * 3 + colour, colour * per_colour : (colour + 1) * per_colour] = block
    return u


def _default_basis(dim: int, channels: int, frames: int, p: int, order: int) -> torch.Tensor:
    """An unfitted codec's basis (``fit`` replaces it): the mean-colour directions, then
    orthonormal directions of their complement."""
    return _constrained_basis(torch.eye(dim, dtype=torch.float64), channels, frames, p, order)[0].float()


def _constrained_basis(
    cov: torch.Tensor, channels: int, frames: int, p: int, order: int
) -> tuple[torch.Tensor, float]:
    """(channels, d) orthonormal rows: the 3 mean-colour directions, then the leading
    eigenvectors of the covariance projected on their complement; and the share of the total
    variance the basis keeps."""
    u = _mean_colour_directions(frames, p, order)
    projector = torch.eye(cov.shape[0], dtype=torch.float64) - u.T @ u
    residual = projector @ cov @ projector
    values, vectors = torch.linalg.eigh((residual + residual.T) / 2)  # ascending
    order = torch.argsort(values, descending=True)[: channels - u.shape[0]]
    top = vectors[:, order].T  # (C - 3, d)
    # deterministic signs: the entry of largest magnitude positive
    signs = torch.sign(top.gather(1, top.abs().argmax(1, keepdim=True)))
    top = top * signs
    basis = torch.cat([u, top])
    kept = float(torch.einsum("cd,de,ce->", basis, cov, basis) / torch.trace(cov))
    return basis, kept


# -- block edges ---------------------------------------------------------------------------------
def deblock(video_bcfhw: torch.Tensor, p: int, strength: float) -> torch.Tensor:
    """Smooth across the p x p patch boundaries only: each pixel pair straddling a boundary is
    pulled towards its mean by ``strength`` / 2 and the next pixels inwards by a quarter of that.
    A fixed filter on the decoded frames (no effect inside a patch away from its edges)."""
    out = video_bcfhw.clone()
    for dim in (3, 4):
        size = out.shape[dim]
        if size <= p:
            continue
        left = torch.arange(p - 1, size - 1, p, device=out.device)
        right = left + 1
        for offset, weight in ((0, 0.5 * strength), (1, 0.125 * strength)):
            a, b = left - offset, right + offset
            keep = (a >= 0) & (b < size)
            a, b = a[keep], b[keep]
            va, vb = out.index_select(dim, a), out.index_select(dim, b)
            step = vb - va
            out.index_add_(dim, a, weight * step)
            out.index_add_(dim, b, -weight * step)
    return out


def blockiness(video_bcfhw: torch.Tensor, p: int) -> float:
    """Mean absolute pixel step across patch boundaries divided by the mean step inside patches
    (1.0: no visible grid; larger: block edges), over both spatial axes and every frame."""
    steps_across, steps_inside = [], []
    for dim in (3, 4):
        diff = video_bcfhw.diff(dim=dim).abs()
        index = torch.arange(diff.shape[dim], device=diff.device)
        boundary = (index % p) == (p - 1)
        steps_across.append(diff.index_select(dim, index[boundary]).mean())
        steps_inside.append(diff.index_select(dim, index[~boundary]).mean())
    return float(torch.stack(steps_across).mean() / torch.stack(steps_inside).mean().clamp_min(1e-12))


def build_codec(config: dict) -> LinearVideoCodec:
    config = {k: v for k, v in dict(config).items() if not k.startswith("_")}
    return LinearVideoCodec(**config)


def mean_colour_error(a_bfchw: np.ndarray | torch.Tensor, b_bfchw) -> float:
    """Largest per-frame, per-channel difference of mean colour, in 8-bit levels ([0, 1] inputs)."""
    a = torch.as_tensor(a_bfchw, dtype=torch.float64)
    b = torch.as_tensor(b_bfchw, dtype=torch.float64)
    return float((a.mean(dim=(-2, -1)) - b.mean(dim=(-2, -1))).abs().max() * 255.0)
