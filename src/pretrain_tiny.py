"""python -m src.pretrain_tiny [--model tiny|tiny_wan] [--autoencoder codec|learned] [--init-from FILE] [--transformer-steps N] [--out FILE]

Pretrains the embedded tiny CogVideoX I2V base (``--model tiny``) or the tiny Wan2.2 TI2V base
(``--model tiny_wan``), the stand-in for the video pretraining the real
model had, on identity-preserving clips of still photographs (:func:`src.data.motion.pretraining_clip`:
static or gently moving camera, exposure ramps with fading grain, focus pulls, each described in
words) of the bundled scikit-image photos, tinted grayscale photos and the McMaster photographs
(``--photos-dir``; Set5 and the bundled ``VAL_HOLDOUT`` photos are never used). Three stages:

1. ``vae``: with ``--autoencoder codec`` (the default), the linear latent codec's fit
   (:mod:`src.models.codec`; seconds, ``--fit-clips`` pretraining and progression clips); with
   ``--autoencoder learned``, the VAE on random ``--vae-crop`` crops of those clips (a conv net:
   small crops train it fast and transfer to full frames), L1 + MSE + a frame-difference L1 (so
   it codes changes inside a 4-frame latent group) + a tiny KL;
2. ``bank``: encodes ``--bank-clips`` full-size clips once (posterior mean/logvar of the video and
   of the noise-augmented first frame; prompts) and sets the VAE's ``scaling_factor`` to 1/std of
   the latents (as CogVideoX's 1.15258426 was chosen). The VAE encode dominates a training step,
   so stage 3 never runs it;
3. ``transformer``: the transformer *and the text encoder* with the loss the LoRA fine-tuning
   uses (CogVideoX: I2V v-prediction; Wan: flow matching with latent frame 0 replaced by the
   clean image latent), 10 % empty prompts (so classifier-free guidance works), on the bank.

The two families differ only where their recipes do (:mod:`src.pretrain.families`:
:class:`~src.pretrain.families.CogVideoXPretraining`, :class:`~src.pretrain.families.WanPretraining`):
the first-frame latents of the bank (CogVideoX: a noise-augmented posterior; Wan: the clean
posterior mode), the latent statistics set after the VAE stage (CogVideoX: one ``scaling_factor``;
Wan: per-channel ``latents_mean`` / ``latents_std``), the prompt embeddings and the loss.

Resumable: the whole state (weights, optimizer, step, histories) is saved every
``--checkpoint-minutes`` under ``--state-dir``; rerunning the same command continues where it
stopped, so a long pretraining can run in several pieces. Every random draw is a function of
(``--seed``, stage, step), so a resumed run equals an uninterrupted one. Writes the safetensors
file (fp16, < 25 MB) and a record of the run (data, settings, losses, held-out reconstruction
PSNR, identity PSNR of sampled clips, minutes) to ``--record``.
"""

from __future__ import annotations

from pathlib import Path

from src.pretrain.data import default_photos_dir
from src.pretrain.families import FAMILY
from src.pretrain.options import PretrainOptions
from src.pretrain.run import pretrain
from src.pretrain.stages import STAGES
from src.utils.cli import ArgumentParser, exit_on_user_error


def parse_args(argv=None) -> PretrainOptions:
    """The command line, checked (one usage error per bad value) and completed with the chosen
    model's defaults, as typed options."""
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--autoencoder",
        choices=("codec", "learned"),
        default="codec",
        help="the linear latent codec (fitted in seconds; the default models) or a learned tiny VAE",
    )
    parser.add_argument("--fit-clips", type=int, default=640, help="clips the codec is fitted on")
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="continue from a tiny-model file of the same architecture (its autoencoder is kept, "
        "its transformer and text encoder train on): more pretraining compute adds to a shipped base",
    )
    parser.add_argument(
        "--deblock",
        type=float,
        default=0.5,
        help="the codec's block-edge filter strength on the token grid, written into the file (0 = off; "
        "make bench-codec measures it); not a training setting: a finished run only rewrites the file",
    )
    parser.add_argument("--vae-steps", type=int, default=2500, help="learned VAE only")
    parser.add_argument("--vae-batch", type=int, default=4)
    parser.add_argument("--vae-lr", type=float, default=2e-3)
    parser.add_argument("--vae-crop", type=int, default=32, help="square training crops (multiple of 8)")
    parser.add_argument("--temporal-weight", type=float, default=1.0, help="frame-difference L1 weight")
    parser.add_argument("--bank-clips", type=int, default=4000, help="clips encoded once for stage 3")
    parser.add_argument(
        "--transformer-steps",
        type=int,
        default=None,
        help="default: the shipped base's (tiny 4500, tiny_wan 6000)",
    )
    parser.add_argument("--transformer-batch", type=int, default=8)
    parser.add_argument("--transformer-lr", type=float, default=1e-3)
    parser.add_argument("--text-lr", type=float, default=1e-3, help="text encoder (trained in stage 3)")
    parser.add_argument(
        "--photos-dir", default=str(default_photos_dir()), help="extra training photos ('none': bundled only)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="default outputs/pretrain_tiny/seed<seed>"
    )
    parser.add_argument("--fresh", action="store_true", help="discard a saved state and start over")
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="save and stop after this many minutes (rerun the same command to continue)",
    )
    parser.add_argument(
        "--stop-after", choices=STAGES, default=None, help="stop (resumably) after this stage"
    )
    parser.add_argument(
        "--model", choices=("tiny", "tiny_wan"), default="tiny", help="the tiny CogVideoX or the tiny Wan2.2"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default: the model's file in src/models/pretrained"
    )
    parser.add_argument(
        "--record", type=Path, default=None, help="default: experiments/<model>_pretrain.json"
    )
    args = parser.parse_args(argv)
    family = FAMILY[args.model]
    args.transformer_steps = args.transformer_steps or family.transformer_steps
    args.out = args.out or family.weights(args.autoencoder)
    args.record = args.record or family.record(args.autoencoder)
    height = family.architecture(args.autoencoder)["height"]
    if args.vae_crop % 8 or not 8 <= args.vae_crop <= height:
        parser.error(f"--vae-crop must be a multiple of 8 between 8 and {height}")
    if args.init_from is not None and not args.init_from.is_file():
        parser.error(f"--init-from {args.init_from}: no such file")
    for name in (
        "vae_steps",
        "transformer_steps",
        "bank_clips",
        "vae_batch",
        "transformer_batch",
        "fit_clips",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return PretrainOptions(**vars(args))


def main(argv=None) -> None:
    pretrain(parse_args(argv))


if __name__ == "__main__":
    exit_on_user_error(main)
