"""The measurements of `make bench-codec` (:mod:`src.benchmarks.codec`): per model family, the
linear codec against the learned VAE it replaced (fit, progression PSNR, block edges at each
deblocking strength), and the table."""

from __future__ import annotations

import json
import time

import torch

from src.models import recipe
from src.models.codec import CODEC_GEOMETRY, blockiness, build_codec
from src.utils.config import PROJECT_ROOT

OUT = PROJECT_ROOT / "experiments" / "benchmarks"


STRENGTHS = (0.0, 0.25, 0.5, 0.75)  # on the codec's deblock_grid (the token grid)


def _families():
    from src.models.wan_architecture import build_tiny_wan_components
    from src.pretrain.families import FAMILY

    return {
        "tiny": (FAMILY["tiny"], None),
        "tiny_wan": (FAMILY["tiny_wan"], build_tiny_wan_components),
    }


def load_lpips():
    from src.metrics.lpips import load_lpips
    from src.utils.config import shared_dir

    weights = shared_dir() / "weights" / "lpips"
    return load_lpips(weights / "alexnet_features.pth", weights / "lpips_v0.1_alex_lin.pth")


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (a.clamp(0, 1) - b).pow(2).mean().clamp_min(1e-12)))


@torch.no_grad()
def bench_family(name: str, set5: dict, steps: int, lpips) -> dict:
    from src.models.tiny import load_tiny
    from src.pretrain.data import codec_fit_clips, default_photos_dir, gray_photos, training_photos
    from src.pretrain.measurements import codec_progression_psnr, identity_trajectories

    family, build = _families()[name]
    components, metadata = load_tiny(family.weights("codec"), build=build)
    arch = json.loads(metadata["architecture"])
    learned, learned_meta = load_tiny(family.weights("learned"), build=build)
    learned_arch = json.loads(learned_meta["architecture"])
    record: dict = {
        "geometry": CODEC_GEOMETRY[name],
        "round_trip_set5": {
            "codec": codec_progression_psnr(components.vae, set5, arch, seed=0),
            "learned_vae": codec_progression_psnr(learned.vae, set5, learned_arch, seed=0),
        },
    }
    # the fit, again, from what the file records
    fit = dict(components.vae.config.fit or {})
    config = {k: v for k, v in dict(components.vae.config).items() if not k.startswith("_") and k != "fit"}
    refit = build_codec(config)
    photos = training_photos(default_photos_dir())
    started = time.time()
    refit.fit(
        codec_fit_clips(photos, {**photos, **gray_photos()}, arch, int(fit.get("seed", 0)), int(fit["clips"]))
    )
    record["fit"] = {
        **fit,
        "refit_seconds": round(time.time() - started, 1),
        "refit_max_abs_basis_difference": float(
            max(
                (refit.group_basis - components.vae.group_basis).abs().max(),
                (refit.first_basis - components.vae.first_basis).abs().max(),
            )
        ),
    }
    # block edges on sampled static trajectories
    p = int(arch["vae"]["patch_size"])
    rows = []
    original = float(components.vae.config.deblock)
    for strength in STRENGTHS:
        components.vae.register_to_config(deblock=strength)
        video, stills = identity_trajectories(components, set5, arch, seed=0, steps=steps, model=name)
        frames = video.shape[1]
        lp = [float(lpips(video[:, f], stills).mean()) for f in range(frames)] if lpips is not None else None
        rows.append(
            {
                "deblock": strength,
                "psnr_per_frame": [_psnr(video[:, f], stills) for f in range(frames)],
                "lpips_per_frame": lp,
                "blockiness": blockiness(recipe.to_vae_video(video), p),
            }
        )
    components.vae.register_to_config(deblock=original)
    # the ceiling of the identity measurement: the codec's own round trip of the still clips
    still = stills.unsqueeze(1).repeat(1, int(arch["frames"]), 1, 1, 1)
    components.vae.register_to_config(deblock=0.0)
    back = recipe.from_vae_video(
        components.vae.decode(components.vae.encode(recipe.to_vae_video(still)).latent_dist.mode()).sample
    )
    components.vae.register_to_config(deblock=original)
    record["identity_ceiling"] = {
        "frame_1": _psnr(back[:, 0], still[:, 0]),
        "frames_2_to_9": _psnr(back[:, 1:], still[:, 1:]),
    }
    record["block_edges"] = {
        "shipped_deblock": original,
        "clean_photos_blockiness": blockiness(recipe.to_vae_video(stills.unsqueeze(1)), p),
        "sampling_steps": steps,
        "rows": rows,
    }
    return record


