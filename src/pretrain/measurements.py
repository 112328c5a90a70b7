"""What the pretraining measures (the record's numbers): reconstruction PSNR of the autoencoder,
the codec's round trip of progression clips, and the identity PSNR of trajectories the base
samples from still photographs (training, held-out and Set5 photos; Set5 is measured, never
trained on)."""

from __future__ import annotations

import numpy as np
import torch

from src.data.motion import STATIC_PHRASES
from src.models import recipe
from src.pretrain.data import clip_batch, set5_images
from src.pretrain.families import FAMILY
from src.utils.frames import to_float_tensor
from src.utils.seeding import stable_seed


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).item()
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


@torch.no_grad()
def vae_reconstruction_psnr(vae, photos, arch, seed: int, clips: int = 8) -> float:
    """PSNR of VAE(mean) reconstructions of full-size pretraining clips of ``photos``."""
    rng = np.random.default_rng(stable_seed(seed, "pretrain", "vae-eval"))
    values = []
    for _ in range(clips // 4):
        batch, _ = clip_batch(photos, rng, 4, arch)
        mean, _ = recipe.encode_posterior(vae, recipe.to_vae_video(batch))
        values.append(psnr(recipe.from_vae_video(vae.decode(mean).sample), batch))
    return float(np.mean(values))


@torch.no_grad()
def codec_progression_psnr(vae, images: dict, arch, seed: int) -> dict:
    """Round-trip PSNR of progression clips (each task, at the paper's schedules) of whole
    ``images``: frames 2-9, frame 1 and the last frame, and the largest per-frame mean-colour
    error (8-bit levels)."""
    from src.data.degradations import TASKS, DegradationPreset, make_clip
    from src.data.images import fit_to_output
    from src.models.codec import mean_colour_error

    clips = []
    for task in TASKS:
        for key in sorted(images):
            clean, _ = fit_to_output(images[key], arch["height"], arch["width"])
            rng = np.random.default_rng(stable_seed(seed, "codec-eval", task, key))
            clips.append(to_float_tensor(make_clip(clean, task, rng, DegradationPreset(), arch["frames"])[0]))
    batch = torch.stack(clips)
    rec = recipe.from_vae_video(vae.decode(vae.encode(recipe.to_vae_video(batch)).latent_dist.mode()).sample)
    return {  # plain floats: the record goes into the resumable state (weights-only unpickling)
        "clips": len(clips),
        "frames_2_to_9": float(psnr(rec[:, 1:], batch[:, 1:])),
        "frame_1": float(psnr(rec[:, 0], batch[:, 0])),
        "last_frame": float(psnr(rec[:, -1], batch[:, -1])),
        "worst_clip_frames_2_to_9": float(min(psnr(rec[i, 1:], batch[i, 1:]) for i in range(len(batch)))),
        "mean_colour_error_max": float(mean_colour_error(rec, batch)),
    }


def autoencoder_record(vae, photos, held_out, arch, seed: int, codec: bool) -> dict:
    """Reconstruction PSNR of pretraining clips (training photos, held-out photos, Set5 when
    here) and, for the codec, the round trip of progression clips of the held-out photos."""
    set5 = set5_images()
    images = {"train": photos, "held_out": held_out, **({"set5": set5} if set5 is not None else {})}
    record = {
        "reconstruction_psnr_db": {k: vae_reconstruction_psnr(vae, v, arch, seed) for k, v in images.items()}
    }
    if codec:
        record["progression_round_trip"] = {
            k: codec_progression_psnr(vae, v, arch, seed) for k, v in images.items() if k != "train"
        }
    return record


@torch.no_grad()
def identity_trajectories(
    components, photos, arch, seed: int, steps: int = 25, model: str = "tiny"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sampled (B, F, C, H, W), still frames (B, C, H, W)), both in [0, 1]: trajectories from
    each of ``photos`` with the prompt "The camera holds still.", generator i seeded by
    (seed, "identity", i)."""
    from src.data.images import fit_to_output

    frames = to_float_tensor(
        np.stack([fit_to_output(image, arch["height"], arch["width"])[0] for image in photos.values()])
    )
    generators = [torch.Generator().manual_seed(stable_seed(seed, "identity", i)) for i in range(len(frames))]
    family = FAMILY[model]
    video = family.generate_trajectory(
        family.pipeline(components),
        frames,
        [STATIC_PHRASES[0]] * len(frames),
        generators,
        arch["height"],
        arch["width"],
        arch["frames"],
        steps,
        1.0,
        components.max_sequence_length,
    )
    return video, frames


def identity_psnr(components, photos, arch, seed: int, steps: int = 25, model: str = "tiny") -> list[float]:
    """Per-frame PSNR of sampled trajectories against static clips of held-out ``photos``
    (prompt: the camera holds still): how well the base keeps the scene of frame 1."""
    video, frames = identity_trajectories(components, photos, arch, seed, steps, model)
    return [psnr(video[:, f], frames) for f in range(video.shape[1])]


def identity_set5(components, arch, args) -> dict:
    """Identity PSNR of the held-out Set5 photographs (measured only), when they are here."""
    images = set5_images()
    if images is None:
        return {}
    return {
        "identity_psnr_db_per_frame_set5": identity_psnr(
            components, images, arch, args.seed, model=args.model
        )
    }
