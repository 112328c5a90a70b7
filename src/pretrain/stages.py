"""The three stages of a pretraining: ``vae`` (the codec's fit or the learned VAE's training),
``bank`` (latents encoded once) and ``transformer`` (with the text encoder), and
:func:`run_stages`, which runs those not done yet and saves the state after each."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from src.models import recipe
from src.models.codec import is_codec_config
from src.pretrain.data import clip_batch, codec_fit_clips, step_rng
from src.pretrain.families import FAMILY, tokenize
from src.pretrain.measurements import autoencoder_record
from src.pretrain.state import State, curve, optimize

STAGES = ("vae", "bank", "transformer")


# -- stage 1: VAE --------------------------------------------------------------------------------
def train_vae(components, state, photos, arch, args) -> dict:
    vae = components.vae
    crop = args.vae_crop

    def loss_fn(step):
        rng, generator = step_rng(args.seed, "vae", step)
        clips, _ = clip_batch(photos, rng, args.vae_batch, arch)
        top = int(rng.integers(0, arch["height"] - crop + 1))
        left = int(rng.integers(0, arch["width"] - crop + 1))
        video = recipe.to_vae_video(clips[..., top : top + crop, left : left + crop])
        posterior = vae.encode(video).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=generator)).sample
        error = reconstruction - video
        temporal = (reconstruction.diff(dim=2) - video.diff(dim=2)).abs().mean()
        return (
            error.abs().mean()
            + 0.5 * (error**2).mean()
            + args.temporal_weight * temporal
            + 1e-6 * posterior.kl().mean()
        )

    vae.requires_grad_(True)
    history = optimize(
        components,
        state,
        "vae",
        [{"params": list(vae.parameters()), "lr": args.vae_lr, "weight_decay": 0.0}],
        args.vae_steps,
        50,
        loss_fn,
        [vae],
    )
    vae.requires_grad_(False)
    return {
        "loss_first_last": [float(np.mean(history[:20])), float(np.mean(history[-20:]))],
        "loss_curve_per_100": curve(history, 100),
    }


# -- stage 1 with the linear codec: the fit ----------------------------------------------------------
def fit_codec(components, photos, all_photos, arch, args) -> dict:
    """Stage 1 for the codec: its bases from ``--fit-clips`` clips (seconds, deterministic)."""
    clips = codec_fit_clips(photos, all_photos, arch, args.seed, args.fit_clips)
    total = (args.fit_clips + 15) // 16
    fit = components.vae.fit(
        tqdm(clips, total=total, desc="codec fit", unit="chunk", dynamic_ncols=True),
        {
            "seed": args.seed,
            "stream": "pretrain/codec-fit/<chunk>",
            "sources": "pretraining + progression clips",
        },
    )
    return {"fit": fit}


# -- stage 2: latent bank -------------------------------------------------------------------------
def bank_path(state: State) -> Path:
    return state.directory / "bank.pt"


@torch.no_grad()
def build_bank(components, state, photos, arch, args) -> dict:
    """Posteriors of ``bank_clips`` clips (video, and first frame with its noise augmentation)."""
    path = bank_path(state)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    vae, chunk = components.vae, 16
    parts: dict[str, list] = {"mean": [], "logvar": [], "image_mean": [], "image_logvar": [], "prompts": []}
    for start in tqdm(range(0, args.bank_clips, chunk), desc="bank", unit="chunk", dynamic_ncols=True):
        rng, generator = step_rng(args.seed, "bank", start)
        count = min(chunk, args.bank_clips - start)
        clips, prompts = clip_batch(photos, rng, count, arch)
        video = recipe.to_vae_video(clips)
        mean, logvar = recipe.encode_posterior(vae, video)
        image_mean, image_logvar = FAMILY[args.model].first_frame_posterior(vae, video, count, generator)
        for key, value in (
            ("mean", mean),
            ("logvar", logvar),
            ("image_mean", image_mean),
            ("image_logvar", image_logvar),
        ):
            parts[key].append(value.to(torch.float16))
        parts["prompts"] += prompts
    bank = {key: torch.cat(value) if key != "prompts" else value for key, value in parts.items()}
    samples = recipe.sample_posterior(
        bank["mean"][:256].float(), bank["logvar"][:256].float(), torch.Generator().manual_seed(args.seed)
    )
    bank["vae_stats"] = FAMILY[args.model].latent_statistics(samples)
    path.parent.mkdir(parents=True, exist_ok=True)  # (with --init-from no earlier stage made it)
    temp = path.with_suffix(".tmp")
    torch.save(bank, temp)
    os.replace(temp, path)
    return bank


# -- stage 3: transformer + text encoder ----------------------------------------------------------
def train_transformer(components, state, bank, arch, args) -> dict:
    token_ids = tokenize(components, bank["prompts"])
    count = len(bank["prompts"])
    step_loss = FAMILY[args.model].loss(components, arch)

    def loss_fn(step):
        rng, generator = step_rng(args.seed, "transformer", step)
        index = torch.from_numpy(rng.integers(0, count, size=args.transformer_batch))
        return step_loss(bank, index, token_ids, generator)

    components.transformer.requires_grad_(True)
    components.text_encoder.requires_grad_(True)
    history = optimize(
        components,
        state,
        "transformer",
        [
            {
                "params": list(components.transformer.parameters()),
                "lr": args.transformer_lr,
                "weight_decay": 0.01,
            },
            {"params": list(components.text_encoder.parameters()), "lr": args.text_lr, "weight_decay": 0.01},
        ],
        args.transformer_steps,
        100,
        loss_fn,
        [components.transformer],  # T5 stays in eval mode: no dropout, as in fine-tuning
    )
    components.transformer.requires_grad_(False)
    components.text_encoder.requires_grad_(False)
    return {
        "loss_first_last": [float(np.mean(history[:50])), float(np.mean(history[-200:]))],
        "loss_curve_per_500": curve(history, 500),
    }


def run_stages(components, state, record, photos, all_photos, held_out, arch, args) -> None:
    for stage in STAGES:
        if stage in state.data["done"]:
            continue
        started, earlier = time.time(), state.stage_minutes(stage)
        if stage == "vae":
            codec = is_codec_config(arch["vae"])
            if codec:
                record["vae"] = fit_codec(components, photos, all_photos, arch, args)
            else:
                record["vae"] = train_vae(components, state, all_photos, arch, args)
            record["vae"].update(autoencoder_record(components.vae, photos, held_out, arch, args.seed, codec))
        elif stage == "bank":
            bank = build_bank(components, state, all_photos, arch, args)
            components.vae.register_to_config(**bank["vae_stats"])
            record["bank"] = {"clips": args.bank_clips, **bank["vae_stats"]}
        else:
            bank = build_bank(components, state, all_photos, arch, args)
            record["transformer"] = train_transformer(components, state, bank, arch, args)
        minutes = record.setdefault("stage_minutes", {})
        minutes[stage] = earlier + (time.time() - started) / 60
        state.data["done"].append(stage)
        state.save(components)
        print(f"stage {stage} done: {json.dumps(record.get(stage, {}))[:300]}", file=sys.stderr, flush=True)
        if args.stop_after == stage and stage != STAGES[-1]:
            print(f"stopped after {stage}; rerun the same command to continue", file=sys.stderr)
            return
