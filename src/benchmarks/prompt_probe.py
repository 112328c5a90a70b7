"""A probe of the shipped tiny base alone (``make bench-paper``'s ``prompt_probe.json``): does it
keep a still scene as well when the prompt carries the photo's scene caption, and better than with
another photo's caption?"""

from __future__ import annotations

import sys

from src.utils.config import PROJECT_ROOT, shared_dir

PROBE_PROMPTS = {  # name -> prompt of photo i (captions from conf/captions/photos.json)
    "the pretraining phrase": lambda caps, keys, i: "The camera holds still.",
    "a synonym it was pretrained on": lambda caps, keys, i: "Nothing moves.",
    "its own scene caption first": lambda caps, keys, i: (
        f"{_sentence(caps[keys[i]])} The camera holds still."
    ),
    "another photo's caption first": lambda caps, keys, i: (
        f"{_sentence(caps[keys[(i + 1) % len(keys)]])} The camera holds still."
    ),
    "an effect it was pretrained on": lambda caps, keys, i: (
        "The camera holds still. The scene gradually brightens."
    ),
}


def _sentence(caption: str) -> str:
    return caption[:1].upper() + caption[1:].rstrip(".") + "."


def prompt_probe(seed: int = 0, steps: int = 25) -> dict:
    """Why scene captions can or cannot help: the shipped tiny base (no LoRA) samples the 5 Set5
    photographs as still scenes with each prompt of :data:`PROBE_PROMPTS`, same noise (seed) for
    every prompt; frames 2-9 against the still photo (PSNR) and against the pretraining phrase's
    samples. A base that read scene captions in pretraining would keep the scene as well with
    its own caption as with the phrase, and better than with another photo's caption."""
    import numpy as np
    import torch

    from src.data.images import Source, fit_to_output, list_sources, load_image
    from src.models import recipe
    from src.models.tiny import load_tiny
    from src.prompts import load_captions
    from src.utils.frames import to_float_tensor
    from src.utils.seeding import stable_seed

    shared = shared_dir()
    sources, _ = list_sources(shared / "data" / "set5")
    photos = {s.key: load_image(Source(s.key, s.path)) for s in sources}
    captions = load_captions(PROJECT_ROOT / "conf" / "captions" / "photos.json")
    components, _ = load_tiny()
    height, width, frames = 64, 112, 9  # conf/model/tiny.yaml
    first = to_float_tensor(np.stack([fit_to_output(im, height, width)[0] for im in photos.values()]))
    pipeline = recipe.i2v_pipeline(components)
    keys = list(photos)

    def sample(prompts):
        generators = [torch.Generator().manual_seed(stable_seed(seed, "probe", i)) for i in range(len(keys))]
        return recipe.generate_trajectory(
            pipeline,
            first,
            prompts,
            generators,
            height,
            width,
            frames,
            steps,
            1.0,
            components.max_sequence_length,
        )

    def psnr(a, b) -> float:
        return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))

    still = first[:, None].expand(-1, frames, -1, -1, -1)
    reference = None
    rows = {}
    for name, make in PROBE_PROMPTS.items():
        video = sample([make(captions, keys, i) for i in range(len(keys))])
        reference = video if reference is None else reference
        rows[name] = {
            "psnr_vs_still_photo_f2_9": round(psnr(video[:, 1:], still[:, 1:]), 2),
            "psnr_vs_pretraining_phrase_samples_f2_9": None
            if video is reference
            else round(psnr(video[:, 1:], reference[:, 1:]), 2),
        }
        print(f"probe: {name}: {rows[name]}", file=sys.stderr, flush=True)
    return {
        "seed": seed,
        "steps": steps,
        "images": keys,
        "model": "tiny (shipped base, no LoRA)",
        "prompts": rows,
    }


def probe_markdown(probe: dict) -> str:
    lines = [
        "## Does the base read scene captions? (`prompt_probe.json`)",
        "",
        f"The shipped tiny base without a LoRA samples the {len(probe['images'])} Set5 photographs as still "
        f"scenes, the same noise (seed {probe['seed']}, {probe['steps']} steps) for every prompt; frames 2-9.",
        "",
        "| prompt | PSNR vs the still photo | PSNR vs the pretraining phrase's samples |",
        "|---|---|---|",
    ]
    for name, row in probe["prompts"].items():
        lines.append(
            f"| {name} | {row['psnr_vs_still_photo_f2_9']:.2f} | "
            + (
                "(itself)"
                if row["psnr_vs_pretraining_phrase_samples_f2_9"] is None
                else f"{row['psnr_vs_pretraining_phrase_samples_f2_9']:.2f}"
            )
            + " |"
        )
    return "\n".join(lines) + "\n"