def markdown(records: dict, machine: dict) -> str:
    lines = [
        "# The tiny models' autoencoders (`make bench-codec`)",
        "",
        f"On {machine['cpu']} ({machine['cores']} cores), {machine['date']}. Held-out Set5 photographs "
        "(never in the fit or the pretraining), 64x112, 9 frames.",
        "",
        "## Round trip of progression clips (sr, deblur, lowlight; 15 clips)",
        "",
        "The codec's round trip includes its shipped `deblock` filter (what every decode applies).",
        "",
        "| model | autoencoder | frames 2-9 PSNR | worst clip | frame 1 | clean last frame | max per-frame colour error (levels) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in records.items():
        for kind, label in (("codec", "linear codec"), ("learned_vae", "learned tiny VAE (before)")):
            t = r["round_trip_set5"][kind]
            lines.append(
                f"| {name} | {label} | {t['frames_2_to_9']:.2f} | {t['worst_clip_frames_2_to_9']:.2f} | "
                f"{t['frame_1']:.2f} | {t['last_frame']:.2f} | {t['mean_colour_error_max']:.2f} |"
            )
    lines += [
        "",
        "## The fit",
        "",
        "| model | clips | seed | variance kept (first / groups) | refit seconds | refit vs shipped basis (max abs) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in records.items():
        f = r["fit"]
        kept = f.get("energy_kept", {})
        lines.append(
            f"| {name} | {f['clips']} | {f.get('seed')} | {kept.get('first', 0):.4f} / {kept.get('group', 0):.4f} | "
            f"{f['refit_seconds']} | {f['refit_max_abs_basis_difference']:.1e} |"
        )
    lines += [
        "",
        "## Identity: sampled still scenes against the codec's ceiling (5 Set5 photos)",
        "",
        'The base samples 9 frames from each photo with the prompt "The camera holds still."; the '
        "ceiling is the codec's own round trip of the still clip.",
        "",
        "| model | ceiling frame 1 | ceiling frames 2-9 | sampled frame 1 | sampled frame 9 (shipped deblock) |",
        "|---|---|---|---|---|",
    ]
    for name, r in records.items():
        c, b = r["identity_ceiling"], r["block_edges"]
        shipped = next((row for row in b["rows"] if row["deblock"] == b["shipped_deblock"]), b["rows"][0])
        lines.append(
            f"| {name} | {c['frame_1']:.2f} | {c['frames_2_to_9']:.2f} | {shipped['psnr_per_frame'][0]:.2f} | "
            f"{shipped['psnr_per_frame'][-1]:.2f} |"
        )
    lines += [
        "",
        "## Block edges on sampled static trajectories (the shipped base, 5 Set5 photos)",
        "",
        "Blockiness: mean pixel step across the codec's patch boundaries (4 px tiny, 8 px tiny_wan) "
        "over the mean step inside patches (1 = no grid). The deblock filter works on the token grid "
        "(twice the patch).",
        "",
        "| model | deblock | PSNR frame 1 | PSNR frame 9 | LPIPS frame 1 | LPIPS frame 9 | blockiness |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in records.items():
        b = r["block_edges"]
        for row in b["rows"]:
            lp = row["lpips_per_frame"] or [float("nan")] * 9
            lines.append(
                f"| {name} | {row['deblock']} | {row['psnr_per_frame'][0]:.2f} | {row['psnr_per_frame'][-1]:.2f} | "
                f"{lp[0]:.4f} | {lp[-1]:.4f} | {row['blockiness']:.2f} |"
            )
        lines.append(f"| {name} | clean photos | | | | | {b['clean_photos_blockiness']:.2f} |")
    lines += [
        "",
        "Shipped strengths (the codec config's `deblock`): "
        + ", ".join(f"{n} {r['block_edges']['shipped_deblock']}" for n, r in records.items())
        + ".",
        "",
    ]
    return "\n".join(lines)
